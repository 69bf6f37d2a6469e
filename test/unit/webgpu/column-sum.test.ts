import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { columnSum } from '../../../src/engine/kernels/webgpu/column-sum';
import { matMul } from '../../../src/engine/kernels/matmul';
import { onCpu, programsRun, relError, seededValues, useSoftwareWebGpu } from '../../helpers/webgpu';

test('columnSum equals tf.sum over rows, for row counts around the block size and odd widths (rel. error <= 1e-5)', async () => {
  await useSoftwareWebGpu();
  for (const [n, c] of [
    [1, 5],
    [63, 300],
    [64, 7],
    [65, 257],
    [4200, 3],
  ]) {
    const [ref] = await onCpu(() => tf.tensor2d(seededValues(n * c, n), [n, c]).sum(0));
    const x = tf.tensor2d(seededValues(n * c, n), [n, c]);
    const s = columnSum(x);
    assert.deepEqual(s.shape, [c]);
    const got = await s.data();
    assert.ok(relError(got, ref) <= 1e-5, `${n}x${c}: rel error ${relError(got, ref)}`);
    tf.dispose([x, s]);
  }
});

for (const [tA, tB] of [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const) {
  test(`matMul with bias on webgpu (transposeA=${tA}, transposeB=${tB}): value and all three gradients match cpu (<= 1e-5)`, async () => {
    await useSoftwareWebGpu();
    const [m, k, n] = [37, 19, 23];
    const aShape: [number, number] = tA ? [k, m] : [m, k];
    const bShape: [number, number] = tB ? [n, k] : [k, n];
    const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => matMul(a, b, tA, tB, c);
    const inputs = () => [
      tf.tensor2d(seededValues(m * k, 1), aShape),
      tf.tensor2d(seededValues(k * n, 2), bShape),
      tf.tensor1d(seededValues(n, 3)),
    ];
    const dy = () => tf.tensor2d(seededValues(m * n, 4), [m, n]);
    const run = () => {
      const [a, b, c] = inputs();
      return [f(a, b, c), ...tf.grads((x, y, z) => f(x, y, z))([a, b, c], dy())];
    };
    const ref = await onCpu(run);
    const { value: outs, keys } = await programsRun(() => tf.tidy(run));
    assert.ok(keys.includes('sculpt_column_sum'), `the bias gradient went through columnSum: ${keys.join(' ')}`);
    const got = await Promise.all(outs.map(async (t) => Array.from(await t.data())));
    ['value', 'da', 'db', 'dbias'].forEach((what, i) =>
      assert.ok(relError(got[i], ref[i]) <= 1e-5, `${what}: rel error ${relError(got[i], ref[i])}`),
    );
  });
}
