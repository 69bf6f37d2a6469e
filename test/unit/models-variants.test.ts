// The LLaMA family variants (Qwen2 q/k/v bias, Mistral, multi-query, tied head): names, shapes, equivalences
// that pin down their forward, and save/load round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained, saveCheckpoint } from '../../src/engine/io/checkpoint';
import { SafetensorsReader } from '../../src/engine/io/safetensors';
import { randomModel } from '../../src/engine/models/registry';
import { ropeInvFreq } from '../../src/engine/models/llama';
import type { CausalLM } from '../../src/engine/models/types';
import { relErr, tempDir } from './models-util';

const llamaRaw = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  model_type: 'llama',
  architectures: ['LlamaForCausalLM'],
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 64,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
  ...over,
});

const IDS = [
  [3, 17, 42, 5, 9, 61, 0, 33],
  [12, 7, 7, 50, 2, 19, 44, 1],
];

function logitsOf(m: CausalLM): Float32Array {
  return tf.tidy(() => m.logits(tf.tensor2d(IDS, [2, 8], 'int32')).dataSync() as Float32Array);
}

/** Random values for every bias (HF initialises them to 0, which would hide a missing bias). */
function randomizeBiases(m: CausalLM, seed: number): void {
  const before = logitsOf(m);
  tf.tidy(() => {
    for (const [n, v] of m.params)
      if (n.endsWith('.bias')) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', seed++));
  });
  assert.ok(relErr(logitsOf(m), before) > 1e-3, 'the biases take part in the forward');
}

function copyInto(dst: CausalLM, src: CausalLM): void {
  for (const [n, v] of src.params) dst.params.get(n)?.assign(v);
}

/** Saves, loads back, and checks every tensor bit for bit and the file's dtypes and metadata. */
async function roundTrip(m: CausalLM): Promise<CausalLM> {
  const dir = tempDir('ckpt');
  await saveCheckpoint(m, dir);
  const back = loadPretrained(dir);
  assert.deepEqual([...back.params.keys()].sort(), [...m.params.keys()].sort());
  for (const [n, v] of m.params) {
    const a = Buffer.from((v.dataSync() as Float32Array).buffer);
    assert.ok(
      a.equals(Buffer.from((back.params.get(n)!.dataSync() as Float32Array).buffer)),
      `${n} changed in the round trip`,
    );
  }
  const r = SafetensorsReader.open(join(dir, 'model.safetensors'));
  assert.deepEqual(r.metadata, { format: 'pt' });
  for (const n of r.names()) assert.equal(r.info(n).dtype, m.paramDtypes.get(n));
  r.close();
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), m.rawConfig);
  return back;
}

test('qwen2: q/k/v carry biases, o does not; equals llama with attention_bias and a zero o bias', async () => {
  await selectBackend('cpu');
  const qwen = randomModel(
    llamaRaw({ model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], tie_word_embeddings: true }),
    { seed: 1, std: 0.2 },
  );
  const names = [...qwen.params.keys()];
  for (const r of ['q', 'k', 'v']) assert.ok(names.includes(`model.layers.1.self_attn.${r}_proj.bias`));
  assert.ok(!names.includes('model.layers.0.self_attn.o_proj.bias'));
  assert.ok(!names.includes('lm_head.weight'), 'tied head has no variable of its own');
  assert.deepEqual(qwen.params.get('model.layers.0.self_attn.k_proj.bias')!.shape, [16]);
  assert.deepEqual(qwen.params.get('model.layers.0.self_attn.k_proj.weight')!.shape, [16, 32]);
  randomizeBiases(qwen, 10);
  const llama = randomModel(llamaRaw({ attention_bias: true, tie_word_embeddings: true }), { seed: 2 });
  copyInto(llama, qwen);
  assert.ok(relErr(logitsOf(llama), logitsOf(qwen)) < 1e-6);
  const back = await roundTrip(qwen);
  assert.ok(relErr(logitsOf(back), logitsOf(qwen)) === 0);
  for (const m of [qwen, llama, back]) m.dispose();
});

test('mistral: the llama forward with the same weights; head_dim given explicitly', async () => {
  const raw = llamaRaw({ head_dim: 12 });
  const mistral = randomModel(
    { ...raw, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 4096 },
    { seed: 3, std: 0.2 },
  );
  assert.deepEqual(mistral.params.get('model.layers.0.self_attn.q_proj.weight')!.shape, [48, 32]);
  assert.deepEqual(mistral.params.get('model.layers.0.self_attn.o_proj.weight')!.shape, [32, 48]);
  assert.equal(mistral.config.slidingWindow, 4096);
  const llama = randomModel(raw, { seed: 4 });
  copyInto(llama, mistral);
  assert.ok(relErr(logitsOf(llama), logitsOf(mistral)) < 1e-6);
  (await roundTrip(mistral)).dispose();
  mistral.dispose();
  llama.dispose();
});

test('multi-query (1 kv head) equals multi-head attention with the key/value head repeated', async () => {
  const mqa = randomModel(llamaRaw({ num_key_value_heads: 1 }), { seed: 5, std: 0.2 });
  assert.deepEqual(mqa.params.get('model.layers.0.self_attn.v_proj.weight')!.shape, [8, 32]);
  const mha = randomModel(llamaRaw({ num_key_value_heads: 4 }), { seed: 6 });
  for (const [n, v] of mqa.params) {
    const dst = mha.params.get(n)!;
    dst.assign(/[kv]_proj/.test(n) ? tf.tile(v, [4, 1]) : v);
  }
  assert.ok(relErr(logitsOf(mha), logitsOf(mqa)) < 1e-6);
  (await roundTrip(mqa)).dispose();
  mqa.dispose();
  mha.dispose();
});

test('tied llama head equals an untied head holding a copy of the embedding', async () => {
  const tied = randomModel(llamaRaw({ tie_word_embeddings: true, mlp_bias: true }), { seed: 7, std: 0.2 });
  assert.ok(!tied.params.has('lm_head.weight'));
  assert.deepEqual(tied.params.get('model.layers.1.mlp.down_proj.bias')!.shape, [32]);
  assert.equal(tied.inventory.tiedHead, true);
  randomizeBiases(tied, 20);
  const untied = randomModel(llamaRaw({ mlp_bias: true }), { seed: 8 });
  copyInto(untied, tied);
  untied.params.get('lm_head.weight')!.assign(tied.params.get('model.embed_tokens.weight')!);
  assert.ok(relErr(logitsOf(untied), logitsOf(tied)) < 1e-6);
  (await roundTrip(tied)).dispose();
  tied.dispose();
  untied.dispose();
});

test('16-bit weights: a BF16 or F16 checkpoint keeps its dtypes through load and save', async () => {
  const m = randomModel(llamaRaw(), { seed: 9 });
  for (const n of m.params.keys()) m.paramDtypes.set(n, n.includes('mlp') ? 'F16' : 'BF16');
  const dir = tempDir('half');
  await saveCheckpoint(m, dir);
  const once = loadPretrained(dir); // values now exactly representable in their dtype
  const twice = await roundTrip(once);
  const w = once.params.get('model.layers.0.mlp.up_proj.weight')!.dataSync();
  const w0 = m.params.get('model.layers.0.mlp.up_proj.weight')!.dataSync();
  assert.ok(relErr(w, w0) < 1e-3 && relErr(w, w0) > 0, 'F16 rounding happened and was small');
  for (const x of [m, once, twice]) x.dispose();
});

test('rotary frequencies: rope_theta at top level or in rope_parameters; linear and llama3 scaling', () => {
  const d = 16;
  const base = Array.from({ length: d / 2 }, (_, j) => 1 / Math.pow(500000, (2 * j) / d));
  const close = (a: ArrayLike<number>, b: number[]): boolean => b.every((x, i) => Math.abs(a[i] - x) <= 1e-6 * x);
  assert.ok(close(ropeInvFreq({ rope_theta: 500000 }, d), base));
  assert.ok(
    close(ropeInvFreq({ rope_theta: 1, rope_parameters: { rope_theta: 500000, rope_type: 'default' } }, d), base),
  );
  assert.ok(
    close(
      ropeInvFreq({ rope_theta: 500000, rope_scaling: { type: 'linear', factor: 4 } }, d),
      base.map((x) => x / 4),
    ),
  );
  // llama3: wavelengths below old/high_freq_factor keep their frequency, above old/low_freq_factor are divided
  // by factor, and the band between is interpolated.
  const old = 64;
  const l3 = ropeInvFreq(
    {
      rope_parameters: {
        rope_theta: 500000,
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: old,
      },
    },
    d,
  );
  base.forEach((x, j) => {
    const wavelen = (2 * Math.PI) / x;
    if (wavelen < old / 4) assert.ok(Math.abs(l3[j] - x) <= 1e-6 * x, `high frequency ${j} kept`);
    else if (wavelen > old) assert.ok(Math.abs(l3[j] - x / 8) <= 1e-6 * x, `low frequency ${j} divided`);
    else assert.ok(l3[j] < x && l3[j] > x / 8, `frequency ${j} interpolated`);
  });
  assert.throws(
    () => ropeInvFreq({ rope_parameters: { rope_type: 'yarn' } }, d),
    /rope type 'yarn' is not supported; supported: default, linear, llama3/,
  );
});

test('a sequence longer than the sliding window is refused rather than silently attended in full', () => {
  const m = randomModel(llamaRaw({ model_type: 'mistral', sliding_window: 4 }), { seed: 12 });
  assert.throws(() => m.logits(tf.tensor2d([[1, 2, 3, 4, 5]], [1, 5], 'int32')), /exceeds the sliding window \(4\)/);
  assert.equal(
    tf.tidy(() => m.logits(tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32')).shape[1]),
    4,
  );
  m.dispose();
});
