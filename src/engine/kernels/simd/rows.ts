/**
 * Calls of the SIMD module's row kernels (kernels.wat) spread over threads while the caller waits: the vocabulary
 * softmax of the cross-entropy runs on one core otherwise, the others idle, and in a language-model step of the
 * base model its exponentials alone are a fifth of the step.
 *
 * tfjs's threaded wasm build keeps its heap in a shared WebAssembly.Memory, so a worker thread can instantiate the
 * same module on the same memory and run a call on tensors where they lie. Each call (a range of rows) runs whole
 * on one thread, and calls touch disjoint rows, so the numbers never depend on how many threads there are or which
 * one took a call (the threads and their counter: linalg/job-pool.ts, as the native products').
 *
 * On the single-threaded build (an ordinary memory, which other threads cannot share), with one thread, for a
 * small batch (PARALLEL_FLOATS) or a batch of one call, the calls run in order on the calling thread.
 */
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { SHARED_MEMORY_WASM } from './kernels-wasm';
import { jobPool } from '../../linalg/job-pool';
import { backendMemory, simdKernels, type SimdKernels } from './module';

/** The exports a batch may call (an index into this list travels in the job table, not a name). */
export const ROW_KERNELS = ['crossEntropyRows', 'crossEntropyGradRows'] as const;
export type RowKernel = (typeof ROW_KERNELS)[number];

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
  const table = new Float64Array(new SharedArrayBuffer(8 * FIELDS * CAPACITY));
  const module = new WebAssembly.Module(Buffer.from(SHARED_MEMORY_WASM, 'base64'));
  const pool = jobPool(threads, WORKER_PROGRAM, { module, memory, table, kernels: ROW_KERNELS });

  const runBatch = (kernel: RowKernel, calls: readonly (readonly number[])[]): void => {
    const index = ROW_KERNELS.indexOf(kernel);
    calls.forEach((args, i) => {
      if (args.length > ARGS) throw new RangeError(`${kernel}: ${args.length} arguments (at most ${ARGS})`);
      const o = i * FIELDS;
      table[o] = index;
      for (let a = 0; a < ARGS; a++) table[o + 1 + a] = args[a] ?? 0;
    });
    pool.run(calls.length, (i) => call(simd, kernel, calls[i]), `SIMD kernel ${kernel}`);
  };

  return {
    threads,
    get workerCalls() {
      return pool.workerJobs;
    },
    run(kernel, calls) {
      if (calls.length === 1) return call(simd, kernel, calls[0]);
      for (let from = 0; from < calls.length; from += CAPACITY) runBatch(kernel, calls.slice(from, from + CAPACITY));
    },
    dispose: () => pool.dispose(),
  };
}

/** The workers' jobs (job-pool.ts runs them): the module on the shared heap, call i from the shared table. */
const WORKER_PROGRAM = `
const { module, memory, table, kernels } = workerData;
const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
const fns = kernels.map((name) => exports[name]);
function job(i) {
  const o = i * ${FIELDS};
  fns[table[o]](table[o + 1], table[o + 2], table[o + 3], table[o + 4], table[o + 5], table[o + 6], table[o + 7],
    table[o + 8]);
}
`;
