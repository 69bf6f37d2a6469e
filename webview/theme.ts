/**
 * Colours for canvas drawing, read from VS Code's theme variables. CSS styles the DOM by itself, but Chart.js
 * paints on a canvas with concrete colours, so they are read again whenever the theme changes.
 */
import type { ThemeKind } from '../src/protocol/webview';

export interface Rgb {
  r: number;
  g: number;
  b: number;
  a: number;
}

export interface Palette {
  kind: ThemeKind;
  foreground: string;
  muted: string;
  background: string;
  grid: string;
  border: string;
  /** Set in high-contrast themes: every mark gets an outline. */
  contrastBorder: string | null;
  fontFamily: string;
  fontSize: number;
  /** One colour per run (and per dataset in single-run charts). */
  series: string[];
  heatLow: Rgb;
  heatHigh: Rgb;
  rankHigh: Rgb;
  unseen: string;
}

const SERIES_VARS: [string, string][] = [
  ['--vscode-charts-blue', '#3794ff'],
  ['--vscode-charts-orange', '#d18616'],
  ['--vscode-charts-green', '#89d185'],
  ['--vscode-charts-purple', '#b180d7'],
  ['--vscode-charts-red', '#f14c4c'],
  ['--vscode-charts-yellow', '#cca700'],
];

let probe: CanvasRenderingContext2D | null = null;

/** Any CSS colour to RGBA, through the canvas parser (handles #rgb, #rrggbbaa, rgb(), named colours). */
export function parseColor(css: string, fallback: Rgb = { r: 128, g: 128, b: 128, a: 1 }): Rgb {
  probe ??= document.createElement('canvas').getContext('2d');
  if (!probe || !css) return fallback;
  probe.fillStyle = '#000001';
  probe.fillStyle = css.trim();
  const v = String(probe.fillStyle);
  if (v === '#000001' && css.trim() !== '#000001') return fallback;
  if (v.startsWith('#'))
    return { r: parseInt(v.slice(1, 3), 16), g: parseInt(v.slice(3, 5), 16), b: parseInt(v.slice(5, 7), 16), a: 1 };
  const m = /rgba?\(([^)]+)\)/.exec(v);
  if (!m) return fallback;
  const [r, g, b, a = '1'] = m[1].split(',').map((s) => s.trim());
  return { r: +r, g: +g, b: +b, a: +a };
}

export const rgbCss = (c: Rgb, alpha = c.a): string =>
  `rgba(${Math.round(c.r)}, ${Math.round(c.g)}, ${Math.round(c.b)}, ${alpha})`;

export function mix(a: Rgb, b: Rgb, t: number): Rgb {
  const u = Math.max(0, Math.min(1, t));
  return { r: a.r + (b.r - a.r) * u, g: a.g + (b.g - a.g) * u, b: a.b + (b.b - a.b) * u, a: 1 };
}

/** Relative luminance (WCAG), to pick readable text on a heatmap cell. */
export function luminance(c: Rgb): number {
  const ch = (v: number) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
}

/** Of two text colours, the one with the higher WCAG contrast on the background. */
export function readableOn(bg: Rgb, dark: string, light: string): string {
  const lb = luminance(bg);
  const ratio = (c: string) => {
    const l = luminance(parseColor(c));
    return (Math.max(l, lb) + 0.05) / (Math.min(l, lb) + 0.05);
  };
  return ratio(dark) >= ratio(light) ? dark : light;
}

export function themeKindFromBody(): ThemeKind {
  const c = document.body.classList;
  if (c.contains('vscode-high-contrast-light')) return 'high-contrast-light';
  if (c.contains('vscode-high-contrast')) return 'high-contrast';
  if (c.contains('vscode-light')) return 'light';
  return 'dark';
}

export function readPalette(kind: ThemeKind = themeKindFromBody()): Palette {
  const cs = getComputedStyle(document.body);
  const v = (name: string, fallback: string) => cs.getPropertyValue(name).trim() || fallback;
  const light = kind === 'light' || kind === 'high-contrast-light';
  const foreground = v('--vscode-foreground', light ? '#3b3b3b' : '#cccccc');
  const background = v('--vscode-editor-background', light ? '#ffffff' : '#1f1f1f');
  const contrast = cs.getPropertyValue('--vscode-contrastBorder').trim();
  const bg = parseColor(background);
  const fg = parseColor(foreground);
  const blue = parseColor(v('--vscode-charts-blue', '#3794ff'));
  return {
    kind,
    foreground,
    muted: v('--vscode-descriptionForeground', rgbCss(fg, 0.7)),
    background,
    grid: rgbCss(fg, kind.startsWith('high-contrast') ? 0.35 : 0.12),
    border: v('--vscode-panel-border', rgbCss(fg, 0.2)),
    contrastBorder: kind.startsWith('high-contrast') ? contrast || foreground : null,
    fontFamily: v('--vscode-font-family', 'system-ui, sans-serif'),
    fontSize: parseFloat(v('--vscode-font-size', '13px')) || 13,
    series: SERIES_VARS.map(([name, fb]) => v(name, fb)),
    heatLow: mix(bg, fg, light ? 0.09 : 0.1),
    heatHigh: light ? mix(blue, { r: 0, g: 40, b: 120, a: 1 }, 0.25) : mix(blue, bg, 0.15),
    rankHigh: parseColor(v('--vscode-charts-purple', '#b180d7')),
    unseen: rgbCss(fg, 0.25),
  };
}

export function seriesColor(p: Palette, i: number): string {
  return p.series[i % p.series.length];
}

/** VS Code's Light+ chart colours: exports on white look the same whatever the editor's theme. */
const LIGHT_SERIES = ['#1a85ff', '#d18616', '#388a34', '#652d90', '#e51400', '#bf8803'];

/**
 * The palette of an exported image: the theme's, or (`white`) a light palette on a white background that does
 * not depend on the theme, for reports and papers. Fonts stay the editor's.
 */
export function exportPalette(theme: Palette, white: boolean): Palette {
  if (!white) return theme;
  const fg: Rgb = { r: 31, g: 31, b: 31, a: 1 };
  const bg: Rgb = { r: 255, g: 255, b: 255, a: 1 };
  const blue = parseColor(LIGHT_SERIES[0]);
  return {
    ...theme,
    kind: 'light',
    foreground: '#1f1f1f',
    muted: '#5f5f5f',
    background: '#ffffff',
    grid: rgbCss(fg, 0.12),
    border: rgbCss(fg, 0.2),
    contrastBorder: null,
    series: [...LIGHT_SERIES],
    heatLow: mix(bg, fg, 0.09),
    heatHigh: mix(blue, { r: 0, g: 40, b: 120, a: 1 }, 0.25),
    rankHigh: parseColor(LIGHT_SERIES[3]),
    unseen: rgbCss(fg, 0.25),
  };
}
