/**
 * Fused rotary embedding for the wasm backend, in TypeScript on the tensors where they lie in the wasm heap (as
 * wasm-cross-entropy.ts): y = x·cos + rotate_half(x)·sin, rotate_half(x) = [-x₂, x₁] over the halves of the last
 * axis (HF's convention), x [B, T, H, D] and cos, sin broadcast against it ([1, T, 1, D] without position ids,
 * [B, T, 1, D] with them, as decoder.ts builds them).
 *
 * As tfjs ops (layers.ts's applyRope) that is a split, a negation, a concat and three elementwise kernels, each
 * writing a fresh [B, T, H, D] tensor, and about as many again backward; here one pass each way:
 *   forward   y₁ = x₁·c₁ - x₂·s₁,   y₂ = x₂·c₂ + x₁·s₂
 *   backward  dx₁ = dy₁·c₁ + dy₂·s₂,  dx₂ = dy₂·c₂ - dy₁·s₁   (the transpose of the forward's linear map in x)
 * in float64, each output rounded to float32 once.
 *
 * The gradient is registered for the kernel (tf.registerGradient) rather than built with tf.customGrad, whose
 * gradient function must return every input's gradient at once: tfjs calls a registered gradient input by input,
 * only for the inputs on the path to what is differentiated. cos and sin come from constant tables in the
 * models, so their gradients (sums of dy·x and dy·rotate_half(x) over the broadcast axes, as tf ops) are built
 * only when something asks for them.
 *
 * Heads whose half is a multiple of four run in the SIMD module (simd/kernels.wat), in float32 with the tf ops'
 * order of operations; SCULPT_WASM_UNFUSED naming `simd` keeps the TypeScript below.
 */
import { tf } from '../tf';
import { registerHeapKernels, type WasmHeapBackend } from './wasm-heap';
import { simdIfEnabled } from './simd/module';

const FORWARD = 'SculptRope';
const BACKWARD = 'SculptRopeGrad';

let registered = false;

/** Registers both kernels on the wasm backend and the forward's gradient (once; wasm-extra.ts calls it). */
export function registerWasmRope(): void {
  if (registered) return;
  registered = true;
  registerHeapKernels({
    [FORWARD]: (b, { x, cos, sin }) => rope(b, x!, cos!, sin!, false),
    [BACKWARD]: (b, { x, cos, sin }) => rope(b, x!, cos!, sin!, true),
  });
  if (!tf.getGradient(FORWARD)) {
    tf.registerGradient({
      kernelName: FORWARD,
      inputsToSave: ['x', 'cos', 'sin'],
      gradFunc: (dy, saved) => {
        const g = dy as tf.Tensor;
        const [x, cos, sin] = saved;
        return {
          x: () => tf.engine().runKernel(BACKWARD, { x: g, cos, sin }) as tf.Tensor,
          cos: () => sumTo(g.mul(x), cos.shape),
          sin: () => sumTo(g.mul(rotateHalf(x)), sin.shape),
        };
      },
    });
  }
}

/** rotate_half as tf ops (the rarely needed cos/sin gradients only). */
function rotateHalf(x: tf.Tensor): tf.Tensor {
  const [x1, x2] = tf.split(x, 2, 3);
  return tf.concat([x2.neg(), x1], 3);
}

/** t summed over the axes along which `shape` (same rank) was broadcast to t's. */
function sumTo(t: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = shape.flatMap((n, i) => (n === 1 && t.shape[i] !== 1 ? [i] : []));
  return axes.length ? t.sum(axes, true) : t;
}

/** Element strides of a [B|1, T|1, H|1, D] operand read against [B, T, H, D]: 0 along its broadcast axes. */
function broadcastStrides(shape: number[]): [number, number, number] {
  const [, t, h, d] = shape;
  return [shape[0] === 1 ? 0 : t * h * d, t === 1 ? 0 : h * d, h === 1 ? 0 : d];
}

/** The forward (`transposed` false) or, on dy in place of x, the backward map. */
function rope(
  b: WasmHeapBackend,
  xInfo: tf.TensorInfo,
  cosInfo: tf.TensorInfo,
  sinInfo: tf.TensorInfo,
  transposed: boolean,
): tf.TensorInfo {
  const [B, T, H, D] = xInfo.shape;
  const outInfo = b.makeOutput(xInfo.shape, 'float32');
  // Views are taken after every allocation: an allocation that grows the heap detaches the views before it.
  const x = b.typedArrayFromHeap(xInfo) as Float32Array;
  const c = b.typedArrayFromHeap(cosInfo) as Float32Array;
  const s = b.typedArrayFromHeap(sinInfo) as Float32Array;
  const y = b.typedArrayFromHeap(outInfo) as Float32Array;
  const half = D / 2;
  const [cb, ct, ch] = broadcastStrides(cosInfo.shape);
  const [sb, st, sh] = broadcastStrides(sinInfo.shape);
  const simd = simdIfEnabled(b, half % 4 === 0);
  if (simd) {
    // The module takes byte strides.
    const [cbb, ctb, chb, sbb, stb, shb] = [cb, ct, ch, sb, st, sh].map((e) => 4 * e);
    simd.rope(
      x.byteOffset,
      c.byteOffset,
      s.byteOffset,
      y.byteOffset,
      B,
      T,
      H,
      D,
      cbb,
      ctb,
      chb,
      sbb,
      stb,
      shb,
      +transposed,
    );
    return outInfo;
  }
  let xo = 0;
  for (let bi = 0; bi < B; bi++) {
    for (let t = 0; t < T; t++) {
      const cRow = bi * cb + t * ct;
      const sRow = bi * sb + t * st;
      for (let h = 0; h < H; h++, xo += D) {
        const co = cRow + h * ch;
        const so = sRow + h * sh;
        // The sign of the x₁·s term and which half of sin meets which half of x is all that differs.
        if (transposed) {
          for (let j = 0; j < half; j++) {
            const g1 = x[xo + j];
            const g2 = x[xo + half + j];
            y[xo + j] = g1 * c[co + j] + g2 * s[so + half + j];
            y[xo + half + j] = g2 * c[co + half + j] - g1 * s[so + j];
          }
        } else {
          for (let j = 0; j < half; j++) {
            const x1 = x[xo + j];
            const x2 = x[xo + half + j];
            y[xo + j] = x1 * c[co + j] - x2 * s[so + j];
            y[xo + half + j] = x2 * c[co + half + j] + x1 * s[so + half + j];
          }
        }
      }
    }
  }
  return outInfo;
}

/**
 * Whether the kernel takes these operands: float32, x [B, T, H, D] with D even and not empty, cos and sin 4-D
 * with D last and every other axis 1 or x's. Anything else stays with the tf ops.
 */
export function wasmRopeApplies(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): boolean {
  const shape = x.shape as number[];
  if (shape.length !== 4 || x.dtype !== 'float32' || x.size === 0 || shape[3] % 2 !== 0) return false;
  return [cos, sin].every(
    (t) => t.dtype === 'float32' && t.rank === 4 && t.shape.every((n, i) => n === shape[i] || (i < 3 && n === 1)),
  );
}

/** x·cos + rotate_half(x)·sin in one pass each way, for operands wasmRopeApplies takes. Wasm only. */
export function wasmRope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  if (tf.getBackend() !== 'wasm') throw new Error(`wasmRope needs the wasm backend (active: ${tf.getBackend()})`);
  if (!wasmRopeApplies(x, cos, sin))
    throw new Error(`wasmRope: unsupported operands x [${x.shape}], cos [${cos.shape}], sin [${sin.shape}]`);
  registerWasmRope();
  return tf.engine().runKernel(FORWARD, { x, cos, sin }) as tf.Tensor4D;
}
