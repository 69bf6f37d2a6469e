/**
 * The protected subspace of a weight and the gradient projections of constrained full fine-tuning.
 *
 * At a task boundary each target weight W (m x n) is decomposed; its top-k singular subspace (U_h, V_h)
 * carries what earlier tasks rely on, and later gradients are projected away from it. The projections only
 * use thin products (m x k, k x n): no m x m or n x n projector is ever formed.
 */
import { tf } from '../tf';
// Products with a transposed operand go through matMul: on wasm tfjs's transposed layout is ~10x slower.
import { matMul } from '../kernels/matmul';
import { blasProducts } from '../kernels/blas-matmul';
import { PROJECT_TWO_SIDED } from '../kernels/blas-projection';
import { useWasmFused } from '../kernels/webgpu/switches';
import { svd, svdBatch } from './svd';
import { describeMatrix, type DenseMatrix, type SvdOptions, type SvdPath } from './types';

export interface ProtectedSubspace {
  /** Leading k left singular vectors, m x k, float32 on the active backend. */
  readonly Uh: tf.Tensor2D;
  /** Leading k right singular vectors, n x k. */
  readonly Vh: tf.Tensor2D;
  /** All min(m, n) singular values of W, descending (float64). */
  readonly S: Float64Array;
  readonly path: SvdPath;
}

/** 'two-sided' (default): (I - U Uᵀ) G (I - V Vᵀ). 'paper' (ablation): G - U Uᵀ G V Vᵀ. */
export type ProjectionMode = 'two-sided' | 'paper';

export type WeightInput = tf.Tensor2D | DenseMatrix;

/** Decomposes W and keeps its top-k singular subspace. The caller disposes Uh and Vh. */
export function protectedSubspace(
  W: WeightInput,
  k: number,
  options: Omit<SvdOptions, 'vectors'> = {},
): ProtectedSubspace {
  const a = toDense(W);
  return toSubspace(a, svd(a, { ...options, vectors: checkRank(a, k) }));
}

/** protectedSubspace for many weights at once, over all cores (see svdBatch). */
export async function protectedSubspaces(
  weights: readonly WeightInput[],
  ks: readonly number[],
  options: Omit<SvdOptions, 'vectors'> & { threads?: number } = {},
): Promise<ProtectedSubspace[]> {
  if (ks.length !== weights.length)
    throw new RangeError(`protectedSubspaces: ${weights.length} weights but ${ks.length} ranks`);
  // Read tensors asynchronously: on a GPU backend dataSync() would stall once per weight.
  const mats = await Promise.all(
    weights.map(async (w) => (w instanceof tf.Tensor ? toDense(w, (await w.data()) as Float32Array) : w)),
  );
  const results = await svdBatch(mats, { ...options, vectorsPerMatrix: mats.map((a, i) => checkRank(a, ks[i])) });
  return results.map((r, i) => toSubspace(mats[i], r));
}

/** Projects G (m x n) away from the protected subspace; returns a new tensor, G is left as it is. */
export function projectGradient(
  G: tf.Tensor2D,
  sub: Pick<ProtectedSubspace, 'Uh' | 'Vh'>,
  mode: ProjectionMode = 'two-sided',
): tf.Tensor2D {
  if (mode === 'two-sided') return projectTwoSided(G, sub.Uh, sub.Vh);
  if (mode === 'paper') return projectPaper(G, sub.Uh, sub.Vh);
  throw new RangeError(`unknown projection mode '${String(mode)}' (expected 'two-sided' or 'paper')`);
}

/** (I - Uh Uhᵀ) G (I - Vh Vhᵀ) as P = G - Uh (Uhᵀ G); P - (P Vh) Vhᵀ. */
export function projectTwoSided(G: tf.Tensor2D, Uh: tf.Tensor2D, Vh: tf.Tensor2D): tf.Tensor2D {
  checkShapes(G, Uh, Vh);
  return tf.tidy(() => {
    let P: tf.Tensor2D = G;
    if (Uh.shape[1] > 0) P = tf.sub(P, matMul(Uh, matMul(Uh, P, true, false)));
    if (Vh.shape[1] > 0) P = tf.sub(P, matMul(matMul(P, Vh), Vh, false, true));
    return P === G ? tf.clone(G) : P;
  });
}

/** One matrix of projectTwoSidedMany: X and its subspace, and for an update the weights before the step. */
export interface TwoSidedItem {
  X: tf.Tensor2D;
  Uh: tf.Tensor2D;
  Vh: tf.Tensor2D;
  old?: tf.Tensor2D;
}

/**
 * projectTwoSided of many matrices, or for an item with `old` the re-projected update old + proj(X - old); new
 * tensors, the inputs are left as they are. On the wasm backend with its products on a BLAS this is one kernel
 * call for all of them (kernels/blas-projection.ts; SCULPT_WASM_UNFUSED=projection turns it off), else tf ops per
 * matrix. Items with and without `old` must not be mixed in one call.
 */
export function projectTwoSidedMany(items: readonly TwoSidedItem[]): tf.Tensor2D[] {
  items.forEach(({ X, Uh, Vh, old }) => {
    checkShapes(X, Uh, Vh);
    if (old && (old.shape[0] !== X.shape[0] || old.shape[1] !== X.shape[1]))
      throw new RangeError(`projection: weights before the step [${old.shape}] for an update [${X.shape}]`);
  });
  const update = items.some((it) => it.old);
  if (update && !items.every((it) => it.old)) throw new RangeError('projection: items with and without `old` mixed');
  const fused =
    items.length > 0 &&
    blasProducts() !== null &&
    useWasmFused('projection') &&
    items.every((it) => [it.X, it.Uh, it.Vh, it.old ?? it.X].every((t) => t.dtype === 'float32'));
  if (!fused)
    return items.map(({ X, Uh, Vh, old }) =>
      old
        ? tf.tidy(() => old.add(projectTwoSided(X.sub(old) as tf.Tensor2D, Uh, Vh)) as tf.Tensor2D)
        : projectTwoSided(X, Uh, Vh),
    );
  const inputs: tf.NamedTensorMap = {};
  items.forEach(({ X, Uh, Vh, old }, i) => {
    inputs[`x${i}`] = X;
    inputs[`u${i}`] = Uh;
    inputs[`v${i}`] = Vh;
    if (old) inputs[`old${i}`] = old;
  });
  const attrs = { count: items.length, update };
  return tf.engine().runKernel(PROJECT_TWO_SIDED, inputs, attrs as never) as unknown as tf.Tensor2D[];
}

/** The formula printed in the paper, G - Uh (Uhᵀ G Vh) Vhᵀ: removes only the high-high block. */
export function projectPaper(G: tf.Tensor2D, Uh: tf.Tensor2D, Vh: tf.Tensor2D): tf.Tensor2D {
  checkShapes(G, Uh, Vh);
  return tf.tidy(() => {
    if (Uh.shape[1] === 0 || Vh.shape[1] === 0) return tf.clone(G);
    const core = matMul(matMul(Uh, G, true, false), Vh); // k x k
    return tf.sub(G, matMul(matMul(Uh, core), Vh, false, true));
  });
}

function toDense(W: WeightInput, values?: Float32Array): DenseMatrix {
  if (W instanceof tf.Tensor) {
    if (W.rank !== 2)
      throw new RangeError(`protected subspace: expected a 2-D weight, got shape [${W.shape.join(', ')}]`);
    // The synchronous read serves `protectedSubspace` only (tests, tools); the run path goes through
    // `protectedSubspaces`, which reads asynchronously and passes `values` (webgpu has no synchronous readback in Node).
    return { rows: W.shape[0], cols: W.shape[1], data: values ?? (W.dataSync() as Float32Array) };
  }
  return W;
}

function checkRank(a: DenseMatrix, k: number): number {
  const r = Math.min(a.rows, a.cols);
  if (!Number.isInteger(k) || k < 0 || k > r) {
    throw new RangeError(
      `protected subspace of ${describeMatrix(a.rows, a.cols, a.name)}: expected 0 <= k <= ${r}, got ${k}`,
    );
  }
  return k;
}

function toSubspace(
  a: DenseMatrix,
  r: { U: Float64Array; V: Float64Array; S: Float64Array; k: number; path: SvdPath },
): ProtectedSubspace {
  return {
    Uh: tf.tensor2d(Float32Array.from(r.U), [a.rows, r.k]),
    Vh: tf.tensor2d(Float32Array.from(r.V), [a.cols, r.k]),
    S: r.S,
    path: r.path,
  };
}

function checkShapes(G: tf.Tensor2D, Uh: tf.Tensor2D, Vh: tf.Tensor2D): void {
  const [m, n] = G.shape;
  if (G.rank !== 2 || Uh.rank !== 2 || Vh.rank !== 2 || Uh.shape[0] !== m || Vh.shape[0] !== n) {
    throw new RangeError(
      `projection: gradient [${G.shape.join(', ')}] needs Uh [${m}, k] and Vh [${n}, k], got Uh [${Uh.shape.join(', ')}] and Vh [${Vh.shape.join(', ')}]`,
    );
  }
}
