/**
 * The wasm backend's Identity without the copy. tfjs's wasm kernel copies its input into a fresh buffer, and the
 * engine runs Identity for every `clone`, which is how it saves each kernel's inputs and outputs for the
 * backward pass: 231 copies in a training step of the base model (6.5 ms of 77, answer-only). Here the output
 * shares the input's buffer and bumps its reference count, as tfjs's cpu backend and the wasm backend's own
 * Reshape do; the buffer is freed when its last holder is disposed.
 *
 * Sharing is safe because no kernel writes into its inputs: tfjs's kernels and the engine's own (wasm-*.ts, the
 * SIMD module, the BLAS products) always write fresh outputs, and a variable's update replaces its buffer
 * (wasm-adamw.ts). Strings, and every Identity while SCULPT_WASM_UNFUSED names `identity`, go to tfjs's kernel.
 */
import { tf } from '../tf';
import { useWasmFused } from './webgpu/switches';
import { takeWasmKernel, type WasmHeapBackend } from './wasm-heap';

/** Puts the sharing Identity in front of tfjs's wasm kernel (tfjs's kernel stays the fallback). */
export function registerWasmIdentity(): void {
  takeWasmKernel(tf.Identity, ({ inputs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string' || !useWasmFused('identity')) return null;
    (backend as unknown as WasmHeapBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
}
