// Padding, generation with and without the key/value cache, continuation log-probabilities and activation
// capture, on tiny random GPT-2 and LLaMA models.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { randomModel } from '../../src/engine/models/registry';
import type { CausalLM } from '../../src/engine/models/types';
import { relErr } from './models-util';

const RAW: Record<string, Record<string, unknown>> = {
  gpt2: { model_type: 'gpt2', n_embd: 32, n_head: 4, n_layer: 2, n_positions: 40, vocab_size: 50, eos_token_id: 49 },
  llama: {
    model_type: 'llama',
    hidden_size: 32,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 50,
    max_position_embeddings: 40,
    eos_token_id: 49,
  },
};
const PROMPTS = [
  [5, 8, 13, 21],
  [1, 2],
  [7, 30, 11, 4, 4, 9, 40],
];

const MODELS = new Map<string, CausalLM>();
before(async () => {
  await selectBackend('cpu');
  // Large weights make the next-token distribution peaked, so argmax is not decided by rounding.
  for (const [k, raw] of Object.entries(RAW)) MODELS.set(k, randomModel(raw, { seed: 11, std: 0.4 }));
});

function rightPadded(seqs: number[][]): { ids: tf.Tensor2D; mask: tf.Tensor2D; T: number } {
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = seqs.map((s) => [...s, ...new Array<number>(T - s.length).fill(0)]);
  const mask = seqs.map((s) => s.map(() => 1).concat(new Array<number>(T - s.length).fill(0)));
  return { ids: tf.tensor2d(ids, [seqs.length, T], 'int32'), mask: tf.tensor2d(mask, [seqs.length, T], 'int32'), T };
}

/** Right padding with a mask: each example's logits and loss are what it gets alone. */
function paddedBatchMatchesAlone(model: CausalLM): void {
  const { ids, mask, T } = rightPadded(PROMPTS);
  const V = model.config.vocabSize;
  const batch = model.logits(ids, mask).arraySync();
  let nllSum = 0;
  let count = 0;
  PROMPTS.forEach((p, b) => {
    const alone = tf.tidy(() => model.logits(tf.tensor2d([p], [1, p.length], 'int32')).arraySync()[0]);
    assert.ok(relErr(batch[b].slice(0, p.length).flat(), alone.flat()) < 1e-5, `example ${b}`);
    const loss = tf.tidy(
      () =>
        model.loss(tf.tensor2d([p], [1, p.length], 'int32'), tf.tensor2d([p], [1, p.length], 'int32')).dataSync()[0],
    );
    nllSum += loss * (p.length - 1);
    count += p.length - 1;
  });
  const labels = tf.tensor2d(
    PROMPTS.map((p) => [...p, ...new Array<number>(T - p.length).fill(-100)]),
    [PROMPTS.length, T],
    'int32',
  );
  const batchLoss = tf.tidy(() => model.loss(ids, labels, mask).dataSync()[0]);
  assert.ok(Math.abs(batchLoss - nllSum / count) < 1e-5 * batchLoss, `batch loss ${batchLoss} vs ${nllSum / count}`);
  assert.equal(batch[0][0].length, V);
  tf.dispose([ids, mask, labels]);
}

for (const arch of Object.keys(RAW)) {
  const m = (): CausalLM => MODELS.get(arch)!;
  for (const backend of ['cpu', 'wasm'] as const) {
    test(`${arch} on ${backend}: padded batch gives each example the logits and loss it has alone`, async () => {
      await selectBackend(backend);
      paddedBatchMatchesAlone(m());
    });
  }

  test(`${arch}: greedy generation with the cache equals recomputing the prefix, batched or not`, async () => {
    const model = m();
    await model.generate(PROMPTS, 8, { eosTokenIds: [], useCache: false }); // grows the mask and rotary tables
    const before = tf.memory().numTensors;
    const cached = await model.generate(PROMPTS, 8, { eosTokenIds: [] });
    const full = await model.generate(PROMPTS, 8, { eosTokenIds: [], useCache: false });
    assert.deepEqual(cached, full);
    for (const [b, p] of PROMPTS.entries())
      assert.deepEqual((await model.generate([p], 8, { eosTokenIds: [] }))[0], cached[b]);
    assert.ok(cached.every((o) => o.length === 8));
    assert.equal(tf.memory().numTensors, before, 'generation leaves no tensors behind');
    // A row stops after its EOS; the others continue.
    const eos = cached[0][2];
    const stopped = await model.generate(PROMPTS, 8, { eosTokenIds: [eos] });
    assert.deepEqual(stopped[0], cached[0].slice(0, cached[0].indexOf(eos) + 1));
    await assert.rejects(model.generate([[1, 2]], 40), /exceeds the model's 40 positions/);
  });

  test(`${arch}: continuation log-probabilities are sums of log-softmax picks of the full logits`, async () => {
    const model = m();
    const conts = [[3, 3], [17], [22, 5, 6]];
    const got = await model.continuationLogProbs(PROMPTS, conts, 2);
    PROMPTS.forEach((p, b) => {
      const seq = [...p, ...conts[b]];
      const logp = tf.tidy(
        () => tf.logSoftmax(model.logits(tf.tensor2d([seq], [1, seq.length], 'int32'))).arraySync()[0],
      );
      const want = conts[b].reduce((s, tok, j) => s + logp[p.length + j - 1][tok], 0);
      assert.ok(Math.abs(got[b] - want) < 1e-4 * Math.abs(want), `example ${b}: ${got[b]} vs ${want}`);
    });
    await assert.rejects(model.continuationLogProbs([[]], [[1]]), /prompt 0 is empty/);
    await assert.rejects(model.continuationLogProbs([[1]], [[50]]), /token id 50, outside the vocabulary/);
  });

  test(`${arch}: capture hands out every target's input and each block's input and output`, () => {
    const model = m();
    const { ids, mask } = rightPadded(PROMPTS);
    const real = PROMPTS.reduce((s, p) => s + p.length, 0);
    const dims = new Map(model.inventory.targets.map((t) => [t.name, t.dIn]));
    const seen = new Set<string>();
    const blocks: number[][][] = [];
    const h = model.hidden(ids, mask, {
      matrix: (name, x) => {
        assert.deepEqual(x.shape, [real, dims.get(name)], name);
        seen.add(name);
      },
      block: (layer, input, output) => {
        assert.deepEqual(input.shape, [real, model.config.hiddenSize]);
        blocks[layer] = [input.arraySync().flat(), output.arraySync().flat()];
      },
    });
    assert.deepEqual([...seen].sort(), [...dims.keys()].sort());
    assert.deepEqual(blocks[1][0], blocks[0][1], "block 1's input is block 0's output");
    assert.deepEqual(h.shape, [3, 7, model.config.hiddenSize]);
    tf.dispose([ids, mask, h]);
  });
}

test('withWeights: the forward uses the replacement, and gradients reach what it is computed from', () => {
  const model = MODELS.get('llama')!;
  const name = 'model.layers.0.mlp.up_proj.weight';
  const W = model.params.get(name)!;
  const ids = tf.tensor2d([[4, 9, 16, 25, 36]], [1, 5], 'int32');
  const delta = tf.variable(tf.zerosLike(W));
  const replaced = tf.tidy(() => model.withWeights(new Map([[name, W.mul(2)]]), () => model.logits(ids)).dataSync());
  const original = W.clone();
  W.assign(W.mul(2));
  const assigned = tf.tidy(() => model.logits(ids).dataSync());
  W.assign(original);
  assert.ok(relErr(replaced, assigned) < 1e-6);
  const viaDelta = tf.tidy(() =>
    tf
      .variableGrads(() => model.withWeights(new Map([[name, W.add(delta)]]), () => model.loss(ids, ids)), [delta])
      .grads[delta.name].dataSync(),
  );
  const direct = tf.tidy(() => tf.variableGrads(() => model.loss(ids, ids), [W]).grads[W.name].dataSync());
  assert.ok(relErr(viaDelta, direct) < 1e-6);
  assert.throws(() => model.withWeights(new Map([[name, tf.zeros([2, 2])]]), () => 0), /has shape \[2,2\]/);
  tf.dispose([ids, delta, original]);
});
