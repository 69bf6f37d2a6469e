/**
 * Chart files: a card's chart drawn off screen at a fixed size, whatever the panel's width, with a title band
 * (the chart's title, and what it is of) on the theme's background or on white. The PNG is drawn at twice the
 * resolution; the SVG is the same chart recorded as vectors (charts/svg.ts); the CSV is the chart's data.
 */
import { BasicPlatform, type Chart as ChartT, type ChartConfiguration, type Plugin } from 'chart.js';
import { Chart, applyChartDefaults } from './charts/setup';
import type { ChartSpec } from './charts/spec';
import { tableCsv } from './charts/spec';
import { SvgRecorder, headerHeight, recordingPath2D, svgDocument, type SvgHeader } from './charts/svg';
import type { Palette } from './theme';

/** The exported chart's width in CSS pixels: a printed column or a slide, not the panel's width. */
export const EXPORT_WIDTH = 960;
const PNG_SCALE = 2;

export interface ChartFiles {
  /** A `data:image/png;base64,` URL. */
  png: string;
  svg: string;
  csv: string;
}

/** The title band of an exported chart: its title, then what it is of (the run or experiment) and its subtitle. */
export function exportHeader(spec: ChartSpec, context?: string): SvgHeader {
  const sub = [context, spec.subtitle].filter((s): s is string => !!s && s !== spec.title).join(' \u00b7 ');
  return { title: spec.title, subtitle: sub || undefined, describe: spec.describe };
}

/** Draws the spec's chart on a canvas of its own (not in the page), returns the chart, and calls `draw` hooks. */
function drawOffscreen(
  spec: ChartSpec,
  palette: Palette,
  scale: number,
  wrap?: (canvas: HTMLCanvasElement) => { plugin?: Plugin },
): { chart: ChartT; canvas: HTMLCanvasElement } {
  const canvas = document.createElement('canvas');
  canvas.width = EXPORT_WIDTH;
  canvas.height = spec.height;
  const extra = wrap?.(canvas);
  const cfg = spec.config(palette) as ChartConfiguration;
  cfg.options = {
    ...(cfg.options ?? {}),
    responsive: false,
    maintainAspectRatio: false,
    animation: false,
    devicePixelRatio: scale,
    events: [],
  };
  cfg.plugins = [...(cfg.plugins ?? []), ...(extra?.plugin ? [extra.plugin] : [])];
  const chart = new Chart(canvas, { ...cfg, platform: BasicPlatform } as ChartConfiguration);
  return { chart, canvas };
}

/**
 * Draws `spec` for export with `palette` (Chart.js reads its global defaults while drawing, so they follow the
 * export's palette for the moment and are then put back to `screen`'s).
 */
export function chartFiles(spec: ChartSpec, palette: Palette, screen: Palette, context?: string): ChartFiles {
  const header = exportHeader(spec, context);
  const head = headerHeight(header);
  applyChartDefaults(palette);
  try {
    // PNG: the chart at twice the resolution under a title band, on the palette's background.
    const { chart, canvas } = drawOffscreen(spec, palette, PNG_SCALE);
    const out = document.createElement('canvas');
    out.width = EXPORT_WIDTH * PNG_SCALE;
    out.height = (spec.height + head) * PNG_SCALE;
    const ctx = out.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas context');
    ctx.scale(PNG_SCALE, PNG_SCALE);
    ctx.fillStyle = palette.background;
    ctx.fillRect(0, 0, EXPORT_WIDTH, spec.height + head);
    ctx.fillStyle = palette.foreground;
    ctx.font = `600 15px ${palette.fontFamily}`;
    ctx.textBaseline = 'alphabetic';
    ctx.fillText(header.title, 12, 21, EXPORT_WIDTH - 24);
    if (header.subtitle) {
      ctx.fillStyle = palette.muted;
      ctx.font = `12px ${palette.fontFamily}`;
      ctx.fillText(header.subtitle, 12, 39, EXPORT_WIDTH - 24);
    }
    ctx.drawImage(canvas, 0, head, EXPORT_WIDTH, spec.height);
    chart.destroy();
    const png = out.toDataURL('image/png');

    // SVG: the same chart drawn once more at 1:1, recorded; each dataset's marks grouped under its label.
    let recorder: SvgRecorder | null = null;
    const series: Plugin = {
      id: 'sculptSvgSeries',
      beforeDatasetDraw: (c, args) => {
        const label = c.data.datasets[args.index]?.label;
        if (label) recorder?.beginSeries(label);
        return true;
      },
      afterDatasetDraw: (c, args) => {
        if (c.data.datasets[args.index]?.label) recorder?.endSeries();
      },
    };
    const Path2DBefore = window.Path2D;
    window.Path2D = recordingPath2D(Path2DBefore);
    try {
      const vector = drawOffscreen(spec, palette, 1, (cv) => {
        const real = cv.getContext('2d');
        if (!real) throw new Error('no 2D canvas context');
        recorder = new SvgRecorder(real);
        const proxy = recorder.context();
        // Chart.js asks the canvas for its context: it gets the recording one.
        (cv as unknown as { getContext: () => CanvasRenderingContext2D }).getContext = () => proxy;
        return { plugin: series };
      });
      vector.chart.destroy();
    } finally {
      window.Path2D = Path2DBefore;
    }
    const rec = recorder as SvgRecorder | null;
    if (!rec) throw new Error('the chart was not recorded');
    rec.finish();
    const svg = svgDocument({
      ...header,
      width: EXPORT_WIDTH,
      height: spec.height,
      background: palette.background,
      foreground: palette.foreground,
      muted: palette.muted,
      fontFamily: palette.fontFamily,
      defs: rec.defs,
      body: rec.body,
    });
    return { png, svg, csv: spec.csv ? spec.csv() : tableCsv(spec.table()) };
  } finally {
    applyChartDefaults(screen);
  }
}
