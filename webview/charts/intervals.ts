/**
 * Interval bars for the experiment charts: a vertical line with caps from the low to the high end of a 95%
 * confidence interval at a data x position, and optionally a line at y = 0 (the "no difference" mark of the
 * paired comparison). Drawn under the datasets, so means and run dots stay on top.
 */
import type { Chart, ChartType, Plugin } from 'chart.js';

export interface IntervalMark {
  x: number;
  low: number;
  high: number;
  color: string;
}

export interface IntervalOptions {
  bars: IntervalMark[];
  /** Colour of a dashed line at y = 0, or null for none. */
  zero: string | null;
  /** Half the width of a cap, in pixels. */
  cap: number;
  lineWidth: number;
}

declare module 'chart.js' {
  // The type parameter must repeat Chart.js's declaration for the interfaces to merge.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface PluginOptionsByType<TType extends ChartType> {
    sculptIntervals?: Partial<IntervalOptions>;
  }
}

export const intervalsPlugin: Plugin<'scatter', Partial<IntervalOptions>> = {
  id: 'sculptIntervals',
  defaults: { bars: [], zero: null, cap: 7, lineWidth: 2 },
  beforeDatasetsDraw(chart: Chart<'scatter'>, _args, opts) {
    const bars = opts?.bars ?? [];
    const xs = chart.scales.x;
    const ys = chart.scales.y;
    if (!xs || !ys || (!bars.length && !opts?.zero)) return;
    const { top, bottom, left, right } = chart.chartArea;
    const ctx = chart.ctx;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, right - left, bottom - top);
    ctx.clip();
    if (opts.zero) {
      const y = Math.round(ys.getPixelForValue(0)) + 0.5;
      if (y >= top && y <= bottom) {
        ctx.strokeStyle = opts.zero;
        ctx.lineWidth = 1;
        ctx.setLineDash([5, 4]);
        ctx.beginPath();
        ctx.moveTo(left, y);
        ctx.lineTo(right, y);
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
    const cap = opts.cap ?? 7;
    ctx.lineWidth = opts.lineWidth ?? 2;
    for (const b of bars) {
      const x = xs.getPixelForValue(b.x);
      const y0 = ys.getPixelForValue(b.low);
      const y1 = ys.getPixelForValue(b.high);
      ctx.strokeStyle = b.color;
      ctx.beginPath();
      ctx.moveTo(x, y0);
      ctx.lineTo(x, y1);
      ctx.moveTo(x - cap, y0);
      ctx.lineTo(x + cap, y0);
      ctx.moveTo(x - cap, y1);
      ctx.lineTo(x + cap, y1);
      ctx.stroke();
    }
    ctx.restore();
  },
};
