// T5 checkpoints: the bit-identical load/save round trip (tied copies of `shared` neither missing nor written
// twice), refused files naming the tensor, the inventory's groups, and `sculpt inspect` on the fixture.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained, saveCheckpoint } from '../../src/engine/io/checkpoint';
import { readSafetensors, writeSafetensors, type StTensor } from '../../src/engine/io/safetensors';
import { inspectCommand } from '../../src/cli/inspect';
import { isSeq2Seq, type Seq2SeqLM } from '../../src/engine/models/types';
import { runCommand } from '../helpers/console';
import { fixture } from '../helpers/paths';
import { editedFixture, rejectsLoad, relErr, tempDir } from './models-util';

const SRC = fixture('hf-reference', 't5-tiny');

const edited = (edit: (t: Map<string, StTensor>) => void, config?: (c: Record<string, unknown>) => void): string =>
  editedFixture('t5-tiny', edit, config);
const rejects = rejectsLoad;

function load(dir: string): Seq2SeqLM {
  const m = loadPretrained(dir);
  assert.ok(isSeq2Seq(m));
  return m;
}

const bytes = (t: StTensor): Buffer =>
  Buffer.from(
    (t.data as Float32Array).buffer,
    (t.data as Float32Array).byteOffset,
    (t.data as Float32Array).byteLength,
  );

test('t5 load/save round trip: the same tensors bit for bit, shared stored once, config unchanged', async () => {
  await selectBackend('cpu');
  const m = load(SRC);
  const out = tempDir('t5-save');
  await saveCheckpoint(m, out);
  m.dispose();
  const before = readSafetensors(join(SRC, 'model.safetensors')).tensors;
  const after = readSafetensors(join(out, 'model.safetensors')).tensors;
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'no embed_tokens copies, no lm_head');
  for (const [k, t] of before) {
    assert.deepEqual(after.get(k)!.shape, t.shape, k);
    assert.ok(bytes(after.get(k)!).equals(bytes(t)), `${k} differs after the round trip`);
  }
  assert.deepEqual(
    JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')),
    JSON.parse(readFileSync(join(SRC, 'config.json'), 'utf8')),
  );
});

test('t5: tied copies of shared (embed_tokens, lm_head) in a file are accepted and ignored', () => {
  const dir = edited((t) => {
    for (const k of ['encoder.embed_tokens.weight', 'decoder.embed_tokens.weight', 'lm_head.weight'])
      t.set(k, t.get('shared.weight')!);
  });
  const ids = [[4, 9, 1]];
  const labels = [[7, 1]];
  const logits = (m: Seq2SeqLM): Float32Array =>
    tf.tidy(
      () =>
        m
          .labelLogits(tf.tensor2d(ids, [1, 3], 'int32'), tf.tensor2d(labels, [1, 2], 'int32'))
          .dataSync() as Float32Array,
    );
  const a = load(dir);
  const b = load(SRC);
  assert.equal(relErr(logits(a), logits(b)), 0);
  a.dispose();
  b.dispose();
});

test('t5: a removed, an extra and a mis-shaped tensor are each named', () => {
  rejects(
    edited((t) => t.delete('decoder.block.1.layer.1.EncDecAttention.k.weight')),
    /missing \(1\)/,
    /decoder\.block\.1\.layer\.1\.EncDecAttention\.k\.weight \(expected \[64, 64\]\)/,
  );
  rejects(
    edited((t) =>
      t.set(
        'encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight',
        t.get('encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight')!,
      ),
    ),
    /unexpected \(1\)/,
    /encoder\.block\.1\.layer\.0\.SelfAttention\.relative_attention_bias\.weight F32 \[32, 4\]/,
  );
  rejects(
    edited((t) =>
      t.set('decoder.block.0.layer.2.DenseReluDense.wi.weight', {
        dtype: 'F32',
        shape: [64, 128],
        data: new Float32Array(64 * 128),
      }),
    ),
    /decoder\.block\.0\.layer\.2\.DenseReluDense\.wi\.weight: expected \[128, 64\], found \[64, 128\]/,
  );
  rejects(
    edited(
      () => {},
      (c) => (c.tie_word_embeddings = false),
    ),
    /lm_head\.weight \(expected \[512, 64\]\)/,
  );
  rejects(
    edited(
      () => {},
      (c) => (c.feed_forward_proj = 'gated-gelu'),
    ),
    /DenseReluDense\.wi_0\.weight/,
    /DenseReluDense\.wi\.weight/,
  );
  rejects(
    edited(
      () => {},
      (c) => (c.feed_forward_proj = 'fancy-relu'),
    ),
    /'feed_forward_proj' 'fancy-relu' is not valid/,
  );
});

test('t5 inventory: self-attention and feed-forward are targets, cross-attention a group of its own', () => {
  const m = load(SRC);
  const inv = m.inventory;
  const byGroup = (g: string): string[] => inv.targets.filter((t) => t.group === g).map((t) => t.name);
  assert.equal(byGroup('attention').length, 16, 'q, k, v, o in 2 encoder and 2 decoder blocks');
  assert.equal(byGroup('mlp').length, 8, 'wi, wo in 4 blocks');
  assert.deepEqual(
    byGroup('cross-attention'),
    [0, 1].flatMap((i) => ['q', 'k', 'v', 'o'].map((r) => `decoder.block.${i}.layer.1.EncDecAttention.${r}.weight`)),
  );
  assert.deepEqual(
    [...new Set(inv.targets.map((t) => t.layer))],
    [0, 1, 2, 3],
    'decoder blocks follow the encoder blocks',
  );
  const group = (name: string): string => inv.params.find((p) => p.name === name)!.group;
  assert.equal(group('shared.weight'), 'embedding');
  assert.equal(group('decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight'), 'position');
  assert.equal(group('encoder.final_layer_norm.weight'), 'norm');
  assert.equal(m.config.numLayers, 4);
  assert.ok(inv.tiedHead);
  m.dispose();
});

const inspect = (...args: string[]) => runCommand(inspectCommand, args);

for (const backend of ['cpu', 'wasm']) {
  test(`sculpt inspect on t5-tiny (${backend}): summary, and logits/loss matching the reference`, async () => {
    const ref = join(SRC, 'reference.safetensors');
    const out = join(tempDir('t5-inspect'), 'x.safetensors');
    const r = await inspect(SRC, '--input', ref, '--out', out, '--backend', backend);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /architecture {2}t5 \(model_type t5, T5ForConditionalGeneration\): encoder 2 \+ decoder 2 layers, hidden 64, 4 heads of 16/,
    );
    assert.match(r.out, /cross-attention +32,768/);
    assert.match(r.out, /dec 1 +o +decoder\.block\.1\.layer\.1\.EncDecAttention\.o\.weight +\[64, 64\]/);
    assert.match(r.out, /wrote logits \[2, 6, 512\] and loss 6\.48\d+ to /);
    const got = readSafetensors(out).tensors;
    const want = readSafetensors(ref).tensors;
    assert.ok(relErr(got.get('logits')!.data as Float32Array, want.get('logits')!.data as Float32Array) <= 1e-4);
    assert.ok(relErr(got.get('loss')!.data as Float32Array, want.get('loss')!.data as Float32Array) <= 1e-5);
  });
}

test('sculpt inspect on t5 without decoder targets says what it needs', async () => {
  const dir = tempDir('t5-inspect-bad');
  const only = join(dir, 'ids.safetensors');
  writeSafetensors(only, { 'input.input_ids': { dtype: 'I32', shape: [1, 2], data: Int32Array.from([3, 1]) } });
  const r = await inspect(SRC, '--input', only, '--out', join(dir, 'o.safetensors'));
  assert.equal(r.code, 2);
  assert.match(r.err, /needs decoder targets 'input\.labels'/);
});
