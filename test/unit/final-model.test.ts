/**
 * The fine-tuned model a tfjs run leaves (`checkpoint.final`, src/engine/io/final-model.ts): a Hugging Face
 * folder that a later experiment loads as its `model`, and that scores every test example as the run's own last
 * evaluation did, O-LoRA's adapters merged in. With `final: false` nothing is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tinyRun } from '../helpers/tiny-run';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ExperimentConfig } from '../../src/protocol/config';
import type { SculptEvent } from '../../src/protocol/events';
import { listPredictionSets, readPredictionRecords } from '../../src/runs/predictions';
import { builtinModelDir } from '../../src/runs/builtin';
import { configJson } from '../../src/engine/io/checkpoint';

const TASKS = [
  { name: 'sentiment', source: { builtin: 'tiny/sentiment' }, trainLimit: 16, testLimit: 8 },
  { name: 'topic', source: { builtin: 'tiny/topic' }, trainLimit: 16, testLimit: 8 },
];

async function run(name: string, over: Partial<ExperimentConfig>) {
  const r = await tinyRun(name, { tasks: TASKS, methods: [{ method: 'o-lora', r: 4 }], ...over });
  assert.equal(r.outcome, 'finished', readFileSync(join(r.dir, 'events.jsonl'), 'utf8'));
  return r;
}

/** Each test example's per-label scores at one evaluation point, by task and example index. */
function scoresAt(runDir: string, afterTask: number): Map<string, Record<string, number | null>> {
  const out = new Map<string, Record<string, number | null>>();
  for (const set of listPredictionSets(runDir).sets) {
    if (set.afterTask !== afterTask || set.split !== 'test' || set.mode !== 'rank') continue;
    for (const r of readPredictionRecords(runDir, set).records) out.set(`${set.task}/${r.index}`, r.scores!);
  }
  return out;
}

test('a run leaves its fine-tuned model, O-LoRA merged in: loaded as a model it scores the test sets as the last evaluation did', async () => {
  const first = await run('trained', {});
  const model = join(first.dir, 'model');
  assert.deepEqual(readdirSync(model).sort(), [
    'config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
  ]);
  assert.ok(!existsSync(join(first.dir, '.model.partial')), 'no staging folder left behind');
  const base = builtinModelDir('builtin:tiny-llama');
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
    assert.equal(readFileSync(join(model, f), 'utf8'), readFileSync(join(base, f), 'utf8'), `${f} as the base's`);
  assert.notDeepEqual(
    readFileSync(join(model, 'model.safetensors')),
    readFileSync(join(base, 'model.safetensors')),
    'the weights moved',
  );

  // The saved folder as another experiment's model: its zero-shot evaluation is the first run's last one.
  const again = await run('reloaded', {
    model: model,
    methods: [{ method: 'seqft' }],
    eval: { zeroShot: true, predictions: 'all' },
  });
  const last = scoresAt(first.dir, TASKS.length - 1);
  const reloaded = scoresAt(again.dir, -1);
  assert.equal(last.size, 16, 'both tasks, every test example');
  assert.deepEqual([...reloaded.keys()].sort(), [...last.keys()].sort());
  for (const [key, scores] of last)
    for (const [label, s] of Object.entries(scores))
      assert.ok(
        Math.abs(reloaded.get(key)![label]! - s!) <= 1e-5,
        `${key} ${label}: ${reloaded.get(key)![label]} vs ${s}`,
      );
  const accuracies = (events: SculptEvent[], afterTask: number) =>
    events.flatMap((e) => (e.type === 'eval' && e.afterTask === afterTask && e.split === 'test' ? [e.accuracy] : []));
  assert.deepEqual(accuracies(again.events, -1), accuracies(first.events, TASKS.length - 1));
});

test('checkpoint.final false: no model folder and no staging folder', async () => {
  const { dir } = await run('off', { checkpoint: { final: false }, methods: [{ method: 'seqft' }] });
  assert.ok(!existsSync(join(dir, 'model')));
  assert.ok(!existsSync(join(dir, '.model.partial')));
});

test('configJson keeps the floats transformers declares as floats (1.0, not 1), top level only', () => {
  const text = configJson({
    initializer_factor: 1,
    rope_theta: 10000,
    num_layers: 2,
    eps: 1,
    nested: { rope_theta: 1 },
  });
  assert.equal(
    text,
    '{\n  "initializer_factor": 1.0,\n  "rope_theta": 10000.0,\n  "num_layers": 2,\n  "eps": 1,\n  "nested": {\n    "rope_theta": 1\n  }\n}\n',
  );
  assert.deepEqual(JSON.parse(text), {
    initializer_factor: 1,
    rope_theta: 10000,
    num_layers: 2,
    eps: 1,
    nested: { rope_theta: 1 },
  });
});
