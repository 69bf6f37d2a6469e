/**
 * Worker threads for the TypeScript SVD kernel. The engine ships as single-file bundles (extension, trainer,
 * CLI), so there is no separate worker script to point at, and re-running a whole bundle in a worker would
 * re-run its entry point. Instead the worker is built from the kernel functions' own source text: they are
 * self-contained by construction (see householder.ts), so the worker runs exactly the code the main thread
 * runs, under any bundling or minification that keeps each function's body intact.
 */
import { Worker } from 'node:worker_threads';
import {
  applyColumnReflector,
  applyReflectorsToRows,
  applyRowReflector,
  bidiagonalise,
  columnReflector,
  householderQr,
  packColumnReflectors,
  packRowReflectors,
  rowReflector,
} from './householder';
import { bidiagonalSvd, qrStep, rotateRows } from './bidiagonal-svd';
import { identity, scaleByPowerOfTwo, svdKernel, transpose, type KernelSvd } from './svd-kernel';

/** Every function svdKernel can reach. A function missing here fails the worker test in linalg-batch.test.ts. */
const KERNEL_FUNCTIONS: readonly ((...args: never[]) => unknown)[] = [
  applyColumnReflector,
  applyReflectorsToRows,
  applyRowReflector,
  bidiagonalise,
  columnReflector,
  householderQr,
  packColumnReflectors,
  packRowReflectors,
  rowReflector,
  bidiagonalSvd,
  qrStep,
  rotateRows,
  identity,
  scaleByPowerOfTwo,
  svdKernel,
  transpose,
];

export interface KernelJob {
  readonly data: Float32Array | Float64Array;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly label?: string;
}

function workerSource(): string {
  return `'use strict';
const { parentPort } = require('node:worker_threads');
${KERNEL_FUNCTIONS.map((f) => f.toString()).join('\n')}
parentPort.on('message', (job) => {
  try {
    const r = ${svdKernel.name}(job.data, job.m, job.n, job.k, job.label);
    parentPort.postMessage({ id: job.id, r }, [r.U.buffer, r.S.buffer, r.V.buffer]);
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: err && err.message ? err.message : String(err) });
  }
});
`;
}

/**
 * Runs the jobs on `threads` workers, largest first (so the last job to finish is a small one), and resolves
 * with the results in input order. Workers live only for the call: a batch happens once per task boundary.
 */
export async function runKernelJobs(jobs: readonly KernelJob[], threads: number): Promise<KernelSvd[]> {
  const results: KernelSvd[] = new Array(jobs.length);
  const order = jobs.map((_, i) => i).sort((x, y) => cost(jobs[y]) - cost(jobs[x]) || x - y);
  const source = workerSource();
  const count = Math.max(1, Math.min(threads, jobs.length));
  let next = 0;
  const workers: Worker[] = [];
  try {
    await Promise.all(
      Array.from({ length: count }, async () => {
        const worker = new Worker(source, { eval: true });
        workers.push(worker);
        while (next < order.length) {
          const id = order[next++];
          results[id] = await runOne(worker, id, jobs[id]);
        }
      }),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}

function runOne(worker: Worker, id: number, job: KernelJob): Promise<KernelSvd> {
  return new Promise<KernelSvd>((resolve, reject) => {
    const onMessage = (msg: { id: number; r?: KernelSvd; error?: string }): void => {
      if (msg.id !== id) return;
      cleanup();
      if (msg.error !== undefined || !msg.r) reject(new Error(msg.error ?? 'SVD worker returned no result'));
      else resolve(msg.r);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`SVD worker exited with code ${code} before finishing a ${job.m} x ${job.n} matrix`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage({ id, data: job.data, m: job.m, n: job.n, k: job.k, label: job.label });
  });
}

/** Flop-count proxy of one decomposition, for scheduling. */
function cost(job: KernelJob): number {
  return job.m * job.n * Math.min(job.m, job.n);
}
