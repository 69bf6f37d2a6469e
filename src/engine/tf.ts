/**
 * The one place the engine imports TensorFlow.js from. Everything in src/engine uses `import { tf } from './tf'`
 * (or '../tf'), so the registrations below always run first:
 * - chained ops (`x.add(y)`) and gradients are not registered by tfjs-core alone;
 * - the cpu backend is imported through a binding, because a side-effect-only import of it is dropped by
 *   esbuild (the package declares `sideEffects`);
 * - the wasm backend registers itself on import; its .wasm files are located in backend.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';

/** Referenced so the bundler keeps the cpu backend's registration. */
export const cpuBackendClass: typeof MathBackendCPU = MathBackendCPU;

// PROD skips tfjs's debug-time checks and its console banners (e.g. the advice to install tfjs-node, which
// the backend selection already reports in a structured way).
tf.env().set('PROD', true);

export { tf };

/**
 * Sum of many same-shape tensors. tf.addN binds every input in one shader on webgpu, where a shader may bind
 * at most 8 storage buffers, so the sum goes in chunks of 7 (one add tree, no readback).
 */
export function addMany(list: readonly tf.Tensor[]): tf.Tensor {
  if (list.length === 0) throw new RangeError('addMany of no tensors');
  let level = [...list];
  while (level.length > 1) {
    const next: tf.Tensor[] = [];
    for (let i = 0; i < level.length; i += 7) {
      const chunk = level.slice(i, i + 7);
      next.push(chunk.length === 1 ? chunk[0] : tf.addN(chunk));
    }
    level = next;
  }
  return level[0];
}

/**
 * Runs `f` in tf.tidy and reads its result back asynchronously (the webgpu backend has no synchronous read in
 * Node), disposing the result.
 */
export async function readTidy(f: () => tf.Tensor): Promise<Float32Array> {
  const t = tf.tidy(f);
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}
