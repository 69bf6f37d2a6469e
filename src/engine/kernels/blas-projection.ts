/**
 * Adaptive SVD's two-sided projection, (I - Uh Uhᵀ) X (I - Vh Vhᵀ), of every constrained matrix of a step in one
 * kernel on the native BLAS (see blas-matmul.ts). As tf ops each matrix costs four products and two
 * subtractions, six kernel calls, and a step projects every matrix twice (its gradient, then the optimizer's
 * update): 336 kernel calls for the base model's 28 matrices, about a fifth of an answer-only step on two cores.
 * Here each matrix is a chain of four sgemm calls, the subtractions folded into them (alpha -1, beta 1):
 *
 *   T1 = Uhᵀ P        (k1 x n)
 *   P  = P - Uh T1
 *   T2 = P Vh         (m x k2)
 *   P  = P - T2 Vhᵀ
 *
 * and the chains of all matrices run at once on the products' threads, each chain on one thread, so its numbers
 * do not depend on the thread count. P starts as X, or, for an update, as X - old, and the result is then
 * old + P: the post-step re-projection W' = old + proj(W - old) in one call. The difference and the sum are
 * float32 operations as tf's Sub and Add (in the SIMD module, simd/kernels.wat's addScaled, or in TypeScript,
 * where a float64 difference of two float32 values rounds to the same float32).
 *
 * Used on the wasm backend while its products run on a BLAS (projection.ts's projectTwoSidedMany decides);
 * elsewhere, and for the 'paper' ablation, the projection stays tf ops.
 */
import { tf } from '../tf';
import type { GemmJob } from '../linalg/blas';
import { blasProducts } from './blas-matmul';
import { registerHeapKernels, type WasmHeapBackend } from './wasm-heap';
import { simdIfEnabled, type SimdKernels } from './simd/module';

export const PROJECT_TWO_SIDED = 'SculptProjectTwoSided';

interface ProjectAttrs {
  /** Matrices in this call; inputs are x<i>, u<i>, v<i> and, for an update, old<i>. */
  count: number;
  update: boolean;
}

/** Projections this kernel has served in this process (what tests check it by). */
export const blasProjectionServed = { count: 0 };

export function registerBlasProjection(): void {
  registerHeapKernels({
    [PROJECT_TWO_SIDED]: (b, inputs, attrs) => projectMany(b, inputs, attrs as unknown as ProjectAttrs),
  });
}

function projectMany(b: WasmHeapBackend, inputs: tf.NamedTensorInfoMap, attrs: ProjectAttrs): tf.TensorInfo[] {
  const products = blasProducts();
  if (!products) throw new Error(`${PROJECT_TWO_SIDED}: no BLAS in use (projectTwoSidedMany checks first)`);
  const { blas, runner } = products;
  const { count, update } = attrs;
  const input = (name: string): tf.TensorInfo => {
    const t = inputs[name];
    if (!t) throw new Error(`${PROJECT_TWO_SIDED}: input ${name} missing`);
    return t;
  };
  const items = Array.from({ length: count }, (_, i) => ({
    x: input(`x${i}`),
    u: input(`u${i}`),
    v: input(`v${i}`),
    old: update ? input(`old${i}`) : undefined,
  }));
  // Every tensor is made before any address is taken: a heap that grows may move.
  const outs = items.map(({ x }) => b.makeOutput([...x.shape], 'float32'));
  const scratchSize = items.reduce((s, { x, u, v }) => s + u.shape[1] * x.shape[1] + x.shape[0] * v.shape[1], 0);
  const scratch = b.makeOutput([Math.max(1, scratchSize)], 'float32');
  const heap = (t: tf.TensorInfo) => b.typedArrayFromHeap(t) as Float32Array;
  const simd = simdIfEnabled(b);
  const S = blas.address(heap(scratch));
  let free = 0;
  const chains: GemmJob[][] = [];
  items.forEach(({ x, u, v, old }, i) => {
    const [m, n] = x.shape;
    const k1 = u.shape[1];
    const k2 = v.shape[1];
    const p = heap(outs[i]);
    const xs = heap(x);
    if (old) elementwise(simd, xs, heap(old), p, -1);
    else p.set(xs);
    const P = blas.address(p);
    const U = blas.address(heap(u));
    const V = blas.address(heap(v));
    const T1 = S + 4 * free;
    free += k1 * n;
    const T2 = S + 4 * free;
    free += m * k2;
    const chain: GemmJob[] = [];
    if (k1 > 0)
      chain.push(
        { transA: true, transB: false, m: k1, n, k: m, a: U, lda: k1, b: P, ldb: n, beta: 0, c: T1, ldc: n },
        { transA: false, transB: false, m, n, k: k1, a: U, lda: k1, b: T1, ldb: n, alpha: -1, beta: 1, c: P, ldc: n },
      );
    if (k2 > 0)
      chain.push(
        { transA: false, transB: false, m, n: k2, k: n, a: P, lda: n, b: V, ldb: k2, beta: 0, c: T2, ldc: k2 },
        { transA: false, transB: true, m, n, k: k2, a: T2, lda: k2, b: V, ldb: k2, alpha: -1, beta: 1, c: P, ldc: n },
      );
    if (chain.length) chains.push(chain);
  });
  runner.runChains(chains);
  items.forEach(({ old }, i) => {
    if (old) elementwise(simd, heap(old), heap(outs[i]), heap(outs[i]), 1);
  });
  b.disposeData(scratch.dataId, true);
  blasProjectionServed.count += count;
  return outs;
}

/** out = a + s b (s = 1 or -1) in float32, in the SIMD module where the length fits its lanes. */
function elementwise(simd: SimdKernels | null, a: Float32Array, b: Float32Array, out: Float32Array, s: 1 | -1): void {
  if (simd && a.length % 4 === 0) return simd.addScaled(a.byteOffset, b.byteOffset, out.byteOffset, a.length, s);
  if (s === 1) for (let e = 0; e < a.length; e++) out[e] = a[e] + b[e];
  else for (let e = 0; e < a.length; e++) out[e] = a[e] - b[e];
}
