// Seq2seq batches (prompt -> encoder, answer -> decoder labels) with the T5-style tokenizer fixture, and a tiny
// T5 that learns two examples from them through the model's loss and then ranks their labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadTokenizer } from '../../src/engine/io/tokenizer';
import {
  encodeSeq2SeqExample,
  encodeSeq2SeqPrompt,
  isSeq2SeqBatch,
  labelShape,
  makeSeq2SeqBatch,
} from '../../src/engine/data/seq2seq';
import { answerText, makeBatch } from '../../src/engine/data/batches';
import { namedGrads } from '../../src/engine/models/grads';
import { randomModel } from '../../src/engine/models/registry';
import { fixture } from '../helpers/paths';

const tok = loadTokenizer(fixture('unigram-t5'));
const TEMPLATE = '{instruction}{input}';
const EXAMPLES = [
  { instruction: 'sentiment: ', input: 'the cat sat', output: 'positive' },
  { instruction: 'sentiment: ', input: 'the mat.', output: 'negative' },
];

test('seq2seq examples: prompt + EOS for the encoder (cut from the left), answer + EOS for the decoder', () => {
  assert.deepEqual(encodeSeq2SeqExample(tok, TEMPLATE, EXAMPLES[0], 16), {
    prompt: [15, 16, 4, 5, 8, 1],
    answer: [13, 1],
  });
  assert.deepEqual(encodeSeq2SeqPrompt(tok, TEMPLATE, EXAMPLES[0], 3), [5, 8, 1]);
  assert.throws(
    () => encodeSeq2SeqExample(tok, TEMPLATE, EXAMPLES[0], 16, 1),
    /the answer "positive" takes 2 tokens \(EOS included\), more than maxTargetLen 1/,
  );
  assert.throws(() => encodeSeq2SeqPrompt(tok, TEMPLATE, EXAMPLES[0], 1), /leaves no room for the prompt/);
});

test('seq2seq batches: prompts and answers padded separately, labels -100 after each answer', () => {
  const b = makeSeq2SeqBatch(
    EXAMPLES.map((e) => encodeSeq2SeqExample(tok, TEMPLATE, e, 16)),
    tok.padId,
  );
  assert.ok(isSeq2SeqBatch(b));
  assert.equal(b.T, 6);
  assert.equal(b.labelsT, 2);
  assert.deepEqual([...b.inputIds], [15, 16, 4, 5, 8, 1, 15, 16, 4, 11, 12, 1]);
  assert.deepEqual([...b.mask], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...b.labels], [13, 1, 14, 1]);
  assert.deepEqual(labelShape(b), [2, 2]);
  assert.equal(b.labelled, 4);
  assert.equal(b.tokens, 16);
  const short = makeSeq2SeqBatch(
    [
      { prompt: [4, 1], answer: [13, 5, 1] },
      { prompt: [5, 8, 11, 1], answer: [14, 1] },
    ],
    0,
  );
  assert.deepEqual([...short.inputIds], [4, 1, 0, 0, 5, 8, 11, 1]);
  assert.deepEqual([...short.mask], [1, 1, 0, 0, 1, 1, 1, 1]);
  assert.deepEqual([...short.labels], [13, 5, 1, 14, 1, -100]);
  assert.deepEqual(
    labelShape(makeBatch([{ prompt: [1, 2], answer: [3] }], 0)),
    [1, 3],
    'a decoder-only batch keeps [B, T]',
  );
});

test('a tiny T5 learns from seq2seq batches through its loss and then ranks the labels', async () => {
  await selectBackend('cpu');
  const model = randomModel(
    {
      model_type: 't5',
      vocab_size: tok.vocabSize,
      d_model: 16,
      d_kv: 4,
      d_ff: 24,
      num_layers: 1,
      num_heads: 4,
      eos_token_id: 1,
    },
    { seed: 3, std: 0.3 },
  );
  const b = makeSeq2SeqBatch(
    EXAMPLES.map((e) => encodeSeq2SeqExample(tok, TEMPLATE, e, 16)),
    tok.padId,
  );
  const ids = tf.tensor2d(b.inputIds, [b.B, b.T], 'int32');
  const mask = tf.tensor2d(b.mask, [b.B, b.T], 'int32');
  const labels = tf.tensor2d(b.labels, labelShape(b), 'int32');
  const losses: number[] = [];
  let tensorsAfterFirst = 0;
  for (let step = 0; step < 40; step++) {
    if (step === 1) tensorsAfterFirst = tf.memory().numTensors;
    losses.push(
      tf.tidy(() => {
        const { value, grads } = namedGrads(model, () => model.loss(ids, labels, mask));
        for (const [n, g] of grads) model.params.get(n)!.assign(model.params.get(n)!.sub(g.mul(0.5)));
        return value.dataSync()[0];
      }),
    );
  }
  assert.equal(tf.memory().numTensors, tensorsAfterFirst, 'the tensor count is flat across training steps');
  console.log(`# seq2seq training: loss ${losses[0].toFixed(3)} -> ${losses[39].toFixed(4)}`);
  assert.ok(losses[39] < losses[0] / 4, `loss ${losses[0]} -> ${losses[39]}`);
  const labelIds = ['positive', 'negative'].map((l) => [...tok.encode(answerText(l)), tok.eosId!]);
  const prompts = EXAMPLES.map((e) => encodeSeq2SeqPrompt(tok, TEMPLATE, e, 16));
  const scores = await model.continuationLogProbs(
    [prompts[0], prompts[0], prompts[1], prompts[1]],
    [...labelIds, ...labelIds],
  );
  assert.ok(scores[0] > scores[1] && scores[3] > scores[2], `scores ${scores}`);
  assert.deepEqual(
    await model.generate(prompts, 4),
    labelIds,
    'greedy decoding reproduces each answer and stops at EOS',
  );
  tf.dispose([ids, mask, labels]);
  model.dispose();
});
