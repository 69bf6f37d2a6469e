/**
 * Which fused webgpu kernels are in use. All are on by default on the webgpu backend;
 * SCULPT_WEBGPU_UNFUSED=attention,norm,xent,adamw,clip,activation,bias (or `all`) turns some off, to compare against plain tfjs
 * ops (`scripts/gpu-check` measures both) or to isolate a suspected kernel bug.
 */
import { tf } from '../../tf';

export type FusedKernel = 'attention' | 'norm' | 'xent' | 'adamw' | 'clip' | 'activation' | 'bias';

export function useFused(kernel: FusedKernel): boolean {
  if (tf.getBackend() !== 'webgpu') return false;
  const off = (process.env.SCULPT_WEBGPU_UNFUSED ?? '').split(',').map((s) => s.trim());
  return !off.includes('all') && !off.includes(kernel);
}
