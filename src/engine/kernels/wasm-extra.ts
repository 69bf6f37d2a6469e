/**
 * Kernels the tfjs wasm backend lacks but the engine needs.
 *
 * UnsortedSegmentSum is the gradient of `tf.gather`, i.e. of every embedding lookup. Without it a training
 * step fails on wasm. The scatter-add below runs in JavaScript over the wasm heap: O(ids x width), no
 * one-hot matrix, and it is exact (the same summation order as the cpu backend's kernel).
 * The fused cross-entropy's kernels (wasm-cross-entropy.ts), the optimizer's (wasm-adamw.ts) and the layers'
 * (wasm-rope.ts, wasm-norm.ts, wasm-activation.ts) are registered here too, and the block-copy gather
 * (wasm-gather.ts) in front of tfjs's GatherV2, the Identity that shares its input's buffer (wasm-identity.ts), and
 * adaptive SVD's batched projection and attention on the BLAS (blas-projection.ts, blas-attention.ts).
 */
import { tf } from '../tf';
import { registerWasmCrossEntropy } from './wasm-cross-entropy';
import { registerWasmAdamW } from './wasm-adamw';
import { registerWasmRope } from './wasm-rope';
import { registerWasmNorm } from './wasm-norm';
import { registerWasmActivation } from './wasm-activation';
import { registerWasmGather } from './wasm-gather';
import { registerWasmIdentity } from './wasm-identity';
import { registerBlasProjection } from './blas-projection';
import { registerBlasAttention } from './blas-attention';

interface WasmBackendLike {
  readSync(dataId: unknown): ArrayLike<number>;
  makeOutput(shape: number[], dtype: string): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array;
}

let registered = false;

export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  registerWasmCrossEntropy();
  registerWasmAdamW();
  registerWasmRope();
  registerWasmNorm();
  registerWasmActivation();
  registerWasmGather();
  registerWasmIdentity();
  registerBlasProjection();
  registerBlasAttention();
  if (tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const { numSegments } = attrs as unknown as { numSegments: number };
      const b = backend as unknown as WasmBackendLike;
      return unsortedSegmentSum(b, x, segmentIds, numSegments);
    },
  });
}

function unsortedSegmentSum(
  b: WasmBackendLike,
  x: tf.TensorInfo,
  segmentIds: tf.TensorInfo,
  numSegments: number,
): tf.TensorInfo {
  // tfjs only calls this with segmentIds of x's leading dimension (gather's gradient flattens to 1-D ids).
  const rows = segmentIds.shape.reduce((a, d) => a * d, 1);
  const width = rows === 0 ? 0 : x.shape.slice(segmentIds.shape.length).reduce((a, d) => a * d, 1);
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const xs = b.readSync(x.dataId);
  const ids = b.readSync(segmentIds.dataId);
  const out = b.makeOutput(outShape, x.dtype);
  const o = b.typedArrayFromHeap(out);
  o.fill(0);
  for (let r = 0; r < rows; r++) {
    const seg = ids[r];
    if (seg < 0 || seg >= numSegments) continue; // tf semantics: out-of-range ids are dropped
    const src = r * width;
    const dst = seg * width;
    for (let c = 0; c < width; c++) o[dst + c] += xs[src + c];
  }
  return out;
}
