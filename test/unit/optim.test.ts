import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { Optimizer, clipByGlobalNorm, learningRate } from '../../src/engine/optim';

/** PyTorch's AdamW update for one scalar parameter, in float64. */
function torchAdamW(p: number, grads: number[], lr: number, wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number {
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const denom = Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps;
    p -= (lr / (1 - b1 ** t)) * (m / denom);
  });
  return p;
}

test('AdamW follows torch.optim.AdamW step for step (decoupled decay, bias correction)', async () => {
  await tf.setBackend('cpu');
  const init = [0.5, -1.25, 2.0];
  const gradSeq = [
    [0.1, -0.3, 0.02],
    [0.05, 0.2, -0.5],
    [-0.4, 0.1, 0.3],
  ];
  const w = tf.variable(tf.tensor1d(init), true, 'w');
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0.1 });
  for (const g of gradSeq) {
    const gt = tf.tensor1d(g);
    opt.apply(new Map([['w', gt]]), new Map([['w', w]]), 0.01);
    gt.dispose();
  }
  const got = Array.from(await w.data());
  init.forEach((p0, i) => {
    const want = torchAdamW(
      p0,
      gradSeq.map((g) => g[i]),
      0.01,
      0.1,
    );
    assert.ok(Math.abs(got[i] - want) <= 1e-6 * Math.max(1, Math.abs(want)), `param ${i}: ${got[i]} vs ${want}`);
  });
  assert.equal(opt.step, 3);
  opt.dispose();
  w.dispose();
});

test('optimizer state round-trips: restored training continues identically', async () => {
  await tf.setBackend('cpu');
  const run = (restoreAfter: number | null) => {
    const w = tf.variable(tf.tensor1d([1, 2, 3]), true, `w${restoreAfter}`);
    let opt = new Optimizer({ name: 'adam' });
    for (let s = 0; s < 5; s++) {
      if (restoreAfter !== null && s === restoreAfter) {
        const st = opt.state();
        const copy = { ...st, slots: new Map([...st.slots].map(([k, v]) => [k, v.clone()])) };
        opt.dispose();
        opt = new Optimizer({ name: 'adam' });
        opt.load(copy);
        copy.slots.forEach((t) => t.dispose());
      }
      const g = tf.tensor1d([Math.sin(s), Math.cos(s), s * 0.1]);
      opt.apply(new Map([['x', g]]), new Map([['x', w]]), 0.05);
      g.dispose();
    }
    const out = w.dataSync().slice();
    opt.dispose();
    w.dispose();
    return Array.from(out);
  };
  assert.deepEqual(run(2), run(null));
});

test('optimizer steps leak no tensors', async () => {
  await tf.setBackend('cpu');
  const w = tf.variable(tf.randomNormal([4, 4]));
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
  const g = tf.randomNormal([4, 4]);
  opt.apply(new Map([['w', g]]), new Map([['w', w]]), 1e-3);
  const after1 = tf.memory().numTensors;
  for (let i = 0; i < 10; i++) opt.apply(new Map([['w', g]]), new Map([['w', w]]), 1e-3);
  assert.equal(tf.memory().numTensors, after1);
  tf.dispose([w, g]);
  opt.dispose();
});

test('global-norm clipping scales every gradient by the same factor, only when above the limit', async () => {
  await tf.setBackend('cpu');
  const grads = new Map<string, tf.Tensor>([
    ['a', tf.tensor1d([3, 0])],
    ['b', tf.tensor1d([0, 4])],
  ]);
  const { grads: c, norm } = clipByGlobalNorm(grads, 1);
  assert.ok(norm);
  assert.ok(Math.abs((await norm.data())[0] - 5) < 1e-6);
  const a = await c.get('a')!.data();
  const b = await c.get('b')!.data();
  assert.ok(Math.abs(a[0] - 0.6) < 1e-5 && Math.abs(b[1] - 0.8) < 1e-5);
  const { grads: same } = clipByGlobalNorm(grads, 10);
  assert.deepEqual(Array.from(await same.get('b')!.data()), [0, 4]);
  // Clipping off (0): nothing is computed, the very same tensors pass through.
  const off = clipByGlobalNorm(grads, 0);
  assert.equal(off.grads, grads);
  assert.equal(off.norm, null);
});

test('learning-rate schedules: warm-up, linear decay to 0, cosine', () => {
  assert.equal(learningRate(1, 1, 100, 10, 'constant'), 0.1);
  assert.equal(learningRate(1, 10, 100, 10, 'linear'), 1);
  assert.equal(learningRate(1, 100, 100, 10, 'linear'), 0);
  assert.ok(Math.abs(learningRate(1, 55, 100, 10, 'cosine') - 0.5) < 1e-12);
  assert.equal(learningRate(0.3, 7, 10, 0, 'constant'), 0.3);
});
