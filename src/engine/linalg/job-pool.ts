/**
 * Numbered jobs spread over threads while the caller waits, for the native products (blas-pool.ts) and the SIMD
 * row kernels (kernels/simd/rows.ts): the calling thread and `threads - 1` worker threads take jobs from one shared
 * counter, so which thread runs a job never changes its numbers as long as jobs touch disjoint outputs. Workers
 * sleep in Atomics.wait between batches, so they take no core from the wasm kernels.
 *
 * Workers start at the first batch (a trainer that stops before training then exits without worker threads still
 * loading native code, which can bring the process down at exit) and join whenever they are up: until then, or if
 * one fails to start, the caller does the work alone, with the same results.
 */
import { Worker } from 'node:worker_threads';

/**
 * Control words: generation (bumped per batch), next job to take, jobs done, jobs in this batch, and whether a
 * worker's job threw (the batch still completes, and the caller throws).
 */
const GEN = 0;
const NEXT = 1;
const DONE = 2;
const TOTAL = 3;
const FAILED = 4;
/** NEXT between batches: a worker that wakes late finds nothing to take. */
const LOCKED = 1 << 30;

export interface JobPool {
  /** Threads that compute, the caller's included. */
  readonly threads: number;
  /** Jobs that other threads than the caller's have run so far (what tests check the workers by). */
  readonly workerJobs: number;
  /**
   * Runs jobs 0 .. total - 1 and returns when all are done: the caller runs `job(i)` for those it takes, a worker
   * its program's `job(i)`; what a job reads (shared tables) is written before. A job that throws, on any thread,
   * still counts as done: the batch is waited out (so the tables may be reused), then the error is thrown.
   * `what` names the jobs in that error.
   */
  run(total: number, job: (i: number) => void, what: string): void;
  dispose(): void;
}

/**
 * A pool of `threads` threads in all. `program` is the workers' plain JavaScript (it runs from this text,
 * whatever the bundling): it sees `workerData` (what is passed here) and defines `function job(i)`.
 */
export function jobPool(threads: number, program: string, workerData: Record<string, unknown>): JobPool {
  const ctrl = new Int32Array(new SharedArrayBuffer(4 * 5));
  Atomics.store(ctrl, NEXT, LOCKED);
  let workers: Worker[] | undefined;
  let workerJobs = 0;
  const source = workerSource(program);
  let disposed = false;
  const loaded = new WeakSet<Worker>();
  const startWorkers = (): Worker[] =>
    Array.from({ length: threads - 1 }, () => {
      const w = new Worker(source, { eval: true, workerData: { ...workerData, ctrl } });
      // A worker that cannot start leaves its share to the others; the caller alone still finishes every batch.
      w.on('error', () => {});
      // Idle workers wait forever and must not keep the process alive, but one still loading native code must:
      // a process that exits (or a terminate) while a worker loads an addon aborts in the addon's registration.
      // So a worker is unreferenced, or terminated if the pool was disposed meanwhile, once its program is loaded.
      w.once('message', () => {
        loaded.add(w);
        w.unref();
        if (disposed) void w.terminate();
      });
      return w;
    });

  return {
    threads,
    get workerJobs() {
      return workerJobs;
    },
    run(total, job, what) {
      workers ??= startWorkers();
      Atomics.store(ctrl, TOTAL, total);
      Atomics.store(ctrl, DONE, 0);
      Atomics.store(ctrl, NEXT, 0);
      Atomics.add(ctrl, GEN, 1);
      Atomics.notify(ctrl, GEN);
      let error: unknown = null;
      let mine = 0;
      for (let i = Atomics.add(ctrl, NEXT, 1); i < total; i = Atomics.add(ctrl, NEXT, 1), mine++) {
        try {
          job(i);
        } catch (e) {
          error ??= e;
        }
        Atomics.add(ctrl, DONE, 1);
      }
      for (let d = Atomics.load(ctrl, DONE); d < total; d = Atomics.load(ctrl, DONE)) Atomics.wait(ctrl, DONE, d);
      Atomics.store(ctrl, NEXT, LOCKED);
      workerJobs += total - mine;
      const failed = Atomics.exchange(ctrl, FAILED, 0);
      if (error) throw error;
      if (failed) throw new Error(`${what} failed on a worker thread`);
    },
    dispose() {
      disposed = true;
      for (const w of workers ?? []) if (loaded.has(w)) void w.terminate();
    },
  };
}

function workerSource(program: string): string {
  return `'use strict';
const { workerData, parentPort } = require('node:worker_threads');
${program}
parentPort.postMessage('loaded');
const { ctrl } = workerData;
const [GEN, NEXT, DONE, TOTAL, FAILED] = [${GEN}, ${NEXT}, ${DONE}, ${TOTAL}, ${FAILED}];
let gen = Atomics.load(ctrl, GEN);
for (;;) {
  Atomics.wait(ctrl, GEN, gen);
  gen = Atomics.load(ctrl, GEN);
  for (let i = Atomics.add(ctrl, NEXT, 1); i < Atomics.load(ctrl, TOTAL); i = Atomics.add(ctrl, NEXT, 1)) {
    try {
      job(i);
    } catch {
      Atomics.store(ctrl, FAILED, 1);
    }
    if (Atomics.add(ctrl, DONE, 1) + 1 === Atomics.load(ctrl, TOTAL)) Atomics.notify(ctrl, DONE);
  }
}
`;
}
