/**
 * The wasm backend's sharing Identity (src/engine/kernels/wasm-identity.ts) against tfjs's copying kernel
 * (SCULPT_WASM_UNFUSED=identity): a clone holds the same buffer, keeps its values when its source is disposed
 * or a variable it was taken from is updated, and frees the buffer with its last holder; training steps that
 * clone for the backward pass and for adaptive SVD's pre-step snapshot give the same bits either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { AdaptiveSvd } from '../../src/engine/methods/adaptive-svd';
import { resolveMethod } from '../../src/protocol/config-validate';
import { Optimizer, steps, tiny, weights } from './methods-util';

interface RefCounts {
  refCount(dataId: object): number;
}

/** Runs f with the sharing Identity on, or with tfjs's copying kernel. */
async function withIdentity<T>(sharing: boolean, f: () => T | Promise<T>): Promise<T> {
  if (sharing) delete process.env.SCULPT_WASM_UNFUSED;
  else process.env.SCULPT_WASM_UNFUSED = 'identity';
  try {
    return await f();
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
}

test('identity: a clone shares the buffer, outlives its source, and the buffer goes with the last holder', async () => {
  await selectBackend('wasm');
  const backend = tf.backend() as unknown as RefCounts;
  const values = Array.from({ length: 4096 }, (_, i) => Math.cos(i));
  await withIdentity(true, () => {
    const before = tf.memory().numBytes;
    const x = tf.tensor2d(values, [64, 64]);
    const y = x.clone();
    assert.equal(y.dataId, x.dataId, 'the clone holds the same buffer');
    assert.equal(backend.refCount(x.dataId), 2);
    assert.equal(tf.memory().numBytes - before, 4 * 4096 * 2, 'tfjs counts each tensor; the heap holds one buffer');
    x.dispose();
    assert.equal(backend.refCount(y.dataId), 1);
    assert.deepEqual(Array.from(y.dataSync()), Array.from(Float32Array.from(values)));
    const id = y.dataId;
    y.dispose();
    assert.equal(backend.refCount(id), 0, 'freed with its last holder');
    assert.equal(tf.memory().numBytes, before);
  });
  await withIdentity(false, () => {
    const x = tf.tensor2d(values, [64, 64]);
    const y = x.clone();
    assert.notEqual(y.dataId, x.dataId, "tfjs's kernel copies");
    tf.dispose([x, y]);
  });
});

test('identity: a clone of a variable keeps the old values through assign and an AdamW step', async () => {
  await selectBackend('wasm');
  await withIdentity(true, () => {
    const v = tf.variable(tf.tensor1d([1, 2, 3, 4]), true, 'identity-test-v');
    const snapshot = v.clone();
    assert.equal(snapshot.dataId, v.dataId);
    const optimizer = new Optimizer({ name: 'adamw', weightDecay: 0.1 });
    const g = tf.tensor1d([0.5, -0.5, 1, -1]);
    optimizer.apply(new Map([['v', g]]), new Map([['v', v]]), 0.1);
    assert.notEqual(v.dataId, snapshot.dataId, 'the update wrote a fresh buffer');
    assert.deepEqual(Array.from(snapshot.dataSync()), [1, 2, 3, 4]);
    assert.ok(
      Array.from(v.dataSync()).every((x, i) => x !== [1, 2, 3, 4][i]),
      'the variable moved',
    );
    v.assign(tf.zeros([4]));
    assert.deepEqual(Array.from(snapshot.dataSync()), [1, 2, 3, 4]);
    tf.dispose([v, snapshot, g]);
    optimizer.dispose();
  });
});

test('identity: adaptive-svd training steps give the same losses and weights bit for bit on both kernels', async () => {
  await selectBackend('wasm');
  const run = (sharing: boolean) =>
    withIdentity(sharing, async () => {
      const t = tiny(['tiny/sentiment'], 16);
      // Fixed ranks on the pretrained weights: the post-step re-projection reads the pre-step snapshot (clones).
      const method = new AdaptiveSvd(
        resolveMethod({ method: 'adaptive-svd', protectPretrained: true, rank: { policy: 'fixed', ratio: 0.5 } }),
        'identity-test',
      );
      await method.setup(t.ctx);
      await method.beforeTask?.(t.ctx);
      assert.ok(method.preStepSnapshot().length > 0, 'the method snapshots the weights before each step');
      const optimizer = new Optimizer({ name: 'adamw', weightDecay: 0 });
      const losses = steps(t, method, optimizer, 0, 0, 4);
      const w = weights(t.model);
      optimizer.dispose();
      method.dispose();
      t.model.dispose();
      return { losses, w };
    });
  const copying = await run(false);
  const sharing = await run(true);
  assert.deepEqual(sharing.losses, copying.losses);
  for (const [name, w] of copying.w) assert.deepEqual(sharing.w.get(name), w, name);
  // The re-projection keeps what the step did in the free directions: the weights moved.
  const t = tiny(['tiny/sentiment'], 16);
  const moved = [...weights(t.model)].some(([name, w0]) => w0.some((x, i) => x !== copying.w.get(name)![i]));
  t.model.dispose();
  assert.ok(moved);
});
