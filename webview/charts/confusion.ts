/**
 * The confusion matrix of one task's predictions as a heatmap card: rows are expected labels, columns predicted
 * ones (and `(other)` for generated text that is no label). A cell shows its count; its colour is the share of
 * its row, so a rare label's mistakes are as visible as a frequent one's. The table view has the counts.
 */
import type { ChartConfiguration } from 'chart.js';
import type { ConfusionMatrix, PredictionsView } from '../../src/protocol/predictions';
import { OTHER_LABEL } from '../../src/runs/confusion';
import { fmt } from '../format';
import type { Palette } from '../theme';
import { tableCsv, type ChartSpec, type TableData } from './spec';
import type { HeatCell } from './heatmap';
import { heatmapConfig } from './heatmap-config';

/** Axis labels are cut here; tooltips and the table have them whole. */
const AXIS_CHARS = 24;
const short = (s: string) => (s.length > AXIS_CHARS ? `${s.slice(0, AXIS_CHARS - 1)}\u2026` : s);

/** The predicted-label columns: the labels, then `(other)` when some prediction is no label. */
export function confusionColumns(m: ConfusionMatrix): string[] {
  return m.other ? [...m.labels, OTHER_LABEL] : [...m.labels];
}

/** The count of (row i, column j), `(other)` being the last column. */
function count(m: ConfusionMatrix, i: number, j: number): number {
  return j < m.labels.length ? m.counts[i][j] : (m.other?.[i] ?? 0);
}

export interface ConfusionOptions {
  /** The run's label, for the title and file names. */
  runLabel: string;
  runKey: string;
  /** What the point is called: "after topic (task 2)", "zero-shot". */
  pointLabel: string;
  /** A cell was clicked: show the examples of (expected, predicted). */
  onCell?: (expected: string, predicted: string) => void;
}

export function confusionSpec(view: PredictionsView, o: ConfusionOptions): ChartSpec {
  const m = view.confusion;
  const set = view.set;
  const what = `${set.name}, ${set.split}${set.mode === 'generate' ? ', generate' : ''}, ${o.pointLabel}`;
  const base = {
    id: 'confusion',
    title: `Confusion matrix: ${what}`,
    titleTooltip: o.runKey,
    fileBase: `${o.runLabel}-confusion-${set.name}-${set.split}-${set.point}`,
    runKey: o.runKey,
  };
  if (!m) {
    return {
      ...base,
      empty: view.confusionNote ?? 'No confusion matrix for this set.',
      height: 120,
      describe: 'No confusion matrix',
      config: () => ({ type: 'scatter', data: { datasets: [] } }),
      table: () => ({ caption: 'Confusion matrix', corner: '', columns: [], rows: [] }),
    };
  }
  const cols = confusionColumns(m);
  const rowTotal = m.counts.map((_, i) => cols.reduce((s, _c, j) => s + count(m, i, j), 0));
  const cells: HeatCell[] = [];
  m.labels.forEach((_, i) =>
    cols.forEach((_c, j) => {
      const n = count(m, i, j);
      const share = rowTotal[i] ? (100 * n) / rowTotal[i] : null;
      cells.push({ x: j, y: i, v: share, text: String(n), state: share == null ? 'missing' : 'value' });
    }),
  );
  const table = (): TableData => ({
    caption: `Examples by expected label (rows) and predicted label (columns): ${what}`,
    corner: 'expected \\ predicted',
    columns: [...cols, 'examples', 'correct %'],
    rows: m.labels.map((label, i) => ({
      header: label,
      cells: [
        ...cols.map((_c, j) => ({
          text: String(count(m, i, j)),
          value: count(m, i, j),
          ...(j === i ? { title: 'correct', data: { diagonal: 'true' } } : {}),
        })),
        { text: String(rowTotal[i]), value: rowTotal[i] },
        {
          text: fmt(rowTotal[i] ? (100 * m.counts[i][i]) / rowTotal[i] : null),
          value: rowTotal[i] ? (100 * m.counts[i][i]) / rowTotal[i] : null,
        },
      ],
    })),
    note: `${m.correct} of ${m.total} correct (${fmt(m.total ? (100 * m.correct) / m.total : null)} %). Colours in the chart are shares of each row.`,
  });
  return {
    ...base,
    subtitle: `${m.total} examples, ${m.correct} correct (${fmt(set.accuracy)} %)`,
    empty: m.total === 0 ? 'The set has no examples.' : null,
    height: Math.min(560, 140 + 40 * Math.max(m.labels.length, 2)),
    describe: `Confusion matrix of ${set.name}: ${m.labels.length} expected labels by ${cols.length} predicted`,
    table,
    csv: () => tableCsv(table()),
    config: (p: Palette): ChartConfiguration => {
      const cfg = heatmapConfig(p, {
        cells,
        cols: cols.map(short),
        rows: m.labels.map(short),
        xTitle: 'predicted',
        yTitle: 'expected',
        hitRadius: 18,
        title: (c) => `expected ${m.labels[c.y]}, predicted ${cols[c.x]}`,
        label: (c) => `${c.text} of ${rowTotal[c.y]} (${fmt(c.v)} % of the row)`,
        high: p.heatHigh,
        diagonal: p.contrastBorder ?? p.foreground,
        scale: { low: '0', high: '100 %', text: 'share of row' },
      });
      const onCell = o.onCell;
      if (onCell) {
        cfg.options = {
          ...cfg.options,
          onClick: (_ev, elements) => {
            const c = elements[0] ? cells[elements[0].index] : undefined;
            if (c) onCell(m.labels[c.y], cols[c.x]);
          },
        };
      }
      return cfg;
    },
  };
}
