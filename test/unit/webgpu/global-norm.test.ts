import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { clipByGlobalNorm } from '../../../src/engine/optim';
import { fusedGlobalNorm } from '../../../src/engine/kernels/webgpu/global-norm';
import { seededValues, useSoftwareWebGpu } from '../../helpers/webgpu';

test('fusedGlobalNorm equals the float64 norm of many tensors, sizes past one pass-1 stride included', async () => {
  await useSoftwareWebGpu();
  // 300k elements is more than PARTIALS x WORKGROUP = 262144, so threads loop; odd sizes and an empty tensor too.
  const sizes = [7, 1, 300_001, 33, 0, 4097];
  const arrays = sizes.map((n, i) => seededValues(n, i + 3));
  const ts = arrays.map((a) => tf.tensor1d(a));
  let sq = 0;
  for (const a of arrays) for (const x of a) sq += x * x;
  const norm = fusedGlobalNorm(ts);
  assert.deepEqual(norm.shape, []);
  const got = (await norm.data())[0];
  // fp32 partial sums over ~3e5 squares: a relative error of 1e-5 is generous and still catches a lost tensor.
  assert.ok(Math.abs(got - Math.sqrt(sq)) / Math.sqrt(sq) < 1e-5, `norm ${got} vs ${Math.sqrt(sq)}`);
  // A second call with fewer elements reuses the staging buffer and must not see the first call's tail.
  const again = fusedGlobalNorm([ts[0]]);
  let sq0 = 0;
  for (const x of arrays[0]) sq0 += x * x;
  assert.ok(Math.abs((await again.data())[0] - Math.sqrt(sq0)) < 1e-5);
  tf.dispose([...ts, norm, again]);
});

test('clipByGlobalNorm on webgpu (fused norm) scales like the tfjs-op path', async () => {
  await useSoftwareWebGpu();
  const grads = new Map<string, tf.Tensor>([
    ['a', tf.tensor2d([3, 0, 0, 0], [2, 2])],
    ['b', tf.tensor1d([0, 4])],
  ]);
  const { grads: c, norm } = clipByGlobalNorm(grads, 1);
  assert.ok(norm);
  assert.ok(Math.abs((await norm.data())[0] - 5) < 1e-6);
  assert.ok(Math.abs((await c.get('a')!.data())[0] - 0.6) < 1e-6);
  assert.ok(Math.abs((await c.get('b')!.data())[1] - 0.8) < 1e-6);
  tf.dispose([...grads.values(), ...c.values(), norm]);
});
