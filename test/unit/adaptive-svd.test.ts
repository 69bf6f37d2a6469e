/**
 * Adaptive SVD against the reference fixtures (PyTorch / PEFT on llama-tiny) and by its invariants.
 * Tolerances: weights norm-wise relative 1e-4 (float32 through three optimizer steps), losses 1e-5.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { readSafetensors } from '../../src/engine/io/safetensors';
import { AdaptiveSvd } from '../../src/engine/methods/adaptive-svd';
import { chooseRanks, importances, type ConstrainedMatrix } from '../../src/engine/methods/rank-policy';
import { RunContext } from '../../src/engine/method-context';
import type { AdaptiveSvdConfig } from '../../src/protocol/config';
import { ConfigError, resolveMethod } from '../../src/protocol/config-validate';
import type { EventBody } from '../../src/protocol/events';
import { Optimizer } from '../../src/engine/optim';
import { trainStep } from '../../src/engine/train-step';
import type { CausalLM } from '../../src/engine/models/types';
import { fixture } from '../helpers/paths';
import { relErr } from './models-util';

const LLAMA = fixture('hf-reference', 'llama-tiny');

function context(model: CausalLM, events: EventBody[] = []): RunContext {
  const tok = { encode: () => [], decode: () => '', bosId: null, eosId: null, padId: 0 };
  return new RunContext(
    model,
    tok,
    [{ index: 0, configIndex: 0, name: 't', train: [], test: [], validation: [], labels: [], template: '' }],
    { seed: 0, training: { evalBatchSize: 8, maxSeqLen: 32 } as never },
    { emit: (e) => void events.push(e) },
  );
}

function ids(file: string): tf.Tensor2D {
  const t = readSafetensors(file).tensors.get('input_ids')!;
  return tf.tensor2d(t.data as Int32Array, t.shape as [number, number], 'int32');
}

interface Run {
  losses: number[];
  final: Map<string, Float32Array>;
  model: CausalLM;
  method: AdaptiveSvd;
}

/** Three steps of constrained fine-tuning on the fixture batch, only the targets trainable. */
async function runFixture(
  cfg: Partial<AdaptiveSvdConfig>,
  opt: 'sgd' | 'adamw',
  lr: number,
  inputFile: string,
): Promise<Run> {
  const model = loadPretrained(LLAMA);
  const method = new AdaptiveSvd(
    resolveMethod({
      method: 'adaptive-svd',
      nonTargets: 'frozen',
      protectPretrained: true,
      rank: { policy: 'fixed', ratio: 0.5 },
      ...cfg,
    }),
    'methods[0]',
  );
  const ctx = context(model);
  await method.setup(ctx);
  await method.beforeTask(ctx);
  const trainable = method.trainable(ctx);
  const optimizer = new Optimizer({ name: opt, weightDecay: 0 });
  const input = ids(inputFile);
  const batch = { inputIds: input, labels: input, mask: tf.onesLike(input) as tf.Tensor2D };
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) {
    const { loss } = trainStep(model, method, ctx, batch, trainable, optimizer, lr, 0);
    losses.push(loss.dataSync()[0]);
    loss.dispose();
  }
  method.afterTask(ctx);
  const last = model.loss(input, input);
  losses.push(last.dataSync()[0]);
  last.dispose();
  const final = new Map<string, Float32Array>();
  for (const t of model.inventory.targets) final.set(t.name, model.params.get(t.name)!.dataSync() as Float32Array);
  tf.dispose([input, batch.mask]);
  optimizer.dispose();
  return { losses, final, model, method };
}

function compare(run: Run, dir: string): void {
  const ref = readSafetensors(fixture('hf-reference', ...dir.split('/'), 'result.safetensors')).tensors;
  const json = JSON.parse(readFileSync(fixture('hf-reference', ...dir.split('/'), 'result.json'), 'utf8'));
  const refLosses: number[] = json.losses_before_each_step_and_final;
  run.losses.forEach((l, i) =>
    assert.ok(Math.abs(l - refLosses[i]) / Math.abs(refLosses[i]) <= 1e-5, `${dir}: loss ${i} ${l} vs ${refLosses[i]}`),
  );
  assert.equal(run.final.size, 14);
  for (const [name, w] of run.final) {
    const want = ref.get(`final.${name}`);
    assert.ok(want, `fixture has final.${name}`);
    const err = relErr(w, want.data as Float32Array);
    assert.ok(err <= 1e-4, `${dir}: ${name} relative error ${err}`);
  }
  run.method.dispose();
  run.model.dispose();
}

for (const backend of ['cpu', 'wasm'] as const) {
  test(`dense two-sided projection matches the PyTorch reference with SGD (${backend})`, async () => {
    await selectBackend(backend);
    compare(
      await runFixture({}, 'sgd', 0.05, fixture('hf-reference', 'projection', 'sgd', 'result.safetensors')),
      'projection/sgd',
    );
  });

  test(`dense two-sided projection with post-step re-projection matches the PyTorch reference with AdamW (${backend})`, async () => {
    await selectBackend(backend);
    compare(
      await runFixture({}, 'adamw', 0.01, fixture('hf-reference', 'projection', 'adamw', 'result.safetensors')),
      'projection/adamw',
    );
  });
}

test('the factored parametrisation reproduces PEFT OSF merged weights', async () => {
  await selectBackend('cpu');
  compare(
    await runFixture(
      { parametrisation: 'factored' },
      'adamw',
      0.01,
      fixture('hf-reference', 'peft-osf', 'result.safetensors'),
    ),
    'peft-osf',
  );
});

test('importance, ratio and k of every matrix match the reference formula', async () => {
  await selectBackend('cpu');
  const ref = JSON.parse(readFileSync(fixture('hf-reference', 'adaptive-rank', 'importance.json'), 'utf8'));
  const model = loadPretrained(LLAMA);
  const targets: ConstrainedMatrix[] = model.inventory.targets.map((t) => ({ ...t, role: t.role }));
  const input = ids(fixture('hf-reference', 'adaptive-rank', 'batch.safetensors'));
  const batch = { inputIds: input, labels: input, mask: tf.onesLike(input) as tf.Tensor2D };
  const imp = await importances(model, targets, [batch], 'matrix');
  const decision = chooseRanks(
    { policy: 'adaptive', mrr: ref.mrr, trr: ref.trr, importance: 'matrix', normalisation: 'mean' },
    targets,
    0,
    imp,
    'methods[0].rank',
  );
  targets.forEach((t, i) => {
    const r = ref.modules[t.name.replace(/\.weight$/, '')];
    assert.ok(r, `reference has ${t.name}`);
    assert.ok(
      Math.abs(imp[i] - r.importance) <= 1e-5 * Math.max(1, Math.abs(r.importance)) + 2e-6,
      `${t.name}: importance ${imp[i]} vs ${r.importance}`,
    );
    assert.ok(
      Math.abs(decision.choices[i].ratio - r.ratio) <= 2e-3 * Math.max(1, Math.abs(r.ratio)),
      `${t.name}: ratio ${decision.choices[i].ratio} vs ${r.ratio}`,
    );
    assert.equal(decision.choices[i].k, r.k, `${t.name}: k`);
  });
  assert.ok(
    decision.warnings.some((w) => /hit a clamp/.test(w)),
    'the random model clamps most matrices, and says so',
  );
  tf.dispose([input, batch.mask]);
  model.dispose();
});

test('in dense mode every weight change stays orthogonal to the protected subspace on both sides', async () => {
  await selectBackend('cpu');
  const model = loadPretrained(LLAMA);
  const events: EventBody[] = [];
  const method = new AdaptiveSvd(
    resolveMethod({ method: 'adaptive-svd', protectPretrained: true, rank: { policy: 'fixed', ratio: 0.3 } }),
    'methods[0]',
  );
  const ctx = context(model, events);
  await method.setup(ctx);
  await method.beforeTask(ctx);
  const start = new Map([...model.params].map(([n, v]) => [n, v.clone()]));
  const trainable = method.trainable(ctx);
  assert.equal(trainable.size, model.params.size, 'non-targets stay trainable by default');
  const optimizer = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
  const input = tf.tensor2d(
    [
      [1, 5, 9, 13, 200, 3, 7, 99],
      [4, 4, 8, 120, 33, 2, 1, 0],
    ],
    [2, 8],
    'int32',
  );
  const batch = { inputIds: input, labels: input, mask: tf.onesLike(input) as tf.Tensor2D };
  for (let s = 0; s < 5; s++) trainStep(model, method, ctx, batch, trainable, optimizer, 0.02, 1).loss.dispose();
  const sub = method.state().tensors;
  for (const t of model.inventory.targets) {
    const [dW, a, b] = tf.tidy(() => {
      const d = model.params.get(t.name)!.sub(start.get(t.name)!) as tf.Tensor2D;
      const Uh = sub.get(`Uh/${t.name}`)! as tf.Tensor2D;
      const Vh = sub.get(`Vh/${t.name}`)! as tf.Tensor2D;
      return [
        d.norm().dataSync()[0],
        tf.matMul(Uh, d, true, false).norm().dataSync()[0],
        tf.matMul(d, Vh).norm().dataSync()[0],
      ];
    });
    assert.ok(dW > 0, `${t.name} changed`);
    assert.ok(a <= 1e-5 * dW && b <= 1e-5 * dW, `${t.name}: |Uhᵀ ΔW| = ${a}, |ΔW Vh| = ${b}, |ΔW| = ${dW}`);
  }
  const ranks = events.find((e) => e.type === 'ranks');
  assert.ok(ranks && ranks.type === 'ranks');
  assert.equal(ranks.matrices.length, 14);
  const q = ranks.matrices.find((m) => m.name.endsWith('layers.0.self_attn.q_proj.weight'))!;
  assert.equal(q.k, Math.floor(0.3 * 64));
  assert.ok(q.retainedEnergy > 0.3 && q.retainedEnergy < 1 && q.effectiveRank > 1 && q.sigmaMax >= q.sigmaMean);
  tf.dispose([...start.values(), input, batch.mask]);
  optimizer.dispose();
  method.dispose();
  model.dispose();
});

test('a fixed k larger than a matrix fails at setup with the option path', async () => {
  await selectBackend('cpu');
  const model = loadPretrained(LLAMA);
  const method = new AdaptiveSvd(
    resolveMethod({ method: 'adaptive-svd', rank: { policy: 'fixed', k: 40 } }),
    'methods[2]',
  );
  assert.throws(
    () => method.setup(context(model)),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.issues[0].path, 'methods[2].rank.k');
      assert.match(e.message, /k = 40 exceeds min\(d_out, d_in\) = 32 of model\.layers\.0\.self_attn\.k_proj\.weight/);
      return true;
    },
  );
  model.dispose();
});
