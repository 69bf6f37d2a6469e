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

export const SWIFTSHADER_ICD = process.env.SCULPT_TEST_VK_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Activates webgpu on SwiftShader (fails with the reason when it cannot: these tests are not optional). */
export async function useSoftwareWebGpu(): Promise<void> {
  if (tf.getBackend() === 'webgpu') return;
  if (!existsSync(SWIFTSHADER_ICD)) {
    throw new Error(`SwiftShader's Vulkan driver is missing (${SWIFTSHADER_ICD}); run \`npm run provision\` (Debian chromium)`);
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
