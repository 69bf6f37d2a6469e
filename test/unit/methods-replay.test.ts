/**
 * Replay: the buffer's size, balance and determinism, and how much of each batch it fills.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Replay } from '../../src/engine/methods/replay';
import { resolveMethod } from '../../src/protocol/config-validate';
import { epochOrder } from '../../src/engine/data/batches';
import { Rng } from '../../src/data/rng';
import type { Example } from '../../src/data/examples';
import { RunContext } from '../../src/engine/method-context';
import { cpu, tiny, type Tiny } from './methods-util';

const IDS = ['tiny/sentiment', 'tiny/topic', 'tiny/size'];

/** A replay method that has finished tasks 0..n-1 of `t` (no training needed: the buffer is data only). */
function finished(t: Tiny, n: number, cfg: { bufferRatio?: number; mixRatio?: number } = {}, seed?: number): Replay {
  const ctx =
    seed === undefined
      ? t.ctx
      : new RunContext(
          t.model,
          t.tok,
          t.tasks,
          { seed, training: { evalBatchSize: 8, maxSeqLen: 16 } as never },
          { emit: () => {} },
        );
  const m = new Replay(resolveMethod({ method: 'replay', ...cfg }));
  m.setup(ctx);
  for (let i = 0; i < n; i++) {
    ctx.task = i;
    m.afterTask(ctx);
  }
  ctx.task = n;
  return m;
}

const count = (xs: Example[], key: (e: Example) => string) =>
  xs.reduce((m, e) => m.set(key(e), (m.get(key(e)) ?? 0) + 1), new Map<string, number>());

test('the buffer keeps bufferRatio of each finished task, balanced over its labels, the same for the same seed', async () => {
  await cpu();
  const t = tiny(IDS, 32);
  const m = finished(t, 3, { bufferRatio: 0.25 });
  const buf = m.buffer();
  assert.deepEqual(
    buf.map((b) => b.length),
    [8, 8, 8],
  );
  buf.forEach((b, j) => {
    const byLabel = [...count(b, (e) => e.output).values()];
    assert.equal(byLabel.length, t.tasks[j].labels.length, `every label of task ${j} is kept`);
    assert.ok(Math.max(...byLabel) - Math.min(...byLabel) <= 1, `task ${j} labels ${byLabel}`);
    for (const e of b)
      assert.ok(
        t.tasks[j].train.some((x) => x.input === e.input && x.output === e.output),
        'kept examples come from the task',
      );
  });
  assert.deepEqual(finished(t, 3, { bufferRatio: 0.25 }).buffer(), buf, 'same seed, same buffer');
  assert.notDeepEqual(finished(t, 3, { bufferRatio: 0.25 }, 99).buffer(), buf, 'another seed, another buffer');
  // At least one example per task, however small the ratio.
  assert.deepEqual(
    finished(t, 2, { bufferRatio: 0.001 })
      .buffer()
      .map((b) => b.length),
    [1, 1],
  );
  t.model.dispose();
});

test('the training set adds mixRatio buffer examples, equally from every earlier task, deterministically', async () => {
  await cpu();
  const t = tiny(IDS, 32);
  const m = finished(t, 2, { bufferRatio: 0.1, mixRatio: 0.25 });
  assert.equal(t.ctx.task, 2);
  const set = m.trainingSet(t.ctx);
  const own = t.tasks[2].train;
  assert.deepEqual(set.slice(0, own.length), own);
  const extra = set.slice(own.length);
  // M = round(32 · 0.25 / 0.75) = 11, from buffers of round(0.1 · 32) = 3 examples each.
  assert.equal(extra.length, 11);
  const fromTask = (e: Example) => String(t.tasks.findIndex((x) => x.labels.includes(e.output)));
  const perTask = count(extra, fromTask);
  assert.deepEqual([...perTask.keys()].sort(), ['0', '1']);
  assert.ok(Math.abs(perTask.get('0')! - perTask.get('1')!) <= 1, `shares ${[...perTask.values()]}`);
  // Each replayed example names its task, so the runner prompts it with that task's template.
  for (const e of extra) assert.equal(String(e.task), fromTask(e));
  // A small buffer is cycled evenly: each kept example appears 1 or 2 times in a share of 5 or 6 from 3.
  for (const b of m.buffer()) {
    const uses = b.map((e) => extra.filter((x) => x.input === e.input && x.output === e.output).length);
    assert.ok(Math.max(...uses) - Math.min(...uses) <= 1, `uses ${uses}`);
  }
  assert.deepEqual(m.trainingSet(t.ctx), set, 'the same set every time the task (re)starts');
  // Task 0 has nothing to replay.
  t.ctx.task = 0;
  assert.deepEqual(m.trainingSet(t.ctx), t.tasks[0].train);
  t.model.dispose();
});

test('batches hold about mixRatio buffer examples', async () => {
  await cpu();
  const t = tiny(IDS, 96);
  const m = finished(t, 1, { mixRatio: 0.3 });
  const set = m.trainingSet(t.ctx);
  const isBuffer = set.map((_, i) => i >= t.tasks[1].train.length);
  const shares: number[] = [];
  for (let epoch = 0; epoch < 4; epoch++) {
    for (const idx of epochOrder(set.length, 16, new Rng(epoch + 1)))
      if (idx.length === 16) shares.push(idx.filter((i) => isBuffer[i]).length / 16);
  }
  const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
  assert.ok(Math.abs(mean - 0.3) < 0.03, `mean buffer share ${mean}`);
  assert.ok(
    shares.every((s) => s > 0 && s < 0.75),
    `per-batch shares ${shares}`,
  );
  t.model.dispose();
});

test('the buffer survives state() and restore() through JSON', async () => {
  await cpu();
  const t = tiny(IDS, 32);
  const m = finished(t, 2);
  const json = JSON.parse(JSON.stringify(m.state().json));
  const r = new Replay(resolveMethod({ method: 'replay' }));
  r.setup(
    new RunContext(
      t.model,
      t.tok,
      t.tasks,
      { seed: 7, training: { evalBatchSize: 8, maxSeqLen: 16 } as never },
      { emit: () => {} },
    ),
  );
  r.restore({ tensors: new Map(), json });
  assert.deepEqual(r.buffer(), m.buffer());
  assert.deepEqual(r.trainingSet(t.ctx), m.trainingSet(t.ctx));
  t.model.dispose();
});
