/**
 * Running a list of sgemm calls on several threads while the caller waits: the calling thread and `threads - 1`
 * worker threads take jobs (or chains of jobs, run in order by one thread) from a shared counter, so which thread
 * computes a job never changes its numbers.
 * Each worker binds cblas_sgemm itself (koffi is per thread) and reads the jobs' native addresses from shared
 * memory; it sleeps in Atomics.wait between products, so it takes no core from the wasm kernels.
 *
 * Workers start in the background and join whenever they are up: until then, or if one fails to start, the
 * calling thread does the work alone, with the same results.
 */
import { Worker } from 'node:worker_threads';
import { NO_TRANS, ROW_MAJOR, SGEMM_SIGNATURE, TRANS, type Blas, type GemmJob } from './blas';

/** Control words: generation (bumped per batch of chains), next chain to take, chains done, chains in this batch. */
const GEN = 0;
const NEXT = 1;
const DONE = 2;
const TOTAL = 3;
/** NEXT between batches: a worker that wakes late finds nothing to take. */
const LOCKED = 1 << 30;
/** Doubles per call in the shared table (the GemmJob fields, alpha last). */
const FIELDS = 17;
/** Calls per batch. */
const CAPACITY = 4096;

export interface GemmRunner {
  /** Threads that compute, the caller's included. */
  readonly threads: number;
  /** Runs every job and returns when all are done. */
  run(jobs: readonly GemmJob[]): void;
  /**
   * Runs every chain and returns when all are done: the jobs of one chain in order on one thread, so a job may
   * read what an earlier one of its chain wrote (a projection's intermediate product), different chains at once.
   */
  runChains(chains: readonly (readonly GemmJob[])[]): void;
  dispose(): void;
}

/** A runner on the calling thread alone (one thread, or wasm memory that worker threads cannot share). */
export function serialRunner(blas: Blas): GemmRunner {
  return {
    threads: 1,
    run: (jobs) => jobs.forEach((j) => blas.gemm(j)),
    runChains: (chains) => chains.forEach((chain) => chain.forEach((j) => blas.gemm(j))),
    dispose: () => {},
  };
}

export function gemmRunner(blas: Blas, threads: number): GemmRunner {
  if (threads <= 1) return serialRunner(blas);
  const ctrl = new Int32Array(new SharedArrayBuffer(4 * 4));
  const table = new Float64Array(new SharedArrayBuffer(8 * FIELDS * CAPACITY));
  // starts[c] .. starts[c + 1]: chain c's calls in the table.
  const starts = new Int32Array(new SharedArrayBuffer(4 * (CAPACITY + 1)));
  Atomics.store(ctrl, NEXT, LOCKED);
  // Started at the first product that has work to share, not here: a trainer that stops before training (a bad
  // input, a refused resume) then exits without worker threads still loading the native library, which can
  // bring the process down at exit.
  let workers: Worker[] | undefined;
  const startWorkers = (): Worker[] =>
    Array.from({ length: threads - 1 }, () => {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          koffi: blas.koffiPath,
          library: blas.library,
          signature: SGEMM_SIGNATURE,
          ctrl,
          table,
          starts,
        },
      });
      // A worker that cannot start leaves its share to the others; the caller alone still finishes every batch.
      w.on('error', () => {});
      // Idle workers wait forever; they must not keep the process alive.
      w.unref();
      return w;
    });

  const write = (i: number, j: GemmJob): void => {
    const o = i * FIELDS;
    table[o] = j.transA ? TRANS : NO_TRANS;
    table[o + 1] = j.transB ? TRANS : NO_TRANS;
    table[o + 2] = j.m;
    table[o + 3] = j.n;
    table[o + 4] = j.k;
    table[o + 5] = j.a;
    table[o + 6] = j.lda;
    table[o + 7] = j.b;
    table[o + 8] = j.ldb;
    table[o + 9] = j.beta;
    table[o + 10] = j.c;
    table[o + 11] = j.ldc;
    table[o + 12] = j.count ?? 1;
    table[o + 13] = j.strideA ?? 0;
    table[o + 14] = j.strideB ?? 0;
    table[o + 15] = j.strideC ?? 0;
    table[o + 16] = j.alpha ?? 1;
  };

  /** At most CAPACITY calls in all. */
  const runBatch = (chains: readonly (readonly GemmJob[])[]): void => {
    workers ??= startWorkers();
    let call = 0;
    chains.forEach((chain, c) => {
      starts[c] = call;
      for (const j of chain) write(call++, j);
    });
    starts[chains.length] = call;
    const total = chains.length;
    Atomics.store(ctrl, TOTAL, total);
    Atomics.store(ctrl, DONE, 0);
    Atomics.store(ctrl, NEXT, 0);
    Atomics.add(ctrl, GEN, 1);
    Atomics.notify(ctrl, GEN);
    for (let i = Atomics.add(ctrl, NEXT, 1); i < total; i = Atomics.add(ctrl, NEXT, 1)) {
      for (const j of chains[i]) blas.gemm(j);
      Atomics.add(ctrl, DONE, 1);
    }
    for (let d = Atomics.load(ctrl, DONE); d < total; d = Atomics.load(ctrl, DONE)) Atomics.wait(ctrl, DONE, d);
    Atomics.store(ctrl, NEXT, LOCKED);
  };

  const runChains = (chains: readonly (readonly GemmJob[])[]): void => {
    let from = 0;
    let calls = 0;
    chains.forEach((chain, c) => {
      if (chain.length > CAPACITY) throw new RangeError(`a chain of ${chain.length} calls (at most ${CAPACITY})`);
      if (calls + chain.length > CAPACITY) {
        runBatch(chains.slice(from, c));
        from = c;
        calls = 0;
      }
      calls += chain.length;
    });
    if (from < chains.length) runBatch(chains.slice(from));
  };

  return {
    threads,
    run(jobs) {
      if (jobs.length === 1) return blas.gemm(jobs[0]);
      runChains(jobs.map((j) => [j]));
    },
    runChains(chains) {
      if (chains.length === 1) return chains[0].forEach((j) => blas.gemm(j));
      runChains(chains);
    },
    dispose() {
      for (const w of workers ?? []) void w.terminate();
    },
  };
}

/** The worker's whole program (plain JavaScript: it runs from this text, whatever the bundling). */
const WORKER_SOURCE = `'use strict';
const { workerData } = require('node:worker_threads');
const koffi = require(workerData.koffi);
const gemm = koffi.load(workerData.library).func(workerData.signature);
const { ctrl, table, starts } = workerData;
const [GEN, NEXT, DONE, TOTAL, FIELDS] = [${GEN}, ${NEXT}, ${DONE}, ${TOTAL}, ${FIELDS}];
let gen = Atomics.load(ctrl, GEN);
for (;;) {
  Atomics.wait(ctrl, GEN, gen);
  gen = Atomics.load(ctrl, GEN);
  for (let i = Atomics.add(ctrl, NEXT, 1); i < Atomics.load(ctrl, TOTAL); i = Atomics.add(ctrl, NEXT, 1)) {
    for (let call = starts[i]; call < starts[i + 1]; call++) {
      const o = call * FIELDS;
      for (let r = 0; r < table[o + 12]; r++)
        gemm(${ROW_MAJOR}, table[o], table[o + 1], table[o + 2], table[o + 3], table[o + 4], table[o + 16],
          BigInt(table[o + 5] + r * table[o + 13]), table[o + 6], BigInt(table[o + 7] + r * table[o + 14]),
          table[o + 8], table[o + 9], BigInt(table[o + 10] + r * table[o + 15]), table[o + 11]);
    }
    if (Atomics.add(ctrl, DONE, 1) + 1 === Atomics.load(ctrl, TOTAL)) Atomics.notify(ctrl, DONE);
  }
}
`;
