/**
 * The parts of the tfjs webgpu backend (@tensorflow/tfjs-backend-webgpu 4.22 internals) that our multi-buffer
 * kernels use: the device, the backend's command encoder and each tensor's GPU buffer. tfjs programs have one
 * output and at most 8 storage bindings; kernels that update many buffers at once record their own passes and
 * copies into the backend's encoder, in order with its own dispatches.
 */
import { tf } from '../../tf';

/** What this module uses of the tfjs webgpu backend (internals of @tensorflow/tfjs-backend-webgpu 4.22). */
interface TensorDataLike {
  resource?: unknown;
  values?: unknown;
}
export interface WebGpuBackendInternals {
  device: GPUDeviceLike;
  queue: { writeBuffer(buffer: unknown, offset: number, data: ArrayBufferView): void };
  commandEncoder: CommandEncoderLike | null;
  tensorMap: { get(dataId: object): TensorDataLike };
  commandQueueOwnedIds: WeakSet<object>;
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  makeTensorInfo(shape: number[], dtype: string): { dataId: object; shape: number[]; dtype: string };
}
export interface GpuBufferLike {
  destroy(): void;
}
interface GPUDeviceLike {
  createBuffer(desc: { size: number; usage: number; label?: string }): GpuBufferLike;
  createShaderModule(desc: { code: string; label?: string }): unknown;
  createComputePipeline(desc: unknown): { getBindGroupLayout(i: number): unknown };
  createBindGroup(desc: unknown): unknown;
}
interface CommandEncoderLike {
  copyBufferToBuffer(src: unknown, srcOffset: number, dst: unknown, dstOffset: number, size: number): void;
  beginComputePass(desc?: unknown): {
    setPipeline(p: unknown): void;
    setBindGroup(i: number, g: unknown): void;
    dispatchWorkgroups(x: number, y?: number, z?: number): void;
    end(): void;
  };
}

// GPUBufferUsage / GPUMapMode values from the WebGPU spec (the globals exist only once Dawn is loaded).
export const USAGE = { COPY_SRC: 0x0004, COPY_DST: 0x0008, UNIFORM: 0x0040, STORAGE: 0x0080 };

export function webgpuBackend(who: string): WebGpuBackendInternals {
  if (tf.getBackend() !== 'webgpu') throw new Error(`${who} needs the webgpu backend (active: ${tf.getBackend()})`);
  return tf.backend() as unknown as WebGpuBackendInternals;
}

/** The backend's command encoder with no compute pass open, so copies and our own pass can be recorded. */
export function encoder(b: WebGpuBackendInternals): CommandEncoderLike {
  b.ensureCommandEncoderReady();
  b.endComputePassEncoder();
  return b.commandEncoder!;
}

export function bufferOf(b: WebGpuBackendInternals, t: { dataId: object }): unknown {
  b.uploadToGPU(t.dataId);
  const res = b.tensorMap.get(t.dataId).resource;
  if (!res) throw new Error('a tensor has no GPU buffer');
  return res;
}

/**
 * Whether t's values can be read synchronously: always off webgpu; on webgpu only while the tensor still holds
 * the host copy it was created from (tfjs-webgpu drops it at the first upload, and has no synchronous readback
 * in Node).
 */
export function hostReadable(t: tf.Tensor): boolean {
  if (tf.getBackend() !== 'webgpu') return true;
  const data = (tf.backend() as unknown as WebGpuBackendInternals).tensorMap.get(t.dataId);
  return data?.values != null;
}
