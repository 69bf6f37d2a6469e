/**
 * Fused RMSNorm and LayerNorm (torch semantics: biased variance) for the wasm backend, the counterparts of
 * webgpu/norm.ts, in TypeScript on the tensors where they lie in the wasm heap (as wasm-cross-entropy.ts).
 *
 * As tfjs ops a norm is a square, a mean, an add, an rsqrt and two or three broadcast products forward, and
 * autodiff adds about twice as many backward, each a pass over [N, d] writing a fresh tensor. Here, row by row
 * (a row stays in cache between its passes):
 *   forward   row statistics, then y = (x - mean)·rstd·w (+ b)
 *   dx        rstd·(g - mean(g) - x̂·mean(g·x̂)), g = dy·w, x̂ = (x - mean)·rstd
 *   dw        Σ over rows of dy·x̂;  db: Σ over rows of dy
 * RMSNorm is the same code with the mean pinned at 0 and the mean(g) term dropped. The statistics (mean, and
 * rstd = 1/sqrt(mean((x - mean)²) + eps), two passes, no Welford) are accumulated in float64 and recomputed by
 * each backward kernel instead of being saved from the forward: that is one more pass over a row the kernel
 * reads anyway (so in cache), where saving them would take a second forward output through the tape.
 *
 * The gradients are registered for the forward kernels (tf.registerGradient), so tfjs asks for dx, dw and db
 * one by one and only for what is differentiated: a method that freezes the norms' weights (O-LoRA, a frozen
 * adaptive-svd) never runs the dw kernel, which tf.customGrad's all-at-once gradient function would.
 *
 * Rows whose width is a multiple of four run in the SIMD module (simd/kernels.wat): the same passes in float32,
 * as the tf ops compute (where a float32 sum of squares overflows, rstd is 0 there by itself); SCULPT_WASM_UNFUSED
 * naming `simd` keeps the TypeScript below for every row, and LayerNorm's db (a column sum) always uses it.
 */
import { tf } from '../tf';
import { registerHeapKernels, type WasmHeapBackend } from './wasm-heap';
import { simdIfEnabled } from './simd/module';

const RMS = 'SculptRmsNorm';
const LAYER = 'SculptLayerNorm';
const INPUT_GRAD = 'SculptNormInputGrad';
const WEIGHT_GRAD = 'SculptNormWeightGrad';
const COLUMN_SUM = 'SculptColumnSum';

interface NormAttrs {
  eps: number;
  /** LayerNorm (the mean subtracted) rather than RMSNorm. */
  centered: boolean;
}

let registered = false;

/** Registers the kernels on the wasm backend and the forwards' gradients (once; wasm-extra.ts calls it). */
export function registerWasmNorm(): void {
  if (registered) return;
  registered = true;
  const eps = (attrs: tf.NamedAttrMap) => (attrs as unknown as { eps: number }).eps;
  registerHeapKernels({
    [RMS]: (be, { x, w }, attrs) => normalize(be, x!, w!, null, { eps: eps(attrs), centered: false }),
    [LAYER]: (be, { x, w, b }, attrs) => normalize(be, x!, w!, b!, { eps: eps(attrs), centered: true }),
    [INPUT_GRAD]: (be, { x, w, dy }, attrs) => inputGrad(be, x!, w!, dy!, attrs as unknown as NormAttrs),
    [WEIGHT_GRAD]: (be, { x, dy }, attrs) => weightGrad(be, x!, dy!, attrs as unknown as NormAttrs),
    [COLUMN_SUM]: (be, { x }) => columnSum(be, x!),
  });
  for (const [kernelName, centered] of [
    [RMS, false],
    [LAYER, true],
  ] as const) {
    if (tf.getGradient(kernelName)) continue;
    tf.registerGradient({
      kernelName,
      // b only for its shape (a saved input shares its data, nothing is copied).
      inputsToSave: centered ? ['x', 'w', 'b'] : ['x', 'w'],
      gradFunc: (dy, saved, attrs) => {
        const g = dy as tf.Tensor;
        const [x, w, bias] = saved;
        const a = { eps: (attrs as unknown as NormAttrs).eps, centered };
        const run = (name: string, inputs: tf.NamedTensorMap): tf.Tensor =>
          tf.engine().runKernel(name, inputs, a as unknown as tf.NamedAttrMap) as tf.Tensor;
        const grads: Record<string, () => tf.Tensor> = {
          x: () => run(INPUT_GRAD, { x, w, dy: g }),
          w: () => run(WEIGHT_GRAD, { x, dy: g }).reshape(w.shape),
        };
        if (centered) grads.b = () => run(COLUMN_SUM, { x: g }).reshape(bias.shape);
        return grads;
      },
    });
  }
}

/** Row statistics of x[base .. base + d), into STATS: mean (0 for RMSNorm) and rstd. */
const STATS = new Float64Array(2);

function rowStats(x: Float32Array, base: number, d: number, centered: boolean, eps: number): void {
  const end = base + d;
  let mean = 0;
  if (centered) {
    let s = 0;
    for (let j = base; j < end; j++) s += x[j];
    mean = s / d;
  }
  let q = 0;
  for (let j = base; j < end; j++) {
    const c = x[j] - mean;
    q += c * c;
  }
  STATS[0] = mean;
  // As float32 arithmetic (the tf ops; HF's norms in float32) has it: a sum of squares past float32's range is
  // Infinity there, so rstd is 0 and the row all zeros, the collapse the divergence check names. Float64 alone
  // would go on with finite rows from weights that have blown up.
  STATS[1] = Math.fround(q) === Infinity ? 0 : 1 / Math.sqrt(q / d + eps);
}

function normalize(
  b: WasmHeapBackend,
  xInfo: tf.TensorInfo,
  wInfo: tf.TensorInfo,
  bInfo: tf.TensorInfo | null,
  { eps, centered }: NormAttrs,
): tf.TensorInfo {
  const [rows, d] = xInfo.shape;
  const outInfo = b.makeOutput(xInfo.shape, 'float32');
  // Views are taken after every allocation: an allocation that grows the heap detaches the views before it.
  const x = b.typedArrayFromHeap(xInfo) as Float32Array;
  const w = b.typedArrayFromHeap(wInfo) as Float32Array;
  const bias = bInfo ? (b.typedArrayFromHeap(bInfo) as Float32Array) : null;
  const y = b.typedArrayFromHeap(outInfo) as Float32Array;
  const simd = simdIfEnabled(b, d % 4 === 0);
  if (simd) {
    simd.normForward(x.byteOffset, w.byteOffset, bias?.byteOffset ?? 0, y.byteOffset, rows, d, eps, +centered, +!!bias);
    return outInfo;
  }
  for (let r = 0, base = 0; r < rows; r++, base += d) {
    rowStats(x, base, d, centered, eps);
    const mean = STATS[0];
    const rstd = STATS[1];
    if (bias) for (let j = 0; j < d; j++) y[base + j] = (x[base + j] - mean) * rstd * w[j] + bias[j];
    else for (let j = 0; j < d; j++) y[base + j] = x[base + j] * rstd * w[j];
  }
  return outInfo;
}

function inputGrad(
  b: WasmHeapBackend,
  xInfo: tf.TensorInfo,
  wInfo: tf.TensorInfo,
  dyInfo: tf.TensorInfo,
  { eps, centered }: NormAttrs,
): tf.TensorInfo {
  const [rows, d] = xInfo.shape;
  const outInfo = b.makeOutput(xInfo.shape, 'float32');
  const x = b.typedArrayFromHeap(xInfo) as Float32Array;
  const w = b.typedArrayFromHeap(wInfo) as Float32Array;
  const dy = b.typedArrayFromHeap(dyInfo) as Float32Array;
  const dx = b.typedArrayFromHeap(outInfo) as Float32Array;
  const simd = simdIfEnabled(b, d % 4 === 0);
  if (simd) {
    simd.normInputGrad(x.byteOffset, w.byteOffset, dy.byteOffset, dx.byteOffset, rows, d, eps, +centered);
    return outInfo;
  }
  for (let r = 0, base = 0; r < rows; r++, base += d) {
    rowStats(x, base, d, centered, eps);
    const mean = STATS[0];
    const rstd = STATS[1];
    if (rstd === 0) {
      // A row whose squares overflowed (rowStats). The tf ops' chain rule there is dx = 0·g + x·c·(0·Σ g·x): 0
      // while Σ g·x stays finite in float32, NaN (0·Infinity) once it overflows or x is itself infinite. Kept so
      // a blown-up run ends as the tf ops end it (a collapse, or NaN and a divergence).
      let sgx = 0;
      let overflow = false;
      for (let j = 0; j < d; j++) {
        const gx = dy[base + j] * w[j] * (x[base + j] - mean);
        if (!Number.isFinite(Math.fround(gx))) overflow = true;
        sgx += gx;
      }
      overflow ||= !Number.isFinite(Math.fround(sgx));
      for (let j = 0; j < d; j++) dx[base + j] = overflow || !Number.isFinite(x[base + j]) ? NaN : 0;
      continue;
    }
    // Σ g and Σ g·(x - mean); x̂ = (x - mean)·rstd is applied once to the sum.
    let sg = 0;
    let sgx = 0;
    for (let j = 0; j < d; j++) {
      const g = dy[base + j] * w[j];
      sg += g;
      sgx += g * (x[base + j] - mean);
    }
    const mg = centered ? sg / d : 0;
    // rstd·(g - mg - x̂·mean(g·x̂)) = rstd·(g - mg) - (x - mean)·k, with k = rstd³·Σ g·(x - mean) / d.
    const k = (rstd * rstd * rstd * sgx) / d;
    for (let j = 0; j < d; j++) dx[base + j] = rstd * (dy[base + j] * w[j] - mg) - (x[base + j] - mean) * k;
  }
  return outInfo;
}

/** dw [d] = Σ over rows of dy·x̂, in float64. */
function weightGrad(b: WasmHeapBackend, xInfo: tf.TensorInfo, dyInfo: tf.TensorInfo, a: NormAttrs): tf.TensorInfo {
  const [rows, d] = xInfo.shape;
  const outInfo = b.makeOutput([d], 'float32');
  const x = b.typedArrayFromHeap(xInfo) as Float32Array;
  const dy = b.typedArrayFromHeap(dyInfo) as Float32Array;
  const simd = simdIfEnabled(b, d % 4 === 0);
  if (simd) {
    const dw = b.typedArrayFromHeap(outInfo) as Float32Array;
    simd.normWeightGrad(x.byteOffset, dy.byteOffset, dw.byteOffset, rows, d, a.eps, +a.centered);
    return outInfo;
  }
  const acc = new Float64Array(d);
  for (let r = 0, base = 0; r < rows; r++, base += d) {
    rowStats(x, base, d, a.centered, a.eps);
    const mean = STATS[0];
    const rstd = STATS[1];
    for (let j = 0; j < d; j++) acc[j] += dy[base + j] * (x[base + j] - mean) * rstd;
  }
  (b.typedArrayFromHeap(outInfo) as Float32Array).set(acc);
  return outInfo;
}

/** Σ over the rows of x [N, d] -> [d], in float64 (LayerNorm's db). */
function columnSum(b: WasmHeapBackend, xInfo: tf.TensorInfo): tf.TensorInfo {
  const [rows, d] = xInfo.shape;
  const outInfo = b.makeOutput([d], 'float32');
  const x = b.typedArrayFromHeap(xInfo) as Float32Array;
  const acc = new Float64Array(d);
  for (let r = 0, base = 0; r < rows; r++, base += d) for (let j = 0; j < d; j++) acc[j] += x[base + j];
  (b.typedArrayFromHeap(outInfo) as Float32Array).set(acc);
  return outInfo;
}

/** Whether the kernels take these operands: float32, x [N, d] not empty, each parameter of d elements. */
export function wasmNormApplies(x: tf.Tensor, params: readonly tf.Tensor[]): boolean {
  if (x.rank !== 2 || x.dtype !== 'float32' || x.size === 0) return false;
  return params.every((p) => p.dtype === 'float32' && p.size === x.shape[1]);
}

function check(what: string, x: tf.Tensor, params: tf.Tensor[]): void {
  if (tf.getBackend() !== 'wasm') throw new Error(`${what} needs the wasm backend (active: ${tf.getBackend()})`);
  if (!wasmNormApplies(x, params))
    throw new Error(
      `${what}: unsupported operands x [${x.shape}] ${x.dtype}, parameters ${params.map((p) => `[${p.shape}] ${p.dtype}`).join(', ')}`,
    );
  registerWasmNorm();
}

/** LLaMA RMSNorm, x [N, d] / sqrt(mean(x²) + eps) · w, on the wasm backend. */
export function wasmRmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  check('wasmRmsNorm', x, [w]);
  return tf.engine().runKernel(RMS, { x, w }, { eps }) as tf.Tensor2D;
}

/** torch.nn.LayerNorm over the last axis of x [N, d] (biased variance), on the wasm backend. */
export function wasmLayerNorm(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  check('wasmLayerNorm', x, [w, b]);
  return tf.engine().runKernel(LAYER, { x, w, b }, { eps }) as tf.Tensor2D;
}
