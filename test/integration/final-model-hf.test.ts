/**
 * The fine-tuned model folder a run leaves (`<run>/model/`, checkpoint.final) is a Hugging Face checkpoint as
 * transformers reads it: AutoTokenizer and AutoModelForCausalLM load it from the project's Python environment,
 * the tokenizer gives the ids Sculpt's gives, and the model the logits Sculpt's engine computes from the same
 * folder (within 1e-4 of the largest logit: float32 products summed in another order). Needs .venv (`npm run
 * provision`); without it the test fails naming the command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tinyRun } from '../helpers/tiny-run';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { loadTokenizerFile } from '../../src/engine/io/tokenizer';
import { repoRoot } from '../helpers/paths';

const python = join(repoRoot, '.venv', 'bin', 'python');

const READ_WITH_TRANSFORMERS = `
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, text = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
ids = tok(text, add_special_tokens=False)["input_ids"]
with torch.no_grad():
    logits = model(torch.tensor([ids])).logits[0]
print(json.dumps({"ids": ids, "logits": logits.tolist()}))
`;

test('the fine-tuned model folder loads in transformers, with the ids and logits Sculpt gives', async () => {
  assert.ok(existsSync(python), `no Python environment at ${python}: run \`npm run provision\``);
  const { dir, outcome } = await tinyRun('hf');
  assert.equal(outcome, 'finished', readFileSync(join(dir, 'events.jsonl'), 'utf8'));
  const folder = join(dir, 'model');

  const text = 'a good film with a bad end';
  const r = spawnSync(python, ['-c', READ_WITH_TRANSFORMERS, folder, text], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', OMP_NUM_THREADS: '1', HF_HUB_OFFLINE: '1' },
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`.slice(-4000));
  const hf = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ids: number[]; logits: number[][] };

  const tok = loadTokenizerFile(join(folder, 'tokenizer.json'), folder);
  assert.deepEqual(tok.encode(text), hf.ids, 'the same token ids');
  await selectBackend('cpu');
  const model = loadPretrained(folder);
  try {
    const ids = tf.tensor2d([hf.ids], [1, hf.ids.length], 'int32');
    const logits = model.logits(ids);
    const ours = (await logits.array())[0];
    tf.dispose([ids, logits]);
    const scale = Math.max(...hf.logits.flat().map(Math.abs));
    let worst = 0;
    hf.logits.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - ours[i][j])))));
    assert.ok(worst <= 1e-4 * scale, `logits apart by ${worst} (largest ${scale})`);
  } finally {
    model.dispose();
  }
});

test("a T5 run's model folder loads in transformers too (config floats kept as floats) and generates", async () => {
  assert.ok(existsSync(python), `no Python environment at ${python}: run \`npm run provision\``);
  const { dir, outcome } = await tinyRun('hf-t5', { model: 'builtin:tiny-t5' });
  assert.equal(outcome, 'finished', readFileSync(join(dir, 'events.jsonl'), 'utf8'));
  const script = [
    'import sys, torch',
    'from transformers import AutoModelForSeq2SeqLM, AutoTokenizer',
    'tok = AutoTokenizer.from_pretrained(sys.argv[1])',
    'model = AutoModelForSeq2SeqLM.from_pretrained(sys.argv[1]).eval()',
    'ids = torch.tensor([tok("a good film", add_special_tokens=False)["input_ids"]])',
    'print(model.generate(ids, max_new_tokens=2).shape[0])',
  ].join('\n');
  const r = spawnSync(python, ['-c', script, join(dir, 'model')], {
    encoding: 'utf8',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', OMP_NUM_THREADS: '1', HF_HUB_OFFLINE: '1' },
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`.slice(-4000));
  assert.equal(r.stdout.trim().split('\n').at(-1), '1');
});
