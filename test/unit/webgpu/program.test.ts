import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { runKernel, WORKGROUP_INDEX } from '../../../src/engine/kernels/webgpu/program';
import { useSoftwareWebGpu } from '../../helpers/webgpu';

test('runKernel dispatches our WGSL with program-defined uniforms and a folded workgroup index', async () => {
  await useSoftwareWebGpu();
  const n = 1000;
  const x = tf.range(0, n, 1, 'float32');
  const y = runKernel(
    {
      key: 'axpb_test',
      variableNames: ['X'],
      outputShape: [n],
      workgroupSize: [64, 1, 1],
      workgroups: Math.ceil(n / 64),
      uniforms: 'n : i32, a : f32, b : f32,',
      code: `fn main() {
        let i = ${WORKGROUP_INDEX} * 64 + i32(localId.x);
        if (i < uniforms.n) { result[i] = uniforms.a * X[i] + uniforms.b; }
      }`,
    },
    [x],
    [{ type: 'int32', data: [n] }, { type: 'float32', data: [2] }, { type: 'float32', data: [0.5] }],
  );
  const out = await y.data();
  assert.equal(out.length, n);
  for (let i = 0; i < n; i += 97) assert.equal(out[i], 2 * i + 0.5);
  assert.equal(out[n - 1], 2 * (n - 1) + 0.5);
  tf.dispose([x, y]);
});
