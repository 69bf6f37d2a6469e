/**
 * Chart.js, registered piecemeal: only the controllers, elements, scales and plugins the dashboard draws with,
 * which keeps the bundle small and makes every chart type in use visible here.
 */
import {
  BarController,
  BarElement,
  Chart,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  ScatterController,
  Tooltip,
  Legend,
  CategoryScale,
} from 'chart.js';
import type { Palette } from '../theme';
import { heatmapPlugin } from './heatmap';
import { boundariesPlugin } from './boundaries';
import { intervalsPlugin } from './intervals';

Chart.register(
  LineController,
  LineElement,
  PointElement,
  ScatterController,
  BarController,
  BarElement,
  LinearScale,
  LogarithmicScale,
  CategoryScale,
  Tooltip,
  Legend,
  heatmapPlugin,
  boundariesPlugin,
  intervalsPlugin,
);

export { Chart };

/** Global defaults that follow the theme; charts are rebuilt after a theme change so they pick these up. */
export function applyChartDefaults(p: Palette): void {
  Chart.defaults.color = p.foreground;
  Chart.defaults.borderColor = p.grid;
  Chart.defaults.font.family = p.fontFamily;
  Chart.defaults.font.size = Math.max(11, p.fontSize - 1);
  // Live charts redraw several times a second: animations would only lag behind the data.
  Chart.defaults.animation = false;
  Chart.defaults.responsive = true;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;
  Chart.defaults.plugins.legend.labels.boxHeight = 12;
  Chart.defaults.plugins.tooltip.backgroundColor = p.background;
  Chart.defaults.plugins.tooltip.titleColor = p.foreground;
  Chart.defaults.plugins.tooltip.bodyColor = p.foreground;
  Chart.defaults.plugins.tooltip.borderColor = p.contrastBorder ?? p.border;
  Chart.defaults.plugins.tooltip.borderWidth = 1;
}
