/**
 * One error hierarchy for bad input: every loader (config, model config.json, checkpoint folder, safetensors,
 * tokenizer, data file) raises an InputError that names the file and the field, tensor or line; the CLI turns
 * them into exit code 2 and the trainer into an `error` event that keeps the hint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { join } from 'node:path';
import { ConfigError, DataError, InputError, ModelFileError, UsageError } from '../../src/protocol/errors';
import { validateConfig } from '../../src/protocol/config-validate';
import type { SculptEvent } from '../../src/protocol/events';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { SafetensorsError, SafetensorsReader } from '../../src/engine/io/safetensors';
import { loadTokenizer, TokenizerError } from '../../src/engine/io/tokenizer';
import { UnsupportedModelError } from '../../src/engine/models/registry';
import { readJsonl } from '../../src/data/examples';
import { inputFailure } from '../../src/cli/failures';
import { createRunDir } from '../../src/runs/run-dir';
import { runFolder } from '../../src/trainer/run';
import { fixture } from '../helpers/paths';
import { editedFixture, tempDir } from './models-util';

/** `fn` throws an error of `cls` (and so an InputError) that `check` accepts. */
function throwsInput<E extends InputError>(
  fn: () => unknown,
  cls: abstract new (...a: never[]) => E,
  check: (e: E) => void,
): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `not the expected class: ${String(e)}`);
    assert.ok(e instanceof InputError);
    assert.ok(e.hint.length > 0, 'a hint');
    check(e);
    return true;
  });
}

const withConfig = (name: string, edit: (c: Record<string, unknown>) => void): string =>
  editedFixture(name, () => {}, edit);

test('a bad config.json field names the file read and the field, for every architecture', async () => {
  await selectBackend('cpu');
  const cases: [string, (c: Record<string, unknown>) => void, string, RegExp][] = [
    ['gpt2-tiny', (c) => (c.n_head = 3), 'n_embd', /n_embd \(64\) must be a multiple of n_head \(3\)/],
    [
      'gpt2-tiny',
      (c) => (c.add_cross_attention = true),
      'add_cross_attention',
      /only the decoder-only GPT-2 is supported/,
    ],
    [
      'gpt2-tiny',
      (c) => (c.vocab_size = 'many'),
      'vocab_size',
      /'vocab_size' must be a positive integer, found "many"/,
    ],
    [
      'llama-tiny',
      (c) => (c.num_key_value_heads = 3),
      'num_key_value_heads',
      /the attention heads \(4\) must be a multiple of the key\/value heads \(3\)/,
    ],
    ['llama-tiny', (c) => (c.head_dim = 15), 'head_dim', /head_dim \(15\) must be even for rotary embeddings/],
    [
      't5-tiny',
      (c) => (c.feed_forward_proj = 'fancy-relu'),
      'feed_forward_proj',
      /'feed_forward_proj' 'fancy-relu' is not valid/,
    ],
  ];
  for (const [name, edit, field, message] of cases) {
    const dir = withConfig(name, edit);
    throwsInput(
      () => loadPretrained(dir),
      ModelFileError,
      (e) => {
        assert.equal(e.file, join(dir, 'config.json'), name);
        assert.equal(e.at.field, field, name);
        assert.ok(e.message.startsWith(`${join(dir, 'config.json')}: `), e.message);
        assert.match(e.message, message);
        assert.equal(e.where, `${join(dir, 'config.json')}, field '${field}'`);
      },
    );
  }
  throwsInput(
    () => loadPretrained(withConfig('gpt2-tiny', (c) => (c.model_type = 'bert'))),
    UnsupportedModelError,
    (e) => assert.equal(e.at.field, 'model_type'),
  );
});

test('checkpoint folders, safetensors and tokenizer files: the error names the file (and the tensor)', async () => {
  await selectBackend('cpu');
  const empty = tempDir('input-errors-empty');
  throwsInput(
    () => loadPretrained(empty),
    ModelFileError,
    (e) => {
      assert.equal(e.file, empty);
      assert.match(e.message, /no config\.json/);
    },
  );
  const garbage = withConfig('gpt2-tiny', () => {});
  writeFileSync(join(garbage, 'model.safetensors'), 'not a safetensors file');
  throwsInput(
    () => loadPretrained(garbage),
    SafetensorsError,
    (e) => assert.equal(e.file, join(garbage, 'model.safetensors')),
  );
  const reader = SafetensorsReader.open(fixture('hf-reference', 'gpt2-tiny', 'model.safetensors'));
  try {
    throwsInput(
      () => reader.read('no.such.weight'),
      SafetensorsError,
      (e) => {
        assert.equal(e.at.tensor, 'no.such.weight');
        assert.match(e.where, /model\.safetensors, tensor "no\.such\.weight"/);
      },
    );
  } finally {
    reader.close();
  }
  throwsInput(
    () => loadTokenizer(empty),
    TokenizerError,
    (e) => {
      assert.equal(e.file, empty);
      assert.match(e.message, /tokenizer\.json not found/);
    },
  );
});

test('a data file error names the file and the line', () => {
  const file = join(tempDir('input-errors-data'), 'bad.jsonl');
  writeFileSync(file, '{"input": "a", "output": "x"}\n{"input": 3, "output": "y"}\n');
  throwsInput(
    () => readJsonl(file),
    DataError,
    (e) => {
      assert.equal(e.file, file);
      assert.equal(e.line, 2);
      assert.equal(e.where, `${file}:2`);
    },
  );
});

test('the CLI turns every input error into exit code 2, and nothing else', () => {
  const printed: string[] = [];
  const { error } = console;
  console.error = (...a: unknown[]) => printed.push(a.join(' '));
  try {
    assert.equal(
      inputFailure(
        new ConfigError([{ path: 'seed', message: 'must be >= 0, got -1', expected: '>= 0' }], '/x.sculpt.json'),
        'sculpt run',
      ),
      2,
    );
    assert.equal(
      inputFailure(
        new ModelFileError('/m/config.json', "'n_head' must be a positive integer", { field: 'n_head' }),
        'sculpt inspect',
      ),
      2,
    );
    assert.equal(inputFailure(new DataError('/d.jsonl:3: not valid JSON', '/d.jsonl', 3), 'sculpt run'), 2);
    assert.equal(
      inputFailure(new UsageError('give a checkpoint folder', 'usage: sculpt inspect <dir>'), 'sculpt inspect'),
      2,
    );
    assert.equal(inputFailure(new Error('a bug'), 'sculpt run'), undefined);
  } finally {
    console.error = error;
  }
  assert.deepEqual(printed, [
    'sculpt run: /x.sculpt.json: seed: must be >= 0, got -1',
    "sculpt inspect: /m/config.json: 'n_head' must be a positive integer",
    'sculpt run: /d.jsonl:3: not valid JSON',
    'sculpt inspect: give a checkpoint folder\n\nusage: sculpt inspect <dir>',
  ]);
});

test('the trainer turns a bad model config.json into an error event that names the file and field and keeps the hint', async () => {
  const model = withConfig('gpt2-tiny', (c) => (c.n_head = 3));
  const work = tempDir('input-errors-run');
  const file = join(work, 'bad-model.sculpt.json');
  const raw = {
    name: 'bad-model',
    model,
    backend: 'cpu',
    tasks: [{ name: 'sentiment', source: { builtin: 'tiny/sentiment' }, trainLimit: 8, testLimit: 4 }],
    methods: [{ method: 'seqft' }],
    output: join(work, 'runs'),
  };
  const { config, issues } = validateConfig(raw, { file, path, exists: existsSync });
  assert.ok(config, JSON.stringify(issues));
  const dir = createRunDir(config, { methodIndex: 0, order: 0 });
  assert.equal(await runFolder(dir, { shouldStop: () => false }), 'failed');
  const events = readFileSync(join(dir, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as SculptEvent);
  const err = events.find((e) => e.type === 'error');
  assert.ok(err && err.type === 'error', 'an error event');
  assert.match(err.message, /n_embd \(64\) must be a multiple of n_head \(3\)/);
  assert.equal(err.where, `${join(model, 'config.json')}, field 'n_embd'`);
  assert.equal(err.hint, new ModelFileError('config.json', '').hint);
});
