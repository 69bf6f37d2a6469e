/**
 * A heatmap drawn by a small plugin over a scatter chart: the scatter points (radius 0) give Chart.js's axes,
 * tooltips and hit testing for free, and the plugin paints one rectangle per point with its value written in the
 * cell. Unseen cells (a task not trained yet, R[i][j] with j > i) are hatched, so an empty cell never reads as 0.
 */
import type { Chart, ChartType, Plugin } from 'chart.js';
import { mix, readableOn, rgbCss, type Rgb } from '../theme';

export interface HeatCell {
  x: number;
  y: number;
  v: number | null;
  /** value: a measurement; unseen: j > i (task j not trained yet); missing: not measured (yet). */
  state: 'value' | 'unseen' | 'missing';
  text: string;
}

export interface HeatmapOptions {
  enabled?: boolean;
  low: Rgb;
  high: Rgb;
  min: number;
  max: number;
  unseen: string;
  /** Text in unseen cells. */
  muted: string;
  textDark: string;
  textLight: string;
  /** Outline for every cell (high-contrast themes). */
  border: string | null;
  /** Outline for the cells where x === y (the task just trained). */
  diagonal: string | null;
  /** Labels of the colour scale drawn under the grid (reserve `layout.padding.bottom` for it). */
  scale?: { low: string; high: string; text: string };
}

/** Height the colour scale needs below the chart area. */
export const SCALE_SPACE = 30;

/** A small gradient legend at the bottom right: "<text>  low [gradient] high". */
function drawScale(chart: Chart<'scatter'>, opts: HeatmapOptions): void {
  if (!opts.scale) return;
  const ctx = chart.ctx;
  ctx.save();
  ctx.font = `11px ${chart.options.font?.family ?? 'sans-serif'}`;
  const gap = 6;
  const w = 120;
  const h = 8;
  const y = chart.height - h - 8;
  const right = chart.chartArea.right - ctx.measureText(opts.scale.high).width - gap;
  const x = right - w;
  const grad = ctx.createLinearGradient(x, 0, right, 0);
  grad.addColorStop(0, rgbCss(opts.low, 1));
  grad.addColorStop(1, rgbCss(opts.high, 1));
  ctx.fillStyle = grad;
  ctx.fillRect(x, y, w, h);
  if (opts.border) {
    ctx.strokeStyle = opts.border;
    ctx.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1);
  }
  ctx.fillStyle = opts.muted;
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'left';
  ctx.fillText(opts.scale.high, right + gap, y + h / 2);
  ctx.textAlign = 'right';
  const lowX = x - gap;
  ctx.fillText(opts.scale.low, lowX, y + h / 2);
  ctx.fillText(opts.scale.text, lowX - ctx.measureText(opts.scale.low).width - 2 * gap, y + h / 2);
  ctx.restore();
}

declare module 'chart.js' {
  // The type parameter must repeat Chart.js's declaration for the interfaces to merge.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface PluginOptionsByType<TType extends ChartType> {
    sculptHeatmap?: HeatmapOptions;
  }
}

function hatch(ctx: CanvasRenderingContext2D, x: number, y: number, w: number, h: number, color: string): void {
  ctx.save();
  ctx.beginPath();
  ctx.rect(x, y, w, h);
  ctx.clip();
  ctx.strokeStyle = color;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let d = -h; d < w; d += 7) {
    ctx.moveTo(x + d, y + h);
    ctx.lineTo(x + d + h, y);
  }
  ctx.stroke();
  ctx.restore();
}

export const heatmapPlugin: Plugin<'scatter', HeatmapOptions> = {
  id: 'sculptHeatmap',
  defaults: { enabled: false },
  afterDraw(chart: Chart<'scatter'>, _args, opts) {
    if (opts?.enabled) drawScale(chart, opts);
  },
  beforeDatasetsDraw(chart: Chart<'scatter'>, _args, opts) {
    if (!opts?.enabled) return;
    const data = chart.data.datasets[0]?.data as unknown as HeatCell[] | undefined;
    const xs = chart.scales.x;
    const ys = chart.scales.y;
    if (!data || !xs || !ys) return;
    const ctx = chart.ctx;
    const gap = 2;
    for (const c of data) {
      const x0 = xs.getPixelForValue(c.x - 0.5);
      const x1 = xs.getPixelForValue(c.x + 0.5);
      const y0 = ys.getPixelForValue(c.y - 0.5);
      const y1 = ys.getPixelForValue(c.y + 0.5);
      const x = Math.min(x0, x1) + gap / 2;
      const y = Math.min(y0, y1) + gap / 2;
      const w = Math.abs(x1 - x0) - gap;
      const h = Math.abs(y1 - y0) - gap;
      if (w <= 0 || h <= 0) continue;
      if (c.state === 'unseen') {
        // Accuracy on a task not trained yet: shown (it is what FWT measures) but kept out of the colour scale.
        hatch(ctx, x, y, w, h, opts.unseen);
        const size = Math.min(h * 0.3, w / 4.5, 13);
        if (size >= 8 && c.text) {
          ctx.fillStyle = opts.muted;
          ctx.font = `${Math.round(size)}px ${chart.options.font?.family ?? 'sans-serif'}`;
          ctx.textAlign = 'center';
          ctx.textBaseline = 'middle';
          ctx.fillText(c.text, x + w / 2, y + h / 2);
        }
      } else if (c.state === 'missing' || c.v == null) {
        ctx.save();
        ctx.setLineDash([4, 3]);
        ctx.strokeStyle = opts.unseen;
        ctx.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1);
        ctx.restore();
      } else {
        const t = (c.v - opts.min) / (opts.max - opts.min || 1);
        const fill = mix(opts.low, opts.high, t);
        ctx.fillStyle = rgbCss(fill, 1);
        ctx.fillRect(x, y, w, h);
        if (opts.border) {
          ctx.strokeStyle = opts.border;
          ctx.lineWidth = 1;
          ctx.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1);
        }
        const size = Math.min(h * 0.36, w / 4, 15);
        if (size >= 8 && c.text) {
          ctx.fillStyle = readableOn(fill, opts.textDark, opts.textLight);
          ctx.font = `${opts.diagonal && c.x === c.y ? '600 ' : ''}${Math.round(size)}px ${chart.options.font?.family ?? 'sans-serif'}`;
          ctx.textAlign = 'center';
          ctx.textBaseline = 'middle';
          ctx.fillText(c.text, x + w / 2, y + h / 2);
        }
      }
      if (opts.diagonal && c.x === c.y && c.state === 'value') {
        ctx.save();
        ctx.strokeStyle = opts.diagonal;
        ctx.lineWidth = 2;
        ctx.strokeRect(x + 1, y + 1, w - 2, h - 2);
        ctx.restore();
      }
    }
  },
};
