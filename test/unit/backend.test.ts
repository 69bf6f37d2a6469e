import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendError, selectBackend } from '../../src/engine/backend';
import { tf } from '../../src/engine/tf';

test('cpu and wasm are selected and verified as the active backend', async () => {
  const cpu = await selectBackend('cpu');
  assert.equal(cpu.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  const wasm = await selectBackend('wasm');
  assert.equal(wasm.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(wasm.isGpu, false);
  assert.match(wasm.device, /WebAssembly/);
});

test('an explicit tensorflow request without tfjs-node names the backend, the reason and the fix', async () => {
  await assert.rejects(selectBackend('tensorflow'), (e: unknown) => {
    assert.ok(e instanceof BackendError);
    assert.equal(e.backend, 'tensorflow');
    assert.match(e.message, /@tensorflow\/tfjs-node-gpu is not installed/);
    assert.match(e.message, /Install @tensorflow\/tfjs-node-gpu/);
    return true;
  });
});

test('SCULPT_DAWN_NODE pointing nowhere is reported with the path', async () => {
  process.env.SCULPT_DAWN_NODE = '/nonexistent/dawn.node';
  try {
    await assert.rejects(selectBackend('webgpu'), (e: unknown) => {
      assert.ok(e instanceof BackendError);
      assert.equal(e.backend, 'webgpu');
      assert.match(e.message, /SCULPT_DAWN_NODE points to \/nonexistent\/dawn.node/);
      return true;
    });
  } finally {
    delete process.env.SCULPT_DAWN_NODE;
  }
});

test('auto picks a working backend and says why faster ones were passed over', async () => {
  const info = await selectBackend('auto');
  assert.equal(tf.getBackend(), info.name);
  if (info.name !== 'tensorflow')
    assert.ok(
      info.fallbacks.some((f) => f.startsWith('tensorflow:')),
      info.fallbacks.join('\n'),
    );
  if (info.name === 'wasm' || info.name === 'cpu') assert.ok(info.fallbacks.some((f) => f.startsWith('webgpu:')));
});

test('an unknown backend name is rejected with the valid choices', async () => {
  await assert.rejects(
    selectBackend('metal' as never),
    /backend 'metal' is not available: unknown backend name. Use one of: auto, webgpu/,
  );
});

test('the gradient of gather (embedding lookup) works on wasm and equals cpu', async () => {
  const vocab = 7;
  const width = 5;
  const ids = [3, 1, 3, 6, 0, 3, 2, 1];
  const table = Array.from({ length: vocab * width }, (_, i) => Math.sin(i * 0.37));
  const upstream = Array.from({ length: ids.length * width }, (_, i) => Math.cos(i * 0.11));
  const run = async (backend: 'cpu' | 'wasm') => {
    await selectBackend(backend);
    const before = tf.memory().numTensors;
    const w = tf.tensor2d(table, [vocab, width]);
    const idx = tf.tensor1d(ids, 'int32');
    const dy = tf.tensor2d(upstream, [ids.length, width]);
    const g = tf.grad((t: tf.Tensor) => tf.gather(t, idx).mul(dy).sum())(w);
    const out = Array.from(await g.data());
    tf.dispose([w, idx, dy, g]);
    assert.equal(tf.memory().numTensors, before, `${backend} leaked tensors`);
    return out;
  };
  const cpu = await run('cpu');
  const wasm = await run('wasm');
  // Hand check: row 3 collects three upstream rows, row 4 none, row 6 one.
  const expectRow = (r: number) =>
    Array.from({ length: width }, (_, c) =>
      ids.reduce((acc, id, k) => acc + (id === r ? upstream[k * width + c] : 0), 0),
    );
  for (const r of [0, 3, 4, 6]) {
    const got = wasm.slice(r * width, (r + 1) * width);
    expectRow(r).forEach((v, c) => assert.ok(Math.abs(got[c] - v) <= 1e-6, `row ${r} col ${c}: ${got[c]} vs ${v}`));
  }
  cpu.forEach((v, i) =>
    assert.ok(Math.abs(wasm[i] - v) <= 1e-6 * Math.max(1, Math.abs(v)), `element ${i}: wasm ${wasm[i]} cpu ${v}`),
  );
});

test('a bad SCULPT_WASM_THREADS is an error naming the variable, in auto mode too (no silent fall back to cpu)', async () => {
  for (const value of ['abc', '0', '9', '1.5']) {
    process.env.SCULPT_WASM_THREADS = value;
    try {
      for (const request of ['wasm', 'auto'] as const) {
        await assert.rejects(selectBackend(request), (e: unknown) => {
          assert.ok(e instanceof BackendError, `${request}: ${String(e)}`);
          assert.match(e.message, new RegExp(`SCULPT_WASM_THREADS is '${value.replace('.', '\\.')}'`));
          assert.match(e.message, /integer from 1 to 8/);
          return true;
        });
      }
    } finally {
      delete process.env.SCULPT_WASM_THREADS;
    }
  }
});
