import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { activation } from '../../../src/engine/models/layers';
import { fusedActivation } from '../../../src/engine/kernels/webgpu/activation';
import { onCpu, programsRun, relError, useSoftwareWebGpu } from '../../helpers/webgpu';

// Inputs from -60 to 60 (the tanh clamp and exp overflow regions included) and a random upstream gradient.
const N = 37;
const D = 29;
const xs = Float32Array.from({ length: N * D }, (_, i) => -60 + (120 * i) / (N * D - 1) + 0.013 * Math.sin(i));
const dys = Float32Array.from({ length: N * D }, (_, i) => Math.cos(0.37 * i));

for (const name of ['gelu_new', 'silu'] as const) {
  test(`fused ${name} on webgpu matches the tf-op activation on cpu, value and gradient (rel. error <= 1e-5)`, async () => {
    await useSoftwareWebGpu();
    const composed = (x: tf.Tensor2D) => activation(name, 'test')(x);
    const [refY, refG] = await onCpu(() => {
      const x = tf.tensor2d(xs, [N, D]);
      const dy = tf.tensor2d(dys, [N, D]);
      return [composed(x), tf.grad((t: tf.Tensor) => composed(t as tf.Tensor2D))(x, dy)];
    });
    const x = tf.tensor2d(xs, [N, D]);
    const dy = tf.tensor2d(dys, [N, D]);
    const y = fusedActivation(name, x);
    const g = tf.grad((t: tf.Tensor) => fusedActivation(name, t as tf.Tensor2D))(x, dy);
    const gotY = await y.data();
    const gotG = await g.data();
    assert.ok(gotY.every(Number.isFinite) && gotG.every(Number.isFinite), 'no NaN/inf at large |x|');
    assert.ok(relError(gotY, refY) <= 1e-5, `value rel error ${relError(gotY, refY)}`);
    assert.ok(relError(gotG, refG) <= 1e-5, `gradient rel error ${relError(gotG, refG)}`);
    // activation() itself routes to the fused kernel on webgpu.
    const { value: routed, keys } = await programsRun(() => composed(x));
    assert.deepEqual(keys, [`sculpt_act_${name}_fwd`]);
    assert.ok(relError(await routed.data(), gotY) === 0);
    routed.dispose();
    tf.dispose([x, dy, y, g]);
  });
}
