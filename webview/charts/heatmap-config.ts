/**
 * The Chart.js configuration of a heatmap (see heatmap.ts): a scatter of invisible points on a category grid,
 * painted by the plugin. The accuracy matrix and the subspace-rank grid differ only in what is passed here.
 */
import type { ChartConfiguration } from 'chart.js';
import type { Palette, Rgb } from '../theme';
import { gridAxis } from './spec';
import { SCALE_SPACE, type HeatCell } from './heatmap';

export interface HeatmapChart {
  cells: HeatCell[];
  cols: string[];
  rows: string[];
  xTitle: string;
  yTitle: string;
  hitRadius: number;
  /** Tooltip title and line for a cell. */
  title: (c: HeatCell) => string;
  label: (c: HeatCell) => string;
  high: Rgb;
  /** Outline of the x === y cells, or null. */
  diagonal: string | null;
  scale: { low: string; high: string; text: string };
}

export function heatmapConfig(p: Palette, h: HeatmapChart): ChartConfiguration {
  return {
    type: 'scatter',
    data: {
      datasets: [
        { data: h.cells as unknown as { x: number; y: number }[], pointRadius: 0, pointHitRadius: h.hitRadius },
      ],
    },
    options: {
      layout: { padding: { top: 4, right: 4, left: 4, bottom: SCALE_SPACE } },
      scales: { x: { ...gridAxis(h.cols, h.xTitle), position: 'top' }, y: gridAxis(h.rows, h.yTitle, true) },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => {
              const c = items[0]?.raw as HeatCell | undefined;
              return c ? h.title(c) : '';
            },
            label: (item) => h.label(item.raw as HeatCell),
          },
        },
        sculptHeatmap: {
          enabled: true,
          low: p.heatLow,
          high: h.high,
          min: 0,
          max: 100,
          unseen: p.unseen,
          muted: p.muted,
          textDark: '#1e1e1e',
          textLight: '#ffffff',
          border: p.contrastBorder,
          diagonal: h.diagonal,
          scale: h.scale,
        },
      },
    },
  };
}
