/**
 * The webgpu backend on a software Vulkan device, so the WGSL kernels run in `npm test` without a GPU.
 *
 * Debian's Chromium (provisioned for the webview tests) ships SwiftShader's Vulkan driver; Dawn accepts it as an
 * adapter, and the `libvulkan1` loader (scripts/provision/vulkan.sh) finds it through VK_DRIVER_FILES. Results
 * are exact fp32 arithmetic on the CPU, which is what parity tests need; speed is not representative.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { selectBackend } from '../../src/engine/backend';
import { tf } from '../../src/engine/tf';
import { Rng } from '../../src/data/rng';

export const SWIFTSHADER_ICD = process.env.SCULPT_TEST_VK_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Activates webgpu on SwiftShader (fails with the reason when it cannot: these tests are not optional). */
export async function useSoftwareWebGpu(): Promise<void> {
  if (tf.getBackend() === 'webgpu') return;
  if (!existsSync(SWIFTSHADER_ICD)) {
    throw new Error(
      `SwiftShader's Vulkan driver is missing (${SWIFTSHADER_ICD}); run \`npm run provision\` (Debian chromium)`,
    );
  }
  process.env.VK_DRIVER_FILES = SWIFTSHADER_ICD;
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  await selectBackend('webgpu');
}

/** Runs `f` on the cpu backend and returns its results as plain arrays, then restores webgpu. */
export async function onCpu(f: () => tf.Tensor | tf.Tensor[]): Promise<number[][]> {
  await tf.setBackend('cpu');
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const arrays = list.map((t) => Array.from(t.dataSync()));
  tf.dispose(list);
  await tf.setBackend('webgpu');
  return arrays;
}

/** max |a - b| / max(max |b|, floor): the relative error the parity criteria use. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = floor;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/** n deterministic values in [lo, hi) from the engine's seeded Rng, so a failing case reproduces. */
export function seededValues(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
}

/** Reads tensors back (asynchronously: webgpu has no synchronous read in Node) and disposes them. */
export async function download(ts: tf.Tensor[]): Promise<Float32Array[]> {
  const out = await Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
  tf.dispose(ts);
  return out;
}

/** The programs (shader keys, ours start with `sculpt_`) that `f` dispatched through the webgpu backend. */
export async function programsRun<T>(f: () => T | Promise<T>): Promise<{ value: T; keys: string[] }> {
  type Runner = (program: { shaderKey: string }, ...rest: unknown[]) => unknown;
  const backend = tf.backend() as unknown as { runWebGPUProgram: Runner };
  const original = backend.runWebGPUProgram;
  const keys: string[] = [];
  backend.runWebGPUProgram = function (this: unknown, program, ...rest) {
    keys.push(program.shaderKey);
    return original.call(this, program, ...rest);
  };
  try {
    return { value: await f(), keys };
  } finally {
    delete (backend as Partial<typeof backend>).runWebGPUProgram; // back to the prototype's method
  }
}
