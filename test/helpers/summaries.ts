// Run summaries built by hand for the aggregate and report tests: a grid of methods × task orders × seeds whose
// accuracies are a known function of (method, order, seed, trained task name, evaluated task name).
import { emptySummary, finishSummary, type RunSummary } from '../../src/runs/fold';

export const TASKS = ['alpha', 'beta', 'gamma'];
/** The grid's task orders: order 0 is the experiment's own, order 1 a rotation. */
export const ORDERS = [TASKS, ['gamma', 'alpha', 'beta']];

/** Accuracy on task `on` after training task `after`, for seqft; other methods shift it (see `shift`). */
export const BASE: Record<string, Record<string, number>> = {
  alpha: { alpha: 80, beta: 30, gamma: 20 },
  beta: { alpha: 60, beta: 85, gamma: 25 },
  gamma: { alpha: 50, beta: 70, gamma: 90 },
};
/** The base model's accuracy on each task. */
export const ZERO_SHOT: Record<string, number> = { alpha: 10, beta: 20, gamma: 30 };

/** How much a cell's run differs from the base table: by order and seed alike for every method, plus `lift`. */
export const shift = (order: number, seed: number, lift: number) => order + 0.5 * seed + lift;

/**
 * A finished run of `method` on (order, seed) whose every accuracy is BASE[after][on] + shift(order, seed, lift);
 * its metrics are computed from its matrix, as a log without them would get them.
 */
export function gridRun(method: string, order: number, seed: number, lift = 0, over: Partial<RunSummary> = {}) {
  const tasks = ORDERS[order];
  const s = shift(order, seed, lift);
  return finishSummary({
    ...emptySummary(`${method}-o${order}-s${seed}`),
    method,
    tasks: [...tasks],
    order,
    seed,
    status: 'finished',
    matrix: tasks.map((after) => tasks.map((on) => BASE[after][on] + s)),
    zeroShot: tasks.map((t) => ZERO_SHOT[t]),
    seconds: 12,
    ...over,
  });
}

/** A run that failed during its second task: one row, no metrics from a finish. */
export function failedRun(method: string, order: number, seed: number): RunSummary {
  return {
    ...emptySummary(`${method}-o${order}-s${seed}`),
    method,
    tasks: [...ORDERS[order]],
    order,
    seed,
    status: 'failed',
    error: 'out of memory',
    matrix: [ORDERS[order].map((on) => BASE[ORDERS[order][0]][on])],
  };
}
