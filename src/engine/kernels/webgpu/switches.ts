/**
 * Which fused webgpu kernels are in use. All are on by default on the webgpu backend;
 * SCULPT_WEBGPU_UNFUSED=attention,norm,xent,adamw,clip,activation,bias (or `all`) turns some off, to compare
 * against plain tfjs ops (`scripts/gpu-check` measures both) or to isolate a suspected kernel bug.
 */
import { tf } from '../../tf';

export const FUSED_KERNELS = ['attention', 'norm', 'xent', 'adamw', 'clip', 'activation', 'bias'] as const;
export type FusedKernel = (typeof FUSED_KERNELS)[number];

let parsed: { raw: string; off: Set<string> } | null = null;

/** The kernels switched off; a name that is not a kernel is an error (a typo would silently do nothing). */
function switchedOff(): Set<string> {
  const raw = process.env.SCULPT_WEBGPU_UNFUSED ?? '';
  if (parsed?.raw === raw) return parsed.off;
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s);
  const unknown = names.filter((n) => n !== 'all' && !(FUSED_KERNELS as readonly string[]).includes(n));
  if (unknown.length) {
    throw new Error(
      `SCULPT_WEBGPU_UNFUSED: unknown kernel ${unknown.map((n) => `'${n}'`).join(', ')}; expected 'all' or names from ${FUSED_KERNELS.join(', ')}`,
    );
  }
  parsed = { raw, off: new Set(names.includes('all') ? FUSED_KERNELS : names) };
  return parsed.off;
}

export function useFused(kernel: FusedKernel): boolean {
  return tf.getBackend() === 'webgpu' && !switchedOff().has(kernel);
}
