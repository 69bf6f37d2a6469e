/**
 * T5 attention pieces: relative position buckets (Raffel et al. 2020, §2.1), the additive masks, and the
 * unscaled dot-product attention itself (T5 folds 1/sqrt(d_kv) into the initialisation of q).
 */
import { tf } from '../tf';
import { matMul } from '../kernels/matmul';
import { embedding } from './layers';
import { MASKED } from '../kernels/masked';

/**
 * HF `T5Attention._relative_position_bucket` for one relative position (key - query). Half the buckets hold
 * exact small distances, the rest cover distances up to `maxDistance` logarithmically. The logarithm is taken
 * in float32 as torch takes it, so bucket edges fall where the reference puts them.
 */
export function relativePositionBucket(
  relative: number,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
): number {
  const f = Math.fround;
  let buckets = numBuckets;
  let offset = 0;
  let distance: number;
  if (bidirectional) {
    buckets = Math.floor(buckets / 2);
    if (relative > 0) offset = buckets;
    distance = Math.abs(relative);
  } else {
    distance = -Math.min(relative, 0);
  }
  const maxExact = Math.floor(buckets / 2);
  if (distance < maxExact) return offset + distance;
  const logRatio = f(Math.log(f(distance / maxExact)));
  const scaled = f(f(logRatio / f(Math.log(maxDistance / maxExact))) * (buckets - maxExact));
  return offset + Math.min(maxExact + Math.trunc(scaled), buckets - 1);
}

export interface BucketSpec {
  bidirectional: boolean;
  numBuckets: number;
  maxDistance: number;
}

/** Bucket ids [T·Tk] for queries at positions past..past+T-1 and keys at 0..Tk-1. */
function bucketTable(T: number, Tk: number, past: number, spec: BucketSpec): Int32Array {
  const out = new Int32Array(T * Tk);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < Tk; j++)
      out[i * Tk + j] = relativePositionBucket(j - (past + i), spec.bidirectional, spec.numBuckets, spec.maxDistance);
  }
  return out;
}

/**
 * The learned position bias [1, H, T, Tk] from `relative_attention_bias.weight` [numBuckets, H]. Computed
 * once per stack and forward (only block 0 owns the table; HF hands its bias on to the other blocks).
 */
export function positionBias(table: tf.Tensor, T: number, Tk: number, past: number, spec: BucketSpec): tf.Tensor4D {
  const H = table.shape[1]!;
  const ids = tf.tensor1d(bucketTable(T, Tk, past, spec), 'int32');
  return embedding(table, ids).reshape([T, Tk, H]).transpose([2, 0, 1]).reshape([1, H, T, Tk]);
}

/** Padding mask [B, Tk] (1 = token) as an additive bias [B, 1, 1, Tk]. */
export function paddingBias(mask: tf.Tensor2D): tf.Tensor4D {
  const [B, Tk] = mask.shape;
  return tf.scalar(1).sub(mask.toFloat()).mul(MASKED).reshape([B, 1, 1, Tk]);
}

/** Causal bias [1, 1, T, past+T]: query past+i sees keys 0..past+i. */
export function causalBias(T: number, past: number): tf.Tensor4D {
  const Tk = past + T;
  const data = new Float32Array(T * Tk);
  for (let i = 0; i < T; i++) data.fill(MASKED, i * Tk + past + i + 1, (i + 1) * Tk);
  return tf.tensor4d(data, [1, 1, T, Tk]);
}

/** Sum of the biases that are present (null when none is). */
export function addBiases(...parts: (tf.Tensor | null)[]): tf.Tensor | null {
  const present = parts.filter((p): p is tf.Tensor => p !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a.add(b));
}

/** [B·T, H·hd] -> [B, H, T, hd]. */
export function splitHeads(x: tf.Tensor2D, B: number, T: number, H: number): tf.Tensor4D {
  const hd = x.shape[1] / H;
  return x.reshape([B, T, H, hd]).transpose([0, 2, 1, 3]);
}

/** softmax(q kᵀ + bias) v for q [B,H,T,hd], k/v [B,H,Tk,hd]; returns [B·T, H·hd]. No 1/sqrt(d) scaling. */
export function attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor | null): tf.Tensor2D {
  const [B, H, T, hd] = q.shape;
  let scores = matMul(q, k, false, true);
  if (bias) scores = scores.add(bias);
  const out = matMul(tf.softmax(scores), v);
  return out.transpose([0, 2, 1, 3]).reshape([B * T, H * hd]);
}

/**
 * Row indices (into B·T) where `keep` holds for `mask` [B, T] (default: nonzero). Reads the mask synchronously
 * (capture only): callers pass a tensor built from JS values before its first use, whose values webgpu still
 * holds on the CPU (Node has no synchronous readback from the GPU).
 */
export function maskedRows(mask: tf.Tensor2D, keep: (v: number) => boolean = (v) => v !== 0): tf.Tensor1D {
  const m = mask.dataSync();
  const rows: number[] = [];
  for (let i = 0; i < m.length; i++) if (keep(m[i])) rows.push(i);
  return tf.tensor1d(rows, 'int32');
}
