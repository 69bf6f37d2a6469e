/**
 * The runs of an experiment grid (methods × task orders × seeds) as one comparison: per method, the mean and
 * 95% interval of each metric over its finished runs and the accuracy matrix averaged by task name; per other
 * method, the paired difference to a baseline over the (order, seed) cells both finished; and the notes a reader
 * must see before believing any of it (one run per method, too few pairs, runs left out or unpaired).
 *
 * Runs are matched by the (order, seed) their logs recorded, never by position: two runs of the same cell share
 * their task order, data order and initialisation, so their difference is the method's alone. No tfjs and no
 * Node-only APIs: the dashboard's browser bundle computes the same aggregate.
 */
import {
  METRIC_NAMES,
  type CellRef,
  type Estimate,
  type ExperimentAggregate,
  type ValidationRank,
  type ValidationSelection,
  type MethodAggregate,
  type MethodComparison,
  type MetricName,
  type PairedDifference,
} from './aggregate-types';
import type { RunSummary } from './fold';
import { estimate, pairedDifference, type SignFlipOptions } from './stats';

export interface AggregateOptions {
  /** The method the others are compared with (must be one of the runs' methods); default: `defaultBaseline`. */
  baseline?: string | null;
  /** Task names in the experiment's order (its config's `tasks`); default: from the runs (`experimentTasks`). */
  tasks?: string[];
  /** Options of the sign-flip test (Monte Carlo samples and seed beyond 16 pairs). */
  signFlip?: SignFlipOptions;
}

/** The method compared with when none is named: plain sequential fine-tuning, the usual reference. */
export const DEFAULT_BASELINE = 'seqft';

/** Whether a run's figures enter the aggregate: it finished and its metrics were computed. */
export function isCounted(r: RunSummary): boolean {
  return r.status === 'finished' && r.metrics != null;
}

/** The runs' methods, each once, in the order first seen. */
export function methodsOf(runs: readonly RunSummary[]): string[] {
  return [...new Set(runs.map((r) => r.method))];
}

/**
 * The baseline when none is named: `seqft` when it ran, else the first method; null with fewer than two methods
 * (nothing to compare).
 */
export function defaultBaseline(methods: readonly string[]): string | null {
  if (methods.length < 2) return null;
  return methods.includes(DEFAULT_BASELINE) ? DEFAULT_BASELINE : methods[0];
}

/**
 * The experiment's task order when the caller does not give it: that of a counted run of order 0 (the config's
 * own `tasks`), else of the first counted run, else of the first run.
 */
export function experimentTasks(runs: readonly RunSummary[]): string[] {
  const counted = runs.filter(isCounted);
  const pick = counted.find((r) => r.order === 0) ?? counted[0] ?? runs[0];
  return pick ? [...pick.tasks] : [];
}

/** A finite number, or null (JSON has no NaN or Infinity, and a missing entry is not a value). */
function finite(v: number | null | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Collects values under keys, keeping the keys in first-seen order. */
class Buckets {
  readonly map = new Map<string, number[]>();

  add(key: string, v: number | null): void {
    if (v == null) return;
    const list = this.map.get(key);
    if (list) list.push(v);
    else this.map.set(key, [v]);
  }

  /** Estimates keyed by `order` first (present or not), then any other key in first-seen order. */
  estimates(order: readonly string[]): Record<string, Estimate> {
    const out: Record<string, Estimate> = {};
    for (const k of order) out[k] = estimate(this.map.get(k) ?? []);
    for (const [k, vs] of this.map) if (!(k in out)) out[k] = estimate(vs);
    return out;
  }
}

/**
 * One method's runs, aggregated. The accuracy matrix is averaged by task name: cell [a][b] collects, from each
 * counted run, R[ia][ib] with ia, ib the positions of tasks[a], tasks[b] in that run's own order, so runs that
 * trained the tasks in different orders meet in the same cell.
 */
function aggregateMethod(method: string, runs: readonly RunSummary[], tasks: readonly string[]): MethodAggregate {
  const mine = runs.filter((r) => r.method === method);
  const counted = mine.filter(isCounted);
  const cells: CellRef[] = mine.map((r) => ({
    name: r.name,
    method: r.method,
    order: r.order,
    seed: r.seed,
    status: r.status,
    counted: isCounted(r),
  }));
  const metrics = {} as Record<MetricName, Estimate>;
  const validationMetrics = {} as Record<MetricName, Estimate>;
  for (const m of METRIC_NAMES) {
    metrics[m] = estimate(counted.map((r) => finite(r.metrics?.[m])).filter((v): v is number => v != null));
    validationMetrics[m] = estimate(
      counted.map((r) => finite(r.validationMetrics?.[m])).filter((v): v is number => v != null),
    );
  }
  const justTrained = new Buckets();
  const zeroShot = new Buckets();
  const matrixValues: number[][][] = tasks.map(() => tasks.map(() => []));
  for (const r of counted) {
    r.tasks.forEach((name, i) => {
      justTrained.add(name, finite(r.matrix[i]?.[i]));
      zeroShot.add(name, finite(r.zeroShot?.[i]));
    });
    const position = tasks.map((name) => r.tasks.indexOf(name));
    position.forEach((ia, a) => {
      if (ia < 0) return;
      position.forEach((ib, b) => {
        const v = ib < 0 ? null : finite(r.matrix[ia]?.[ib]);
        if (v != null) matrixValues[a][b].push(v);
      });
    });
  }
  return {
    method,
    n: counted.length,
    cells,
    metrics,
    validationMetrics,
    justTrained: justTrained.estimates(tasks),
    matrix: matrixValues.map((row) => row.map((vs) => estimate(vs))),
    zeroShot: zeroShot.estimates(tasks),
  };
}

/** The key of a grid cell; null when the log does not say which cell the run is (logs from before orders). */
/** A run's cell: its order and seed within its setting (runs of different settings never pair). */
function cellKey(r: RunSummary): string | null {
  return r.order == null || r.seed == null ? null : `${r.setting ?? ''}|${r.order}|${r.seed}`;
}

interface Pairing {
  /** Matched runs (method's, baseline's), sorted by (order, seed). */
  pairs: [RunSummary, RunSummary][];
  /** Counted runs of either side left without a partner. */
  unpaired: RunSummary[];
}

/**
 * Matches the counted runs of `method` with those of `baseline` by (order, seed). A run without a partner, or
 * without a known cell, or a second run of a cell already taken, stays unpaired.
 */
function pairRuns(runs: readonly RunSummary[], method: string, baseline: string): Pairing {
  const byCell = (m: string) => {
    const cells = new Map<string, RunSummary>();
    const extra: RunSummary[] = [];
    for (const r of runs) {
      if (r.method !== m || !isCounted(r)) continue;
      const key = cellKey(r);
      if (key == null || cells.has(key)) extra.push(r);
      else cells.set(key, r);
    }
    return { cells, extra };
  };
  const a = byCell(method);
  const b = byCell(baseline);
  const pairs: [RunSummary, RunSummary][] = [];
  const unpaired = [...a.extra, ...b.extra];
  for (const [key, r] of a.cells) {
    const partner = b.cells.get(key);
    if (partner) pairs.push([r, partner]);
    else unpaired.push(r);
  }
  for (const [key, r] of b.cells) if (!a.cells.has(key)) unpaired.push(r);
  pairs.sort(([x], [y]) => x.order! - y.order! || x.seed! - y.seed!);
  return { pairs, unpaired };
}

/**
 * x - y, with differences at the level of floating-point rounding (|x - y| <= 1e-9 · max(1, |x|, |y|)) taken as
 * 0: two runs whose metrics agree but were summed in another order must tie, not give the sign test a direction.
 */
function difference(x: number, y: number): number {
  const d = x - y;
  return Math.abs(d) <= 1e-9 * Math.max(1, Math.abs(x), Math.abs(y)) ? 0 : d;
}

/** Which figures of a run are compared: its test metrics or its validation metrics. */
type MetricSource = (r: RunSummary) => Partial<Record<MetricName, number | null>> | null | undefined;
const testMetrics: MetricSource = (r) => r.metrics;
const validationMetricsOf: MetricSource = (r) => r.validationMetrics;

/** The paired difference (method - baseline) on one metric over matched runs. */
function pairedOn(
  pairs: readonly [RunSummary, RunSummary][],
  metric: MetricName,
  source: MetricSource,
  signFlip: SignFlipOptions | undefined,
): PairedDifference {
  const diffs: { order: number | null; seed: number | null; diff: number }[] = [];
  for (const [r, base] of pairs) {
    const x = finite(source(r)?.[metric]);
    const y = finite(source(base)?.[metric]);
    if (x != null && y != null) diffs.push({ order: r.order, seed: r.seed, diff: difference(x, y) });
  }
  return pairedDifference(metric, diffs, signFlip);
}

function compare(
  runs: readonly RunSummary[],
  method: string,
  baseline: string,
  signFlip: SignFlipOptions | undefined,
): { comparison: MethodComparison; unpaired: RunSummary[] } {
  const { pairs, unpaired } = pairRuns(runs, method, baseline);
  const metrics = {} as Record<MetricName, PairedDifference>;
  for (const m of METRIC_NAMES) metrics[m] = pairedOn(pairs, m, testMetrics, signFlip);
  return { comparison: { method, baseline, metrics }, unpaired };
}

/** Validation means closer than this (in accuracy points) count as equal, and BWT decides. */
const VALIDATION_TIE = 0.05;

/**
 * Ranks the methods with validation figures by mean validation AA (ties: mean validation BWT) and compares the
 * leader with the runner-up, paired by cell on validation AA. Null when no method has validation runs.
 */
function selectOnValidation(
  runs: readonly RunSummary[],
  methods: readonly MethodAggregate[],
  signFlip: SignFlipOptions | undefined,
): ValidationSelection | null {
  const ranking: ValidationRank[] = methods
    .filter((m) => m.validationMetrics.AA.n > 0 && m.validationMetrics.AA.mean != null)
    .map((m) => ({
      method: m.method,
      n: m.validationMetrics.AA.n,
      AA: m.validationMetrics.AA.mean!,
      BWT: m.validationMetrics.BWT.mean,
    }));
  if (!ranking.length) return null;
  ranking.sort((a, b) =>
    Math.abs(a.AA - b.AA) > VALIDATION_TIE ? b.AA - a.AA : (b.BWT ?? -Infinity) - (a.BWT ?? -Infinity),
  );
  if (ranking.length < 2) return { ranking, leaderVsRunnerUp: null };
  const [leader, runnerUp] = [ranking[0].method, ranking[1].method];
  const { pairs } = pairRuns(runs, leader, runnerUp);
  const d = pairedOn(pairs, 'AA', validationMetricsOf, signFlip);
  return { ranking, leaderVsRunnerUp: { ...d, leader, runnerUp } };
}

/** Up to `max` names, then how many more. */
function nameList(names: readonly string[], max = 5): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/** A p-value to three significant digits, without trailing zeros (0.0625, 0.125, 1). */
const fmtP = (p: number): string => String(Number(p.toPrecision(3)));

/** "1 run", "3 runs". */
const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/**
 * The aggregate of the runs of one experiment. Throws when `opts.baseline` names a method no run has (the
 * message names the methods that ran); never otherwise.
 */
export function aggregateRuns(runs: readonly RunSummary[], opts: AggregateOptions = {}): ExperimentAggregate {
  const methodNames = methodsOf(runs);
  if (opts.baseline != null && !methodNames.includes(opts.baseline)) {
    const present = methodNames.length ? methodNames.join(', ') : 'none';
    throw new Error(`unknown baseline method "${opts.baseline}": the runs' methods are ${present}`);
  }
  const tasks = opts.tasks ? [...opts.tasks] : experimentTasks(runs);
  const methods = methodNames.map((m) => aggregateMethod(m, runs, tasks));
  const baseline = methodNames.length < 2 ? null : (opts.baseline ?? defaultBaseline(methodNames));
  const notes: string[] = [];

  const leftOut = runs.filter((r) => !isCounted(r));
  if (leftOut.length) {
    const why = leftOut.map(
      (r) => `${r.name} (${r.status === 'finished' ? 'no metrics' : r.interrupted ? 'interrupted' : r.status})`,
    );
    notes.push(`${count(leftOut.length, 'run')} left out because they did not finish with metrics: ${nameList(why)}.`);
  }
  const none = methods.filter((m) => m.n === 0).map((m) => m.method);
  if (none.length) notes.push(`No finished run of ${nameList(none)}: nothing to aggregate there.`);
  const single = methods.filter((m) => m.n === 1).map((m) => m.method);
  if (single.length && single.length === methods.filter((m) => m.n > 0).length) {
    notes.push('n = 1 per method: no confidence interval; one run decides nothing.');
  } else if (single.length) {
    notes.push(`n = 1 for ${nameList(single)}: no confidence interval; one run decides nothing.`);
  }
  const sizes = new Set(methods.filter((m) => m.n > 0).map((m) => m.n));
  if (sizes.size > 1) {
    const counts = methods.filter((m) => m.n > 0).map((m) => `${m.method} ${m.n}`);
    notes.push(`The methods have different numbers of finished runs (${counts.join(', ')}).`);
  }
  const settings = new Map<string, string[]>();
  for (const r of runs)
    if (isCounted(r)) settings.set(r.setting ?? '', [...(settings.get(r.setting ?? '') ?? []), r.name]);
  if (settings.size > 1) {
    const groups = [...settings.values()].map((names) => `(${nameList(names, 3)})`);
    notes.push(
      `The runs come from ${settings.size} settings whose model, tasks, orders, training or evaluation differ: ` +
        `${groups.join(', ')}. Methods are paired only within a setting; each method's mean pools all of them.`,
    );
  }
  // The same cell twice (a rerun of one setting, order and seed, reported beside the first): the same training
  // counted twice narrows every interval without adding evidence.
  const cells = new Map<string, string[]>();
  for (const r of runs) {
    const key = cellKey(r);
    if (key != null && isCounted(r))
      cells.set(`${r.method}|${key}`, [...(cells.get(`${r.method}|${key}`) ?? []), r.name]);
  }
  const repeated = [...cells.values()].filter((names) => names.length > 1);
  if (repeated.length) {
    notes.push(
      `${count(repeated.length, 'cell')} of one method, setting, order and seed ${repeated.length === 1 ? 'was' : 'were'} ` +
        `run more than once (${nameList(
          repeated.map((names) => names.join(' = ')),
          3,
        )}): each repeat counts as another ` +
        'run in the means and narrows their intervals without new evidence; report one experiment folder per setting.',
    );
  }
  const foreign = runs.filter((r) => isCounted(r) && r.tasks.some((t) => !tasks.includes(t)));
  if (foreign.length) {
    notes.push(
      `${count(foreign.length, 'run')} trained tasks outside the experiment's (${tasks.join(', ')}): ` +
        `${nameList(foreign.map((r) => r.name))}; their metrics are aggregated, their other tasks stay out of the matrix.`,
    );
  }

  const comparisons: MethodComparison[] = [];
  if (baseline != null) {
    const weak = new Map<number, number>();
    for (const m of methodNames) {
      if (m === baseline) continue;
      const { comparison, unpaired } = compare(runs, m, baseline, opts.signFlip);
      comparisons.push(comparison);
      const pairsN = Math.max(...METRIC_NAMES.map((k) => comparison.metrics[k].n));
      if (pairsN === 0) {
        notes.push(`${m} and ${baseline} share no (order, seed) cell that both finished: no paired comparison.`);
      }
      if (unpaired.length) {
        notes.push(
          `${m} against ${baseline}: ${count(unpaired.length, 'finished run')} without a partner of the same ` +
            `(order, seed), left out of this comparison: ${nameList(unpaired.map((r) => r.name))}.`,
        );
      }
      for (const k of METRIC_NAMES) {
        const d = comparison.metrics[k];
        if (d.n > 0 && d.minP != null && d.minP >= 0.05) weak.set(d.n, d.minP);
      }
    }
    for (const [n, minP] of [...weak].sort(([x], [y]) => x - y)) {
      notes.push(
        `With ${count(n, 'pair')} the sign-flip test cannot reach p < 0.05 (smallest p = ${fmtP(minP)}); run more seeds or orders.`,
      );
    }
  }
  const selection = selectOnValidation(runs, methods, opts.signFlip);
  return { tasks, methods, baseline, comparisons, selection, notes };
}
