/**
 * The experiment view's charts, from the aggregate of the runs (webview/experiment/model.ts):
 *   - per metric, each method's mean with its 95% confidence interval as an error bar and every run as a dot;
 *   - the paired differences from the baseline with their intervals, a zero line, p-values and verdicts;
 *   - each method's mean accuracy matrix by task name, ± the spread (sd) over runs.
 * Charts are scatters on a numeric axis labelled with method (or metric) names; intervals are drawn by the
 * sculptIntervals plugin (./intervals.ts). Tables hold every number at full precision in data-* attributes.
 */
import type { ChartConfiguration, ScatterDataPoint, TooltipItem } from 'chart.js';
import {
  HIGHER_IS_BETTER,
  METRIC_NAMES,
  type Estimate,
  type MethodAggregate,
  type MetricName,
  type PairedDifference,
} from '../../src/runs/aggregate-types';
import type { ExperimentModel } from '../experiment/model';
import { DASH, fmt, fmtP, fmtSigned, toCsv } from '../format';
import { parseColor, rgbCss, seriesColor, type Palette } from '../theme';
import { tableCsv, type ChartSpec, type FooterLine, type TableCell, type TableData } from './spec';
import type { HeatCell } from './heatmap';
import { heatmapConfig } from './heatmap-config';
import type { IntervalMark } from './intervals';

const METRIC_TITLE: Record<MetricName, string> = {
  AA: 'Average accuracy (AA)',
  BWT: 'Backward transfer (BWT)',
  forgetting: 'Forgetting',
  FWT: 'Forward transfer (FWT)',
};

const unitOf = (m: MetricName) => (m === 'AA' ? '%' : 'pp');
/** BWT and FWT read with a sign; AA and forgetting without. */
const fmtMetric = (m: MetricName, v: number | null | undefined, digits = 1) =>
  m === 'BWT' || m === 'FWT' ? fmtSigned(v, digits) : fmt(v, digits);
const better = (m: MetricName) => (HIGHER_IS_BETTER[m] ? 'higher is better' : 'lower is better');

/** "[a, b]", or why there is no interval. */
export function intervalText(
  e: { n: number; ci95: [number, number] | null },
  f: (v: number) => string,
  what = 'n',
): string {
  if (e.ci95) return `[${f(e.ci95[0])}, ${f(e.ci95[1])}]`;
  return e.n === 0 ? DASH : `no interval (${what} = ${e.n})`;
}

const ciCell = (e: { n: number; ci95: [number, number] | null }, f: (v: number) => string): TableCell => ({
  text: intervalText(e, f),
  value: null,
  data: { low: e.ci95?.[0] ?? null, high: e.ci95?.[1] ?? null, n: e.n },
  title: e.ci95 ? 'Student t 95% confidence interval of the mean' : 'one value gives no interval',
});

/** Dots of one group spread a little sideways, so equal values stay visible. */
const jitter = (k: number, n: number) => (n <= 1 ? 0 : ((k / (n - 1)) * 2 - 1) * Math.min(0.18, 0.04 * n));

/** A numeric axis with one labelled tick per group. */
function groupAxis(labels: (string | string[])[], title?: string) {
  return {
    type: 'linear' as const,
    min: -0.5,
    max: labels.length - 0.5,
    grid: { display: false },
    title: { display: !!title, text: title ?? '' },
    afterBuildTicks: (axis: { ticks: { value: number }[] }) => {
      axis.ticks = labels.map((_, i) => ({ value: i }));
    },
    // Labels turn (up to 45°) rather than overlap when many methods share a narrow chart.
    ticks: { autoSkip: false, maxRotation: 45, callback: (v: number | string) => labels[Number(v)] ?? '' },
  };
}

/** y bounds that hold every value and interval end (Chart.js sees only the points). */
function yBounds(values: number[], pad = 0.08): { suggestedMin?: number; suggestedMax?: number } {
  if (!values.length) return {};
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || Math.max(1, Math.abs(hi) * 0.1);
  return { suggestedMin: lo - span * pad, suggestedMax: hi + span * pad };
}

const translucent = (css: string, a: number) => rgbCss(parseColor(css), a);

interface RunDot extends ScatterDataPoint {
  run: string;
}

interface MeanDot extends ScatterDataPoint {
  label: string;
}

/** Labels of the runs behind an estimate's values, when they can be matched one to one. */
function valueNames(m: MethodAggregate, e: Estimate, labels: Record<string, string> = {}): string[] {
  const counted = m.cells.filter((c) => c.counted);
  return counted.length === e.values.length
    ? counted.map((c) => labels[c.name] ?? c.name)
    : e.values.map((_, k) => `run ${k + 1}`);
}

function methodLabel(m: MethodAggregate, e: Estimate): string[] {
  return [m.method, e.n === 1 ? 'n = 1, no interval' : `n = ${e.n}`];
}

export function metricSpec(metric: MetricName, model: ExperimentModel, fileBase: string): ChartSpec {
  const methods = model.aggregate.methods;
  const est = methods.map((m) => m.metrics[metric]);
  const unit = unitOf(metric);
  const f = (v: number | null | undefined, d = 1) => fmtMetric(metric, v, d);
  const finished = methods.reduce((s, m) => s + m.n, 0);
  const table = (): TableData => ({
    caption: `${METRIC_TITLE[metric]} (${unit}) over runs: mean, sd and 95% confidence interval per method`,
    corner: 'method',
    columns: ['n', 'mean', 'sd', '95% CI', 'runs'],
    rows: methods.map((m, i) => {
      const e = est[i];
      return {
        header: m.method,
        cells: [
          { text: String(e.n), value: e.n },
          { text: f(e.mean), value: e.mean },
          { text: fmt(e.sd), value: e.sd },
          ciCell(e, (v) => f(v)),
          { text: e.values.map((v) => f(v)).join(', ') || DASH, data: { values: JSON.stringify(e.values) } },
        ],
      };
    }),
    note: 'n: finished runs that report the metric. One run gives no interval.',
  });
  const footer: FooterLine[] = methods.map((m, i) => {
    const e = est[i];
    const text =
      e.n === 0
        ? `${m.method}: no value yet (n = 0)`
        : `${m.method}: ${f(e.mean)} ${unit}, ${e.ci95 ? `95% CI ${intervalText(e, (v) => f(v))}, n = ${e.n}` : intervalText(e, (v) => f(v))}`;
    return { text, data: { method: m.method, metric } };
  });
  return {
    id: `exp-metric:${metric}`,
    title: METRIC_TITLE[metric],
    subtitle: `Mean and 95% CI per method, each dot one run; ${better(metric)}`,
    empty: est.every((e) => e.n === 0)
      ? finished
        ? `No finished run reports ${metric}${metric === 'FWT' ? ' (it needs the zero-shot accuracy)' : ''}.`
        : 'Appears when the first run finishes.'
      : null,
    height: 280,
    fileBase: `${fileBase}-${metric}`,
    describe: `${METRIC_TITLE[metric]} per method: mean with 95% confidence interval and one dot per run`,
    table,
    footer,
    csv: () =>
      toCsv([
        ['method', 'metric', 'n', 'mean', 'sd', 'ci95_low', 'ci95_high', 'values'],
        ...methods.map((m, i) => {
          const e = est[i];
          return [m.method, metric, e.n, e.mean, e.sd, e.ci95?.[0], e.ci95?.[1], e.values.join(' ')];
        }),
      ]),
    config: (p: Palette): ChartConfiguration => {
      const bars: IntervalMark[] = [];
      est.forEach((e, i) => {
        if (e.ci95) bars.push({ x: i, low: e.ci95[0], high: e.ci95[1], color: seriesColor(p, i) });
      });
      const all = est.flatMap((e) => [...e.values, ...(e.ci95 ?? [])]);
      const means: MeanDot[] = est.flatMap((e, i) =>
        e.mean == null
          ? []
          : [
              {
                x: i,
                y: e.mean,
                label: `${methods[i].method}: mean ${f(e.mean, 2)} ${unit}, ${e.ci95 ? `95% CI ${intervalText(e, (v) => f(v, 2))}, n = ${e.n}` : intervalText(e, (v) => f(v, 2))}`,
              },
            ],
      );
      return {
        type: 'scatter',
        data: {
          datasets: [
            ...methods.map((m, i) => {
              const names = valueNames(m, est[i], model.labels);
              return {
                label: m.method,
                data: est[i].values.map((v, k): RunDot => ({ x: i + jitter(k, est[i].n), y: v, run: names[k] })),
                pointRadius: 4,
                pointHoverRadius: 5,
                backgroundColor: translucent(seriesColor(p, i), 0.45),
                borderColor: seriesColor(p, i),
                borderWidth: 1,
              };
            }),
            {
              label: 'mean',
              data: means,
              pointStyle: 'rectRot' as const,
              pointRadius: 7,
              pointHoverRadius: 8,
              backgroundColor: means.map((d) => seriesColor(p, d.x ?? 0)),
              borderColor: p.contrastBorder ?? p.foreground,
              borderWidth: 1.5,
            },
          ],
        },
        options: {
          scales: {
            x: groupAxis(methods.map((m, i) => methodLabel(m, est[i]))),
            y: { ...yBounds(all), title: { display: true, text: unit === '%' ? '%' : 'percentage points' } },
          },
          plugins: {
            legend: { display: false },
            tooltip: {
              callbacks: {
                title: () => '',
                label: (item: TooltipItem<'scatter'>) => {
                  const raw = item.raw as Partial<RunDot & MeanDot>;
                  return raw.label ?? `${raw.run ?? ''}: ${f(item.parsed.y, 2)} ${unit}`;
                },
              },
            },
            sculptIntervals: { bars, zero: null },
          },
        },
      };
    },
  };
}

function differenceText(d: PairedDifference, baseline: string, method: string): string {
  const head = `${method} \u2212 ${baseline}, ${d.metric}`;
  if (d.n === 0) return `${head}: no pairs yet (a pair is an order and seed both methods finished)`;
  const f = (v: number) => fmtSigned(v);
  const ci = d.ci95 ? `95% CI ${intervalText(d, f)}` : intervalText(d, f, 'pairs');
  const p = `p = ${fmtP(d.p)}${d.exact ? '' : ' (Monte Carlo)'}`;
  const floor =
    d.minP != null && d.minP >= 0.05
      ? ` (with ${d.n} pair${d.n === 1 ? '' : 's'} p cannot go below ${fmtP(d.minP)})`
      : '';
  return `${head}: ${fmtSigned(d.mean)} ${unitOf(d.metric)}, ${ci}, ${d.n} pair${d.n === 1 ? '' : 's'}, ${p}: ${d.verdict}${floor}`;
}

export function comparisonSpec(model: ExperimentModel, fileBase: string): ChartSpec {
  const agg = model.aggregate;
  const comps = agg.comparisons;
  const baseline = agg.baseline;
  const colorOf = (method: string) =>
    Math.max(
      0,
      agg.methods.findIndex((m) => m.method === method),
    );
  const K = comps.length;
  const offset = (k: number) => (K <= 1 ? 0 : (k - (K - 1) / 2) * Math.min(0.2, 0.6 / K));
  const rows = comps.flatMap((c) => METRIC_NAMES.map((metric) => ({ c, d: c.metrics[metric] })));
  const table = (): TableData => ({
    caption: `Paired differences from ${baseline ?? 'the baseline'} (method \u2212 baseline) over the (order, seed) cells both finished`,
    corner: 'method \u00b7 metric',
    columns: ['pairs', 'mean difference', 'sd', '95% CI', 'p', 'verdict'],
    rows: rows.map(({ c, d }) => ({
      header: `${c.method} \u00b7 ${d.metric}`,
      cells: [
        { text: String(d.n), value: d.n },
        { text: fmtSigned(d.mean), value: d.mean },
        { text: fmt(d.sd), value: d.sd },
        ciCell(d, (v) => fmtSigned(v)),
        {
          text: fmtP(d.p),
          value: d.p,
          data: { exact: String(d.exact), minP: d.minP },
          title: d.exact ? 'exact sign-flip permutation test' : 'sign-flip permutation test, Monte Carlo',
        },
        { text: d.verdict, data: { verdict: d.verdict } },
      ],
    })),
    note: 'Forgetting: lower is better, so a negative difference is the better one.',
  });
  const footer: FooterLine[] = [
    ...rows.map(({ c, d }) => ({
      text: differenceText(d, c.baseline, c.method),
      data: { method: c.method, metric: d.metric, verdict: d.verdict },
    })),
    ...agg.notes.map((text): FooterLine => ({ text, kind: 'note' })),
  ];
  return {
    id: 'exp-compare',
    title: baseline ? `Difference from ${baseline}` : 'Difference from the baseline',
    subtitle: 'Mean paired difference (method \u2212 baseline) with 95% CI; p: two-sided sign-flip permutation test',
    empty:
      K === 0
        ? agg.methods.length < 2
          ? 'One method: there is nothing to compare it with.'
          : 'No baseline to compare with.'
        : rows.every((r) => r.d.n === 0)
          ? 'Appears when both methods have finished the same order and seed.'
          : null,
    height: 300,
    fileBase: `${fileBase}-differences`,
    describe: `Paired differences from ${baseline ?? 'the baseline'} per metric with 95% confidence intervals and a zero line`,
    table,
    footer,
    csv: () =>
      toCsv([
        ['method', 'baseline', 'metric', 'pairs', 'mean', 'sd', 'ci95_low', 'ci95_high', 'p', 'exact', 'verdict'],
        ...rows.map(({ c, d }) => [
          c.method,
          c.baseline,
          d.metric,
          d.n,
          d.mean,
          d.sd,
          d.ci95?.[0],
          d.ci95?.[1],
          d.p,
          String(d.exact),
          d.verdict,
        ]),
      ]),
    config: (p: Palette): ChartConfiguration => {
      const bars: IntervalMark[] = [];
      const all: number[] = [0];
      comps.forEach((c, k) =>
        METRIC_NAMES.forEach((metric, j) => {
          const d = c.metrics[metric];
          all.push(...d.pairs.map((x) => x.diff), ...(d.ci95 ?? []));
          if (d.ci95)
            bars.push({ x: j + offset(k), low: d.ci95[0], high: d.ci95[1], color: seriesColor(p, colorOf(c.method)) });
        }),
      );
      return {
        type: 'scatter',
        data: {
          datasets: comps.flatMap((c, k) => {
            const color = seriesColor(p, colorOf(c.method));
            return [
              {
                label: `${c.method} pairs`,
                data: METRIC_NAMES.flatMap((metric, j) => {
                  const ps = c.metrics[metric].pairs;
                  return ps.map((x, q): RunDot => ({
                    x: j + offset(k) + jitter(q, ps.length) * 0.5,
                    y: x.diff,
                    run: `order ${x.order == null ? '?' : x.order + 1}, seed ${x.seed ?? '?'}`,
                  }));
                }),
                pointRadius: 3,
                backgroundColor: translucent(color, 0.35),
                borderColor: translucent(color, 0.8),
                borderWidth: 1,
              },
              {
                label: `${c.method} \u2212 ${c.baseline}`,
                data: METRIC_NAMES.flatMap((metric, j): MeanDot[] => {
                  const d = c.metrics[metric];
                  return d.mean == null
                    ? []
                    : [{ x: j + offset(k), y: d.mean, label: differenceText(d, c.baseline, c.method) }];
                }),
                pointStyle: 'rectRot' as const,
                pointRadius: 7,
                pointHoverRadius: 8,
                backgroundColor: color,
                borderColor: p.contrastBorder ?? p.foreground,
                borderWidth: 1.5,
              },
            ];
          }),
        },
        options: {
          scales: {
            x: groupAxis(METRIC_NAMES.map((m) => [m, better(m)])),
            y: { ...yBounds(all), title: { display: true, text: 'difference (% or pp)' } },
          },
          plugins: {
            legend: {
              display: K > 1,
              position: 'bottom',
              labels: { filter: (item: { text: string }) => !item.text.endsWith(' pairs') },
            },
            tooltip: {
              callbacks: {
                title: () => '',
                label: (item: TooltipItem<'scatter'>) => {
                  const raw = item.raw as Partial<RunDot & MeanDot>;
                  return raw.label ?? `${raw.run ?? ''}: ${fmtSigned(item.parsed.y, 2)}`;
                },
              },
            },
            sculptIntervals: { bars, zero: translucent(p.foreground, 0.6) },
          },
        },
      };
    },
  };
}

/** "72.3 ± 4.1", "72.3" (one run: no spread) or a dash. */
export function meanSdText(e: Estimate): string {
  if (e.n === 0 || e.mean == null) return DASH;
  return e.sd == null ? fmt(e.mean) : `${fmt(e.mean)} \u00b1 ${fmt(e.sd)}`;
}

const estimateCell = (e: Estimate): TableCell => ({
  text: meanSdText(e),
  value: e.mean,
  data: { sd: e.sd, n: e.n },
  title:
    e.n === 0 ? 'no run measured it' : e.sd == null ? `n = ${e.n}: no spread` : `n = ${e.n}; ± is the sd over runs`,
});

/**
 * One method's accuracy matrix by task name, averaged over runs. `unseen(a, b)`: task b is trained after task a
 * in every order the runs used (hatched, as in a single run's matrix).
 */
export function meanMatrixSpec(
  m: MethodAggregate,
  tasks: string[],
  unseen: (a: number, b: number) => boolean,
  fileBase: string,
): ChartSpec {
  const T = tasks.length;
  const cells: HeatCell[] = [];
  const sds = new Map<string, Estimate>();
  for (let a = 0; a < T; a++) {
    for (let b = 0; b < T; b++) {
      const e = m.matrix[a]?.[b] ?? { n: 0, mean: null, sd: null, ci95: null, values: [] };
      sds.set(`${a},${b}`, e);
      cells.push({
        x: b,
        y: a,
        v: e.mean,
        text: fmt(e.mean),
        state: e.mean == null ? 'missing' : unseen(a, b) ? 'unseen' : 'value',
      });
    }
  }
  const zero = tasks.map((t) => m.zeroShot[t]);
  const hasZero = zero.some((e) => e && e.n > 0);
  const table = (): TableData => ({
    caption: `Mean accuracy (%) of ${m.method} over ${m.n} run${m.n === 1 ? '' : 's'}: on each task (columns) after training each task (rows); \u00b1 is the sd over runs`,
    corner: 'after \\ on',
    columns: tasks,
    rows: [
      ...(hasZero ? [{ header: 'zero-shot', cells: zero.map((e) => estimateCell(e ?? emptyEstimate)) }] : []),
      ...tasks.map((name, a) => ({
        header: name,
        cells: tasks.map((_, b) => estimateCell(sds.get(`${a},${b}`)!)),
      })),
    ],
    note: 'Rows and columns by task name, whatever order each run trained them in.',
  });
  return {
    id: `exp-matrix:${m.method}`,
    title: `Mean accuracy matrix: ${m.method}`,
    subtitle: `mean of R by task name over ${m.n} run${m.n === 1 ? '' : 's'}, %; the table and tooltips add \u00b1 sd`,
    empty: m.n === 0 ? 'Appears when a run of this method finishes.' : T === 0 ? 'No tasks yet.' : null,
    height: Math.min(460, 120 + 56 * Math.max(T, 2)),
    fileBase: `${fileBase}-${m.method}-mean-matrix`,
    describe: `Heatmap of the mean accuracy of ${m.method} after each task on each task, ${T} by ${T}`,
    table,
    csv: () => tableCsv(table()),
    footer: [],
    config: (p: Palette): ChartConfiguration =>
      heatmapConfig(p, {
        cells,
        cols: tasks,
        rows: tasks,
        xTitle: 'evaluated on',
        yTitle: 'after training',
        hitRadius: 24,
        title: (c) => `after ${tasks[c.y]}, on ${tasks[c.x]}`,
        label: (c) => {
          const e = sds.get(`${c.y},${c.x}`);
          if (!e || e.mean == null) return 'no run measured it';
          return e.sd == null
            ? `${fmt(e.mean, 2)} % (n = ${e.n}, no spread)`
            : `${fmt(e.mean, 2)} \u00b1 ${fmt(e.sd, 2)} % (n = ${e.n})`;
        },
        high: p.heatHigh,
        diagonal: p.contrastBorder ?? p.foreground,
        scale: { low: '0', high: '100 %', text: 'mean accuracy' },
      }),
  };
}

const emptyEstimate: Estimate = { n: 0, mean: null, sd: null, ci95: null, values: [] };

/** Every card of the Experiment tab, in order: the four metrics, the comparison, then one matrix per method. */
export function experimentSpecs(model: ExperimentModel): ChartSpec[] {
  const base = model.name ?? 'experiment';
  const tasks = model.aggregate.tasks;
  const unseenIn = (orders: string[][]) => {
    const pos = orders.map((o) => new Map(o.map((t, i) => [t, i])));
    return (a: number, b: number) =>
      pos.length > 0 &&
      pos.every((p) => {
        const ia = p.get(tasks[a]);
        const ib = p.get(tasks[b]);
        return ia != null && ib != null && ib > ia;
      });
  };
  return [
    ...METRIC_NAMES.map((metric) => metricSpec(metric, model, base)),
    comparisonSpec(model, base),
    ...model.aggregate.methods.map((m) => meanMatrixSpec(m, tasks, unseenIn(model.orders[m.method] ?? []), base)),
  ];
}
