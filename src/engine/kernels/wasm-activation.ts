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
 */
import { tf } from '../tf';
import { registerHeapKernels, type WasmHeapBackend } from './wasm-heap';
import { simdIfEnabled } from './simd/module';

export type WasmActivation = 'silu' | 'gelu_new';

const GELU_ARG = 'SculptGeluNewArg';
const GRAD: Record<WasmActivation, string> = { silu: 'SculptSiluGrad', gelu_new: 'SculptGeluNewGrad' };

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
  const n = x.length;
  const simd = simdIfEnabled(b);
  if (simd) {
    simd.activationGrad(x.byteOffset, g.byteOffset, dy.byteOffset, dx.byteOffset, n, name === 'silu' ? 0 : 1);
    return outInfo;
  }
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
  return outInfo;
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
