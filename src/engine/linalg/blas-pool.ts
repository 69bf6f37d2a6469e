/**
 * Running a list of sgemm calls on several threads while the caller waits (job-pool.ts): a job is a chain of
 * calls run in order by one thread, so which thread computes a call never changes its numbers. Each worker binds
 * cblas_sgemm itself (koffi is per thread) and reads the calls' native addresses from shared memory.
 */
import { jobPool } from './job-pool';
import { NO_TRANS, ROW_MAJOR, SGEMM_SIGNATURE, TRANS, type Blas, type GemmJob } from './blas';

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
  /** Chains that other threads than the caller's have run so far (what tests check the workers by). */
  readonly workerJobs: number;
  dispose(): void;
}

/** A runner on the calling thread alone (one thread, or wasm memory that worker threads cannot share). */
export function serialRunner(blas: Blas): GemmRunner {
  return {
    threads: 1,
    run: (jobs) => jobs.forEach((j) => blas.gemm(j)),
    runChains: (chains) => chains.forEach((chain) => chain.forEach((j) => blas.gemm(j))),
    workerJobs: 0,
    dispose: () => {},
  };
}

export function gemmRunner(blas: Blas, threads: number): GemmRunner {
  if (threads <= 1) return serialRunner(blas);
  const table = new Float64Array(new SharedArrayBuffer(8 * FIELDS * CAPACITY));
  // starts[c] .. starts[c + 1]: chain c's calls in the table.
  const starts = new Int32Array(new SharedArrayBuffer(4 * (CAPACITY + 1)));
  const pool = jobPool(threads, WORKER_PROGRAM, {
    koffi: blas.koffiPath,
    library: blas.library,
    signature: SGEMM_SIGNATURE,
    table,
    starts,
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
    let call = 0;
    chains.forEach((chain, c) => {
      starts[c] = call;
      for (const j of chain) write(call++, j);
    });
    starts[chains.length] = call;
    pool.run(chains.length, (c) => chains[c].forEach((j) => blas.gemm(j)), 'sgemm');
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
    get workerJobs() {
      return pool.workerJobs;
    },
    run(jobs) {
      if (jobs.length === 1) return blas.gemm(jobs[0]);
      runChains(jobs.map((j) => [j]));
    },
    runChains(chains) {
      if (chains.length === 1) return chains[0].forEach((j) => blas.gemm(j));
      runChains(chains);
    },
    dispose: () => pool.dispose(),
  };
}

/** The workers' jobs (job-pool.ts runs them): chain i's calls, from the shared table. */
const WORKER_PROGRAM = `
const koffi = require(workerData.koffi);
const gemm = koffi.load(workerData.library).func(workerData.signature);
const { table, starts } = workerData;
function job(i) {
  for (let call = starts[i]; call < starts[i + 1]; call++) {
    const o = call * ${FIELDS};
    for (let r = 0; r < table[o + 12]; r++)
      gemm(${ROW_MAJOR}, table[o], table[o + 1], table[o + 2], table[o + 3], table[o + 4], table[o + 16],
        BigInt(table[o + 5] + r * table[o + 13]), table[o + 6], BigInt(table[o + 7] + r * table[o + 14]),
        table[o + 8], table[o + 9], BigInt(table[o + 10] + r * table[o + 15]), table[o + 11]);
  }
}
`;
