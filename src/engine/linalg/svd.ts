/**
 * Public SVD entry points: one matrix on the calling thread, or a batch (all target matrices of a model at a
 * task boundary) spread over the CPU cores. LAPACK (dgesdd via koffi) is used when it loads; the TypeScript
 * kernel otherwise, or when asked for. Every result says which path produced it.
 */
import { availableParallelism } from 'node:os';
import { lapackStatus } from './lapack';
import { lapackSvd, lapackSvdAsync } from './lapack-svd';
import { runKernelJobs } from './pool';
import { svdKernel, type KernelSvd } from './svd-kernel';
import {
  checkMatrix,
  describeMatrix,
  vectorCount,
  type DenseMatrix,
  type Svd,
  type SvdBatchOptions,
  type SvdOptions,
  type SvdPath,
} from './types';

/** The path `options.path` resolves to now; throws if 'lapack' is demanded but unavailable. */
export function resolveSvdPath(path: SvdOptions['path'] = 'auto', what = 'SVD'): SvdPath {
  if (path === 'ts') return 'ts';
  const status = lapackStatus();
  if (path === 'lapack') {
    if (!status.available) throw new Error(`${what}: the LAPACK path was requested but ${status.reason}`);
    return 'lapack';
  }
  if (path !== 'auto')
    throw new RangeError(`${what}: unknown SVD path '${String(path)}' (expected auto, lapack or ts)`);
  return status.available ? 'lapack' : 'ts';
}

/** Thin SVD of one row-major matrix, computed in float64 on the calling thread. */
export function svd(a: DenseMatrix, options: SvdOptions = {}): Svd {
  checkMatrix(a);
  const k = vectorCount(a, options.vectors);
  const path = resolveSvdPath(options.path, `SVD of ${describeMatrix(a.rows, a.cols, a.name)}`);
  const r =
    path === 'lapack' ? lapackSvd(a, k) : svdKernel(a.data, a.rows, a.cols, k, describeMatrix(a.rows, a.cols, a.name));
  return wrap(a, k, path, r);
}

/**
 * Thin SVDs of many matrices, `threads` at a time (default: all cores). LAPACK calls run on koffi's native
 * worker threads with single-threaded BLAS, which measured faster than one matrix at a time with threaded
 * BLAS; the TypeScript path uses worker threads. Results are in input order.
 */
export async function svdBatch(matrices: readonly DenseMatrix[], options: SvdBatchOptions = {}): Promise<Svd[]> {
  const ks = matrices.map((a, i) => {
    checkMatrix(a);
    return vectorCount(a, options.vectorsPerMatrix?.[i] ?? options.vectors);
  });
  if (options.vectorsPerMatrix && options.vectorsPerMatrix.length !== matrices.length) {
    throw new RangeError(
      `SVD batch: vectorsPerMatrix has ${options.vectorsPerMatrix.length} entries for ${matrices.length} matrices`,
    );
  }
  const threads = Math.max(1, Math.floor(options.threads ?? availableParallelism()));
  const path = resolveSvdPath(options.path, `SVD batch of ${matrices.length} matrices`);
  let results: KernelSvd[];
  if (path === 'lapack') {
    const order = matrices.map((_, i) => i).sort((x, y) => cost(matrices[y]) - cost(matrices[x]) || x - y);
    results = await inParallel(order, threads, (i) => lapackSvdAsync(matrices[i], ks[i]));
  } else if (threads > 1 && matrices.length > 1) {
    results = await runKernelJobs(
      matrices.map((a, i) => ({
        data: a.data,
        m: a.rows,
        n: a.cols,
        k: ks[i],
        label: describeMatrix(a.rows, a.cols, a.name),
      })),
      threads,
    );
  } else {
    results = matrices.map((a, i) => svdKernel(a.data, a.rows, a.cols, ks[i], describeMatrix(a.rows, a.cols, a.name)));
  }
  return results.map((r, i) => wrap(matrices[i], ks[i], path, r));
}

/** Runs task(i) for the indices in `order`, at most `limit` at a time; out[i] is task(i)'s result. */
async function inParallel<T>(order: readonly number[], limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(order.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, order.length) }, async () => {
      while (next < order.length) {
        const i = order[next++];
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

/** Flop-count proxy of one decomposition: largest first keeps the cores busy until the end. */
function cost(a: DenseMatrix): number {
  return a.rows * a.cols * Math.min(a.rows, a.cols);
}

function wrap(a: DenseMatrix, k: number, path: SvdPath, r: KernelSvd): Svd {
  return { m: a.rows, n: a.cols, k, U: r.U, S: r.S, V: r.V, path };
}
