/** Vertical markers at task boundaries on step-based charts, labelled with the task that starts there. */
import type { Chart, ChartType, Plugin } from 'chart.js';

export interface BoundaryMark {
  x: number;
  label: string;
}

export interface BoundaryOptions {
  marks: BoundaryMark[];
  color: string;
  textColor: string;
}

declare module 'chart.js' {
  // The type parameter must repeat Chart.js's declaration for the interfaces to merge.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface PluginOptionsByType<TType extends ChartType> {
    sculptBoundaries?: BoundaryOptions;
  }
}

export const boundariesPlugin: Plugin<'line', BoundaryOptions> = {
  id: 'sculptBoundaries',
  defaults: { marks: [], color: 'rgba(128,128,128,0.5)', textColor: 'gray' },
  beforeDatasetsDraw(chart: Chart<'line'>, _args, opts) {
    const marks = opts?.marks ?? [];
    const xs = chart.scales.x;
    if (!marks.length || !xs) return;
    const { top, bottom, left, right } = chart.chartArea;
    const ctx = chart.ctx;
    ctx.save();
    ctx.strokeStyle = opts.color;
    ctx.fillStyle = opts.textColor;
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 4]);
    ctx.font = `11px ${chart.options.font?.family ?? 'sans-serif'}`;
    ctx.textBaseline = 'top';
    for (const m of marks) {
      const px = xs.getPixelForValue(m.x);
      if (!(px >= left - 0.5 && px <= right + 0.5)) continue;
      ctx.beginPath();
      ctx.moveTo(Math.round(px) + 0.5, top);
      ctx.lineTo(Math.round(px) + 0.5, bottom);
      ctx.stroke();
      const w = ctx.measureText(m.label).width;
      // The label sits right of the line, or left of it when it would leave the plot.
      const tx = px + 4 + w <= right ? px + 4 : px - 4 - w;
      ctx.fillText(m.label, tx, top + 2);
    }
    ctx.restore();
  },
};
