/**
 * The shape of a repeated comparison: what `aggregateRuns` (./aggregate.ts) makes of the runs of an experiment
 * grid (methods × orders × seeds), and what `sculpt report --json`, the demo summary and the dashboard's
 * experiment view show. Plain JSON (no classes, no undefined), so that it crosses IPC and files as it is.
 */

/** The run metrics that are aggregated and compared. */
export const METRIC_NAMES = ['AA', 'BWT', 'forgetting', 'FWT'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Whether a larger value of the metric is the better one (forgetting: smaller is better). */
export const HIGHER_IS_BETTER: Record<MetricName, boolean> = { AA: true, BWT: true, forgetting: false, FWT: true };

/** Mean, spread and 95% confidence interval of one quantity over runs. */
export interface Estimate {
  /** How many runs gave a value (runs without one, e.g. FWT without a zero-shot row, are left out). */
  n: number;
  /** null when n = 0. */
  mean: number | null;
  /** Sample standard deviation (n - 1 in the denominator); null when n < 2. */
  sd: number | null;
  /** Student-t 95% interval of the mean, [mean - h, mean + h]; null when n < 2 (one run gives no interval). */
  ci95: [number, number] | null;
  /** The values, in the order of the runs they came from. */
  values: number[];
}

/** One cell of the grid, as the aggregate saw it. */
export interface CellRef {
  /** The run's name (its folder's name). */
  name: string;
  method: string;
  /** 0-based order index, null when the log does not say. */
  order: number | null;
  seed: number | null;
  status: string;
  /** Whether the run finished and its metrics were used. */
  counted: boolean;
}

export interface MethodAggregate {
  method: string;
  /** Finished runs whose metrics are aggregated. */
  n: number;
  cells: CellRef[];
  metrics: Record<MetricName, Estimate>;
  /**
   * The same metrics of the runs' validation matrices (accuracy on the validation splits, `eval.validation`), over
   * the counted runs that have one (n = 0 when none has): what settings are chosen on, never the test metrics.
   */
  validationMetrics: Record<MetricName, Estimate>;
  /** Accuracy on each task right after training it (R[i][i]), keyed by task name. */
  justTrained: Record<string, Estimate>;
  /**
   * The accuracy matrix by task name, averaged over runs: cell [a][b] is the accuracy on task `tasks[b]` after
   * training task `tasks[a]` (rows and columns in the experiment's `tasks` order, whatever order each run used).
   */
  matrix: Estimate[][];
  /** Accuracy of the base model on each task, by task name. */
  zeroShot: Record<string, Estimate>;
}

export type Verdict = 'better' | 'worse' | 'not distinguishable at 95%';

/** A method against the baseline on one metric, paired over the (order, seed) cells both finished. */
export interface PairedDifference {
  metric: MetricName;
  /** Number of pairs. */
  n: number;
  /** Mean of (method - baseline); null when n = 0. */
  mean: number | null;
  sd: number | null;
  /** Student-t 95% interval of the mean difference; null when n < 2. */
  ci95: [number, number] | null;
  /** Two-sided p-value of the sign-flip permutation test; null when n = 0. */
  p: number | null;
  /** Whether p was computed by exact enumeration (n <= 16) rather than Monte Carlo. */
  exact: boolean;
  /** The smallest p-value this n can give (2 / 2^n with exact enumeration): below 0.05 only from n = 6 pairs on. */
  minP: number | null;
  verdict: Verdict;
  /** The differences, one per pair, with the pair they came from. */
  pairs: { order: number | null; seed: number | null; diff: number }[];
}

export interface MethodComparison {
  method: string;
  baseline: string;
  metrics: Record<MetricName, PairedDifference>;
}

/** One method's place in the ranking on the validation splits. */
export interface ValidationRank {
  method: string;
  /** Counted runs with a validation matrix. */
  n: number;
  /** Mean validation AA (what ranks). */
  AA: number;
  /** Mean validation BWT (what breaks ties); null when no run has one. */
  BWT: number | null;
}

/**
 * The methods ranked on the validation splits: how a setting (a rank policy, a learning rate, a default) is
 * chosen without looking at the test sets. Mean validation AA, best first; equal means (to 0.05 points, the
 * precision reports show) ordered by validation BWT.
 */
export interface ValidationSelection {
  ranking: ValidationRank[];
  /**
   * The leader against the runner-up on validation AA, paired over the cells both finished (method = leader,
   * baseline = runner-up): whether the choice is clear at 95% or not settled by these runs. Null with one method.
   */
  leaderVsRunnerUp: (PairedDifference & { leader: string; runnerUp: string }) | null;
}

export interface ExperimentAggregate {
  /** Task names in the experiment's order (the first order seen, usually the config's `tasks`). */
  tasks: string[];
  /** Methods in the order first seen. */
  methods: MethodAggregate[];
  /** The method every other is compared with; null when there is none (one method only). */
  baseline: string | null;
  /** One per method other than the baseline. */
  comparisons: MethodComparison[];
  /** The ranking on validation metrics; null when no run has a validation split. */
  selection: ValidationSelection | null;
  /** Plain-language notes a reader must see (n = 1, unequal cells, runs left out). */
  notes: string[];
}
