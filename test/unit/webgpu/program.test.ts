import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { runKernel, WORKGROUP_INDEX } from '../../../src/engine/kernels/webgpu/program';
import { FUSED_KERNELS, useFused } from '../../../src/engine/kernels/webgpu/switches';
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
    [
      { type: 'int32', data: [n] },
      { type: 'float32', data: [2] },
      { type: 'float32', data: [0.5] },
    ],
  );
  const out = await y.data();
  assert.equal(out.length, n);
  for (let i = 0; i < n; i += 97) assert.equal(out[i], 2 * i + 0.5);
  assert.equal(out[n - 1], 2 * (n - 1) + 0.5);
  tf.dispose([x, y]);
  // Past 65535 workgroups the dispatch is folded into x·y; every workgroup still finds its own index once.
  const groups = 70_001;
  const idx = runKernel(
    {
      key: 'fold_test',
      variableNames: ['X'],
      outputShape: [groups],
      workgroupSize: [1, 1, 1],
      workgroups: groups,
      uniforms: 'n : i32,',
      code: `fn main() {
        let g = ${WORKGROUP_INDEX};
        if (g < uniforms.n) { result[g] = f32(g) + X[0]; }
      }`,
    },
    [tf.scalar(0.25)],
    [{ type: 'int32', data: [groups] }],
  );
  const got = await idx.data();
  for (let g = 0; g < groups; g++) if (got[g] !== g + 0.25) assert.fail(`workgroup ${g} wrote ${got[g]}`);
  idx.dispose();
});

test('SCULPT_WEBGPU_UNFUSED switches named kernels off, all of them with `all`, and rejects unknown names', async () => {
  await useSoftwareWebGpu();
  try {
    process.env.SCULPT_WEBGPU_UNFUSED = 'norm, xent';
    assert.equal(useFused('norm'), false);
    assert.equal(useFused('xent'), false);
    assert.equal(useFused('attention'), true);
    process.env.SCULPT_WEBGPU_UNFUSED = 'all';
    assert.ok(FUSED_KERNELS.every((k) => !useFused(k)));
    process.env.SCULPT_WEBGPU_UNFUSED = 'norm,atention';
    assert.throws(
      () => useFused('norm'),
      /SCULPT_WEBGPU_UNFUSED: unknown kernel 'atention'; expected 'all' or names from attention, norm/,
    );
  } finally {
    delete process.env.SCULPT_WEBGPU_UNFUSED;
  }
  assert.ok(
    FUSED_KERNELS.every((k) => useFused(k)),
    'all on by default',
  );
});
