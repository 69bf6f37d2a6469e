/**
 * What a dashboard card shows: a chart, the same numbers as a table (the accessible view, and what tests read),
 * and the CSV behind the export. Specs are plain data built from the state; cards own the Chart.js instances.
 */
import type { ChartConfiguration } from 'chart.js';
import type { Palette } from '../theme';
import { toCsv } from '../format';

export interface TableCell {
  text: string;
  /** The full-precision number behind the text (exposed as data-value). */
  value?: number | null;
  /** Spoken/hover description, e.g. "not trained yet". */
  title?: string;
  /** unseen: R[i][j] with j > i; missing: not measured (yet); best: the best value of its column. */
  kind?: 'unseen' | 'missing' | 'best';
  /** Further full-precision figures behind the text (e.g. the sd of a mean), exposed as data-* attributes. */
  data?: Record<string, string | number | null>;
}

export interface TableRow {
  header: string;
  /** Tooltip of the row header (e.g. a run's id under its short label). */
  title?: string;
  cells: TableCell[];
}

export interface TableData {
  caption: string;
  /** Header of the row-header column. */
  corner: string;
  columns: string[];
  /** Tooltips of the column headers, in order (e.g. each run's id under its short label). */
  columnTitles?: (string | undefined)[];
  rows: TableRow[];
  note?: string;
}

export interface ChartSpec {
  /** Stable across updates; cards are matched by it. */
  id: string;
  title: string;
  /** Tooltip of the title (the run's id and folder, for a chart of one run). */
  titleTooltip?: string;
  subtitle?: string;
  /** A headline figure beside the title (e.g. BWT for the forgetting chart). */
  figure?: { label: string; value: string; title?: string };
  /** Shown instead of the chart while there is nothing to draw. */
  empty?: string | null;
  height: number;
  /** Base of export file names. */
  fileBase: string;
  /** The run whose folder export dialogs start in. */
  runKey?: string;
  /** Accessible description of the canvas. */
  describe: string;
  config: (p: Palette) => ChartConfiguration;
  table: () => TableData;
  /** Full data for export; defaults to the table. */
  csv?: () => string;
  /** Lines of text under the chart or table, shown in both views (e.g. test results and caveats). */
  footer?: FooterLine[];
}

export interface FooterLine {
  text: string;
  /** note: a caveat the reader must see; shown in the warning style. */
  kind?: 'note';
  data?: Record<string, string>;
}

export function tableCsv(t: TableData): string {
  return toCsv([
    [t.corner, ...t.columns],
    ...t.rows.map((r) => [r.header, ...r.cells.map((c) => (c.value !== undefined ? c.value : c.text))]),
  ]);
}

/** Axis options for a heatmap grid: integer ticks at cell centres, labelled from a list. */
export function gridAxis(labels: string[], title: string, reverse = false) {
  return {
    type: 'linear' as const,
    min: -0.5,
    max: labels.length - 0.5,
    reverse,
    grid: { display: false },
    border: { display: false },
    title: { display: true, text: title },
    afterBuildTicks: (axis: { ticks: { value: number }[] }) => {
      axis.ticks = labels.map((_, i) => ({ value: i }));
    },
    ticks: { autoSkip: false, callback: (v: number | string) => labels[Number(v)] ?? '' },
  };
}
