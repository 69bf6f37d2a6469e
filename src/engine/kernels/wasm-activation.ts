/**
 * SiLU (LLaMA's MLP gate) and GELU's tanh approximation (GPT-2's gelu_new) for the wasm backend, the
 * counterparts of webgpu/activation.ts. Both are x·σ(z): z = x for silu, and for gelu_new, since
 * (1 + tanh u)/2 = σ(2u), z = 2u = 2C(x + A x³).
 *
 * The sigmoid stays with tfjs's Sigmoid kernel, which on wasm is XNNPACK's (SIMD, on the backend's threads): a
 * JavaScript exponential per element is slower than it (about 8 ns an element against 4 at sculpt-base's MLP
 * shape), so a one-pass forward in TypeScript would lose to the two tf kernels it replaces. What is fused is
 * the rest, in TypeScript on the tensors where they lie in the wasm heap (as wasm-cross-entropy.ts):
 *   gelu_new forward  z = 2C(x + A x³) in one pass (the tf ops: four kernels, then a tanh, ~20 ns an element
 *                     on wasm, where σ(z) costs one Sigmoid); then g = σ(z), y = x·g
 *   backward          one pass from x and the saved g: dy·g·(1 + x(1 - g)) for silu,
 *                     dy·(g + x·2g(1 - g)·C(1 + 3A x²)) for gelu_new ((1 - tanh² u)/2 = 2g(1 - g)),
 *                     where autodiff of the tf ops runs six kernels (silu) or about a dozen (gelu_new)
 * in float64, each output rounded to float32 once. Wrapped with tf.customGrad: one input each.
 * The gelu_new argument and both backwards run in the SIMD module (simd/kernels.wat, float32, four lanes) unless
 * SCULPT_WASM_UNFUSED names `simd`.
 *
 * Gated MLPs (LLaMA's act(gate)·up, T5's gated-gelu) take wasmGated: the sigmoid as above, then h = (x·g)·u in one
 * pass instead of two Muls, and backwards one pass for both products (t = dh·u, du = dh·(x·g)) and the
 * activation's gradient on t in place, where autodiff runs two Muls, two Casts and the activation's kernel. Each
 * product is rounded to float32 where the Muls round it, so the numbers are the unfused ops' to the bit.
 */
import { tf } from '../tf';
import { registerHeapKernels, type WasmHeapBackend } from './wasm-heap';
import { simdIfEnabled } from './simd/module';

export type WasmActivation = 'silu' | 'gelu_new';

const GELU_ARG = 'SculptGeluNewArg';
const GRAD: Record<WasmActivation, string> = { silu: 'SculptSiluGrad', gelu_new: 'SculptGeluNewGrad' };
const GATED = 'SculptGated';
const GATED_GRAD: Record<WasmActivation, string> = { silu: 'SculptGatedSiluGrad', gelu_new: 'SculptGatedGeluNewGrad' };

const C = Math.sqrt(2 / Math.PI);
const A = 0.044715;

let registered = false;

/** Registers the kernels on the wasm backend (once; wasm-extra.ts calls it, and so does the first use). */
export function registerWasmActivation(): void {
  if (registered) return;
  registered = true;
  registerHeapKernels({
    [GELU_ARG]: (b, { x }) => geluArgument(b, x!),
    [GRAD.silu]: (b, { x, g, dy }) => backward(b, 'silu', x!, g!, dy!),
    [GRAD.gelu_new]: (b, { x, g, dy }) => backward(b, 'gelu_new', x!, g!, dy!),
    [GATED]: (b, { x, g, u }) => gatedForward(b, x!, g!, u!),
    [GATED_GRAD.silu]: (b, { x, g, u, dh }) => gatedBackward(b, 'silu', x!, g!, u!, dh!),
    [GATED_GRAD.gelu_new]: (b, { x, g, u, dh }) => gatedBackward(b, 'gelu_new', x!, g!, u!, dh!),
  });
}

/** z = 2C(x + A x³), the argument of gelu_new's sigmoid. */
function geluArgument(b: WasmHeapBackend, xInfo: tf.TensorInfo): tf.TensorInfo {
  const outInfo = b.makeOutput(xInfo.shape, 'float32');
  // Views are taken after every allocation: an allocation that grows the heap detaches the views before it.
  const x = b.typedArrayFromHeap(xInfo) as Float32Array;
  const z = b.typedArrayFromHeap(outInfo) as Float32Array;
  const simd = simdIfEnabled(b);
  if (simd) {
    simd.geluArgument(x.byteOffset, z.byteOffset, x.length);
    return outInfo;
  }
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    z[i] = 2 * C * (v + A * v * v * v);
  }
  return outInfo;
}

/** dy·f'(x) from x and g = σ(z). */
function backward(
  b: WasmHeapBackend,
  name: WasmActivation,
  xInfo: tf.TensorInfo,
  gInfo: tf.TensorInfo,
  dyInfo: tf.TensorInfo,
): tf.TensorInfo {
  const outInfo = b.makeOutput(xInfo.shape, 'float32');
  const x = b.typedArrayFromHeap(xInfo) as Float32Array;
  const g = b.typedArrayFromHeap(gInfo) as Float32Array;
  const dy = b.typedArrayFromHeap(dyInfo) as Float32Array;
  const dx = b.typedArrayFromHeap(outInfo) as Float32Array;
  activationGrad(b, name, x, g, dy, dx);
  return outInfo;
}

/** dx = dy·f'(x) from x and g; dx may be dy (each element is read before it is written). */
function activationGrad(
  b: WasmHeapBackend,
  name: WasmActivation,
  x: Float32Array,
  g: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
): void {
  const n = x.length;
  const simd = simdIfEnabled(b);
  if (simd) return simd.activationGrad(x.byteOffset, g.byteOffset, dy.byteOffset, dx.byteOffset, n, +(name !== 'silu'));
  if (name === 'silu') {
    for (let i = 0; i < n; i++) {
      const s = g[i];
      dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const s = g[i];
      dx[i] = dy[i] * (s + v * 2 * s * (1 - s) * C * (1 + 3 * A * v * v));
    }
  }
}

/** h = (x·g)·u. */
function gatedForward(b: WasmHeapBackend, xInfo: tf.TensorInfo, gInfo: tf.TensorInfo, uInfo: tf.TensorInfo) {
  const outInfo = b.makeOutput(xInfo.shape, 'float32');
  const [x, g, u, h] = [xInfo, gInfo, uInfo, outInfo].map((t) => b.typedArrayFromHeap(t) as Float32Array);
  const simd = simdIfEnabled(b);
  if (simd) simd.gatedForward(x.byteOffset, g.byteOffset, u.byteOffset, h.byteOffset, x.length);
  else for (let i = 0; i < x.length; i++) h[i] = Math.fround(x[i] * g[i]) * u[i];
  return outInfo;
}

/** [dx, du] of h = act(x)·u from dh: t = dh·u, dx = t·act'(x) in place, du = dh·(x·g). */
function gatedBackward(
  b: WasmHeapBackend,
  name: WasmActivation,
  xInfo: tf.TensorInfo,
  gInfo: tf.TensorInfo,
  uInfo: tf.TensorInfo,
  dhInfo: tf.TensorInfo,
): tf.TensorInfo[] {
  const dxInfo = b.makeOutput(xInfo.shape, 'float32');
  const duInfo = b.makeOutput(xInfo.shape, 'float32');
  const [x, g, u, dh, dx, du] = [xInfo, gInfo, uInfo, dhInfo, dxInfo, duInfo].map(
    (t) => b.typedArrayFromHeap(t) as Float32Array,
  );
  const simd = simdIfEnabled(b);
  if (simd)
    simd.gatedGradProducts(
      x.byteOffset,
      g.byteOffset,
      u.byteOffset,
      dh.byteOffset,
      dx.byteOffset,
      du.byteOffset,
      x.length,
    );
  else
    for (let i = 0; i < x.length; i++) {
      dx[i] = dh[i] * u[i];
      du[i] = dh[i] * Math.fround(x[i] * g[i]);
    }
  activationGrad(b, name, x, g, dx, dx);
  return [dxInfo, duInfo];
}

/** silu or gelu_new of a float32 tensor of any shape. Wasm only. */
export function wasmActivation(name: WasmActivation, x: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== 'wasm') throw new Error(`wasmActivation needs the wasm backend (active: ${tf.getBackend()})`);
  if (x.dtype !== 'float32') throw new Error(`wasmActivation: float32 only, got ${x.dtype}`);
  registerWasmActivation();
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const z = name === 'silu' ? input : (tf.engine().runKernel(GELU_ARG, { x: input }) as tf.Tensor);
    const g = tf.sigmoid(z);
    save([input, g]);
    return {
      value: input.mul(g),
      gradFunc: (dy: tf.Tensor, [sx, sg]: tf.Tensor[]) => [
        tf.engine().runKernel(GRAD[name], { x: sx, g: sg, dy }) as tf.Tensor,
      ],
    };
  });
  return f(x);
}

/** act(x)·u for float32 tensors of one shape (a gated MLP's gate and up projections). Wasm only. */
export function wasmGated(name: WasmActivation, x: tf.Tensor, u: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== 'wasm') throw new Error(`wasmGated needs the wasm backend (active: ${tf.getBackend()})`);
  if (x.dtype !== 'float32' || u.dtype !== 'float32')
    throw new Error(`wasmGated: float32 only, got ${x.dtype}, ${u.dtype}`);
  if (!tf.util.arraysEqual(x.shape, u.shape))
    throw new RangeError(`wasmGated: gate [${x.shape}] and up [${u.shape}] differ in shape`);
  registerWasmActivation();
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [gate, up, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const z = name === 'silu' ? gate : (tf.engine().runKernel(GELU_ARG, { x: gate }) as tf.Tensor);
    const g = tf.sigmoid(z);
    save([gate, g, up]);
    return {
      value: tf.engine().runKernel(GATED, { x: gate, g, u: up }) as tf.Tensor,
      gradFunc: (dh: tf.Tensor, [sx, sg, su]: tf.Tensor[]) =>
        tf.engine().runKernel(GATED_GRAD[name], { x: sx, g: sg, u: su, dh }) as unknown as tf.Tensor[],
    };
  });
  return f(x, u);
}
