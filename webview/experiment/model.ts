/**
 * The experiment view's model: the runs shown grouped into the grid methods × (order, seed), each cell's state,
 * and the aggregate of their summaries. The aggregate is `aggregateRuns` (src/runs/aggregate.ts) over the same
 * folded summaries `sculpt report --json` reads, so the view and the report give the same numbers; it is
 * recomputed only when a summary changes (a finished task or run), not on every step event.
 */
import type { ExperimentCellInfo, ExperimentInfo } from '../../src/protocol/webview';
import type { ExperimentAggregate } from '../../src/runs/aggregate-types';
import type { RunSummary } from '../../src/runs/fold';
import type { RunStatus } from '../../src/runs/status';
import { aggregateRuns, type AggregateOptions } from '../../src/runs/aggregate';
import { summaryRow } from '../derive';
import { runStatus, type DashboardState, type RunState } from '../state';

/** What a cell of the grid shows. */
export type CellState = 'queued' | 'running' | 'finished' | 'failed' | 'stopped';

const CELL_STATE: Record<RunStatus, CellState> = {
  new: 'queued',
  queued: 'queued',
  starting: 'running',
  running: 'running',
  stopping: 'running',
  finished: 'finished',
  stopped: 'stopped',
  cancelled: 'stopped',
  interrupted: 'stopped',
  failed: 'failed',
  crashed: 'failed',
  killed: 'failed',
};

export interface GridCell {
  key: string;
  /** The run folder's name (the run id); the aggregate names runs by it. */
  name: string;
  /** The run's short label (labels.ts). */
  label: string;
  method: string;
  order: number | null;
  seed: number | null;
  state: CellState;
  /** The precise status (e.g. crashed, interrupted) when it says more than the state. */
  status: RunStatus;
  /** Where a running cell is: "task 2/3 · 40%". */
  progress: string | null;
  /** The error of a failed cell. */
  error: string | null;
}

export interface GridColumn {
  id: string;
  order: number | null;
  seed: number | null;
  label: string;
}

export interface ExperimentModel {
  /** The experiment's name, when the runs are an experiment's cells. */
  name: string | null;
  /** Grid rows, in the experiment's (else first-seen) order. */
  methods: string[];
  columns: GridColumn[];
  /** [method][column]; null where the grid has no such cell. */
  grid: (GridCell | null)[][];
  aggregate: ExperimentAggregate;
  /** The experiment's grid as recorded; null for runs that are not an experiment's cells. */
  shape: { methods: number; orders: number; seeds: number } | null;
  /** Changes exactly when the aggregate's inputs change (a cheap signature for re-rendering). */
  signature: string;
  counts: Record<CellState, number>;
  /** The task orders the finished runs of each method trained in (for which matrix cells are never trained yet). */
  orders: Record<string, string[][]>;
  /** Each run's short label by its folder's name (the name the aggregate gives runs). */
  labels: Record<string, string>;
}

const cellOf = (exp: ExperimentInfo | null): Map<string, ExperimentCellInfo> =>
  new Map((exp?.cells ?? []).map((c) => [c.key, c]));

/** A run's method: the log's, else its cell's (a queued cell has no log yet). */
function methodOf(run: RunState, cell: ExperimentCellInfo | undefined): string {
  const m = run.summary.method;
  return m !== '?' ? m : (cell?.method ?? run.method ?? '?');
}

/** Whether some method has more than one run shown: the case the experiment view is for. */
export function severalRunsPerMethod(state: DashboardState): boolean {
  const cells = cellOf(state.experiment);
  const seen = new Set<string>();
  for (const r of state.runs) {
    const m = methodOf(r, cells.get(r.key));
    if (m === '?') continue;
    if (seen.has(m)) return true;
    seen.add(m);
  }
  return false;
}

/** Whether the dashboard offers the Experiment tab: an experiment of several cells, or several runs per method. */
export function hasExperimentView(state: DashboardState): boolean {
  return (state.experiment != null && state.experiment.cells.length > 1) || severalRunsPerMethod(state);
}

/**
 * The summaries the aggregate reads, in the order of the runs (the experiment's run order): each run's finished
 * fold, with its cell's method, order and seed where the log does not say them yet.
 */
export function cellSummaries(state: DashboardState): RunSummary[] {
  const cells = cellOf(state.experiment);
  return state.runs.map((run) => {
    const s = summaryRow(run).summary;
    const c = cells.get(run.key);
    if (!c) return s;
    return { ...s, method: s.method === '?' ? c.method : s.method, order: s.order ?? c.order, seed: s.seed ?? c.seed };
  });
}

function progressOf(run: RunState, state: CellState): string | null {
  if (state !== 'running') return null;
  const c = run.current;
  const T = run.tasks.length;
  if (!c) return run.summary.phase === 'starting' ? 'starting' : null;
  return `task ${c.task + 1}/${T || '?'} \u00b7 ${Math.round(Math.max(0, Math.min(1, c.progress)) * 100)}%`;
}

let memo: { signature: string; aggregate: ExperimentAggregate } | null = null;

/**
 * The aggregate of the summaries, recomputed only when they changed. A recorded baseline no run has (a config
 * edited since) cannot be compared with: the default baseline is used, and a note says so.
 */
function aggregateOf(
  summaries: RunSummary[],
  opts: AggregateOptions,
): { signature: string; aggregate: ExperimentAggregate } {
  const signature = JSON.stringify([
    opts,
    summaries.map((s) => [s.name, s.method, s.order, s.seed, s.status, s.tasks, s.matrix, s.zeroShot, s.metrics]),
  ]);
  if (memo?.signature !== signature) {
    let aggregate: ExperimentAggregate;
    try {
      aggregate = aggregateRuns(summaries, opts);
    } catch (e) {
      aggregate = aggregateRuns(summaries, { ...opts, baseline: null });
      aggregate.notes.unshift(`The recorded baseline cannot be used: ${(e as Error).message}.`);
    }
    memo = { signature, aggregate };
  }
  return memo;
}

function columnOf(order: number | null, seed: number | null, key: string): GridColumn {
  if (order == null && seed == null) return { id: `run:${key}`, order, seed, label: 'run' };
  const parts = [order != null ? `order ${order + 1}` : null, seed != null ? `seed ${seed}` : null];
  return { id: `o${order ?? '?'}-s${seed ?? '?'}`, order, seed, label: parts.filter(Boolean).join(' \u00b7 ') };
}

export function experimentModel(state: DashboardState): ExperimentModel {
  const exp = state.experiment;
  const summaries = cellSummaries(state);
  // As `sculpt report` reads them: the config's baseline when it names one (else seqft, else the first method),
  // the experiment's task order from its runs.
  const opts: AggregateOptions = { baseline: exp?.baseline ?? null };
  const { signature, aggregate } = aggregateOf(summaries, opts);

  const methods = exp ? [...exp.methods] : [];
  const columns: GridColumn[] = [];
  const addColumn = (col: GridColumn) => {
    if (!columns.some((x) => x.id === col.id)) columns.push(col);
  };
  // Columns in run order: an experiment runs seed by seed, order by order.
  for (const c of exp?.cells ?? []) addColumn(columnOf(c.order, c.seed, c.key));
  const placed = new Map<string, GridCell>();
  state.runs.forEach((run, i) => {
    const s = summaries[i];
    const status = runStatus(run);
    const st = CELL_STATE[status];
    const cell: GridCell = {
      key: run.key,
      name: run.name,
      label: run.label,
      method: s.method,
      order: s.order,
      seed: s.seed,
      state: st,
      status,
      progress: progressOf(run, st),
      error: run.error?.message ?? run.log.readError ?? null,
    };
    if (!methods.includes(cell.method)) methods.push(cell.method);
    const base = columnOf(cell.order, cell.seed, cell.key);
    let col = base;
    // Two runs of one method in the same (order, seed), outside an experiment: side by side.
    for (let k = 2; placed.has(`${cell.method}\n${col.id}`); k++) col = { ...base, id: `${base.id}#${k}` };
    addColumn(col);
    placed.set(`${cell.method}\n${col.id}`, cell);
  });
  const grid = methods.map((method) =>
    columns.map((col): GridCell | null => {
      const c = placed.get(`${method}\n${col.id}`);
      if (c) return c;
      // A cell of the record whose run the panel does not hold (yet): it has not been prepared, so it waits.
      const rec = exp?.cells.find((x) => x.method === method && columnOf(x.order, x.seed, x.key).id === col.id);
      if (!rec) return null;
      const name = rec.key.split(/[\\/]/).pop() ?? rec.key;
      return {
        key: rec.key,
        name,
        label: `${method} \u00b7 o${rec.order + 1} \u00b7 s${rec.seed}`,
        method,
        order: rec.order,
        seed: rec.seed,
        state: 'queued',
        status: 'new',
        progress: null,
        error: null,
      };
    }),
  );
  const counts: Record<CellState, number> = { queued: 0, running: 0, finished: 0, failed: 0, stopped: 0 };
  for (const row of grid) for (const c of row) if (c) counts[c.state]++;
  const orders: Record<string, string[][]> = {};
  for (const s of summaries) {
    if (s.status !== 'finished') continue;
    const list = (orders[s.method] ??= []);
    if (!list.some((o) => o.join('\n') === s.tasks.join('\n'))) list.push(s.tasks);
  }
  const shape = exp ? { methods: exp.methods.length, orders: exp.orders.length, seeds: exp.seeds.length } : null;
  const labels: Record<string, string> = {};
  for (const r of state.runs) labels[r.name] = r.label;
  return { name: exp?.name ?? null, methods, columns, grid, aggregate, shape, signature, counts, orders, labels };
}
