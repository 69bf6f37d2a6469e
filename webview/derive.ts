/**
 * Numbers the charts and tables show, derived from a run's state. Status and metrics come from the shared run
 * fold and metric functions (src/runs/fold.ts, metrics.ts), so the dashboard, the Runs view, `sculpt report` and
 * the trainer's events can never disagree.
 */
import type { Metrics, RanksEvent } from '../src/protocol/events';
import { averageAccuracy, backwardTransfer, metricsAfter } from '../src/runs/metrics';
import { finishSummary, type RunSummary } from '../src/runs/fold';
import type { RunStatus } from '../src/runs/status';
import { runStatus, type RunState } from './state';

/** Rows of R that are complete (every task up to the row's own measured), the ones metrics may use. */
export function completeRows(run: RunState): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < run.matrix.length; i++) {
    const row = run.matrix[i];
    const known = row.slice(0, i + 1);
    if (known.length < i + 1 || known.some((v) => v == null)) break;
    rows.push(row.map((v) => v ?? NaN));
  }
  return rows;
}

export interface TaskPoint {
  task: number;
  name: string;
  value: number | null;
}

/** OP_t after each finished task: the trainer's figure when it sent one, else computed from R. */
export function averageAccuracyPerTask(run: RunState): TaskPoint[] {
  const R = completeRows(run);
  return R.map((_, t) => ({
    task: t,
    name: run.tasks[t] ?? `task ${t}`,
    value: run.taskMetrics[t]?.AA ?? averageAccuracy(R, t),
  }));
}

export interface ForgettingView {
  /** The last complete row t the figures refer to (null before two tasks are done). */
  after: number | null;
  perTask: TaskPoint[];
  bwt: number | null;
  forgetting: number | null;
}

/** Forgetting of each earlier task after the last complete row: max_{l<t} R[l][j] - R[t][j] (Chaudhry et al.). */
export function forgettingPerTask(run: RunState): ForgettingView {
  const R = completeRows(run);
  const t = R.length - 1;
  if (t < 1) return { after: null, perTask: [], bwt: null, forgetting: null };
  const perTask: TaskPoint[] = [];
  for (let j = 0; j < t; j++) {
    let best = -Infinity;
    for (let l = j; l < t; l++) best = Math.max(best, R[l][j]);
    perTask.push({ task: j, name: run.tasks[j] ?? `task ${j}`, value: best - R[t][j] });
  }
  const m = finalMetrics(run);
  return { after: t, perTask, bwt: m?.BWT ?? backwardTransfer(R, t), forgetting: m?.forgetting ?? null };
}

/**
 * The run's headline metrics: the trainer's (run-finished, else the last task-finished, as the run's summary
 * holds them), else computed from the complete rows, which fill in from eval events before task-finished arrives.
 */
export function finalMetrics(run: RunState): Metrics | null {
  if (run.summary.metrics) return run.summary.metrics;
  const R = completeRows(run);
  return R.length ? metricsAfter(R, run.zeroShot.length ? run.zeroShot : null) : null;
}

export interface SummaryRow {
  key: string;
  name: string;
  /** The run's short label (labels.ts). */
  label: string;
  method: string;
  status: RunStatus;
  metrics: Metrics | null;
  /** Wall time: the trainer's figure when finished, else the span of the events so far. */
  seconds: number | null;
  secondsFinal: boolean;
  /** Tasks with a complete row, of all tasks: the metrics of an unfinished run are after the last of these. */
  tasksDone: number;
  tasksTotal: number;
  summary: RunSummary;
}

const summaryCache = new WeakMap<RunState, { version: number; row: SummaryRow }>();

export function summaryRow(run: RunState): SummaryRow {
  const hit = summaryCache.get(run);
  if (hit && hit.version === run.version && hit.row.label === run.label) return hit.row;
  const summary = finishSummary(run.summary);
  const elapsed = run.firstTime != null && run.lastTime != null ? (run.lastTime - run.firstTime) / 1000 : null;
  const row: SummaryRow = {
    key: run.key,
    name: run.name,
    label: run.label,
    method: run.method ?? run.meta.method ?? '?',
    status: runStatus(run),
    metrics: finalMetrics(run) ?? summary.metrics,
    seconds: summary.seconds ?? elapsed,
    secondsFinal: summary.seconds != null,
    tasksDone: completeRows(run).length,
    tasksTotal: run.tasks.length,
    summary,
  };
  summaryCache.set(run, { version: run.version, row });
  return row;
}

export type MetricKey = 'AA' | 'BWT' | 'forgetting' | 'FWT' | 'seconds';

/** Which direction is better for each summary column. */
export const BETTER: Record<MetricKey, 'max' | 'min'> = {
  AA: 'max',
  BWT: 'max',
  forgetting: 'min',
  FWT: 'max',
  seconds: 'min',
};

export function metricValue(row: SummaryRow, k: MetricKey): number | null {
  if (k === 'seconds') return row.secondsFinal ? row.seconds : null;
  return row.metrics?.[k] ?? null;
}

/** Keys of the rows holding the best value of a column (ties all marked; none with fewer than two values or all equal). */
export function bestKeys(rows: SummaryRow[], k: MetricKey): Set<string> {
  const vals = rows
    .map((r) => [r.key, metricValue(r, k)] as const)
    .filter((x): x is readonly [string, number] => x[1] != null && Number.isFinite(x[1]));
  if (vals.length < 2) return new Set();
  const pick = BETTER[k] === 'max' ? Math.max : Math.min;
  const best = pick(...vals.map((v) => v[1]));
  // When every run has the same value there is no best to point at.
  if (vals.every((v) => Math.abs(v[1] - best) < 1e-9)) return new Set();
  return new Set(vals.filter((v) => Math.abs(v[1] - best) < 1e-9).map((v) => v[0]));
}

// ---- subspace ranks ----

/** A short matrix label: "L0 q" for layer 0's q projection; the full name stays in tooltips and tables. */
export function matrixLabel(m: { layer: number; role: string; name: string }): string {
  return m.layer >= 0 ? `L${m.layer} ${m.role}` : m.role || m.name;
}

export interface RankHeatmap {
  /** Row labels: layers (and non-layer groups such as the head). */
  rows: { id: string; label: string }[];
  /** Column per boundary: "before <task>". */
  cols: { beforeTask: number; label: string }[];
  /** Mean retained ratio k/min(m,n) of the row's matrices at the column's boundary, 0..1; null when absent. */
  cells: (number | null)[][];
}

function groupOf(m: { layer: number; role: string }): { id: string; label: string; order: number } {
  return m.layer >= 0
    ? { id: `L${m.layer}`, label: `layer ${m.layer}`, order: m.layer }
    : { id: `x:${m.role}`, label: m.role, order: 1e6 };
}

export function rankHeatmap(run: RunState): RankHeatmap {
  const groups = new Map<string, { id: string; label: string; order: number }>();
  for (const r of run.ranks) for (const m of r.matrices) groups.set(groupOf(m).id, groupOf(m));
  const rows = [...groups.values()].sort((a, b) => a.order - b.order || a.label.localeCompare(b.label));
  const cols = run.ranks.map((r) => ({
    beforeTask: r.beforeTask,
    label: `before ${run.tasks[r.beforeTask] ?? `task ${r.beforeTask}`}`,
  }));
  const cells = rows.map((g) =>
    run.ranks.map((r) => {
      const ms = r.matrices.filter((m) => groupOf(m).id === g.id);
      return ms.length ? ms.reduce((s, m) => s + m.ratio, 0) / ms.length : null;
    }),
  );
  return { rows: rows.map(({ id, label }) => ({ id, label })), cols, cells };
}

export function ranksAt(run: RunState, beforeTask: number | null): RanksEvent | null {
  if (!run.ranks.length) return null;
  return run.ranks.find((r) => r.beforeTask === beforeTask) ?? run.ranks[run.ranks.length - 1];
}
