/**
 * Which fused kernels are in use. All are on by default on their backend:
 * - webgpu: SCULPT_WEBGPU_UNFUSED=attention,norm,xent,adamw,clip,activation,bias (or `all`) turns some off;
 * - wasm (the kernels in TypeScript on the wasm heap: ../wasm-cross-entropy.ts for the loss, ../wasm-adamw.ts for
 *   the AdamW update and the clipping norm, ../wasm-rope.ts for the rotary embedding, ../wasm-norm.ts for RMSNorm
 *   and LayerNorm, ../wasm-activation.ts for silu and gelu_new, ../wasm-gather.ts for GatherV2, ../wasm-identity.ts
 *   for Identity, ../blas-projection.ts for adaptive SVD's projections and ../blas-attention.ts for attention, both
 *   on a BLAS): SCULPT_WASM_UNFUSED=xent,adamw,clip,rope,norm,activation,gather,identity,projection,attention (or
 *   `all`) does; `simd` keeps the fused
 *   kernels but runs them in TypeScript instead of the WebAssembly SIMD module (../simd/kernels.wat).
 * Either compares against plain tfjs ops (`scripts/gpu-check` measures both on webgpu) or isolates a suspected
 * kernel bug.
 */
import { tf } from '../../tf';

export const FUSED_KERNELS = ['attention', 'norm', 'xent', 'adamw', 'clip', 'activation', 'bias'] as const;
export type FusedKernel = (typeof FUSED_KERNELS)[number];

export const WASM_FUSED_KERNELS = [
  'xent',
  'adamw',
  'clip',
  'rope',
  'norm',
  'activation',
  'gather',
  'identity',
  'projection',
  'attention',
  'simd',
] as const;
export type WasmFusedKernel = (typeof WASM_FUSED_KERNELS)[number];

/** The last parse of each variable, redone only when its value changes (tests and benches flip it). */
const parsed = new Map<string, { raw: string; off: Set<string> }>();

/** The kernels switched off; a name that is not a kernel is an error (a typo would silently do nothing). */
function switchedOff(variable: string, kernels: readonly string[]): Set<string> {
  const raw = process.env[variable] ?? '';
  const last = parsed.get(variable);
  if (last?.raw === raw) return last.off;
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s);
  const unknown = names.filter((n) => n !== 'all' && !kernels.includes(n));
  if (unknown.length) {
    throw new Error(
      `${variable}: unknown kernel ${unknown.map((n) => `'${n}'`).join(', ')}; expected 'all' or names from ${kernels.join(', ')}`,
    );
  }
  const off = new Set(names.includes('all') ? kernels : names);
  parsed.set(variable, { raw, off });
  return off;
}

export function useFused(kernel: FusedKernel): boolean {
  return tf.getBackend() === 'webgpu' && !switchedOff('SCULPT_WEBGPU_UNFUSED', FUSED_KERNELS).has(kernel);
}

export function useWasmFused(kernel: WasmFusedKernel): boolean {
  return tf.getBackend() === 'wasm' && !switchedOff('SCULPT_WASM_UNFUSED', WASM_FUSED_KERNELS).has(kernel);
}
