/**
 * How many singular directions of each target matrix adaptive SVD protects (k), from the rank policy; for a
 * matrix of min_dim = min(d_out, d_in), max_dim = max(d_out, d_in), at the t-th protected boundary (t = 0 first):
 *
 *   adaptive          I = importance of the matrix, I_n = I / mean(I) (paper) or (I - min) / (max - min) (bounded),
 *                     ratio = mrr + I_n (trr - mrr), k = clamp(round(ratio * min_dim), 1, min_dim)
 *   fixed             k = clamp(floor(ratio * min_dim), 1, min_dim) (the default ratio is PEFT's OSF's), a given k,
 *                     or PEFT's effective_rank / rank_pattern r: clamp(r, 1, min_dim) for an integer r,
 *                     clamp(floor(r * min_dim), 1, min_dim) for a fraction; the first matching pattern wins
 *   schedule          ratio_t = min(max, start + step * t), k as for adaptive
 *   authors-schedule  f_t = start + step * t, k = clamp(floor(f_t * max_dim), 1, min_dim)
 *   energy            τ_t = min(maxThreshold, threshold + thresholdStep * t),
 *                     k = min { k >= 1 : Σ_{i<=k} σ_i² / Σ_i σ_i² >= τ_t } (needs the boundary's singular values)
 *
 * A k that the formula puts outside [1, min_dim] is clamped into it and its choice marked `clamped`.
 *
 * Importance, per matrix (the paper): mean over calibration tokens of cos(x[:m], (W x)[:m]), m = min(d_in,
 * d_out), x the matrix's input activation. Per block (AdaSVD): mean cosine between the block's input and output
 * hidden states, shared by all matrices of the block.
 */
import { addMany, tf } from '../tf';
import { matMul } from '../kernels/matmul';
import type { ResolvedFixedRankPolicy, ResolvedRankPolicy } from '../../protocol/config-resolved';
import { ConfigError } from '../../protocol/errors';
import type { CausalLM, CaptureHooks } from '../models/types';
import { isSeq2Seq } from '../models/types';
import type { BatchTensors } from './method';
import {
  compileRankPattern,
  firstMatch,
  fixedKIssues,
  maxDim,
  minDim,
  moduleName,
  rankPatternIssues,
  resolveRank,
  type ConstrainedMatrix,
} from './rank-pattern';

export { minDim, type ConstrainedMatrix } from './rank-pattern';

export interface RankChoice {
  k: number;
  ratio: number;
  importance?: number;
  /** The policy's formula put k outside [1, min_dim]; k is the clamped value. Absent when it did not. */
  clamped?: true;
}

export interface RankDecision {
  choices: RankChoice[];
  warnings: string[];
}

/** The choice for a requested (unclamped) rank `raw` of a matrix of min_dim d: k = clamp(raw, 1, d). */
function choice(raw: number, d: number, ratio: number, extra: Partial<RankChoice> = {}): RankChoice {
  const k = Math.min(d, Math.max(1, raw));
  return { k, ratio, ...extra, ...(k !== raw ? { clamped: true as const } : {}) };
}

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
 * `importance` is needed only by the adaptive policy, `spectra` (each matrix's singular values, descending) only
 * by the energy policy. Option errors name `path` (the policy's JSON path).
 */
export function chooseRanks(
  policy: ResolvedRankPolicy,
  targets: ConstrainedMatrix[],
  boundary: number,
  importance: number[] | null,
  path: string,
  spectra: readonly Float64Array[] | null = null,
): RankDecision {
  const warnings: string[] = [];
  switch (policy.policy) {
    case 'fixed':
      return fixedRanks(policy, targets, path);
    case 'schedule': {
      const ratio = Math.min(policy.max, policy.start + policy.step * boundary);
      return {
        choices: targets.map((t) => choice(Math.round(ratio * minDim(t)), minDim(t), ratio)),
        warnings,
      };
    }
    case 'authors-schedule': {
      const f = policy.start + policy.step * boundary;
      const choices = targets.map((t) => choice(Math.floor(f * maxDim(t)), minDim(t), f));
      const whole = targets.filter((t, i) => choices[i].clamped && choices[i].k === minDim(t));
      if (whole.length) {
        warnings.push(
          `f = ${round4(f)} of max(d_out, d_in) reaches min(d_out, d_in) in ${whole.length} of ${targets.length} matrices (e.g. ${moduleName(whole[0].name)}): k is capped there and the whole matrix is protected, so it cannot learn`,
        );
      }
      return { choices, warnings };
    }
    case 'energy': {
      if (!spectra) throw new Error('energy rank policy: singular values are missing');
      const tau = Math.min(policy.maxThreshold, policy.threshold + policy.thresholdStep * boundary);
      return {
        choices: targets.map((t, i) => {
          const k = energyRank(spectra[i], tau);
          return { k, ratio: k / minDim(t) };
        }),
        warnings,
      };
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
        return choice(Math.round(ratio * minDim(t)), minDim(t), ratio, { importance: importance[i] });
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

const round4 = (v: number): number => Math.round(v * 1e4) / 1e4;

/**
 * The smallest k >= 1 with Σ_{i<=k} σ_i² >= τ Σ_i σ_i², summed in the order sigmaStats sums, so that the
 * retained energy the ranks event reports for this k is at least τ. A zero matrix gets k = 1.
 */
export function energyRank(S: Float64Array, tau: number): number {
  let total = 0;
  for (let i = 0; i < S.length; i++) total += S[i] * S[i];
  if (!(total > 0)) return Math.min(1, S.length);
  let kept = 0;
  for (let i = 0; i < S.length; i++) {
    kept += S[i] * S[i];
    if (kept / total >= tau) return i + 1;
  }
  return S.length;
}

/**
 * The fixed policy. The default rank (ratio, k or effectiveRank) applies to every matrix that no rankPattern
 * entry matches; the first matching entry decides the others. Integer ranks outside [1, min_dim] are clamped
 * and warned about, one warning per option; a k above a matrix's min_dim is an error, as it always was.
 */
function fixedRanks(policy: ResolvedFixedRankPolicy, targets: ConstrainedMatrix[], path: string): RankDecision {
  const warnings: string[] = [];
  const { patterns, invalid } = compileRankPattern(policy.rankPattern);
  if (invalid.length) throw new ConfigError(rankPatternIssues(policy, targets, path));
  const matched = targets.map((t) => firstMatch(patterns, t.name));
  const tooBig = fixedKIssues(policy, targets, path);
  if (tooBig.length) throw new ConfigError(tooBig);
  // Integer requests above min_dim, per option, for one warning each.
  const over = new Map<string, { value: number; names: string[] }>();
  const choices = targets.map((t, i): RankChoice => {
    const d = minDim(t);
    const m = matched[i];
    if (!m && policy.k !== undefined) return { k: policy.k, ratio: policy.k / d };
    if (!m && policy.ratio !== undefined) return choice(Math.floor(policy.ratio * d), d, policy.ratio);
    const value = m ? m.value : policy.effectiveRank!;
    const r = resolveRank(value, d);
    if (!r.fraction && r.raw > d) {
      const option = m ? `rankPattern[${JSON.stringify(m.source)}]` : 'effectiveRank';
      const entry = over.get(option) ?? { value, names: [] };
      entry.names.push(t.name);
      over.set(option, entry);
    }
    return choice(r.raw, d, r.fraction ? value : r.k / d);
  });
  for (const [option, { value, names }] of over) {
    warnings.push(
      `${option} = ${value} exceeds min(d_out, d_in) of ${names.length} of ${targets.length} matrices (e.g. ${moduleName(names[0])}): k is clamped to min(d_out, d_in) there`,
    );
  }
  return { choices, warnings };
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
