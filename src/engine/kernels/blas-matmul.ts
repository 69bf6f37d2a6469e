/**
 * The wasm backend's matrix products on a native BLAS (see linalg/blas.ts): BatchMatMul and _FusedMatMul are
 * re-registered for `wasm` with kernels that call sgemm on the operands where they lie in the wasm heap, with
 * transposes passed as the call's flags. Whatever this kernel does not take (other dtypes, activations, batch
 * shapes that are neither equal nor 1) goes to tfjs's own kernel, as does every product while no BLAS is in use,
 * so switching is a flag, not a re-registration.
 *
 * A product is cut into sgemm calls by its shape alone: one per matrix of a batch, and a large single matrix
 * into row (or column) blocks. The calls then run on however many threads there are (linalg/blas-pool.ts)
 * and every element is computed the same way whatever that number is.
 */
import { tf } from '../tf';
import type { Blas, GemmJob } from '../linalg/blas';
import type { GemmRunner } from '../linalg/blas-pool';
import { takeWasmKernel, type WasmHeapBackend } from './wasm-heap';

interface ProductAttrs {
  transposeA: boolean;
  transposeB: boolean;
  activation?: string;
}

interface ProductInputs {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  bias?: tf.TensorInfo;
  preluActivationWeights?: tf.TensorInfo;
}

/** The library and the threads that run its calls. */
export interface BlasProducts {
  readonly blas: Blas;
  readonly runner: GemmRunner;
}

let active: BlasProducts | null = null;

/** Routes the wasm backend's products to a BLAS, or back to tfjs's wasm kernels with null. */
export function useBlasProducts(products: BlasProducts | null): void {
  for (const kernelName of [tf.BatchMatMul, tf._FusedMatMul])
    takeWasmKernel(kernelName, (args) => (active ? blasProduct(active, args as never) : null));
  active = products;
}

/** What the wasm backend's products run on now, if not its own kernels. */
export function blasProducts(): BlasProducts | null {
  return active;
}

const size = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

/** Below this a product is one call: handing a piece to another thread costs more than it saves. */
const BLOCK_FLOPS = 1 << 22;
const MAX_BLOCKS = 8;
/** Block edges on multiples of this many rows or columns (the sgemm kernels' register tiles divide it). */
const BLOCK_ALIGN = 16;

/** op(a) op(b) (+ bias) through sgemm; null when this kernel does not take the case. */
function blasProduct(
  { blas, runner }: BlasProducts,
  { inputs, backend, attrs }: { inputs: ProductInputs; backend: WasmHeapBackend; attrs: ProductAttrs },
): tf.TensorInfo | null {
  const { a, b, bias, preluActivationWeights } = inputs;
  const { transposeA, transposeB } = attrs;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || preluActivationWeights) return null;
  if (attrs.activation !== undefined && attrs.activation !== 'linear') return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const m = a.shape[transposeA ? ra - 1 : ra - 2];
  const k = a.shape[transposeA ? ra - 2 : ra - 1];
  const n = b.shape[transposeB ? rb - 2 : rb - 1];
  if (b.shape[transposeB ? rb - 1 : rb - 2] !== k) return null; // tfjs's kernel reports the mismatch
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = Math.max(batchA, batchB);
  if (size(outBatch) !== batch) return null;
  if (bias && (bias.dtype !== 'float32' || size(bias.shape) !== n)) return null;

  const out = backend.makeOutput([...outBatch, m, n], 'float32');
  const c = backend.typedArrayFromHeap(out) as Float32Array;
  if (bias) {
    // C starts as the bias in every row and sgemm adds the product to it (beta = 1).
    const row = backend.typedArrayFromHeap(bias) as Float32Array;
    for (let r = 0; r < c.length; r += n) c.set(row, r);
  } else if (k === 0) c.fill(0);
  if (m === 0 || n === 0 || k === 0) return out;
  const base = {
    a: blas.address(backend.typedArrayFromHeap(a)),
    b: blas.address(backend.typedArrayFromHeap(b)),
    c: blas.address(c),
  };
  const whole: GemmJob = {
    transA: transposeA,
    transB: transposeB,
    m,
    n,
    k,
    a: base.a,
    lda: transposeA ? m : k,
    b: base.b,
    ldb: transposeB ? k : n,
    beta: bias ? 1 : 0,
    c: base.c,
    ldc: n,
  };
  const jobs =
    batch > 1
      ? groups({
          ...whole,
          count: batch,
          strideA: batchA === 1 ? 0 : 4 * m * k,
          strideB: batchB === 1 ? 0 : 4 * k * n,
          strideC: 4 * m * n,
        })
      : blocks(whole);
  runner.run(jobs);
  return out;
}

/** Pieces worth handing to another thread, at most MAX_BLOCKS: a function of the shape only. */
function pieces(j: GemmJob): number {
  return Math.min(MAX_BLOCKS, Math.floor((2 * j.m * j.n * j.k * (j.count ?? 1)) / BLOCK_FLOPS));
}

/** A batch of products (one sgemm each) cut into consecutive groups of matrices. */
function groups(j: GemmJob): GemmJob[] {
  const count = j.count ?? 1;
  const per = Math.ceil(count / Math.max(1, pieces(j)));
  const out: GemmJob[] = [];
  for (let s = 0; s < count; s += per)
    out.push({
      ...j,
      count: Math.min(per, count - s),
      a: j.a + s * (j.strideA ?? 0),
      b: j.b + s * (j.strideB ?? 0),
      c: j.c + s * (j.strideC ?? 0),
    });
  return out;
}

/** A single product cut into row blocks (or column blocks when it is wider than tall), by its shape only. */
function blocks(j: GemmJob): GemmJob[] {
  const rows = j.m >= j.n;
  const extent = rows ? j.m : j.n;
  const step = Math.ceil(Math.ceil(extent / Math.max(1, pieces(j))) / BLOCK_ALIGN) * BLOCK_ALIGN;
  if (step >= extent) return [j];
  const out: GemmJob[] = [];
  for (let s = 0; s < extent; s += step) {
    const len = Math.min(step, extent - s);
    if (rows) {
      // Rows s.. of op(A): rows of A, or columns of a transposed A; rows of C.
      out.push({ ...j, m: len, a: j.a + 4 * (j.transA ? s : s * j.lda), c: j.c + 4 * s * j.ldc });
    } else {
      // Columns s.. of op(B): columns of B, or rows of a transposed B; columns of C.
      out.push({ ...j, n: len, b: j.b + 4 * (j.transB ? s * j.ldb : s), c: j.c + 4 * s });
    }
  }
  return out;
}
