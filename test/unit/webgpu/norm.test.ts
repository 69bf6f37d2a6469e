/**
 * The fused RMSNorm / LayerNorm kernels against layers.ts's tf-op definitions on the cpu backend: output and
 * the gradients for x, w (and b) under a random upstream gradient, within relative error 1e-4 (relError:
 * max abs difference over max abs reference). Shapes cover rows that are not a multiple of anything, widths
 * below and above the 256 threads of a row workgroup, and widths that are not a multiple of 4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { fusedLayerNorm, fusedRmsNorm } from '../../../src/engine/kernels/webgpu/norm';
import { layerNorm, rmsNorm } from '../../../src/engine/models/layers';
import { download, onCpu, relError, seededValues, useSoftwareWebGpu } from '../../helpers/webgpu';

const TOL = 1e-4;

interface Case {
  rows: number;
  cols: number;
}

// 37 and 13 rows; 24 (< 256, multiple of 4), 50 (not a multiple of 4), 300 (> 256: two strided passes).
const CASES: Case[] = [
  { rows: 37, cols: 24 },
  { rows: 13, cols: 50 },
  { rows: 11, cols: 300 },
];

function check(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  const err = relError(got, want);
  assert.ok(err <= TOL, `${what}: relative error ${err.toExponential(2)} > ${TOL}`);
}

// First in the file: the pipeline cache is still free of our programs, so compiling them proves the routing.
test('layers.ts routes layerNorm and rmsNorm to the fused kernels on webgpu', async () => {
  await useSoftwareWebGpu();
  const compiled = () => Object.keys((tf.backend() as unknown as { pipelineCache: object }).pipelineCache);
  assert.deepEqual(
    compiled().filter((k) => k.startsWith('sculpt_norm_')),
    [],
  );
  const x = tf.tensor2d(seededValues(6 * 8, 8), [6, 8]);
  const w = tf.ones([8]);
  const b = tf.zeros([8]);
  tf.tidy(() => {
    layerNorm(x, w, b, 1e-5);
    rmsNorm(x, w, 1e-6);
  });
  tf.dispose([x, w, b]);
  for (const key of [
    'sculpt_norm_stats_layer',
    'sculpt_norm_apply_layer',
    'sculpt_norm_stats_rms',
    'sculpt_norm_apply_rms',
  ]) {
    assert.ok(
      compiled().some((k) => k.startsWith(key)),
      `${key} was not compiled`,
    );
  }
});

for (const { rows, cols } of CASES) {
  test(`fusedLayerNorm matches layerNorm forward and backward (${rows}x${cols})`, async () => {
    await useSoftwareWebGpu();
    // An offset mean, so a kernel that forgot to centre the row fails.
    const xv = seededValues(rows * cols, 1, 2, 4);
    const wv = seededValues(cols, 2, 0.5, 1.5);
    const bv = seededValues(cols, 3);
    const dyv = seededValues(rows * cols, 4);
    const eps = 1e-5;
    const run = (norm: typeof layerNorm) => () => {
      const x = tf.tensor2d(xv, [rows, cols]);
      const w = tf.tensor1d(wv);
      const b = tf.tensor1d(bv);
      const dy = tf.tensor2d(dyv, [rows, cols]);
      const y = norm(x, w, b, eps);
      const grads = tf.grads((a, c, d) => norm(a as tf.Tensor2D, c, d, eps))([x, w, b], dy);
      return [y, ...grads];
    };
    const want = await onCpu(run(layerNorm));
    const outs = tf.tidy(run(fusedLayerNorm));
    const got = await download(outs);
    ['y', 'dx', 'dw', 'db'].forEach((name, i) => check(name, got[i], want[i]));
  });

  test(`fusedRmsNorm matches rmsNorm forward and backward (${rows}x${cols})`, async () => {
    await useSoftwareWebGpu();
    const xv = seededValues(rows * cols, 5, -2, 3);
    const wv = seededValues(cols, 6, 0.5, 1.5);
    const dyv = seededValues(rows * cols, 7);
    const eps = 1e-6;
    const run = (norm: typeof rmsNorm) => () => {
      const x = tf.tensor2d(xv, [rows, cols]);
      const w = tf.tensor1d(wv);
      const dy = tf.tensor2d(dyv, [rows, cols]);
      const y = norm(x, w, eps);
      const grads = tf.grads((a, c) => norm(a as tf.Tensor2D, c, eps))([x, w], dy);
      return [y, ...grads];
    };
    const want = await onCpu(run(rmsNorm));
    const outs = tf.tidy(run(fusedRmsNorm));
    const got = await download(outs);
    ['y', 'dx', 'dw'].forEach((name, i) => check(name, got[i], want[i]));
  });
}
