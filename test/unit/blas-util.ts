// Shared by the tests of the products, projections and attention on the native BLAS.
import assert from 'node:assert/strict';
import { blasStatus, loadBlas } from '../../src/engine/linalg/blas';
import { gemmRunner } from '../../src/engine/linalg/blas-pool';
import { useBlasProducts } from '../../src/engine/kernels/blas-matmul';

/** Probed when the test file loads, before any test switches SCULPT_BLAS. */
const native = blasStatus().available;

/** Fails a comparison on a machine without the BLAS that provisioning installs, instead of passing it unseen. */
export function requireBlas(): void {
  assert.ok(
    native,
    `no BLAS here (${blasStatus().reason}): run npm run provision, which installs libopenblas0-pthread`,
  );
}

/**
 * `f` with the products on a runner of `threads` threads, repeated until worker threads took part (they start in
 * the background, and a short batch may end before one wakes), so that a comparison across thread counts covers
 * what the workers compute. The caller selects the backend again afterwards to restore the engine's own runner.
 */
export async function onThreads<T>(threads: number, f: () => T): Promise<T> {
  const blas = loadBlas()!;
  const runner = gemmRunner(blas, threads);
  useBlasProducts({ blas, runner });
  try {
    for (const until = Date.now() + 5000; ;) {
      const before = runner.workerJobs;
      const result = f();
      if (threads === 1 || runner.workerJobs > before) return result;
      assert.ok(Date.now() < until, `no product ran on a worker thread in 5 s (${threads} threads)`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    runner.dispose();
  }
}
