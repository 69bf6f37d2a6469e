/**
 * O-LoRA's dropout (PEFT's lora_dropout): while training every task's pairs act on a dropped-out copy of each
 * adapted projection's input, scale · Σ_i dropout(x) A_iᵀ B_iᵀ (the authors' code), with a fresh inverted-dropout
 * mask per projection and step; evaluation and saving merge every pair; a resumed run draws the same masks; without
 * dropout training merges every pair as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { OLora, pairKey } from '../../src/engine/methods/olora';
import type { OLoraConfig } from '../../src/protocol/config';
import { resolveMethod, type ResolvedMethod } from '../../src/protocol/config-validate';
import { cpu, maxAbsDiff, Optimizer, task, tiny, weights } from './methods-util';

const cfg = (extra: Partial<OLoraConfig> = {}): ResolvedMethod<OLoraConfig> =>
  resolveMethod<OLoraConfig>({ method: 'o-lora', lr: 0.01, ...extra });

const R = 2;
const ROWS = 64;

/** Task 0's pairs set to A = 1, B = 1 (r = 2) through restore: a row x of ones then gives, per output, scale · r ·
 * Σ_j m_j with m the row's mask (0 or 1 / (1 - p)), so the term reads back how many inputs the mask kept. */
function onesPairs(m: OLora): void {
  const tensors = new Map<string, tf.Tensor>();
  for (const s of m.adapterSlots) {
    tensors.set(pairKey(0, s, 'A'), tf.ones([R, s.dIn]));
    tensors.set(pairKey(0, s, 'B'), tf.ones([s.dOut, R]));
  }
  m.restore({ tensors, json: { tasks: 1, r: R, slots: m.adapterSlots.map((s) => s.key), steps: 0 } });
}

/** The training term of the first adapted weight on ROWS rows of ones: kept inputs per row (see onesPairs). */
function keptPerRow(m: OLora, p: number): number[] {
  const s = m.adapterSlots[0];
  const terms = m.trainingTerms()!;
  const x = tf.ones([ROWS, s.dIn]) as tf.Tensor2D;
  const y = terms.get(s.weight)!(x).dataSync();
  const width = y.length / ROWS;
  const kept = Array.from({ length: ROWS }, (_, r) => y[r * width + s.offset] / (m.scale * R) / (1 / (1 - p)));
  x.dispose();
  return kept;
}

test('with dropout the training pair acts on dropped-out inputs: a fresh mask per step, kept with probability 1 - p', async () => {
  await cpu();
  const t = tiny();
  const p = 0.25;
  const m = new OLora(cfg({ r: R, dropout: p }), 'methods[0]');
  m.setup(t.ctx);
  onesPairs(m);
  const dIn = m.adapterSlots[0].dIn;
  const first = keptPerRow(m, p);
  // Each row keeps a whole number of inputs (the term is exact in float32 here), and about 1 - p of them.
  assert.ok(
    first.every((k) => Math.abs(k - Math.round(k)) < 1e-3 && k >= 0 && k <= dIn),
    `kept counts ${first.slice(0, 8)}`,
  );
  const fraction = first.reduce((a, k) => a + k, 0) / (ROWS * dIn);
  // ROWS · dIn Bernoulli draws: 5 standard deviations of the fraction.
  const sd = Math.sqrt((p * (1 - p)) / (ROWS * dIn));
  assert.ok(Math.abs(fraction - (1 - p)) < 5 * sd, `kept fraction ${fraction}, expected ${1 - p}`);
  assert.ok(new Set(first.map(Math.round)).size > 1, 'rows draw their own masks');
  // The same step draws the same mask; the next step another.
  assert.deepEqual(keptPerRow(m, p), first);
  m.afterStep();
  assert.notDeepEqual(keptPerRow(m, p), first);
  // Evaluation and saving merge the whole pair, with no dropout: W + scale B A.
  const over = m.weightOverrides()!;
  const s = m.adapterSlots[0];
  const base = t.model.params.get(s.weight)!.dataSync();
  const merged = over.get(s.weight)!.dataSync();
  assert.ok(
    maxAbsDiff(
      merged,
      Float32Array.from(base, (v) => v + m.scale * R),
    ) < 1e-5,
    'W + scale · B A',
  );
  tf.dispose([...over.values()]);
  m.dispose();
  t.model.dispose();
});

test('a resumed run draws the masks it would have drawn; without dropout training merges every pair', async () => {
  await cpu();
  const t = tiny();
  const p = 0.5;
  const m = new OLora(cfg({ r: R, dropout: p }), 'methods[0]');
  m.setup(t.ctx);
  onesPairs(m);
  for (let i = 0; i < 3; i++) m.afterStep();
  const want = keptPerRow(m, p);
  const state = m.state();
  assert.equal((state.json as { steps: number }).steps, 3);
  const copy = new Map([...state.tensors].map(([k, v]) => [k, v.clone()]));
  const resumed = new OLora(cfg({ r: R, dropout: p }), 'methods[0]');
  resumed.setup(t.ctx);
  resumed.restore({ tensors: copy, json: state.json });
  assert.deepEqual(keptPerRow(resumed, p), want);
  resumed.dispose();
  m.dispose();
  const plain = new OLora(cfg({ r: R }), 'methods[0]');
  plain.setup(t.ctx);
  plain.beforeTask(t.ctx);
  assert.equal(plain.trainingTerms(), null);
  plain.dispose();
  t.model.dispose();
});

test('with dropout a later task still trains only its own pair, every pair on the same dropped-out input', async () => {
  await cpu();
  const t = tiny();
  const m = new OLora(cfg({ dropout: 0.1 }), 'methods[0]');
  m.setup(t.ctx);
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
  const base = weights(t.model);
  const losses0 = await task(t, m, opt, 0, 4);
  const first = new Map([...m.state().tensors].map(([k, v]) => [k, v.dataSync().slice()]));
  const losses1 = await task(t, m, opt, 1, 4);
  assert.ok([...losses0, ...losses1].every(Number.isFinite));
  const after = m.state().tensors;
  for (const [k, v] of first) assert.equal(maxAbsDiff(after.get(k)!.dataSync(), v), 0, `${k} unchanged by task 1`);
  assert.ok(
    [...after].some(([k, v]) => k.startsWith('olora.1.') && k.endsWith('.B') && v.dataSync().some((x) => x !== 0)),
    'task 1 trained its own B',
  );
  for (const [n, w] of weights(t.model)) assert.equal(maxAbsDiff(w, base.get(n)!), 0, `${n} is frozen`);
  // While task 1 trains the weights stay the base ones, and on each adapted projection both tasks' pairs act on the
  // dropped-out input, as in the authors' code. With a rate so small that every input is kept (1 / (1 - 1e-9) is 1
  // in float32), the term is x Δᵀ with Δ = the merged pairs (weightOverrides minus the base).
  const state = m.state();
  const keepAll = new OLora(cfg({ dropout: 1e-9 }), 'methods[0]');
  keepAll.setup(t.ctx);
  keepAll.restore({ tensors: new Map([...state.tensors].map(([k, v]) => [k, v.clone()])), json: state.json });
  const terms = keepAll.trainingTerms()!;
  const adapted = [...new Set(m.adapterSlots.map((s) => s.weight))];
  assert.deepEqual([...terms.keys()].sort(), adapted.sort());
  const over = keepAll.weightOverrides()!;
  for (const weight of adapted) {
    const base = t.model.params.get(weight)!;
    const slot = m.adapterSlots.find((s) => s.weight === weight)!;
    const x = tf.randomNormal([5, slot.dIn], 0, 1, 'float32', 3) as tf.Tensor2D;
    // Δ in the weight's layout: [out, in], or GPT-2's Conv1D [in, out].
    const want = x.matMul(over.get(weight)!.sub(base), false, slot.orientation === 'out_in').dataSync();
    const got = terms.get(weight)!(x).dataSync();
    const scale = Math.max(...Array.from(want, Math.abs));
    assert.ok(scale > 0, `${weight}: both tasks' pairs act`);
    assert.ok(maxAbsDiff(got, want) <= 1e-5 * scale, `${weight}: term = x Δᵀ (${maxAbsDiff(got, want)})`);
    x.dispose();
  }
  tf.dispose([...over.values()]);
  keepAll.dispose();
  m.dispose();
  t.model.dispose();
});
