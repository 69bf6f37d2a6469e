// The SIMD row kernels spread over threads (src/engine/kernels/simd/rows.ts): the same bits on 1, 2 or 3 threads
// as the calls run in order on the caller, for the cross-entropy's rows (forward and backward); the kernels
// against their TypeScript loops; which batches stay on the caller; a call that traps, on the caller or on a
// worker, throws and leaves the runner usable. On a machine with two or more cores the engine runs tfjs's
// threaded build, whose heap is shared memory, so the threads are real workers there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { backendMemory, simdKernels } from '../../src/engine/kernels/simd/module';
import { PARALLEL_FLOATS, rowRanges, rowRunner } from '../../src/engine/kernels/simd/rows';
import { seededValues } from '../helpers/webgpu';

const ROWS = 120;
const COLS = 4096;

/** Logits, targets (every fifth row ignored, one out of range), and outputs in the wasm heap. */
function heapCase() {
  const x = tf.tensor2d(seededValues(ROWS * COLS, 7, -8, 8), [ROWS, COLS]);
  const t = tf.tensor1d(
    Array.from({ length: ROWS }, (_, r) => (r % 5 === 0 ? -100 : r === 3 ? COLS : (r * 131) % COLS)),
    'int32',
  );
  const e = tf.zeros([ROWS, COLS]);
  const stats = tf.zeros([4 * ROWS]);
  const sums = tf.zeros([ROWS]);
  const out = tf.fill([ROWS, COLS], 7);
  return { x, t, e, stats, sums, out };
}

type Case = ReturnType<typeof heapCase>;

const be = () => tf.backend() as unknown as { typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array };
const at = (t: tf.Tensor) => be().typedArrayFromHeap(t).byteOffset;
const view = (t: tf.Tensor) => be().typedArrayFromHeap(t);

/** Forward then backward of the cross-entropy rows on `threads` threads; the heap's outputs copied out. */
function crossEntropy(threads: number, c: Case) {
  const rows = rowRunner(tf.backend(), PARALLEL_FLOATS, threads)!;
  const before = rows.workerCalls;
  rows.run(
    'crossEntropyRows',
    rowRanges(ROWS, COLS).map(([r0, r1]) => [at(c.x), at(c.e), at(c.t), at(c.stats), COLS, r0, r1]),
  );
  const stats = new Float64Array(view(c.stats).buffer, at(c.stats), 2 * ROWS).slice();
  const sums = view(c.sums) as Float32Array;
  for (let r = 0; r < ROWS; r++) sums[r] = stats[2 * r];
  rows.run(
    'crossEntropyGradRows',
    rowRanges(ROWS, COLS).map(([r0, r1]) => [at(c.e), at(c.t), at(c.sums), at(c.out), 0.25, COLS, r0, r1]),
  );
  return {
    stats,
    e: view(c.e).slice(),
    out: view(c.out).slice(),
    threads: rows.threads,
    workerCalls: rows.workerCalls - before,
  };
}

/**
 * crossEntropy on `threads` threads, repeated until worker threads took some of the calls (they start in the
 * background, and a caller may finish a short batch before one wakes): the run they shared in.
 */
async function sharedRun(threads: number, c: Case) {
  const until = Date.now() + 5000;
  for (;;) {
    const r = crossEntropy(threads, c);
    if (r.workerCalls > 0) return r;
    assert.ok(Date.now() < until, `no call ran on a worker in 5 s (${threads} threads)`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('row kernels: the same bits on 1, 2 or 3 threads, and real workers on the threaded build', async () => {
  await selectBackend('wasm');
  const shared = backendMemory(tf.backend())!.buffer instanceof SharedArrayBuffer;
  assert.equal(shared, availableParallelism() >= 2, 'the threaded build (shared heap) wherever there are 2+ cores');
  const c = heapCase();
  const results = [crossEntropy(1, c)];
  for (const n of [2, 3]) results.push(shared ? await sharedRun(n, c) : crossEntropy(n, c));
  assert.equal(results[0].workerCalls, 0);
  assert.equal(results[2].threads, shared ? 3 : 1);
  // rowRanges: 16 rows a call at 4096 columns, so 120 rows are 8 calls to share.
  assert.equal(rowRanges(ROWS, COLS).length, 8);
  for (const n of [1, 2]) {
    assert.deepEqual(results[n].stats, results[0].stats, `stats on ${n + 1} threads`);
    assert.deepEqual(results[n].e, results[0].e, `e on ${n + 1} threads`);
    assert.deepEqual(results[n].out, results[0].out, `dlogits on ${n + 1} threads`);
  }
  tf.dispose(Object.values(c));
});

test('row kernels: the cross-entropy rows equal their TypeScript loop (max, Σ e in float64, dlogits)', async () => {
  await selectBackend('wasm');
  const c = heapCase();
  const r = crossEntropy(2, c);
  const x = view(c.x) as Float32Array;
  const t = view(c.t) as Int32Array;
  for (let row = 0; row < ROWS; row++) {
    const base = row * COLS;
    const target = t[row];
    if (!(target >= 0 && target < COLS)) {
      // No target: no statistics written, and zeros (not the 7s) for the gradient.
      assert.equal(r.stats[2 * row], 0, `row ${row}: stats`);
      assert.ok(
        r.out.subarray(base, base + COLS).every((v) => v === 0),
        `row ${row}: zero gradient`,
      );
      continue;
    }
    let max = -Infinity;
    for (let j = 0; j < COLS; j++) max = Math.max(max, x[base + j]);
    assert.equal(r.stats[2 * row + 1], max, `row ${row}: max`);
    let sum = 0;
    for (let j = 0; j < COLS; j++) sum += Math.exp(x[base + j] - max);
    // The module's exponential is within about 2 float32 ulps (wasm-simd.test.ts); the sum in float64.
    assert.ok(Math.abs(r.stats[2 * row] - sum) / sum < 5e-7, `row ${row}: Σ e ${r.stats[2 * row]} vs ${sum}`);
    const s = Math.fround(r.stats[2 * row]);
    for (const j of [0, 1, target, COLS - 1]) {
      const p = r.e[base + j] / s;
      const want = (j === target ? p - 1 : p) * 0.25;
      assert.ok(Math.abs(r.out[base + j] - want) <= 1e-7 * Math.max(1, Math.abs(want)), `row ${row}, col ${j}`);
    }
  }
  tf.dispose(Object.values(c));
});

test('row kernels: small batches, one thread or the single-threaded build run on the caller', async () => {
  await selectBackend('wasm');
  assert.equal(rowRunner(tf.backend(), PARALLEL_FLOATS - 1)!.threads, 1);
  assert.equal(rowRunner(tf.backend(), PARALLEL_FLOATS, 1)!.threads, 1);
  const shared = backendMemory(tf.backend())!.buffer instanceof SharedArrayBuffer;
  assert.equal(rowRunner(tf.backend(), PARALLEL_FLOATS, 2)!.threads, shared ? 2 : 1);
});

test('row kernels: a call that traps throws, on the caller or a worker, and the runner keeps working', async () => {
  await selectBackend('wasm');
  assert.ok(simdKernels(tf.backend()));
  const rows = rowRunner(tf.backend(), PARALLEL_FLOATS, 2)!;
  // Rows far past the end of the heap: every call traps (out of bounds), whichever thread takes it.
  const beyond = 0x7ffffff0;
  const bad = Array.from({ length: 8 }, () => [beyond, beyond, beyond, beyond, COLS, 0, 1]);
  for (let i = 0; i < 3; i++)
    assert.throws(() => rows.run('crossEntropyRows', bad), /out of bounds|failed on a worker thread/);
  const c = heapCase();
  const again = crossEntropy(2, c);
  const reference = crossEntropy(1, c);
  assert.deepEqual(again.stats, reference.stats, 'the runner still computes after failed batches');
  assert.deepEqual(again.out, reference.out);
  tf.dispose(Object.values(c));
});
