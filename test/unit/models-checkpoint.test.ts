// Loading checkpoint folders: what is accepted (buffers, base-model keys, shards) and what is refused, with
// a message that names the tensor or field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { readSafetensors, writeSafetensors, type StTensor } from '../../src/engine/io/safetensors';
import { SUPPORTED_MODEL_TYPES } from '../../src/engine/models/registry';
import { fixture } from '../helpers/paths';
import { editedFixture, rejectsLoad, relErr, tempDir } from './models-util';

const logitsOf = (dir: string): Float32Array => {
  const m = loadPretrained(dir);
  const out = tf.tidy(() => m.logits(tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32')).dataSync() as Float32Array);
  m.dispose();
  return out;
};

test('a removed tensor is reported as missing, with its expected shape', async () => {
  await selectBackend('cpu');
  rejectsLoad(
    editedFixture('gpt2-tiny', (t) => t.delete('transformer.h.1.ln_2.bias')),
    /missing \(1\)/,
    /transformer\.h\.1\.ln_2\.bias \(expected \[64\]\)/,
  );
});

test('an extra tensor is reported as unexpected', () => {
  const extra: StTensor = { dtype: 'F32', shape: [2], data: new Float32Array(2) };
  rejectsLoad(
    editedFixture('llama-tiny', (t) => t.set('model.layers.0.self_attn.rogue', extra)),
    /unexpected \(1\)/,
    /model\.layers\.0\.self_attn\.rogue F32 \[2\]/,
  );
});

test('a wrong shape names the tensor with expected and found shapes', () => {
  const dir = editedFixture('gpt2-tiny', (t) => {
    t.set('transformer.wte.weight', { dtype: 'F32', shape: [500, 64], data: new Float32Array(500 * 64) });
  });
  rejectsLoad(dir, /transformer\.wte\.weight: expected \[512, 64\], found \[500, 64\]/);
});

test('several problems come in one message', () => {
  const dir = editedFixture('llama-tiny', (t) => {
    t.delete('model.norm.weight');
    t.set('lm_head.weight', { dtype: 'F32', shape: [64, 64], data: new Float32Array(64 * 64) });
  });
  rejectsLoad(dir, /missing \(1\):\n\s+model\.norm\.weight/, /lm_head\.weight: expected \[512, 64\], found \[64, 64\]/);
});

test('an unsupported model_type is named and the supported ones are listed', () => {
  const dir = editedFixture(
    'gpt2-tiny',
    () => {},
    (c) => (c.model_type = 'bert'),
  );
  rejectsLoad(dir, /model_type 'bert' is not supported/, new RegExp(SUPPORTED_MODEL_TYPES.join(', ')));
  assert.deepEqual(SUPPORTED_MODEL_TYPES, ['gpt2', 'llama', 'mistral', 'qwen2', 't5', 'mt5']);
});

test('a bad config field is named with its path', () => {
  const dir = editedFixture(
    'llama-tiny',
    () => {},
    (c) => (c.num_key_value_heads = 3),
  );
  rejectsLoad(dir, /config\.json: the attention heads \(4\) must be a multiple of the key\/value heads \(3\)/);
});

test('old GPT-2 files: attn.bias/masked_bias buffers, a stored lm_head and base-model keys load', () => {
  const ref = logitsOf(fixture('hf-reference', 'gpt2-tiny'));
  const dir = editedFixture('gpt2-tiny', (t) => {
    for (const [k, v] of [...t]) {
      t.delete(k);
      t.set(k.replace(/^transformer\./, ''), v);
    }
    t.set('h.0.attn.bias', { dtype: 'F32', shape: [1, 1, 64, 64], data: new Float32Array(64 * 64) });
    t.set('h.1.attn.masked_bias', { dtype: 'F32', shape: [], data: new Float32Array(1) });
    t.set('lm_head.weight', t.get('wte.weight')!);
  });
  assert.equal(relErr(logitsOf(dir), ref), 0);
});

test('a sharded checkpoint (model.safetensors.index.json) loads like the single file', () => {
  const src = fixture('hf-reference', 'llama-tiny');
  const dir = tempDir('sharded');
  copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
  const { tensors } = readSafetensors(join(src, 'model.safetensors'));
  const names = [...tensors.keys()];
  const shards = [names.slice(0, 9), names.slice(9)];
  const weightMap: Record<string, string> = {};
  shards.forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(join(dir, file), new Map(part.map((n) => [n, tensors.get(n)!])), { format: 'pt' });
    for (const n of part) weightMap[n] = file;
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  assert.equal(relErr(logitsOf(dir), logitsOf(src)), 0);
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ weight_map: { ...weightMap, 'model.norm.weight': 'model-00003-of-00002.safetensors' } }),
  );
  rejectsLoad(dir, /shard 'model-00003-of-00002\.safetensors' is missing/);
});

test('a folder without weights says what it found', () => {
  const dir = tempDir('empty');
  copyFileSync(fixture('hf-reference', 'gpt2-tiny', 'config.json'), join(dir, 'config.json'));
  writeFileSync(join(dir, 'pytorch_model.bin'), '');
  rejectsLoad(dir, /neither model\.safetensors nor model\.safetensors\.index\.json/, /pytorch_model\.bin/);
  rejectsLoad(tempDir('nothing'), /no config\.json/);
});
