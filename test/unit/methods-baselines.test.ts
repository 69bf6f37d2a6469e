/**
 * The reference points: MTL trains once on every task's data; per-task fine-tuning starts each task from the
 * base model, so its R[t][t] is a fresh fine-tune on task t alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mtl } from '../../src/engine/methods/mtl';
import { PerTask } from '../../src/engine/methods/per-task';
import { SeqFt } from '../../src/engine/methods/seqft';
import { rankAccuracy } from '../../src/engine/evaluate';
import { cpu, maxAbsDiff, Optimizer, task, tiny, weights } from './methods-util';

test('MTL trains on the union of all tasks at the first task and on nothing afterwards', async () => {
  await cpu();
  const t = tiny(['tiny/sentiment', 'tiny/topic', 'tiny/size']);
  const m = new Mtl();
  m.setup();
  t.ctx.task = 0;
  // Every example is tagged with its task, so the runner prompts it with that task's template.
  assert.deepEqual(
    m.trainingSet(t.ctx),
    [0, 1, 2].flatMap((j) => t.tasks[j].train.map((ex) => ({ ...ex, task: j }))),
  );
  assert.equal(m.trainable(t.ctx), t.model.params);
  for (const i of [1, 2]) {
    t.ctx.task = i;
    assert.deepEqual(m.trainingSet(t.ctx), []);
  }
  t.model.dispose();
});

test('per-task fine-tuning: R[t][t] and the weights after task t equal a fresh fine-tune on task t alone', async () => {
  await cpu();
  const t = tiny();
  const m = new PerTask();
  m.setup(t.ctx);
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
  await task(t, m, opt, 0, 4);
  await task(t, m, opt, 1, 4);
  const perTask = weights(t.model);
  const settings = { maxSeqLen: 16, batchSize: 8, maxNewTokens: 2 };
  const acc = await rankAccuracy(t.model, t.tok, t.tasks[1], settings);

  const fresh = tiny();
  const seq = new SeqFt();
  seq.setup();
  const opt2 = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
  await task(fresh, seq, opt2, 1, 4);
  for (const [n, w] of weights(fresh.model)) assert.equal(maxAbsDiff(w, perTask.get(n)!), 0, n);
  assert.equal(await rankAccuracy(fresh.model, fresh.tok, fresh.tasks[1], settings), acc);
  for (const x of [opt, opt2, m, fresh.model, t.model]) x.dispose();
});
