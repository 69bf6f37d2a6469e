/**
 * The causal-LM loss on answer-only labels (most positions -100) runs the head on labelled positions only;
 * it must equal the dense definition: mean over labelled positions of -log softmax(logits[t - 1])[label[t]].
 * Checked on value and gradients against a computation from the full logits (relative 1e-5 / 1e-4).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { randomModel } from '../../src/engine/models/registry';
import { relErr } from './models-util';

for (const backend of ['cpu', 'wasm'] as const) {
  test(`answer-only loss and gradients equal the dense definition (${backend})`, async () => {
    await selectBackend(backend);
    const model = randomModel(
      {
        model_type: 'llama',
        architectures: ['LlamaForCausalLM'],
        vocab_size: 50,
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 32,
        rms_norm_eps: 1e-6,
        rope_theta: 10000,
        tie_word_embeddings: true,
      },
      { seed: 3 },
    );
    const B = 3;
    const T = 7;
    const ids = tf.tensor2d(
      Array.from({ length: B * T }, (_, i) => (i * 13 + 5) % 50),
      [B, T],
      'int32',
    );
    // Labels on a few positions per row (an answer), padding in the last row.
    const lab = Array.from({ length: B * T }, () => -100);
    const labelled: [number, number, number][] = [
      [0, 5, 7],
      [0, 6, 2],
      [1, 3, 11],
      [2, 2, 40],
      [2, 3, 2],
    ];
    for (const [b, t, y] of labelled) lab[b * T + t] = y;
    const labels = tf.tensor2d(lab, [B, T], 'int32');
    const mask = tf.tensor2d(
      Array.from({ length: B * T }, (_, i) => (Math.floor(i / T) === 2 && i % T > 4 ? 0 : 1)),
      [B, T],
      'int32',
    );
    const vars = [...model.params.values()];
    const fast = tf.variableGrads(() => model.loss(ids, labels, mask), vars);
    const dense = tf.variableGrads(() => {
      const logp = tf.logSoftmax(model.logits(ids, mask));
      const picks = labelled.map(([b, t, y]) => logp.slice([b, t - 1, y], [1, 1, 1]).reshape([]));
      return tf.addN(picks).neg().div(labelled.length) as tf.Scalar;
    }, vars);
    const a = fast.value.dataSync()[0];
    const b = dense.value.dataSync()[0];
    assert.ok(Math.abs(a - b) <= 1e-5 * Math.abs(b), `loss ${a} vs ${b}`);
    for (const v of vars) {
      const err = relErr(fast.grads[v.name].dataSync(), dense.grads[v.name].dataSync());
      assert.ok(err <= 1e-4, `${v.name}: gradient relative error ${err}`);
    }
    tf.dispose([
      ids,
      labels,
      mask,
      fast.value,
      dense.value,
      ...Object.values(fast.grads),
      ...Object.values(dense.grads),
    ]);
    model.dispose();
  });
}
