/**
 * O-LoRA: the orthogonality term by hand, frozen base and earlier adapters, plain LoRA by hand (LLaMA and
 * GPT-2's fused c_attn), option errors with their JSON path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { OLora, pairKey, resolveSlots } from '../../src/engine/methods/olora';
import { RunContext } from '../../src/engine/method-context';
import { trainStep } from '../../src/engine/train-step';
import type { CausalLM } from '../../src/engine/models/types';
import type { OLoraConfig } from '../../src/protocol/config';
import { ConfigError, resolveMethod, type ResolvedMethod } from '../../src/protocol/config-validate';
import { fixture } from '../helpers/paths';
import { rankAccuracy } from '../../src/engine/evaluate';
import { tinyTask } from '../../src/runs/builtin/tiny-tasks';
import { cpu, maxAbsDiff, Optimizer, steps, task, tiny, weights } from './methods-util';

const cfg = (extra: Partial<OLoraConfig> = {}): ResolvedMethod<OLoraConfig> =>
  resolveMethod<OLoraConfig>({ method: 'o-lora', lr: 0.01, ...extra });

/** Row-major [m, k] x [k, n] in float64. */
function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) out[i * n + j] += a[i * k + p] * b[p * n + j];
  return out;
}

function transpose(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = a[i * n + j];
  return out;
}

function values(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

test("the orthogonality term is the paper's λ1 Σ ‖A_i A_tᵀ‖²_F over earlier tasks and adapted projections", async () => {
  await cpu();
  const t = tiny(['tiny/sentiment', 'tiny/topic', 'tiny/size']);
  const m = new OLora(cfg({ r: 2, lambda1: 0.3 }), 'methods[0]');
  m.setup(t.ctx);
  // Three tasks of known A's (B zero) through restore, the current task being the third.
  const slots = m.adapterSlots;
  const tensors = new Map<string, tf.Tensor>();
  const As: number[][][] = [[], [], []];
  for (let task = 0; task < 3; task++) {
    slots.forEach((s, i) => {
      const a = Array.from(
        { length: 2 * s.dIn },
        (_, j) => Math.sin(1 + task * 7 + i * 3 + j * 0.37) * (j % 3 === 0 ? -1 : 1),
      );
      As[task].push(a);
      tensors.set(pairKey(task, s, 'A'), tf.tensor2d(a, [2, s.dIn]));
      tensors.set(pairKey(task, s, 'B'), tf.zeros([s.dOut, 2]));
    });
  }
  m.restore({ tensors, json: { tasks: 3, r: 2, slots: slots.map((s) => s.key) } });
  let want = 0;
  slots.forEach((s, i) => {
    for (const earlier of [0, 1]) {
      const prod = matmul(As[earlier][i], transpose(As[2][i], 2, s.dIn), 2, s.dIn, 2);
      // The sum of squared entries (the paper's eq. 5), not the reference code's sum of absolute values.
      want += prod.reduce((acc, v) => acc + v * v, 0);
    }
  });
  want *= 0.3;
  const extra = m.extraLoss()!;
  const got = extra.total.dataSync()[0];
  assert.ok(Math.abs(got - want) <= 1e-5 * want, `orthogonality ${got} vs hand ${want}`);
  assert.equal(extra.terms.orthogonality.dataSync()[0], got);
  tf.dispose([extra.total, ...Object.values(extra.terms)]);
  // Its gradient reaches the current A only: 2 λ1 Σ_i (A_t A_iᵀ) A_i per slot, the earlier A's being constants.
  const current = m.trainable();
  const s0 = slots[0];
  const At = current.get(pairKey(2, s0, 'A'))!;
  const { grads } = tf.variableGrads(() => m.extraLoss()!.total, [...current.values()]);
  const g = grads[At.name].dataSync();
  const hand = new Float64Array(2 * s0.dIn);
  for (const earlier of [0, 1]) {
    const prod = matmul(As[2][0], transpose(As[earlier][0], 2, s0.dIn), 2, s0.dIn, 2);
    matmul(prod, As[earlier][0], 2, 2, s0.dIn).forEach((v, j) => (hand[j] += 2 * 0.3 * v));
  }
  assert.ok(maxAbsDiff(g, hand) < 1e-4 * Math.max(...hand.map(Math.abs)), 'dL/dA_t by hand');
  const Bt = current.get(pairKey(2, s0, 'B'))!;
  assert.ok(!grads[Bt.name] || grads[Bt.name].dataSync().every((v) => v === 0), 'no gradient on B_t');
  tf.dispose(Object.values(grads));
  m.dispose();
  t.model.dispose();
});

test('a new pair starts as PEFT does: B zero, A uniform in ±1/√d_in, seeded per task and slot; the function is unchanged', async () => {
  await cpu();
  const t = tiny();
  const m = new OLora(cfg({ r: 4 }), 'methods[0]');
  m.setup(t.ctx);
  m.beforeTask(t.ctx);
  const first = m.trainable();
  const As: Float32Array[] = [];
  for (const s of m.adapterSlots) {
    const A = values(first.get(pairKey(0, s, 'A'))!).slice();
    const B = values(first.get(pairKey(0, s, 'B'))!);
    assert.equal(A.length, 4 * s.dIn);
    assert.equal(B.length, s.dOut * 4);
    assert.ok(
      B.every((v) => v === 0),
      `${s.key}: B starts at zero`,
    );
    const bound = 1 / Math.sqrt(s.dIn);
    assert.ok(
      A.every((v) => Math.abs(v) <= bound),
      `${s.key}: |A| <= 1/√d_in`,
    );
    // Spread over the interval, not a constant: the sample's variance near bound²/3.
    const variance = A.reduce((acc, v) => acc + v * v, 0) / A.length;
    assert.ok(Math.abs(variance / ((bound * bound) / 3) - 1) < 0.35, `${s.key}: variance ${variance}`);
    As.push(A);
  }
  assert.ok(maxAbsDiff(As[0], As[1]) > 0, 'each slot draws its own A');
  // With B = 0 the adapted weights are the base weights: a new task starts from the previous task's function.
  const over = m.weightOverrides()!;
  for (const [name, w] of over) assert.equal(maxAbsDiff(values(w), t.model.params.get(name)!.dataSync()), 0, name);
  tf.dispose([...over.values()]);
  t.ctx.task = 1;
  m.beforeTask(t.ctx);
  const second = m.trainable();
  const s = m.adapterSlots[0];
  assert.ok(maxAbsDiff(values(second.get(pairKey(1, s, 'A'))!), As[0]) > 0, 'each task draws its own A');
  // The same seed draws the same A's.
  const again = new OLora(cfg({ r: 4 }), 'methods[0]');
  const t2 = tiny();
  again.setup(t2.ctx);
  again.beforeTask(t2.ctx);
  assert.equal(maxAbsDiff(values(again.trainable().get(pairKey(0, s, 'A'))!), As[0]), 0);
  again.dispose();
  t2.model.dispose();
  m.dispose();
  t.model.dispose();
});

test('the L2 term is λ2 (‖A_t‖² + ‖B_t‖²) over the new pairs only, earlier pairs left out', async () => {
  await cpu();
  const t = tiny(['tiny/sentiment', 'tiny/topic']);
  const m = new OLora(cfg({ r: 2, lambda1: 0, lambda2: 0.25 }), 'methods[0]');
  m.setup(t.ctx);
  const slots = m.adapterSlots;
  const tensors = new Map<string, tf.Tensor>();
  let want = 0;
  for (let task = 0; task < 2; task++) {
    slots.forEach((s, i) => {
      const a = Array.from({ length: 2 * s.dIn }, (_, j) => Math.cos(task + i + j * 0.1));
      const b = Array.from({ length: s.dOut * 2 }, (_, j) => 0.5 * Math.sin(task * 3 + i + j * 0.2));
      tensors.set(pairKey(task, s, 'A'), tf.tensor2d(a, [2, s.dIn]));
      tensors.set(pairKey(task, s, 'B'), tf.tensor2d(b, [s.dOut, 2]));
      if (task === 1) want += [...a, ...b].reduce((acc, v) => acc + v * v, 0);
    });
  }
  m.restore({ tensors, json: { tasks: 2, r: 2, slots: slots.map((s) => s.key) } });
  want *= 0.25;
  const extra = m.extraLoss()!;
  assert.deepEqual(Object.keys(extra.terms), ['l2']);
  const got = extra.total.dataSync()[0];
  assert.ok(Math.abs(got - want) <= 1e-5 * want, `l2 ${got} vs hand ${want}`);
  tf.dispose([extra.total, ...Object.values(extra.terms)]);
  m.dispose();
  t.model.dispose();
});

test('a later task trains only its own pair: base weights and earlier pairs stay as they were', async () => {
  await cpu();
  const t = tiny();
  const m = new OLora(cfg(), 'methods[0]');
  m.setup(t.ctx);
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
  const base = weights(t.model);
  await task(t, m, opt, 0, 4);
  const first = new Map([...m.state().tensors].map(([k, v]) => [k, values(v).slice()]));
  assert.ok(
    [...first].some(([k, v]) => k.endsWith('.B') && v.some((x) => x !== 0)),
    'task 0 trained its B',
  );
  const losses = await task(t, m, opt, 1, 4);
  assert.ok(losses.every(Number.isFinite));
  const after = m.state().tensors;
  for (const [k, v] of first) assert.equal(maxAbsDiff(values(after.get(k)!), v), 0, `${k} unchanged by task 1`);
  assert.ok(
    [...after].some(([k, v]) => k.startsWith('olora.1.') && k.endsWith('.B') && values(v).some((x) => x !== 0)),
    'task 1 trained its own B',
  );
  for (const [n, w] of weights(t.model)) assert.equal(maxAbsDiff(w, base.get(n)!), 0, `${n} is frozen`);
  assert.deepEqual(
    [...m.trainable().keys()].every((k) => k.startsWith('olora.1.')),
    true,
  );
  // merged() = W + scale Σ_i B_i A_i, checked by hand on one projection.
  const s = m.adapterSlots[0];
  const merged = m.merged();
  const W = t.model.params.get(s.weight)!.dataSync();
  const hand = Float64Array.from(W);
  for (const i of [0, 1]) {
    const BA = matmul(
      values(after.get(pairKey(i, s, 'B'))!),
      values(after.get(pairKey(i, s, 'A'))!),
      s.dOut,
      m.r,
      s.dIn,
    );
    BA.forEach((v, j) => (hand[j] += m.scale * v));
  }
  assert.ok(maxAbsDiff(values(merged.get(s.weight)!), hand) < 1e-5);
  tf.dispose([...merged.values()]);
  opt.dispose();
  m.dispose();
  t.model.dispose();
});

test('with λ1 = 0 and one task the loss is plain LoRA, W + (alpha/r) B A in a dense forward', async () => {
  await cpu();
  const t = tiny();
  // Every projection an adapter can sit on, the MLP's included.
  const m = new OLora(cfg({ lambda1: 0, r: 4, alpha: 8, modules: ['q', 'k', 'v', 'o', 'mlp'] }), 'methods[0]');
  m.setup(t.ctx);
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0 });
  await m.beforeTask(t.ctx);
  steps(t, m, opt, 0, 0, 3);
  // Hand-merged weights from the trained pair.
  assert.equal(m.adapterSlots.length, t.model.inventory.targets.length, 'one pair per target matrix');
  const st = m.state().tensors;
  const hand = new Map<string, tf.Tensor>();
  for (const s of m.adapterSlots) {
    const BA = matmul(values(st.get(pairKey(0, s, 'B'))!), values(st.get(pairKey(0, s, 'A'))!), s.dOut, 4, s.dIn);
    const W = Float64Array.from(t.model.params.get(s.weight)!.dataSync());
    BA.forEach((v, j) => (W[j] += 2 * v));
    hand.set(s.weight, tf.tensor2d(Float32Array.from(W), [s.dOut, s.dIn]));
  }
  const b = t.ctx.batchesOf(0, 8, 8)[0];
  const x = t.ctx.tensorsOf(b);
  const byHand = t.model.withWeights(hand, () => t.model.loss(x.inputIds, x.labels, x.mask));
  const trainable = m.trainable();
  const { loss, terms } = trainStep(t.model, m, t.ctx, x, trainable, opt, 0, 0);
  assert.deepEqual(Object.keys(terms), []);
  const [a, h] = [loss.dataSync()[0], byHand.dataSync()[0]];
  assert.ok(Math.abs(a - h) <= 1e-6 * Math.abs(h), `loss ${a} vs hand ${h}`);
  tf.dispose([loss, byHand, x.inputIds, x.labels, x.mask, ...hand.values()]);
  opt.dispose();
  m.dispose();
  t.model.dispose();
});

function bareContext(model: CausalLM): RunContext {
  const tok = { encode: () => [], decode: () => '', bosId: null, eosId: null, padId: 0 };
  return new RunContext(
    model,
    tok,
    [{ index: 0, configIndex: 0, name: 't', train: [], test: [], validation: [], labels: [], template: '' }],
    { seed: 0, training: { evalBatchSize: 8, maxSeqLen: 32 } as never },
    { emit: () => {} },
  );
}

test("on GPT-2's fused c_attn, q and v adapt their column blocks and k's block stays the base weight", async () => {
  await cpu();
  const model = loadPretrained(fixture('hf-reference', 'gpt2-tiny'));
  const m = new OLora(cfg({ r: 2, alpha: 6, modules: ['q', 'v'] }), 'methods[0]');
  const ctx = bareContext(model);
  m.setup(ctx);
  m.beforeTask(ctx);
  assert.deepEqual(
    m.adapterSlots.map((s) => s.key),
    [
      'transformer.h.0.attn.c_attn.q',
      'transformer.h.0.attn.c_attn.v',
      'transformer.h.1.attn.c_attn.q',
      'transformer.h.1.attn.c_attn.v',
    ],
  );
  // Give every B a value (B starts at zero) so that the update is visible.
  for (const [k, v] of m.trainable()) if (k.endsWith('.B')) v.assign(tf.randomNormal(v.shape, 0, 0.1, 'float32', 3));
  const over = m.weightOverrides()!;
  const d = 64;
  const name = 'transformer.h.0.attn.c_attn.weight';
  const W = model.params.get(name)!.dataSync();
  const eff = values(over.get(name)!);
  const tr = m.trainable();
  const hand = Float64Array.from(W);
  for (const [block, role] of [
    [0, 'q'],
    [2, 'v'],
  ] as const) {
    const A = values(tr.get(`olora.0.transformer.h.0.attn.c_attn.${role}.A`)!);
    const B = values(tr.get(`olora.0.transformer.h.0.attn.c_attn.${role}.B`)!);
    // Conv1D computes y = x W, so the block's update is (B A)ᵀ = Aᵀ Bᵀ, [d_in, d].
    const upd = matmul(transpose(A, 2, d), transpose(B, d, 2), d, 2, d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) hand[i * 3 * d + block * d + j] += 3 * upd[i * d + j];
  }
  assert.ok(maxAbsDiff(eff, hand) < 1e-5, 'c_attn = W + scale (B A)ᵀ in the q and v blocks');
  for (let i = 0; i < d; i++) for (let j = d; j < 2 * d; j++) assert.equal(eff[i * 3 * d + j], W[i * 3 * d + j]);
  assert.ok(maxAbsDiff(eff, W) > 1e-3);
  // y = x W_eff on the q block equals x W_q + scale (x Aᵀ) Bᵀ.
  const x = tf.randomNormal([5, d], 0, 1, 'float32', 5) as tf.Tensor2D;
  const A = tr.get('olora.0.transformer.h.0.attn.c_attn.q.A')! as tf.Tensor2D;
  const B = tr.get('olora.0.transformer.h.0.attn.c_attn.q.B')! as tf.Tensor2D;
  const yEff = tf.matMul(x, over.get(name)! as tf.Tensor2D).slice([0, 0], [5, d]);
  const yLora = tf
    .matMul(x, (model.params.get(name)! as tf.Tensor as tf.Tensor2D).slice([0, 0], [d, d]))
    .add(tf.matMul(tf.matMul(x, A, false, true), B, false, true).mul(3));
  assert.ok(maxAbsDiff(values(yEff), values(yLora)) < 1e-4);
  tf.dispose([x, yEff, yLora, ...over.values()]);
  // 'o' is the attention output projection c_proj; 'mlp' the MLP's c_fc and c_proj, whole.
  assert.deepEqual(
    resolveSlots(model, ['o'], 'm').map((s) => s.weight),
    ['transformer.h.0.attn.c_proj.weight', 'transformer.h.1.attn.c_proj.weight'],
  );
  assert.deepEqual(
    resolveSlots(model, ['mlp'], 'm').map((s) => [s.weight, s.dIn, s.dOut, s.offset]),
    [0, 1].flatMap((l) => [
      [`transformer.h.${l}.mlp.c_fc.weight`, 64, 256, 0],
      [`transformer.h.${l}.mlp.c_proj.weight`, 256, 64, 0],
    ]),
  );
  m.dispose();
  model.dispose();
});

test('bad options fail at setup with the option path', async () => {
  await cpu();
  const t = tiny();
  const fails = (c: Partial<OLoraConfig>, path: string, message: RegExp, model: CausalLM = t.model) => {
    const m = new OLora(cfg(c), 'methods[3]');
    assert.throws(
      () => m.setup({ ...t.ctx, model, warn: () => {}, rng: t.ctx.rng } as never),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.issues[0].path, path);
        assert.match(e.message, message);
        return true;
      },
    );
  };
  fails({ modules: [] }, 'methods[3].modules', /methods\[3\]\.modules: is empty/);
  fails({ modules: ['q', 'v', 'q'] }, 'methods[3].modules', /names 'q' twice/);
  fails(
    { r: 20, modules: ['q', 'v'] },
    'methods[3].r',
    /rank 20 exceeds min\(d_out, d_in\) = 16 of model\.layers\.0\.self_attn\.v_proj/,
  );
  // A model without a separate output projection (an inventory stand-in).
  const noO = {
    arch: 'llama',
    inventory: { ...t.model.inventory, targets: t.model.inventory.targets.filter((x) => x.role !== 'o') },
  } as unknown as CausalLM;
  fails(
    { modules: ['q', 'o'] },
    'methods[3].modules',
    /'o' is not an attention projection of this llama model \(it has q, k, v, mlp\)/,
    noO,
  );
  const noMlp = {
    arch: 'llama',
    inventory: { ...t.model.inventory, targets: t.model.inventory.targets.filter((x) => x.group !== 'mlp') },
  } as unknown as CausalLM;
  fails(
    { modules: ['q', 'mlp'] },
    'methods[3].modules',
    /this llama model has no MLP projection to adapt \(it has q, k, v, o\)/,
    noMlp,
  );
  t.model.dispose();
});

test("the defaults: the own lr 1e-3, adapters on every attention and MLP projection, the paper's r, alpha and λ", async () => {
  await cpu();
  const d = resolveMethod<OLoraConfig>({ method: 'o-lora' });
  assert.deepEqual(
    [d.lr, d.r, d.alpha, d.modules, d.lambda1, d.lambda2],
    [0.001, 8, 32, ['q', 'k', 'v', 'o', 'mlp'], 0.5, 0],
  );
  const t = tiny();
  const m = new OLora(d, 'methods[1]');
  m.setup(t.ctx);
  // One pair per target matrix, the same matrices adaptive SVD constrains; no warning about the lr any more.
  assert.deepEqual(
    m.adapterSlots.map((s) => s.weight),
    t.model.inventory.targets.map((x) => x.name),
  );
  assert.ok(!t.events.some((e) => e.type === 'warning' && /lr/.test(e.message)));
  m.dispose();
  t.model.dispose();
});

test('what a task learned lives in the adapters: accuracy rises under weightOverrides, not in the bare variables', async () => {
  await cpu();
  const t = tiny(['tiny/sentiment'], 96);
  const m = new OLora(cfg({ lr: 0.05, modules: ['q', 'v'] }), 'methods[0]');
  m.setup(t.ctx);
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0 });
  m.beforeTask(t.ctx);
  const s = { maxSeqLen: 16, batchSize: 16, maxNewTokens: 2 };
  const evalTask = { ...t.tasks[0], test: tinyTask('tiny/sentiment')!.test };
  const base = await rankAccuracy(t.model, t.tok, evalTask, s);
  steps(t, m, opt, 0, 0, 24);
  // The runner must evaluate under the overrides: the variables alone still hold the base model.
  assert.equal(await rankAccuracy(t.model, t.tok, evalTask, s), base);
  const over = m.weightOverrides()!;
  const adapted = await t.model.withWeights(over, () => rankAccuracy(t.model, t.tok, evalTask, s));
  assert.ok(adapted > base + 20, `accuracy ${adapted} with the adapters, ${base} without`);
  tf.dispose([...over.values()]);
  opt.dispose();
  m.dispose();
  t.model.dispose();
});
