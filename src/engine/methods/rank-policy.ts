/**
 * How many singular directions of each target matrix adaptive SVD protects (k), from the rank policy:
 *
 *   adaptive  I = importance of the matrix, I_n = I / mean(I) (paper) or (I - min) / (max - min) (bounded),
 *             ratio = mrr + I_n (trr - mrr), k = clamp(round(ratio * min_dim), 1, min_dim)
 *   fixed     k = floor(ratio * min_dim) (the default ratio is PEFT's OSF's), or a given k
 *   schedule  ratio_t = min(max, start + step * t) at the t-th boundary, k as for adaptive
 *
 * Importance, per matrix (the paper): mean over calibration tokens of cos(x[:m], (W x)[:m]), m = min(d_in,
 * d_out), x the matrix's input activation. Per block (AdaSVD): mean cosine between the block's input and output
 * hidden states, shared by all matrices of the block.
 */
import { addMany, tf } from '../tf';
import { matMul } from '../kernels/matmul';
import type { ResolvedRankPolicy } from '../../protocol/config-resolved';
import { ConfigError } from '../../protocol/errors';
import type { CausalLM, CaptureHooks } from '../models/types';
import { isSeq2Seq } from '../models/types';
import type { BatchTensors } from './method';

export interface ConstrainedMatrix {
  /** HF key of the weight. */
  name: string;
  layer: number;
  role: string;
  /** Shape as stored. */
  shape: [number, number];
  dIn: number;
  dOut: number;
  /** 'in_out' (GPT-2 Conv1D): y = x W; 'out_in' (nn.Linear): y = x Wᵀ. */
  orientation: 'in_out' | 'out_in';
}

export interface RankChoice {
  k: number;
  ratio: number;
  importance?: number;
}

export interface RankDecision {
  choices: RankChoice[];
  warnings: string[];
}

export const minDim = (m: ConstrainedMatrix): number => Math.min(m.dIn, m.dOut);

const clampK = (ratio: number, d: number): number => Math.min(d, Math.max(1, Math.round(ratio * d)));

/**
 * Importance of every matrix (per matrix or per block) over calibration batches: the mean over the rows the
 * matrix (block) saw. Rows are counted where they are seen, since an encoder-decoder model's encoder and
 * decoder matrices see different tokens (encoder inputs, decoder target positions).
 */
export async function importances(
  model: CausalLM,
  targets: ConstrainedMatrix[],
  batches: BatchTensors[],
  mode: 'matrix' | 'block',
): Promise<number[]> {
  const byName = new Map(targets.map((t, i) => [t.name, i]));
  const slots = mode === 'matrix' ? targets.length : model.config.numLayers;
  const sums: tf.Scalar[][] = Array.from({ length: slots }, () => []);
  const rows = new Array<number>(slots).fill(0);
  const rowCosSum = (a: tf.Tensor2D, b: tf.Tensor2D): tf.Scalar => {
    const dot = a.mul(b).sum(1);
    const norms = a.norm('euclidean', 1).mul(b.norm('euclidean', 1)).maximum(1e-12);
    return dot.div(norms).sum() as tf.Scalar;
  };
  const hooks: CaptureHooks =
    mode === 'matrix'
      ? {
          matrix: (name, x) => {
            const i = byName.get(name);
            if (i === undefined) return;
            const t = targets[i];
            const W = model.params.get(name)!;
            const m = minDim(t);
            rows[i] += x.shape[0];
            sums[i].push(
              tf.keep(
                tf.tidy(() => {
                  const y = t.orientation === 'in_out' ? matMul(x, W) : matMul(x, W, false, true);
                  return rowCosSum(x.slice([0, 0], [-1, m]), y.slice([0, 0], [-1, m]) as tf.Tensor2D);
                }),
              ),
            );
          },
        }
      : {
          block: (layer, input, output) => {
            rows[layer] += input.shape[0];
            sums[layer].push(tf.keep(tf.tidy(() => rowCosSum(input, output))));
          },
        };
  for (const b of batches) {
    tf.tidy(() => {
      if (isSeq2Seq(model)) model.labelLogits(b.inputIds, b.labels, b.mask, hooks).dispose();
      else model.hidden(b.inputIds, b.mask, hooks).dispose();
    });
  }
  // One asynchronous read for all sums: webgpu has no synchronous readback in Node.
  const stacked = slots
    ? tf.tidy(() => tf.stack(sums.map((list) => (list.length ? addMany(list) : tf.scalar(0)))))
    : null;
  const values = stacked ? await stacked.data() : new Float32Array(0);
  tf.dispose([...(stacked ? [stacked] : []), ...sums.flat()]);
  const totals = sums.map((_, i) => values[i] / Math.max(rows[i], 1));
  if (mode === 'matrix') return totals;
  // Matrices outside the blocks (head, embeddings) get the mean block importance.
  const meanBlock = totals.reduce((a, b) => a + b, 0) / Math.max(totals.length, 1);
  return targets.map((t) => (t.layer >= 0 ? totals[t.layer] : meanBlock));
}

/**
 * k for every target. `boundary` counts the task boundaries so far (0 before the first constrained task);
 * `importance` is needed only by the adaptive policy. Option errors name `path` (the policy's JSON path).
 */
export function chooseRanks(
  policy: ResolvedRankPolicy,
  targets: ConstrainedMatrix[],
  boundary: number,
  importance: number[] | null,
  path: string,
): RankDecision {
  const warnings: string[] = [];
  switch (policy.policy) {
    case 'fixed': {
      if (policy.k !== undefined) {
        const k = policy.k;
        const tooBig = targets.find((t) => k > minDim(t));
        if (tooBig) {
          throw new ConfigError([
            {
              path: `${path}.k`,
              message: `k = ${k} exceeds min(d_out, d_in) = ${minDim(tooBig)} of ${tooBig.name}`,
              expected: 'k <= min(d_out, d_in) of every target',
              actual: k,
            },
          ]);
        }
        return { choices: targets.map((t) => ({ k, ratio: k / minDim(t) })), warnings };
      }
      const ratio = policy.ratio;
      return {
        choices: targets.map((t) => ({ k: Math.min(minDim(t), Math.max(1, Math.floor(ratio * minDim(t)))), ratio })),
        warnings,
      };
    }
    case 'schedule': {
      const ratio = Math.min(policy.max, policy.start + policy.step * boundary);
      return { choices: targets.map((t) => ({ k: clampK(ratio, minDim(t)), ratio })), warnings };
    }
    case 'adaptive': {
      if (!importance) throw new Error('adaptive rank policy: importance scores are missing');
      const { mrr, trr } = policy;
      const mean = importance.reduce((a, b) => a + b, 0) / importance.length;
      const lo = Math.min(...importance);
      const hi = Math.max(...importance);
      const paper = policy.normalisation === 'mean';
      const normalised = paper
        ? importance.map((v) => v / mean)
        : importance.map((v) => (hi > lo ? (v - lo) / (hi - lo) : 1));
      if (paper && !(mean > 0)) {
        warnings.push(
          `mean importance is ${mean.toExponential(3)} (<= 0): the paper's I / mean(I) normalisation inverts or explodes the ranks; consider "normalisation": "minmax" or "importance": "block"`,
        );
      }
      const choices = targets.map((t, i) => {
        const ratio = mrr + normalised[i] * (trr - mrr);
        return { k: clampK(ratio, minDim(t)), ratio, importance: importance[i] };
      });
      const clamped = choices.filter((c, i) => c.k === 1 || c.k === minDim(targets[i])).length;
      if (clamped > targets.length / 2) {
        warnings.push(
          `${clamped} of ${targets.length} matrices hit a clamp (k = 1 or k = min_dim): their ranks carry little information about importance`,
        );
      }
      return { choices, warnings };
    }
  }
}

/** σ statistics of a matrix for the `ranks` event. */
export function sigmaStats(
  S: Float64Array,
  k: number,
): { sigmaMax: number; sigmaMin: number; sigmaMean: number; effectiveRank: number; retainedEnergy: number } {
  let sum = 0;
  let energy = 0;
  let kept = 0;
  for (let i = 0; i < S.length; i++) {
    sum += S[i];
    energy += S[i] * S[i];
    if (i < k) kept += S[i] * S[i];
  }
  let entropy = 0;
  for (const s of S) {
    const p = sum > 0 ? s / sum : 0;
    if (p > 0) entropy -= p * Math.log(p);
  }
  return {
    sigmaMax: S[0] ?? 0,
    sigmaMin: S[S.length - 1] ?? 0,
    sigmaMean: S.length ? sum / S.length : 0,
    effectiveRank: Math.exp(entropy),
    retainedEnergy: energy > 0 ? kept / energy : 0,
  };
}
