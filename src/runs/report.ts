/**
 * Reports from run folders, rendered as Markdown (for people) and CSV (for analysis) from their summaries
 * (`foldRun`, ./fold.ts) and their aggregate (`aggregateRuns`, ./aggregate.ts). The aggregate leads: what a
 * method gives over seeds and orders, and whether it differs from the baseline, is the answer; single runs are
 * the detail under it. No tfjs here: the extension uses it too.
 */
import { aggregateRuns } from './aggregate';
import { METRIC_NAMES, type Estimate, type ExperimentAggregate, type PairedDifference } from './aggregate-types';
import type { RunSummary } from './fold';
import { listPredictionSets, readPredictionRecords } from './predictions';

/** @deprecated Import `effectiveEvents` from ./fold; this re-export goes once no caller uses it. */
export { effectiveEvents } from './fold';

const fmt = (v: number | null | undefined, digits = 1) => (v == null ? '–' : v.toFixed(digits));

/** A number with its sign always written (+2.1, -0.4), for differences; one that rounds to zero has none. */
export function fmtSigned(v: number | null | undefined, digits = 1): string {
  if (v == null) return '–';
  const s = v.toFixed(digits);
  if (Number(s) === 0) return (0).toFixed(digits);
  return v > 0 ? `+${s}` : s;
}

/** An estimate as `mean ± half-width` of its 95% interval; `mean (n = 1, no interval)` for a single run. */
export function fmtEstimate(e: Estimate, digits = 1): string {
  if (e.mean == null) return '–';
  if (e.ci95 == null) return `${e.mean.toFixed(digits)} (n = ${e.n}, no interval)`;
  return `${e.mean.toFixed(digits)} ± ${((e.ci95[1] - e.ci95[0]) / 2).toFixed(digits)}`;
}

/** A 95% interval of a difference, `[-0.3, +2.4]`; '–' without one. */
export const fmtInterval = (ci: [number, number] | null, digits = 1): string =>
  ci == null ? '–' : `[${fmtSigned(ci[0], digits)}, ${fmtSigned(ci[1], digits)}]`;

/** A p-value to three decimals, `< 0.001` below; Monte Carlo values say so. */
export function fmtPValue(d: PairedDifference): string {
  if (d.p == null) return '–';
  const p = d.p < 0.001 ? '< 0.001' : d.p.toFixed(3);
  return d.exact ? p : `${p} (Monte Carlo)`;
}

/** The verdict as shown: 'no pairs' when no cell could be paired. */
export const fmtVerdict = (d: PairedDifference): string => (d.n === 0 ? 'no pairs' : d.verdict);

export const METRICS_LEGEND =
  'Accuracies in percent, of the first evaluation mode each run lists (`eval.modes`, rank classification ' +
  'unless set otherwise; the other modes are in its events and predictions). ' +
  'AA: average accuracy after the last task; BWT: backward transfer; ' +
  'forgetting: Chaudhry et al. (lower is better); FWT: GEM forward transfer against the zero-shot row.';

export const VALIDATION_LEGEND =
  'validation AA / BWT: the same on the validation splits (training examples held out, `eval.validation`), ' +
  'what settings are chosen on; the other figures are on the test sets.';

/** The validation metrics a report shows beside the test metrics: AA and BWT. */
export const VALIDATION_COLUMNS = ['AA', 'BWT'] as const;

/** Whether any method of the aggregate has validation figures (reports show their columns only then). */
export const aggregateHasValidation = (agg: ExperimentAggregate): boolean =>
  agg.methods.some((m) => m.validationMetrics?.AA.n > 0);

/** Whether any run has validation figures. */
export const runsHaveValidation = (runs: readonly RunSummary[]): boolean =>
  runs.some((r) => r.validationMetrics != null);

export const INTERVAL_LEGEND =
  "Each method's mean over its finished runs ± the half-width of the Student-t 95% confidence interval of the mean.";

/** How the paired comparison was made, for the line under its table. */
export function pairedLegend(baseline: string): string {
  return (
    `Differences are method − ${baseline} on the same (task order, seed) cell, averaged over the cells both finished; ` +
    'the interval is the Student-t 95% interval of the mean difference; p is the two-sided sign-flip permutation ' +
    'test (exact enumeration up to 16 pairs, Monte Carlo beyond). A verdict needs p < 0.05.'
  );
}

/** A Markdown table cell: pipes escaped, line breaks flattened. */
const md = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function aggregateMarkdown(agg: ExperimentAggregate): string[] {
  const lines: string[] = ['## Methods', ''];
  const validation = aggregateHasValidation(agg) ? VALIDATION_COLUMNS : [];
  const heads = [...METRIC_NAMES, ...validation.map((k) => `validation ${k}`)];
  lines.push(`| method | n | ${heads.join(' | ')} |`, `|---|---|${heads.map(() => '---').join('|')}|`);
  for (const m of agg.methods) {
    const cells = [
      ...METRIC_NAMES.map((k) => fmtEstimate(m.metrics[k])),
      ...validation.map((k) => (m.validationMetrics ? fmtEstimate(m.validationMetrics[k]) : '–')),
    ];
    lines.push(`| ${md(m.method)} | ${m.n} | ${cells.join(' | ')} |`);
  }
  lines.push('', `${INTERVAL_LEGEND} ${METRICS_LEGEND}${validation.length ? ` ${VALIDATION_LEGEND}` : ''}`);
  if (agg.baseline != null && agg.comparisons.length) {
    lines.push('', `## Against ${md(agg.baseline)}`, '');
    lines.push('| method | metric | mean difference | 95% CI | p | verdict |', '|---|---|---|---|---|---|');
    for (const c of agg.comparisons) {
      for (const k of METRIC_NAMES) {
        const d = c.metrics[k];
        lines.push(
          `| ${md(c.method)} | ${k} | ${fmtSigned(d.mean)} | ${fmtInterval(d.ci95)} | ${fmtPValue(d)} | ${fmtVerdict(d)} |`,
        );
      }
    }
    lines.push('', pairedLegend(agg.baseline));
  }
  lines.push(...selectionMarkdown(agg));
  if (agg.notes.length) lines.push('', '## Notes', '', ...agg.notes.map((n) => `- ${n}`));
  return lines;
}

export const SELECTION_LEGEND =
  'Methods by mean validation AA, ties (within 0.05 points) broken by validation BWT: the ranking a setting is ' +
  'chosen by. The test figures above report the choice; they never make it.';

/** The ranking on the validation splits, and how clear the leader's lead is. */
export function selectionSentence(agg: ExperimentAggregate): string | null {
  const d = agg.selection?.leaderVsRunnerUp;
  if (!d) return null;
  const lead = `${d.leader} leads ${d.runnerUp} by ${fmtSigned(d.mean)} validation AA points`;
  if (d.n === 0) return `${lead} (no (order, seed) cell both finished: no paired test).`;
  return `${lead} over ${d.n} paired cells (95% CI ${fmtInterval(d.ci95)}, p ${fmtPValue(d)}): ${
    d.verdict === 'better'
      ? 'a clear lead at 95%'
      : // Not "near-equals": with few cells the interval can hold large differences either way.
        'not distinguishable at 95%, so these runs do not settle the choice'
  }.`;
}

function selectionMarkdown(agg: ExperimentAggregate): string[] {
  const sel = agg.selection;
  if (!sel || sel.ranking.length < 2) return [];
  const lines = ['', '## Ranked on validation', ''];
  lines.push('| rank | method | n | validation AA | validation BWT |', '|---|---|---|---|---|');
  sel.ranking.forEach((r, i) => lines.push(`| ${i + 1} | ${md(r.method)} | ${r.n} | ${fmt(r.AA)} | ${fmt(r.BWT)} |`));
  lines.push('', SELECTION_LEGEND);
  const sentence = selectionSentence(agg);
  if (sentence) lines.push('', sentence);
  return lines;
}

/** An accuracy matrix as a Markdown table, the zero-shot row first when there is one. */
function matrixMarkdown(
  r: RunSummary,
  corner: string,
  matrix: number[][],
  zeroShot: (number | null)[] | null,
): string[] {
  const lines = [`| ${corner} | ${r.tasks.map(md).join(' | ')} |`, `|---|${r.tasks.map(() => '---').join('|')}|`];
  if (zeroShot) lines.push(`| zero-shot | ${zeroShot.map((v) => fmt(v)).join(' | ')} |`);
  matrix.forEach((row, i) => lines.push(`| ${md(r.tasks[i] ?? '?')} | ${row.map((v) => fmt(v)).join(' | ')} |`));
  return lines;
}

function perRunMarkdown(runs: RunSummary[]): string[] {
  const lines: string[] = ['## Per run', ''];
  const validation = runsHaveValidation(runs) ? VALIDATION_COLUMNS : [];
  const heads = ['run', 'method', 'status', ...METRIC_NAMES, ...validation.map((k) => `validation ${k}`), 'time (s)'];
  lines.push(`| ${heads.join(' | ')} |`, `|${heads.map(() => '---').join('|')}|`);
  for (const r of runs) {
    const m = r.metrics;
    const cells = [
      md(r.name),
      md(r.method),
      shownStatus(r),
      ...METRIC_NAMES.map((k) => fmt(m?.[k])),
      ...validation.map((k) => fmt(r.validationMetrics?.[k])),
      fmt(r.seconds, 0),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('', validation.length ? `${METRICS_LEGEND} ${VALIDATION_LEGEND}` : METRICS_LEGEND);
  for (const r of runs) {
    lines.push('', `### ${r.name} (${r.method})`, '');
    lines.push(...matrixMarkdown(r, 'after \\ on', r.matrix, r.zeroShot));
    if (r.validationMatrix?.length) {
      lines.push('', 'Validation splits:', '');
      lines.push(...matrixMarkdown(r, 'after \\ on validation', r.validationMatrix, r.validationZeroShot));
    }
    if (r.error) lines.push('', `Failed: ${r.error}`);
  }
  return lines;
}

/**
 * The Markdown report: the methods' aggregate (mean ± 95% interval per metric), the paired differences to the
 * baseline with their verdicts, the notes, then each run's figures and accuracy matrix under "Per run".
 */
export function markdownReport(runs: RunSummary[], aggregate: ExperimentAggregate = aggregateRuns(runs)): string {
  const lines: string[] = ['# Sculpt report', '', ...aggregateMarkdown(aggregate), '', ...perRunMarkdown(runs)];
  return lines.join('\n') + '\n';
}

type Cell = string | number | null;

function csvCell(v: Cell): string {
  if (v == null) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The CSV's columns; `metric` and `baseline` came last, so that the earlier columns kept their places. */
export const CSV_HEADER = ['run', 'method', 'kind', 'after_task', 'task', 'value', 'metric', 'baseline'] as const;

/**
 * One tidy long table, one value per row:
 *   - per run (column `run` set): kind `accuracy` (after_task, task: names; after_task `zero-shot` for the base
 *     model), kind = the metric's name (also in `metric`), kind `seconds`; for a run with validation splits, the
 *     same on them as kinds `validation_accuracy` and `validation_<metric>` (the metric's name in `metric`);
 *   - per method (`run` empty): for each metric, kinds `n`, `mean`, `sd`, `ci95_low`, `ci95_high`; the same of
 *     the validation metrics as `validation_n`, `validation_mean`, ... (for methods with validation figures); kind
 *     `accuracy_mean` for the accuracy matrix averaged by task name (and its zero-shot row);
 *   - per comparison (`run` empty, `baseline` set): for each metric, kinds `n_pairs`, `diff_mean`, `diff_sd`,
 *     `diff_ci95_low`, `diff_ci95_high`, `p`, `p_min`, and `verdict` (a word, not a number).
 * Empty values are quantities that do not exist (an interval of one run, FWT without a zero-shot row).
 */
export function csvReport(runs: RunSummary[], aggregate: ExperimentAggregate = aggregateRuns(runs)): string {
  const rows: Cell[][] = [[...CSV_HEADER]];
  const push = (row: {
    run?: string;
    method: string;
    kind: string;
    after?: string;
    task?: string;
    value: Cell;
    metric?: string;
    baseline?: string;
  }) =>
    rows.push([
      row.run ?? '',
      row.method,
      row.kind,
      row.after ?? '',
      row.task ?? '',
      row.value,
      row.metric ?? '',
      row.baseline ?? '',
    ]);
  for (const r of runs) {
    const base = { run: r.name, method: r.method };
    r.zeroShot?.forEach((v, j) => push({ ...base, kind: 'accuracy', after: 'zero-shot', task: r.tasks[j], value: v }));
    r.matrix.forEach((row, i) =>
      row.forEach((v, j) => push({ ...base, kind: 'accuracy', after: r.tasks[i], task: r.tasks[j], value: v })),
    );
    if (r.metrics) for (const [k, v] of Object.entries(r.metrics)) push({ ...base, kind: k, value: v, metric: k });
    const vkind = 'validation_accuracy';
    r.validationZeroShot?.forEach((v, j) =>
      push({ ...base, kind: vkind, after: 'zero-shot', task: r.tasks[j], value: v }),
    );
    r.validationMatrix?.forEach((row, i) =>
      row.forEach((v, j) => push({ ...base, kind: vkind, after: r.tasks[i], task: r.tasks[j], value: v })),
    );
    if (r.validationMetrics)
      for (const [k, v] of Object.entries(r.validationMetrics))
        push({ ...base, kind: `validation_${k}`, value: v, metric: k });
    if (r.seconds != null) push({ ...base, kind: 'seconds', value: r.seconds });
  }
  const estimateRows = (method: string, metric: string, e: Estimate, prefix = '') => {
    const stats: [string, Cell][] = [
      ['n', e.n],
      ['mean', e.mean],
      ['sd', e.sd],
      ['ci95_low', e.ci95?.[0] ?? null],
      ['ci95_high', e.ci95?.[1] ?? null],
    ];
    for (const [kind, value] of stats) push({ method, kind: prefix + kind, value, metric });
  };
  for (const m of aggregate.methods) {
    for (const k of METRIC_NAMES) estimateRows(m.method, k, m.metrics[k]);
    if (m.validationMetrics?.AA.n)
      for (const k of METRIC_NAMES) estimateRows(m.method, k, m.validationMetrics[k], 'validation_');
    for (const [task, e] of Object.entries(m.zeroShot)) {
      if (e.n) push({ method: m.method, kind: 'accuracy_mean', after: 'zero-shot', task, value: e.mean });
    }
    m.matrix.forEach((row, a) =>
      row.forEach((e, b) => {
        if (e.n)
          push({
            method: m.method,
            kind: 'accuracy_mean',
            after: aggregate.tasks[a],
            task: aggregate.tasks[b],
            value: e.mean,
          });
      }),
    );
  }
  for (const c of aggregate.comparisons) {
    for (const k of METRIC_NAMES) {
      const d = c.metrics[k];
      const stats: [string, Cell][] = [
        ['n_pairs', d.n],
        ['diff_mean', d.mean],
        ['diff_sd', d.sd],
        ['diff_ci95_low', d.ci95?.[0] ?? null],
        ['diff_ci95_high', d.ci95?.[1] ?? null],
        ['p', d.p],
        ['p_min', d.minP],
        ['verdict', d.verdict],
      ];
      for (const [kind, value] of stats) push({ method: c.method, kind, value, metric: k, baseline: c.baseline });
    }
  }
  return rows.map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}

/**
 * The predictions CSV's columns. `scores` is one JSON object per row (label -> log-probability, rank mode; empty
 * for generation), not one column per label: the tasks of a run have different label sets, and per-label columns
 * would be the union of them all, empty on most rows. `mode` tells apart the rows of a task evaluated both ways.
 */
export const PREDICTIONS_CSV_HEADER = [
  'run',
  'method',
  'seed',
  'order',
  'point',
  'split',
  'task',
  'mode',
  'index',
  'input',
  'expected',
  'predicted',
  'correct',
  'scores',
] as const;

/** A run's summary and its folder, where its prediction files are. */
export interface RunWithFolder {
  summary: RunSummary;
  dir: string;
}

/**
 * Every per-example prediction of the runs' folders, one row per example and evaluation: by run, then point
 * (`zero-shot`, `after-task-<n>`), split, task and mode, as the folders list them, and within a file in split
 * order. `task` is the task's name, `index` its position in the split, `input` the prompt's input as the file
 * holds it (cut at 500 characters), `correct` `true` or `false`. Fields are quoted as RFC 4180 asks (commas,
 * quotes and line breaks inside a field), so inputs survive a round trip. Runs without predictions add no row;
 * a file that cannot be read adds none either, and is named in `problems`.
 */
export function predictionsCsv(runs: readonly RunWithFolder[]): { csv: string; rows: number; problems: string[] } {
  const rows: Cell[][] = [[...PREDICTIONS_CSV_HEADER]];
  const problems: string[] = [];
  for (const { summary: r, dir } of runs) {
    const listing = listPredictionSets(dir);
    problems.push(...listing.problems);
    for (const set of listing.sets) {
      let records;
      try {
        records = readPredictionRecords(dir, set).records;
      } catch (e) {
        problems.push(`${dir}: ${set.point}/${set.file}: ${(e as Error).message}`);
        continue;
      }
      for (const x of records)
        rows.push([
          r.name,
          r.method,
          r.seed,
          r.order,
          set.point,
          set.split,
          set.name,
          set.mode,
          x.index,
          x.input,
          x.expected,
          x.predicted,
          x.correct ? 'true' : 'false',
          x.scores ? JSON.stringify(x.scores) : null,
        ]);
    }
  }
  return { csv: rows.map((row) => row.map(csvCell).join(',')).join('\n') + '\n', rows: rows.length - 1, problems };
}

/** Where the predictions CSV of a report goes: beside it, `report.csv` -> `report.predictions.csv`. */
export function predictionsCsvPath(reportPath: string): string {
  const m = /^(.*?)(\.csv)?$/i.exec(reportPath)!;
  return `${m[1]}.predictions.csv`;
}

/** A run's status as reports show it: 'interrupted' for a log left 'running' by a trainer that is gone. */
export function shownStatus(r: RunSummary): string {
  return r.interrupted ? 'interrupted' : r.status;
}
