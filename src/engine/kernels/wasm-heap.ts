/**
 * What the fused wasm kernels (wasm-*.ts) use of the tfjs wasm backend: each tensor's data where it lies in the
 * wasm heap, and fresh outputs there. One registration for all of them, so a kernel file lists its kernels only.
 */
import { tf } from '../tf';

export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  /** Frees a scratch tensor a kernel made and does not return (force: whatever its reference count). */
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  incRef(dataId: tf.DataId): void;
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

/** What tfjs hands a kernel function. */
export type KernelArgs = Parameters<tf.KernelFunc>[0];

/** tfjs's kernels that `take` now fronts: each is wrapped once. */
const taken = new Set<string>();

/**
 * Puts `take` in front of tfjs's own wasm kernel of this name: what it returns serves, null hands the call to tfjs's
 * kernel (a case it does not take, or its path switched off), so switching is a flag, not a re-registration. The
 * original's setupFunc stays: it binds the wasm function the fallback calls. Once per kernel name.
 */
export function takeWasmKernel(kernelName: string, take: (args: KernelArgs) => tf.TensorInfo | null): void {
  if (taken.has(kernelName)) return;
  const original = tf.getKernel(kernelName, 'wasm');
  if (!original) return;
  taken.add(kernelName);
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ ...original, kernelFunc: (args) => take(args) ?? original.kernelFunc(args) });
}
