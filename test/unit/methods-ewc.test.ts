/**
 * Online EWC: the diagonal Fisher against per-example gradients of log p(answer | prompt) computed here from
 * the logits, its accumulation over tasks, and the penalty's value and gradient.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { Ewc, diagonalFisher } from '../../src/engine/methods/ewc';
import { resolveMethod } from '../../src/protocol/config-validate';
import type { CausalLM } from '../../src/engine/models/types';
import type { BatchTensors } from '../../src/engine/methods/method';
import { cpu, maxAbsDiff, Optimizer, task, tiny } from './methods-util';

/** -log p(answer | prompt) of a one-example batch, straight from the logits. */
function negLogLikelihood(model: CausalLM, b: BatchTensors): tf.Scalar {
  const T = b.inputIds.shape[1];
  const logp = tf.logSoftmax(
    model
      .logits(b.inputIds, b.mask)
      .squeeze([0])
      .slice([0, 0], [T - 1, -1]),
  );
  const labels = Array.from(b.labels.dataSync()).slice(1);
  const picked = labels
    .map((y, t) => (y === -100 ? null : logp.slice([t, y], [1, 1]).reshape([])))
    .filter((x): x is tf.Tensor => x !== null);
  return tf.addN(picked).neg() as tf.Scalar;
}

function referenceFisher(model: CausalLM, batches: BatchTensors[]): Map<string, Float64Array> {
  const names = [...model.params.keys()];
  const acc = new Map(names.map((n) => [n, new Float64Array(model.params.get(n)!.size)]));
  for (const b of batches) {
    const { value, grads } = tf.variableGrads(
      () => negLogLikelihood(model, b),
      names.map((n) => model.params.get(n)!),
    );
    names.forEach((n) => {
      const g = grads[model.params.get(n)!.name].dataSync();
      const a = acc.get(n)!;
      for (let i = 0; i < g.length; i++) a[i] += (g[i] * g[i]) / batches.length;
    });
    tf.dispose([value, ...Object.values(grads)]);
  }
  return acc;
}

test('the Fisher is the mean of squared per-example gradients of log p(answer | prompt), accumulated as γ F_acc + F', async () => {
  await cpu();
  const t = tiny();
  const m = new Ewc(resolveMethod({ method: 'ewc', fisherSamples: 6, gamma: 0.5 }));
  m.setup(t.ctx);
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0 });
  await task(t, m, opt, 0, 2);
  const batches = t.ctx.batchesOf(0, 6, 1).map((b) => t.ctx.tensorsOf(b));
  assert.equal(batches.length, 6);
  const want0 = referenceFisher(t.model, batches);
  const F0 = new Map([...m.penalty.fisher].map(([n, f]) => [n, Float64Array.from(f.dataSync())]));
  for (const [n, f] of F0) {
    const w = want0.get(n)!;
    const scale = Math.max(...w.map(Math.abs));
    assert.ok(scale > 0, `${n} has a non-zero Fisher`);
    assert.ok(
      maxAbsDiff(f, w) <= 1e-4 * scale,
      `${n}: Fisher differs from the reference by ${maxAbsDiff(f, w)} (max ${scale})`,
    );
  }
  // θ* is the weights at the end of the task.
  for (const [n, v] of t.model.params) assert.equal(maxAbsDiff(m.penalty.anchor.get(n)!.dataSync(), v.dataSync()), 0);
  // Task 1: F_acc = 0.5 F_0 + F_1.
  await task(t, m, opt, 1, 2);
  const F1 = diagonalFisher(t.model, t.ctx.batchesOf(1, 6, 1), (b) => t.ctx.tensorsOf(b));
  for (const [n, f] of m.penalty.fisher) {
    const want = F0.get(n)!.map((v, i) => 0.5 * v + F1.get(n)!.dataSync()[i]);
    assert.ok(maxAbsDiff(f.dataSync(), want) <= 1e-5 * Math.max(...want), n);
  }
  tf.dispose([...F1.values(), ...batches.flatMap((b) => [b.inputIds, b.labels, b.mask])]);
  opt.dispose();
  m.dispose();
  t.model.dispose();
});

test('the penalty is zero at θ* and its gradient is λ F (θ - θ*)', async () => {
  await cpu();
  const t = tiny();
  const m = new Ewc(resolveMethod({ method: 'ewc', fisherSamples: 4, lambda: 250 }));
  m.setup(t.ctx);
  const opt = new Optimizer({ name: 'sgd' });
  await task(t, m, opt, 0, 1);
  const at = m.extraLoss()!;
  assert.equal(at.total.dataSync()[0], 0);
  tf.dispose([at.total]);
  // Move every weight a little, then compare the gradient with λ F (θ - θ*).
  for (const [, v] of t.model.params) v.assign(v.add(tf.randomNormal(v.shape, 0, 0.05, 'float32', 11)));
  const vars = [...t.model.params.values()];
  const { value, grads } = tf.variableGrads(() => m.extraLoss()!.total, vars);
  assert.ok(value.dataSync()[0] > 0);
  for (const [n, v] of t.model.params) {
    const want = tf.tidy(() =>
      m.penalty.fisher
        .get(n)!
        .mul(v.sub(m.penalty.anchor.get(n)!))
        .mul(250),
    );
    const w = want.dataSync();
    const scale = Math.max(...w.map(Math.abs), 1e-12);
    assert.ok(maxAbsDiff(grads[v.name].dataSync(), w) <= 1e-5 * scale, n);
    want.dispose();
  }
  // The penalty value itself: Σ (λ/2) F (θ - θ*)².
  let hand = 0;
  for (const [n, v] of t.model.params) {
    const F = m.penalty.fisher.get(n)!.dataSync();
    const th = v.dataSync();
    const a = m.penalty.anchor.get(n)!.dataSync();
    for (let i = 0; i < F.length; i++) hand += 125 * F[i] * (th[i] - a[i]) ** 2;
  }
  assert.ok(Math.abs(value.dataSync()[0] - hand) <= 1e-4 * hand);
  tf.dispose([value, ...Object.values(grads)]);
  opt.dispose();
  m.dispose();
  t.model.dispose();
});

test('the penalty is reported as the ewc term of a step, and no term before the first boundary', async () => {
  await cpu();
  const t = tiny();
  const m = new Ewc(resolveMethod({ method: 'ewc', fisherSamples: 4 }));
  m.setup(t.ctx);
  assert.equal(m.extraLoss(), null);
  const opt = new Optimizer({ name: 'adamw' });
  await task(t, m, opt, 0, 1);
  t.ctx.task = 1;
  const extra = m.extraLoss()!;
  assert.deepEqual(Object.keys(extra.terms), ['ewc']);
  tf.dispose([extra.total]);
  opt.dispose();
  m.dispose();
  t.model.dispose();
});
