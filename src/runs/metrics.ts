/**
 * Continual-learning metrics from the accuracy matrix R (percent), R[i][j] = accuracy on task j after training
 * task i (0-based here; METHOD.md writes them 1-based). Rows may be partial: after task t only rows 0..t exist.
 *
 *   OP_t  = (1/(t+1)) Σ_{j<=t} R[t][j]                       (AA is OP after the last task)
 *   BWT   = (1/t) Σ_{j<t} (R[t][j] - R[j][j])                  negative = forgetting
 *   F     = (1/t) Σ_{j<t} (max_{l<t} R[l][j] - R[t][j])        Chaudhry et al.; max over rows before t
 *   FWT   = (1/t) Σ_{1<=j<=t} (R[j-1][j] - b_j)                GEM; b_j = base model accuracy on task j
 * with t the index of the last trained task. BWT, F and FWT need t >= 1; FWT also needs b.
 */
import type { EventBase, Metrics, RunFinishedEvent } from '../protocol/events';

export type AccuracyMatrix = number[][];

export function averageAccuracy(R: AccuracyMatrix, t = R.length - 1): number {
  let s = 0;
  for (let j = 0; j <= t; j++) s += R[t][j];
  return s / (t + 1);
}

export function backwardTransfer(R: AccuracyMatrix, t = R.length - 1): number | null {
  if (t < 1) return null;
  let s = 0;
  for (let j = 0; j < t; j++) s += R[t][j] - R[j][j];
  return s / t;
}

export function forgetting(R: AccuracyMatrix, t = R.length - 1): number | null {
  if (t < 1) return null;
  let s = 0;
  for (let j = 0; j < t; j++) {
    let best = -Infinity;
    for (let l = j; l < t; l++) best = Math.max(best, R[l][j]);
    s += best - R[t][j];
  }
  return s / t;
}

export function forwardTransfer(
  R: AccuracyMatrix,
  zeroShot: (number | null)[] | null,
  t = R.length - 1,
): number | null {
  if (t < 1 || !zeroShot) return null;
  let s = 0;
  for (let j = 1; j <= t; j++) {
    const b = zeroShot[j];
    if (b == null) return null;
    s += R[j - 1][j] - b;
  }
  return s / t;
}

/** All metrics after task t (default: the last row of R). */
export function metricsAfter(R: AccuracyMatrix, zeroShot: (number | null)[] | null, t = R.length - 1): Metrics {
  return {
    AA: averageAccuracy(R, t),
    BWT: backwardTransfer(R, t),
    forgetting: forgetting(R, t),
    FWT: forwardTransfer(R, zeroShot, t),
  };
}

/** The matrices a run ends with: R, and V when the run has validation splits (null otherwise). */
export interface FinalMatrices {
  matrix: AccuracyMatrix;
  zeroShot: (number | null)[] | null;
  validationMatrix: AccuracyMatrix | null;
  validationZeroShot: (number | null)[] | null;
}

/** The body of a `run-finished` event, the same for every engine: the matrices and their metrics. */
export function runFinishedBody(m: FinalMatrices, seconds: number): Omit<RunFinishedEvent, keyof EventBase> {
  return {
    type: 'run-finished',
    matrix: m.matrix,
    zeroShot: m.zeroShot,
    metrics: metricsAfter(m.matrix, m.zeroShot),
    ...(m.validationMatrix
      ? {
          validationMatrix: m.validationMatrix,
          validationZeroShot: m.validationZeroShot,
          validationMetrics: metricsAfter(m.validationMatrix, m.validationZeroShot),
        }
      : {}),
    seconds,
  };
}
