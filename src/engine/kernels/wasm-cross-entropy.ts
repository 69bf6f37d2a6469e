/**
 * Fused softmax cross-entropy for the wasm backend, the counterpart of webgpu/cross-entropy.ts: HF's causal-LM
 * loss, the mean over rows whose target is not -100 of -log softmax(logits)[target] (0 when no row is labelled).
 *
 * `meanNll(tf.logSoftmax(logits), targets)` runs as a chain of scalar wasm kernels (max, subtract, exp, sum, log,
 * subtract, the pick, and about as many again backward, with a one-hot [N, V]), each writing a fresh [N, V]
 * tensor (V = 8192 for sculpt-base, 50257 for GPT-2). Here two kernels, in TypeScript on the tensors where they
 * lie in the wasm heap (as wasm-extra.ts and blas-matmul.ts reach them), walk the logits row by row, so a row
 * stays in cache between its passes:
 *   forward   per labelled row: the max; e = exp(x - max), written out, and Σ e in float64; the loss from
 *             max + log Σ e - x[target]  ->  loss (scalar), e [N, V], Σ e per row [N]
 *   backward  dlogits = (e / Σ e - onehot(target)) · dy / count, 0 on ignored rows: one pass over e
 * The exponential is most of the cost, so each element is exponentiated once, by expNonPositive below (about
 * twice as fast as Math.exp's ~10 ns), and the backward reuses the forward's e instead of recomputing
 * exp(x - lse) as the webgpu kernel does: one more [N, V] tensor held from forward to backward (the tf-op path
 * holds several) against a second exp pass over the logits.
 * Ignored rows are skipped outright, which matters where prompt positions are unlabelled.
 *
 * Rows whose length is a multiple of four (sculpt-base's 8192, LLaMA's 32000) run in the SIMD module
 * (simd/kernels.wat): the max and e = exp(x - max) in float32 four lanes at a time, with Cephes' expf polynomial
 * (about an ulp; 0 below -87.3, where expNonPositive still gives denormals), Σ e in float64, and the backward's
 * scaling; the log and the loss stay here in float64. Those rows are spread over the wasm pool's threads in
 * ranges (simd/rows.ts: on tfjs's threaded build the heap is shared memory), each row on one thread, so the
 * numbers do not depend on the thread count; the TypeScript runs on the calling thread alone.
 * SCULPT_WASM_UNFUSED naming `simd` keeps the TypeScript.
 */
import { tf } from '../tf';
import { registerHeapKernels, type WasmHeapBackend } from './wasm-heap';
import { simdIfEnabled } from './simd/module';
import { rowRanges, rowRunner } from './simd/rows';

const IGNORE_INDEX = -100;

const FORWARD = 'SculptSoftmaxCrossEntropy';
const BACKWARD = 'SculptSoftmaxCrossEntropyGrad';

const LOG2E = Math.LOG2E;
/** ln 2 in two parts (fdlibm's): k · LN2_HI is exact for the k used here, so the reduction loses nothing. */
const LN2_HI = 6.9314718036912381649e-1;
const LN2_LO = 1.90821492927058770002e-10;
/** 2^-k; exp(t) for t < -104 is below float32's smallest denormal. */
const POW2_NEG = Float64Array.from({ length: 152 }, (_, k) => 2 ** -k);

/**
 * exp(t) for t <= 0 to a relative 1e-8 (float32 needs 6e-8): t = q - k ln 2 with |q| <= ln 2 / 2, exp(q) by its
 * Taylor polynomial of degree 7 (remainder q^8 / 8! < 6e-9), times 2^-k from a table. NaN stays NaN; below
 * -104 (also -Infinity) the result is 0.
 */
export function expNonPositive(t: number): number {
  if (t < -104) return 0;
  const k = (0.5 - t * LOG2E) | 0;
  const q = t + k * LN2_HI + k * LN2_LO;
  const p = 1 + q * (1 + q * (1 / 2 + q * (1 / 6 + q * (1 / 24 + q * (1 / 120 + q * (1 / 720 + q / 5040))))));
  return p * POW2_NEG[k];
}

let registered = false;

/** Registers both kernels on the wasm backend (once; backend.ts calls it, and so does the first loss). */
export function registerWasmCrossEntropy(): void {
  if (registered) return;
  registered = true;
  registerHeapKernels({
    [FORWARD]: (b, { logits, targets }) => forward(b, logits!, targets!),
    [BACKWARD]: (b, { exps, targets, sums, dy }) => backward(b, exps!, targets!, sums!, dy!),
  });
}

/** The loss's divisor: rows not IGNORE_INDEX. An out-of-range target counts but scores 0, as on webgpu. */
function labelledCount(t: ArrayLike<number>): number {
  let count = 0;
  for (let r = 0; r < t.length; r++) if (t[r] !== IGNORE_INDEX) count++;
  return count;
}

/** -> [loss [], e [N, V], Σ e [N]]; e and Σ e of rows without a valid target are left unwritten. */
function forward(b: WasmHeapBackend, logits: tf.TensorInfo, targets: tf.TensorInfo): tf.TensorInfo[] {
  const [rows, cols] = logits.shape;
  const lossInfo = b.makeOutput([], 'float32');
  const expsInfo = b.makeOutput([rows, cols], 'float32');
  const sumsInfo = b.makeOutput([rows], 'float32');
  const simd = simdIfEnabled(b, cols % 4 === 0);
  const runner = simd ? rowRunner(b, rows * cols) : null;
  // The SIMD rows' Σ e and max, float64 each (16 bytes a row), for the log here.
  const statsInfo = runner ? b.makeOutput([4 * rows], 'float32') : null;
  // Views are taken after every allocation: an allocation that grows the heap detaches the views before it.
  const x = b.typedArrayFromHeap(logits) as Float32Array;
  const t = b.typedArrayFromHeap(targets);
  const e = b.typedArrayFromHeap(expsInfo) as Float32Array;
  const sums = b.typedArrayFromHeap(sumsInfo) as Float32Array;
  const statsView = statsInfo && (b.typedArrayFromHeap(statsInfo) as Float32Array);
  let total = 0;
  if (runner && statsView) {
    // tfjs's allocator (Emscripten's malloc) aligns to at least 8 bytes; the float64 view below needs it.
    if (statsView.byteOffset % 8 !== 0)
      throw new Error(`cross-entropy kernel: heap buffer at byte ${statsView.byteOffset}, not 8-byte aligned`);
    runner.run(
      'crossEntropyRows',
      rowRanges(rows, cols).map(([r0, r1]) => [
        x.byteOffset,
        e.byteOffset,
        t.byteOffset,
        statsView.byteOffset,
        cols,
        r0,
        r1,
      ]),
    );
    const stats = new Float64Array(statsView.buffer, statsView.byteOffset, 2 * rows);
    for (let r = 0; r < rows; r++) {
      const target = t[r];
      if (!(target >= 0 && target < cols)) continue;
      const sum = stats[2 * r];
      sums[r] = sum;
      total += stats[2 * r + 1] - x[r * cols + target] + Math.log(sum);
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const target = t[r];
      if (!(target >= 0 && target < cols)) continue;
      const base = r * cols;
      const end = base + cols;
      // `v > max` never takes a NaN, but the NaN then reaches the sum below, so the loss is NaN as with tf ops.
      let max = -Infinity;
      for (let j = base; j < end; j++) {
        const v = x[j];
        if (v > max) max = v;
      }
      let sum = 0;
      for (let j = base; j < end; j++) {
        const v = expNonPositive(x[j] - max);
        e[j] = v;
        sum += v;
      }
      sums[r] = sum;
      // max - x[target] is exact (two float32 values in float64); the log-sum-exp is never rounded to float32.
      total += max - x[base + target] + Math.log(sum);
    }
  }
  if (statsInfo) b.disposeData(statsInfo.dataId, true);
  const count = labelledCount(t);
  (b.typedArrayFromHeap(lossInfo) as Float32Array)[0] = count > 0 ? total / count : 0;
  return [lossInfo, expsInfo, sumsInfo];
}

function backward(
  b: WasmHeapBackend,
  exps: tf.TensorInfo,
  targets: tf.TensorInfo,
  rowSums: tf.TensorInfo,
  dy: tf.TensorInfo,
): tf.TensorInfo {
  const [rows, cols] = exps.shape;
  const outInfo = b.makeOutput([rows, cols], 'float32');
  const e = b.typedArrayFromHeap(exps) as Float32Array;
  const t = b.typedArrayFromHeap(targets);
  const sums = b.typedArrayFromHeap(rowSums) as Float32Array;
  const out = b.typedArrayFromHeap(outInfo) as Float32Array;
  const g = (b.typedArrayFromHeap(dy) as Float32Array)[0] / Math.max(labelledCount(t), 1);
  const simd = simdIfEnabled(b, cols % 4 === 0);
  const runner = simd ? rowRunner(b, rows * cols) : null;
  if (runner) {
    runner.run(
      'crossEntropyGradRows',
      rowRanges(rows, cols).map(([r0, r1]) => [
        e.byteOffset,
        t.byteOffset,
        sums.byteOffset,
        out.byteOffset,
        g,
        cols,
        r0,
        r1,
      ]),
    );
    return outInfo;
  }
  for (let r = 0; r < rows; r++) {
    const target = t[r];
    const base = r * cols;
    const end = base + cols;
    // Ignored rows (and out-of-range targets, which the forward scores 0) get no gradient; the heap is not zeroed.
    if (!(target >= 0 && target < cols)) {
      out.fill(0, base, end);
      continue;
    }
    const sum = sums[r];
    const scale = g / sum;
    for (let j = base; j < end; j++) out[j] = e[j] * scale;
    // The target's entry from its probability, not as a float32 product minus g, to keep its low bits.
    out[base + target] = (e[base + target] / sum - 1) * g;
  }
  return outInfo;
}

/**
 * Mean over labelled rows of -log softmax(logits)[target], logits [N, V] float32, targets [N] int32 with
 * IGNORE_INDEX for unlabelled rows: `meanNll(tf.logSoftmax(logits), targets)` in one kernel each way. Wasm only.
 */
export function wasmCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (tf.getBackend() !== 'wasm')
    throw new Error(`wasmCrossEntropy needs the wasm backend (active: ${tf.getBackend()})`);
  if (logits.rank !== 2) throw new Error(`wasmCrossEntropy: logits must be [rows, vocab], got [${logits.shape}]`);
  const [rows] = logits.shape;
  if (targets.rank !== 1 || targets.shape[0] !== rows)
    throw new Error(`wasmCrossEntropy: targets of shape [${targets.shape}] for ${rows} rows`);
  if (rows === 0) return tf.scalar(0);
  registerWasmCrossEntropy();
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const xs = x.dtype === 'float32' ? x : x.toFloat();
    const ids = y.dtype === 'int32' ? y : y.toInt();
    const [loss, exps, sums] = tf.engine().runKernel(FORWARD, { logits: xs, targets: ids }) as tf.Tensor[];
    // The backward needs e, not the logits.
    save([exps, ids, sums]);
    return {
      value: loss as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [se, sy, ss] = saved;
        const dlogits = tf.engine().runKernel(BACKWARD, { exps: se, targets: sy, sums: ss, dy }) as tf.Tensor;
        return [dlogits, tf.zerosLike(sy)];
      },
    };
  });
  return f(logits, targets) as tf.Scalar;
}
