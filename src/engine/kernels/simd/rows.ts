/**
 * Calls of the SIMD module's row kernels (kernels.wat) spread over threads while the caller waits: the vocabulary
 * softmax of the cross-entropy runs on one core otherwise, the others idle, and in a language-model step of the
 * base model its exponentials alone are a fifth of the step.
 *
 * tfjs's threaded wasm build keeps its heap in a shared WebAssembly.Memory, so a worker thread can instantiate the
 * same module on the same memory and run a call on tensors where they lie. Each call (a range of rows) runs whole
 * on one thread, and calls touch disjoint rows, so the numbers never depend on how many threads there are or which
 * one took a call. The caller takes calls too, from the same counter; a worker that has not started yet (or failed
 * to) just leaves its share to the others.
 *
 * On the single-threaded build (an ordinary memory, which other threads cannot share), with one thread, for a
 * small batch (PARALLEL_FLOATS) or a batch of one call, the calls run in order on the calling thread.
 */
import { Worker } from 'node:worker_threads';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { SHARED_MEMORY_WASM } from './kernels-wasm';
import { backendMemory, simdKernels, type SimdKernels } from './module';

/** The exports a batch may call (an index into this list travels in the job table, not a name). */
export const ROW_KERNELS = ['crossEntropyRows', 'crossEntropyGradRows'] as const;
export type RowKernel = (typeof ROW_KERNELS)[number];

/**
 * Control words: generation (bumped per batch), next call to take, calls done, calls in this batch, and whether a
 * worker's call threw (a trap: the batch still completes, and the caller throws).
 */
const GEN = 0;
const NEXT = 1;
const DONE = 2;
const TOTAL = 3;
const FAILED = 4;
/** NEXT between batches: a worker that wakes late finds nothing to take. */
const LOCKED = 1 << 30;
/** Doubles per call in the shared table: the kernel's index, then up to ARGS arguments. */
const ARGS = 8;
const FIELDS = 1 + ARGS;
/** Calls per batch; longer lists run as several batches. */
const CAPACITY = 1024;

export interface RowRunner {
  /** Threads that compute, the caller's included. */
  readonly threads: number;
  /** Runs `kernel` once per argument list (each at most 8 numbers) and returns when all are done. */
  run(kernel: RowKernel, calls: readonly (readonly number[])[]): void;
  /** Calls other threads than the caller's have run so far (what tests check the workers by). */
  readonly workerCalls: number;
  dispose(): void;
}

/**
 * Rows per call for rows of `cols` floats: about 64k floats a call (the cost of waking a thread is a few
 * microseconds, a call of that size some tens of them), at least one row.
 */
export function rowsPerCall(cols: number): number {
  return Math.max(1, Math.ceil(65536 / cols));
}

/** [r0, r1) ranges covering rows 0 .. rows - 1, rowsPerCall(cols) rows each (the last may be shorter). */
export function rowRanges(rows: number, cols: number): [number, number][] {
  const per = rowsPerCall(cols);
  const out: [number, number][] = [];
  for (let r = 0; r < rows; r += per) out.push([r, Math.min(rows, r + per)]);
  return out;
}

/**
 * Below this many floats a batch runs on the calling thread: waking a sleeping thread takes tens of
 * microseconds, about what a small batch costs (the cross-entropy of an answer-only step, 16 rows of the
 * vocabulary, gained nothing from a second thread; a language-model step's 1024 rows ran 1.2x faster).
 */
export const PARALLEL_FLOATS = 1 << 20;

const threaded = new WeakMap<WebAssembly.Memory, { threads: number; runner: RowRunner }>();

/**
 * A runner for this backend's heap: on tfjs's threaded build and for a batch of at least PARALLEL_FLOATS floats,
 * with as many threads as tfjs's wasm pool (its kernels and these never run at once), or `threads` where given;
 * otherwise on the calling thread. Null where the SIMD module does not bind (the kernels' TypeScript serves).
 */
export function rowRunner(backend: unknown, floats: number, threads = getThreadsCount()): RowRunner | null {
  const simd = simdKernels(backend);
  const memory = backendMemory(backend);
  if (!simd || !memory) return null;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const n = Math.max(1, Math.floor(threads));
  if (!shared || n === 1 || floats < PARALLEL_FLOATS) return serialRunner(simd);
  const known = threaded.get(memory);
  if (known && known.threads === n) return known.runner;
  known?.runner.dispose();
  const runner = threadedRunner(simd, memory, n);
  threaded.set(memory, { threads: n, runner });
  return runner;
}

function call(simd: SimdKernels, kernel: RowKernel, args: readonly number[]): void {
  if (args.length > ARGS) throw new RangeError(`${kernel}: ${args.length} arguments (at most ${ARGS})`);
  (simd[kernel] as (...a: number[]) => void)(...args);
}

function serialRunner(simd: SimdKernels): RowRunner {
  return {
    threads: 1,
    run: (kernel, calls) => calls.forEach((args) => call(simd, kernel, args)),
    workerCalls: 0,
    dispose: () => {},
  };
}

function threadedRunner(simd: SimdKernels, memory: WebAssembly.Memory, threads: number): RowRunner {
  const ctrl = new Int32Array(new SharedArrayBuffer(4 * 5));
  const table = new Float64Array(new SharedArrayBuffer(8 * FIELDS * CAPACITY));
  Atomics.store(ctrl, NEXT, LOCKED);
  const module = new WebAssembly.Module(Buffer.from(SHARED_MEMORY_WASM, 'base64'));
  // Started at the first batch with work to share, as the products' workers (linalg/blas-pool.ts).
  let workers: Worker[] | undefined;
  let workerCalls = 0;
  const startWorkers = (): Worker[] =>
    Array.from({ length: threads - 1 }, () => {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module, memory, ctrl, table, kernels: ROW_KERNELS },
      });
      w.on('error', () => {});
      w.unref();
      return w;
    });

  const runBatch = (kernel: RowKernel, calls: readonly (readonly number[])[]): void => {
    workers ??= startWorkers();
    const index = ROW_KERNELS.indexOf(kernel);
    calls.forEach((args, i) => {
      if (args.length > ARGS) throw new RangeError(`${kernel}: ${args.length} arguments (at most ${ARGS})`);
      const o = i * FIELDS;
      table[o] = index;
      for (let a = 0; a < ARGS; a++) table[o + 1 + a] = args[a] ?? 0;
    });
    const total = calls.length;
    Atomics.store(ctrl, TOTAL, total);
    Atomics.store(ctrl, DONE, 0);
    Atomics.store(ctrl, NEXT, 0);
    Atomics.add(ctrl, GEN, 1);
    Atomics.notify(ctrl, GEN);
    // A call that throws here (a trap) still counts as done, and the batch is waited out before the error is
    // rethrown: the workers must be idle again before the table is reused.
    let error: unknown = null;
    let mine = 0;
    for (let i = Atomics.add(ctrl, NEXT, 1); i < total; i = Atomics.add(ctrl, NEXT, 1), mine++) {
      try {
        call(simd, kernel, calls[i]);
      } catch (e) {
        error ??= e;
      }
      Atomics.add(ctrl, DONE, 1);
    }
    for (let d = Atomics.load(ctrl, DONE); d < total; d = Atomics.load(ctrl, DONE)) Atomics.wait(ctrl, DONE, d);
    Atomics.store(ctrl, NEXT, LOCKED);
    workerCalls += total - mine;
    const failed = Atomics.exchange(ctrl, FAILED, 0);
    if (error) throw error;
    if (failed) throw new Error(`SIMD kernel ${kernel} failed on a worker thread`);
  };

  return {
    threads,
    get workerCalls() {
      return workerCalls;
    },
    run(kernel, calls) {
      if (calls.length === 1) return call(simd, kernel, calls[0]);
      for (let from = 0; from < calls.length; from += CAPACITY) runBatch(kernel, calls.slice(from, from + CAPACITY));
    },
    dispose() {
      for (const w of workers ?? []) void w.terminate();
    },
  };
}

/** The worker's whole program (plain JavaScript: it runs from this text, whatever the bundling). */
const WORKER_SOURCE = `'use strict';
const { workerData } = require('node:worker_threads');
const { module, memory, ctrl, table, kernels } = workerData;
const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
const fns = kernels.map((name) => exports[name]);
const [GEN, NEXT, DONE, TOTAL, FAILED, FIELDS] = [${GEN}, ${NEXT}, ${DONE}, ${TOTAL}, ${FAILED}, ${FIELDS}];
let gen = Atomics.load(ctrl, GEN);
for (;;) {
  Atomics.wait(ctrl, GEN, gen);
  gen = Atomics.load(ctrl, GEN);
  for (let i = Atomics.add(ctrl, NEXT, 1); i < Atomics.load(ctrl, TOTAL); i = Atomics.add(ctrl, NEXT, 1)) {
    const o = i * FIELDS;
    try {
      fns[table[o]](table[o + 1], table[o + 2], table[o + 3], table[o + 4], table[o + 5], table[o + 6],
        table[o + 7], table[o + 8]);
    } catch {
      Atomics.store(ctrl, FAILED, 1);
    }
    if (Atomics.add(ctrl, DONE, 1) + 1 === Atomics.load(ctrl, TOTAL)) Atomics.notify(ctrl, DONE);
  }
}
`;
