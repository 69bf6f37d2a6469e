/**
 * LwF: the distillation term by hand on a tiny example, zero when teacher and student agree, positive once
 * the student moved, and only on answer positions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { Lwf, answerPositions, distillationLoss } from '../../src/engine/methods/lwf';
import { resolveMethod } from '../../src/protocol/config-validate';
import { cpu, Optimizer, steps, task, tiny } from './methods-util';

function softmax(z: number[], T: number): number[] {
  const m = Math.max(...z.map((x) => x / T));
  const e = z.map((x) => Math.exp(x / T - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

test('the distillation loss is T² · mean over answer positions of KL(p_old ‖ p_new), by hand', async () => {
  await cpu();
  const zOld = [
    [
      [1, 2, 0.5, -1],
      [0, 0, 3, 1],
      [2, -2, 0, 0.3],
    ],
  ];
  const zNew = [
    [
      [0.2, 1, 1.5, -0.5],
      [1, -1, 2, 0],
      [0, 0, 0, 0],
    ],
  ];
  const labels = tf.tensor2d([[-100, 3, 1]], [1, 3], 'int32');
  const mask = answerPositions(labels);
  assert.deepEqual(Array.from(mask.dataSync()), [1, 1, 0], 'positions 0 and 1 predict the answer tokens 1 and 2');
  const T = 2;
  let want = 0;
  for (const p of [0, 1]) {
    const po = softmax(zOld[0][p], T);
    const pn = softmax(zNew[0][p], T);
    want += po.reduce((acc, q, i) => acc + q * Math.log(q / pn[i]), 0);
  }
  want = (want / 2) * T * T;
  const got = distillationLoss(tf.tensor3d(zOld), tf.tensor3d(zNew), mask, T);
  assert.ok(Math.abs(got.dataSync()[0] - want) <= 1e-6 * want, `${got.dataSync()[0]} vs ${want}`);
  const same = distillationLoss(tf.tensor3d(zOld), tf.tensor3d(zOld), mask, T);
  assert.equal(same.dataSync()[0], 0);
  const none = distillationLoss(tf.tensor3d(zOld), tf.tensor3d(zNew), tf.zeros([1, 3]) as tf.Tensor2D, T);
  assert.equal(none.dataSync()[0], 0, 'no answer position, no loss (not NaN)');
});

test('the term is zero while the student equals the teacher and positive once it moved', async () => {
  await cpu();
  const t = tiny();
  const m = new Lwf(resolveMethod({ method: 'lwf', alpha: 0.5 }));
  m.setup();
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0 });
  await task(t, m, opt, 0, 2);
  assert.equal(m.hasTeacher, false, 'no teacher during the first task');
  t.ctx.task = 1;
  opt.reset();
  m.beforeTask(t.ctx);
  assert.equal(m.hasTeacher, true);
  const x = t.ctx.tensorsOf(t.ctx.batchesOf(1, 8, 8)[0]);
  const at = m.extraLoss(x, t.ctx)!;
  assert.deepEqual(Object.keys(at.terms), ['distillation']);
  assert.equal(at.total.dataSync()[0], 0);
  steps(t, m, opt, 1, 0, 3);
  const moved = m.extraLoss(x, t.ctx)!;
  assert.ok(moved.total.dataSync()[0] > 0, `distillation ${moved.total.dataSync()[0]}`);
  tf.dispose([at.total, moved.total, x.inputIds, x.labels, x.mask]);
  opt.dispose();
  m.dispose();
  t.model.dispose();
});
