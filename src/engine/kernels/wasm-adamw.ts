/**
 * Fused AdamW update and gradient global norm for the wasm backend, the counterparts of webgpu/adamw.ts and
 * webgpu/global-norm.ts, in TypeScript on the tensors where they lie in the wasm heap (as wasm-cross-entropy.ts).
 *
 * As tfjs ops the optimizer's update is about ten scalar wasm kernels per variable (mul, add, square, div,
 * sqrt, sub, ...), each a pass over the variable writing a fresh tensor, and the global norm a square and a sum
 * per gradient plus an add tree. Here:
 *   SculptAdamW       one pass per variable over p, g, m, v  ->  p', m', v' (PyTorch's AdamW as optim.ts
 *                     states it: p (1 - lr wd), then the bias-corrected Adam step); arithmetic in float64,
 *                     each output rounded to float32 once
 *   SculptGlobalNorm  one pass over all gradients  ->  sqrt(Σ g²), the sum in float64
 * The outputs are fresh tensors: the variables' memory is never written in place, since a clone of a variable
 * (train-step.ts's pre-step snapshot) shares its data. The update runs in the SIMD module (simd/kernels.wat: the
 * same formula in float32, four lanes at a time, 4.6x faster) unless SCULPT_WASM_UNFUSED names `simd`, which
 * keeps the TypeScript below; the norm stays here (a float64 sum, already a small part of the step).
 */
import { tf } from '../tf';
import { registerHeapKernels, type WasmHeapBackend } from './wasm-heap';
import { simdIfEnabled } from './simd/module';

const ADAMW = 'SculptAdamW';
const GLOBAL_NORM = 'SculptGlobalNorm';

export interface AdamWAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** The optimizer step, 1-based, for the bias corrections 1 - beta^t. */
  step: number;
}

let registered = false;

/** Registers both kernels on the wasm backend (once; wasm-extra.ts calls it, and so does the first use). */
export function registerWasmAdamW(): void {
  if (registered) return;
  registered = true;
  registerHeapKernels({
    [ADAMW]: (b, { p, g, m, v }, attrs) => adamw(b, p!, g!, m!, v!, attrs as unknown as AdamWAttrs),
    // Any number of inputs, keyed by position (as tfjs's AddN takes them).
    [GLOBAL_NORM]: (b, inputs) => globalNorm(b, Object.values(inputs) as tf.TensorInfo[]),
  });
}

function adamw(
  b: WasmHeapBackend,
  pInfo: tf.TensorInfo,
  gInfo: tf.TensorInfo,
  mInfo: tf.TensorInfo,
  vInfo: tf.TensorInfo,
  a: AdamWAttrs,
): tf.TensorInfo[] {
  const pOut = b.makeOutput(pInfo.shape, 'float32');
  const mOut = b.makeOutput(pInfo.shape, 'float32');
  const vOut = b.makeOutput(pInfo.shape, 'float32');
  // Views are taken after every allocation: an allocation that grows the heap detaches the views before it.
  const p = b.typedArrayFromHeap(pInfo) as Float32Array;
  const g = b.typedArrayFromHeap(gInfo) as Float32Array;
  const m = b.typedArrayFromHeap(mInfo) as Float32Array;
  const v = b.typedArrayFromHeap(vInfo) as Float32Array;
  const p1 = b.typedArrayFromHeap(pOut) as Float32Array;
  const m1 = b.typedArrayFromHeap(mOut) as Float32Array;
  const v1 = b.typedArrayFromHeap(vOut) as Float32Array;
  const { lr, beta1, beta2, eps, weightDecay, step } = a;
  const decay = 1 - lr * weightDecay;
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const stepSize = lr / (1 - Math.pow(beta1, step));
  const invBc2 = 1 / (1 - Math.pow(beta2, step));
  const n = p.length;
  const simd = simdIfEnabled(b);
  if (simd) {
    const at = [p, g, m, v, p1, m1, v1].map((t) => t.byteOffset) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    simd.adamw(...at, n, decay, beta1, c1, beta2, c2, stepSize, invBc2, eps);
    return [pOut, mOut, vOut];
  }
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi = beta1 * m[i] + c1 * gi;
    const vi = beta2 * v[i] + c2 * gi * gi;
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = p[i] * decay - (mi / (Math.sqrt(vi * invBc2) + eps)) * stepSize;
  }
  return [pOut, mOut, vOut];
}

function globalNorm(b: WasmHeapBackend, xs: tf.TensorInfo[]): tf.TensorInfo {
  const out = b.makeOutput([], 'float32');
  // Four accumulators: one would chain every add on the previous (a float64 add's latency per element).
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (const info of xs) {
    const x = b.typedArrayFromHeap(info) as Float32Array;
    const n = x.length;
    const n4 = n - (n % 4);
    let i = 0;
    for (; i < n4; i += 4) {
      const x0 = x[i];
      const x1 = x[i + 1];
      const x2 = x[i + 2];
      const x3 = x[i + 3];
      s0 += x0 * x0;
      s1 += x1 * x1;
      s2 += x2 * x2;
      s3 += x3 * x3;
    }
    for (; i < n; i++) s0 += x[i] * x[i];
  }
  (b.typedArrayFromHeap(out) as Float32Array)[0] = Math.sqrt(s0 + s1 + s2 + s3);
  return out;
}

function assertWasm(what: string): void {
  if (tf.getBackend() !== 'wasm') throw new Error(`${what} needs the wasm backend (active: ${tf.getBackend()})`);
}

/**
 * One AdamW step of a variable: the new p, m, v as fresh tensors (the caller assigns them and disposes these).
 * All four float32 with p's size. Wasm only.
 */
export function wasmAdamW(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  attrs: AdamWAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  assertWasm('wasmAdamW');
  for (const [name, t] of [
    ['gradient', g],
    ['m', m],
    ['v', v],
  ] as const) {
    if (t.size !== p.size) throw new Error(`wasmAdamW: ${name} of shape [${t.shape}] for a variable [${p.shape}]`);
  }
  if ([p, g, m, v].some((t) => t.dtype !== 'float32')) throw new Error('wasmAdamW: float32 tensors only');
  registerWasmAdamW();
  const out = tf.engine().runKernel(ADAMW, { p, g, m, v }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return [out[0], out[1], out[2]];
}

/** sqrt(Σ over all tensors of Σ x²), accumulated in float64, as a float32 scalar. Float32 tensors; wasm only. */
export function wasmGlobalNorm(xs: readonly tf.Tensor[]): tf.Scalar {
  assertWasm('wasmGlobalNorm');
  if (xs.some((t) => t.dtype !== 'float32')) throw new Error('wasmGlobalNorm: float32 tensors only');
  const nonEmpty = xs.filter((t) => t.size > 0);
  if (nonEmpty.length === 0) return tf.scalar(0);
  registerWasmAdamW();
  return tf.engine().runKernel(GLOBAL_NORM, nonEmpty as unknown as tf.NamedTensorMap) as tf.Scalar;
}
