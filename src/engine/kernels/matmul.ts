/**
 * Matrix products that stay fast on every backend.
 *
 * The wasm backend's matmul kernel is fast only for the plain layout: with transposeA or transposeB it reads
 * one operand with a large stride and runs about ten times slower (measured: a 1008 x 4096 x 128 head gradient
 * took 1.1 s transposed against 30 ms plain). Autodiff of a matmul always produces transposed products (dA =
 * dY Bᵀ, dB = Aᵀ dY). On wasm the operands are therefore transposed explicitly (a copy, linear in size) and the
 * product and its gradient use only the plain layout. Other backends, and wasm while its products run on a
 * native BLAS (blas-matmul.ts, which takes the transposes as flags), get tfjs's own matmul unchanged.
 */
import { tf } from '../tf';
import { blasProducts } from './blas-matmul';
import { columnSum } from './webgpu/column-sum';
import { useFused } from './webgpu/switches';

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
export function matMul(
  a: tf.Tensor,
  b: tf.Tensor,
  transposeA = false,
  transposeB = false,
  bias?: tf.Tensor,
): tf.Tensor {
  if (bias && a.rank === 2 && b.rank === 2 && bias.rank === 1 && useFused('bias'))
    return biasedProduct(a as tf.Tensor2D, b as tf.Tensor2D, transposeA, transposeB, bias as tf.Tensor1D);
  if (tf.getBackend() !== 'wasm' || blasProducts() || !sameBatch(a, b)) {
    if (bias) return tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA, transposeB, bias });
    return tf.matMul(a, b, transposeA, transposeB);
  }
  const y = plainProduct(transposeA ? swap(a) : a, transposeB ? swap(b) : b);
  return bias ? y.add(bias) : y;
}

/**
 * op(a) op(b) + bias on webgpu: tfjs's fused product forward; backward, the bias gradient is a column-sum
 * kernel (tfjs would transpose dy and reduce it) and the operand gradients are tfjs's own formulas.
 */
function biasedProduct(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  transposeA: boolean,
  transposeB: boolean,
  bias: tf.Tensor1D,
): tf.Tensor2D {
  const f = tf.customGrad(((x: tf.Tensor2D, w: tf.Tensor2D, c: tf.Tensor1D, save: tf.GradSaveFunc) => {
    save([x, w]);
    return {
      value: tf.fused.matMul({ a: x, b: w, transposeA, transposeB, bias: c }),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const g = dy as tf.Tensor2D;
        const [sx, sw] = saved as tf.Tensor2D[];
        let dx: tf.Tensor;
        let dw: tf.Tensor;
        if (!transposeA && !transposeB) [dx, dw] = [tf.matMul(g, sw, false, true), tf.matMul(sx, g, true, false)];
        else if (!transposeA) [dx, dw] = [tf.matMul(g, sw), tf.matMul(g, sx, true, false)];
        else if (!transposeB) [dx, dw] = [tf.matMul(sw, g, false, true), tf.matMul(sx, g)];
        else [dx, dw] = [tf.matMul(sw, g, true, true), tf.matMul(g, sx, true, true)];
        return [dx, dw, columnSum(g)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => tf.Tensor;
  return f(a, b, bias) as tf.Tensor2D;
}
