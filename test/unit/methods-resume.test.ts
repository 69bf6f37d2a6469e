/**
 * Every peer method: training resumed from state()/restore() (with the weights and the optimizer, as a run
 * checkpoint holds them) ends with the same weights and method state as uninterrupted training; the tensor
 * count stays flat from step to step; dispose() frees everything, restored state included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import type { Method } from '../../src/engine/methods/method';
import { OLora } from '../../src/engine/methods/olora';
import { Ewc } from '../../src/engine/methods/ewc';
import { Replay } from '../../src/engine/methods/replay';
import { Lwf } from '../../src/engine/methods/lwf';
import { Mtl } from '../../src/engine/methods/mtl';
import { PerTask } from '../../src/engine/methods/per-task';
import { resolveMethod } from '../../src/protocol/config-validate';
import {
  checkpoint,
  cpu,
  maxAbsDiff,
  Optimizer,
  restoreInto,
  steps,
  task,
  tiny,
  weights,
  type Tiny,
} from './methods-util';

interface Case {
  name: string;
  make: () => Method;
  /** The task to stop in (MTL trains only in the first). */
  stopTask: number;
}

const CASES: Case[] = [
  {
    name: 'o-lora',
    make: () => new OLora(resolveMethod({ method: 'o-lora', lr: 0.01, r: 4, lambda2: 0.01 }), 'methods[0]'),
    stopTask: 1,
  },
  { name: 'ewc', make: () => new Ewc(resolveMethod({ method: 'ewc', fisherSamples: 6, gamma: 0.9 })), stopTask: 1 },
  { name: 'replay', make: () => new Replay(resolveMethod({ method: 'replay', bufferRatio: 0.2 })), stopTask: 1 },
  { name: 'lwf', make: () => new Lwf(resolveMethod({ method: 'lwf' })), stopTask: 1 },
  { name: 'mtl', make: () => new Mtl(), stopTask: 0 },
  { name: 'per-task', make: () => new PerTask(), stopTask: 1 },
];

/** What a run ends with: the weights (merged for O-LoRA) and the method's state, as plain values. */
function observe(
  t: Tiny,
  m: Method,
): { weights: Map<string, Float32Array>; state: Map<string, Float32Array>; json: string } {
  const w = weights(t.model);
  if (m instanceof OLora) {
    const merged = m.merged();
    for (const [n, v] of merged) w.set(n, v.dataSync() as Float32Array);
    tf.dispose([...merged.values()]);
  }
  const s = m.state();
  return {
    weights: w,
    state: new Map([...s.tensors].map(([k, v]) => [k, v.dataSync() as Float32Array])),
    json: JSON.stringify(s.json),
  };
}

for (const c of CASES) {
  test(`${c.name}: resumed training equals uninterrupted training, and the tensor count stays flat per step`, async () => {
    await cpu();
    const t = tiny();
    const m = c.make();
    await m.setup(t.ctx);
    const opt = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
    if (c.stopTask === 1) await task(t, m, opt, 0, 3);
    t.ctx.task = c.stopTask;
    opt.reset();
    await m.beforeTask?.(t.ctx);
    const counts: number[] = [];
    steps(t, m, opt, c.stopTask, 0, 4, () => counts.push(tf.memory().numTensors));
    assert.ok(
      counts.every((n) => n === counts[0]),
      `tensor count per step ${counts}`,
    );
    const cp = checkpoint(t.model, opt, m);
    steps(t, m, opt, c.stopTask, 4, 7);
    await m.afterTask?.(t.ctx);
    const want = observe(t, m);

    const t2 = tiny();
    const m2 = c.make();
    await m2.setup(t2.ctx);
    const opt2 = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
    t2.ctx.task = c.stopTask;
    restoreInto(cp, t2, opt2, m2);
    steps(t2, m2, opt2, c.stopTask, 4, 7);
    await m2.afterTask?.(t2.ctx);
    const got = observe(t2, m2);
    assert.equal(got.json, want.json);
    assert.deepEqual([...got.state.keys()], [...want.state.keys()]);
    for (const [k, v] of want.state) assert.equal(maxAbsDiff(got.state.get(k)!, v), 0, `state ${k}`);
    for (const [n, v] of want.weights) assert.equal(maxAbsDiff(got.weights.get(n)!, v), 0, `weight ${n}`);

    for (const x of [m, opt, t.model, m2, opt2, t2.model]) x.dispose();
  });

  test(`${c.name}: dispose() frees every tensor the method made or was handed by restore()`, async () => {
    await cpu();
    const baseline = tf.memory().numTensors;
    const t = tiny();
    const m = c.make();
    await m.setup(t.ctx);
    // SGD: AdamW's slots are the optimizer's to free, and this counts the method's tensors only.
    const opt = new Optimizer({ name: 'sgd' });
    await task(t, m, opt, 0, 2);
    await task(t, m, opt, 1, 2);
    const copy = checkpoint(t.model, opt, m);
    const m2 = c.make();
    await m2.setup(t.ctx);
    m2.restore(copy.method, t.ctx);
    tf.dispose([...copy.weights.values(), ...copy.optimizer.slots.values()]);
    for (const x of [m, m2, opt, t.model]) x.dispose();
    assert.equal(tf.memory().numTensors, baseline, 'every tensor is freed');
  });
}
