/**
 * Matrix products that stay fast on every backend.
 *
 * The wasm backend's matmul kernel is fast only for the plain layout: with transposeA or transposeB it reads
 * one operand with a large stride and runs about ten times slower (measured: a 1008 x 4096 x 128 head gradient
 * took 1.1 s transposed against 30 ms plain). Autodiff of a matmul always produces transposed products (dA =
 * dY Bᵀ, dB = Aᵀ dY). On wasm the operands are therefore transposed explicitly (a copy, linear in size) and the
 * product and its gradient use only the plain layout. Other backends get tfjs's own matmul unchanged.
 */
import { tf } from '../tf';

/** Swaps the last two axes. */
function swap(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(t, perm);
}

/** A B for same-rank operands with equal batch axes, whose gradient uses plain-layout products only. */
const plainProduct = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const g = dy as tf.Tensor;
      const [sa, sb] = saved;
      return [tf.matMul(g, swap(sb)), tf.matMul(swap(sa), g)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

function sameBatch(a: tf.Tensor, b: tf.Tensor): boolean {
  return a.rank === b.rank && a.rank >= 2 && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
}

/** op(a) op(b) (+ bias), op = transpose when asked. */
export function matMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false, bias?: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== 'wasm' || !sameBatch(a, b)) {
    if (bias) return tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA, transposeB, bias });
    return tf.matMul(a, b, transposeA, transposeB);
  }
  const y = plainProduct(transposeA ? swap(a) : a, transposeB ? swap(b) : b);
  return bias ? y.add(bias) : y;
}
