/**
 * Whole-model parity with the fused webgpu kernels active (LayerNorm / RMSNorm and the cross-entropy loss):
 * tiny random GPT-2, LLaMA and T5 models give the same loss and parameter gradients on webgpu as on the cpu
 * backend's tf-op path, within relative error 1e-3 (relError: max abs difference over max abs reference).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { randomModel } from '../../../src/engine/models/registry';
import type { RawConfig } from '../../../src/engine/models/config';
import { relError, useSoftwareWebGpu } from '../../helpers/webgpu';

const TOL = 1e-3;
const VOCAB = 300;

const MODELS: Record<string, RawConfig> = {
  gpt2: {
    model_type: 'gpt2',
    vocab_size: VOCAB,
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
    n_positions: 64,
    layer_norm_epsilon: 1e-5,
    activation_function: 'gelu_new',
  },
  llama: {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: VOCAB,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
  },
  t5: {
    model_type: 't5',
    architectures: ['T5ForConditionalGeneration'],
    vocab_size: VOCAB,
    d_model: 32,
    d_kv: 8,
    d_ff: 64,
    num_layers: 2,
    num_decoder_layers: 2,
    num_heads: 4,
    relative_attention_num_buckets: 8,
    relative_attention_max_distance: 32,
    feed_forward_proj: 'relu',
    layer_norm_epsilon: 1e-6,
    tie_word_embeddings: true,
    decoder_start_token_id: 0,
  },
};

const B = 2;
const T = 9;
const IDS = Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % VOCAB);
// Some unlabelled positions (-100), as in prompt/answer batches.
const LABELS = IDS.map((id, i) => (i % T < 3 ? -100 : id));

interface Result {
  loss: number;
  grads: Map<string, Float32Array>;
}

async function lossAndGrads(raw: RawConfig): Promise<Result> {
  const model = randomModel(raw, { seed: 7, std: 0.2 });
  const ids = tf.tensor2d(IDS, [B, T], 'int32');
  const labels = tf.tensor2d(LABELS, [B, T], 'int32');
  const { value, grads } = tf.variableGrads(() => model.loss(ids, labels), [...model.params.values()]);
  const out: Result = { loss: (await value.data())[0], grads: new Map() };
  for (const [name, v] of model.params) out.grads.set(name, (await grads[v.name].data()) as Float32Array);
  tf.dispose([ids, labels, value, ...Object.values(grads)]);
  model.dispose();
  return out;
}

for (const [arch, raw] of Object.entries(MODELS)) {
  test(`${arch}: loss and gradients on webgpu with the fused kernels match the cpu backend`, async () => {
    await useSoftwareWebGpu();
    await tf.setBackend('cpu');
    const want = await lossAndGrads(raw);
    await tf.setBackend('webgpu');
    const got = await lossAndGrads(raw);
    const compiled = Object.keys((tf.backend() as unknown as { pipelineCache: object }).pipelineCache);
    const norm = arch === 'gpt2' ? 'sculpt_norm_dx_layer' : 'sculpt_norm_dx_rms';
    for (const key of [norm, 'sculpt_cross_entropy_fwd', 'sculpt_cross_entropy_bwd']) {
      assert.ok(
        compiled.some((k) => k.startsWith(key)),
        `${key} did not run`,
      );
    }
    const lossErr = Math.abs(got.loss - want.loss) / Math.abs(want.loss);
    assert.ok(lossErr <= TOL, `loss ${got.loss} vs ${want.loss}`);
    for (const [name, g] of want.grads) {
      const err = relError(got.grads.get(name)!, g);
      assert.ok(err <= TOL, `${name}: gradient relative error ${err.toExponential(2)} > ${TOL}`);
    }
  });
}

test('on webgpu the head and the loss run on the labelled positions only, when the labels are fresh from the host', async () => {
  await useSoftwareWebGpu();
  const model = randomModel(MODELS.llama, { seed: 7, std: 0.2 });
  const ids = tf.tensor2d(IDS, [B, T], 'int32');
  const labels = tf.tensor2d(LABELS, [B, T], 'int32');
  const labelled = LABELS.filter((y, i) => i % T > 0 && y !== -100).length; // positions t whose t+1 is labelled
  const info = await tf.profile(() => model.loss(ids, labels));
  const shapes = info.kernels.map((k) => JSON.stringify(k.outputShapes[0]));
  assert.ok(
    shapes.includes(JSON.stringify([labelled, VOCAB])),
    `a [${labelled}, ${VOCAB}] head output: ${[...new Set(shapes)].join(' ')}`,
  );
  assert.ok(!shapes.includes(JSON.stringify([B * (T - 1), VOCAB])), 'no dense head over every position');
  tf.dispose([ids, labels]);
  model.dispose();
});
