/**
 * What the fused wasm kernels (wasm-*.ts) use of the tfjs wasm backend: each tensor's data where it lies in the
 * wasm heap, and fresh outputs there. One registration for all of them, so a kernel file lists its kernels only.
 */
import { tf } from '../tf';

export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** A kernel over the heap: the backend, the named inputs and the attributes, as tfjs hands them over. */
export type HeapKernel = (
  b: WasmHeapBackend,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
) => tf.TensorInfo | tf.TensorInfo[];

/** Registers each kernel on the wasm backend, unless one of that name is there already. */
export function registerHeapKernels(kernels: Record<string, HeapKernel>): void {
  for (const [kernelName, f] of Object.entries(kernels)) {
    if (tf.getKernel(kernelName, 'wasm')) continue;
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => f(backend as unknown as WasmHeapBackend, inputs, attrs ?? {}),
    });
  }
}
