/**
 * The wasm backend's GatherV2 as block copies on the wasm heap. tfjs's wasm kernel computes every element's
 * source through strides; an embedding lookup (the 8192 x 128 table at 1024 token ids) took 5.5 ms of a
 * 110 ms training step of the base model, and the two rotary-table lookups 1.3 ms each, for what is a copy of
 * one contiguous slice per index. Here each index copies its slice with one `TypedArray.set`, the same values
 * bit for bit (a gather does no arithmetic).
 *
 * Taken: batchDims 0, any axis, any dtype the heap holds as a typed array. Anything else (batched gathers), and
 * every gather while SCULPT_WASM_UNFUSED names `gather`, goes to tfjs's own kernel, so switching is a flag, not a
 * re-registration. The gradient is unchanged: it is registered by kernel name (UnsortedSegmentSum, wasm-extra.ts).
 */
import { tf } from '../tf';
import { useWasmFused } from './webgpu/switches';
import { takeWasmKernel, type WasmHeapBackend } from './wasm-heap';

interface GatherAttrs {
  axis: number;
  batchDims: number;
}

/** Gathers the block copy has served in this process (what tests and profiles check it by). */
export const wasmGatherServed = { count: 0 };

/** Puts the block-copy gather in front of tfjs's wasm GatherV2 (tfjs's kernel stays the fallback). */
export function registerWasmGather(): void {
  takeWasmKernel(tf.GatherV2, (args) =>
    useWasmFused('gather')
      ? gatherSlices(
          args.backend as unknown as WasmHeapBackend,
          args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo },
          args.attrs as unknown as GatherAttrs,
        )
      : null,
  );
}

const size = (shape: readonly number[]): number => shape.reduce((p, d) => p * d, 1);

/** out[o, i, s] = x[o, indices[i], s] over x viewed as [outer, x.shape[axis], slice]; null when not taken. */
function gatherSlices(
  b: WasmHeapBackend,
  { x, indices }: { x: tf.TensorInfo; indices: tf.TensorInfo },
  { axis, batchDims }: GatherAttrs,
): tf.TensorInfo | null {
  if (batchDims !== 0 || indices.dtype !== 'int32' || x.dtype === 'string' || x.dtype === 'complex64') return null;
  const rank = x.shape.length;
  if (rank === 0) return null;
  const ax = axis < 0 ? axis + rank : axis;
  const dim = x.shape[ax];
  const outer = size(x.shape.slice(0, ax));
  const slice = size(x.shape.slice(ax + 1));
  const ids = b.typedArrayFromHeap(indices) as Int32Array;
  // The same check and message as tfjs's kernel: an index outside the axis is an error, not a zero or a wrap.
  for (let i = 0; i < ids.length; i++) {
    const index = ids[i];
    tf.util.assert(
      index <= dim - 1 && index >= 0,
      () => `GatherV2: the index value ${index} is not in [0, ${dim - 1}]`,
    );
  }
  const out = b.makeOutput([...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)], x.dtype);
  wasmGatherServed.count++;
  if (size(out.shape) === 0) return out;
  // x and out share a dtype, so both views are of one typed-array kind; Float32Array stands for it.
  const src = b.typedArrayFromHeap(x) as Float32Array;
  const dst = b.typedArrayFromHeap(out) as Float32Array;
  const n = ids.length;
  for (let o = 0; o < outer; o++) {
    const from = o * dim * slice;
    const to = o * n * slice;
    if (slice === 1) {
      for (let i = 0; i < n; i++) dst[to + i] = src[from + ids[i]];
    } else {
      for (let i = 0; i < n; i++) {
        const s = from + ids[i] * slice;
        dst.set(src.subarray(s, s + slice), to + i * slice);
      }
    }
  }
  return out;
}
