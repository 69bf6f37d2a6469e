/**
 * Writes assets/models/tiny-llama: a randomly initialised 2-layer LLaMA-architecture model (d 32) with a
 * word-level tokenizer over the tiny builtin tasks' words, and assets/models/tiny-t5, the same for a 2+2-layer
 * T5 encoder-decoder. It exists for tests and the first-run example
 * (examples/tiny.sculpt.json): small enough to train in seconds, through the same loading path as any
 * Hugging Face checkpoint. Deterministic: rerunning writes the same files.
 *   node scripts/run-ts.mjs scripts/make-tiny-model.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tinyVocabulary } from '../src/runs/builtin/tiny-tasks';
import { trainTokenizer } from '../src/engine/io/tokenizer';
import { randomModel } from '../src/engine/models/registry';
import { saveCheckpoint } from '../src/engine/io/checkpoint';
import { selectBackend } from '../src/engine/backend';

const dir = join(process.env.SCULPT_REPO_ROOT ?? '.', 'assets', 'models', 'tiny-llama');
const tok = trainTokenizer(tinyVocabulary(), { vocabSize: 256, kind: 'word', minFrequency: 1 });
const config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: tok.vocabSize,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  attention_bias: false,
  mlp_bias: false,
  initializer_range: 0.02,
  bos_token_id: tok.bosId,
  eos_token_id: tok.eosId,
  pad_token_id: tok.padId,
  torch_dtype: 'float32',
};
const t5Config = {
  architectures: ['T5ForConditionalGeneration'],
  model_type: 't5',
  vocab_size: tok.vocabSize,
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
  is_encoder_decoder: true,
  initializer_factor: 1.0,
  decoder_start_token_id: tok.padId,
  eos_token_id: tok.eosId,
  pad_token_id: tok.padId,
};

async function main(): Promise<void> {
  await selectBackend('cpu');
  const t5Dir = join(process.env.SCULPT_REPO_ROOT ?? '.', 'assets', 'models', 'tiny-t5');
  const t5 = randomModel(t5Config, { seed: 1234, std: 0.05 });
  await saveCheckpoint(t5, t5Dir);
  tok.save(t5Dir);
  writeFileSync(
    join(t5Dir, 'README.md'),
    `# tiny-t5\n\nA randomly initialised T5 encoder-decoder (2 + 2 layers, d_model 32) with the tiny-llama tokenizer, for tests of the\nencoder-decoder path. Made by \`node scripts/run-ts.mjs scripts/make-tiny-model.ts\` (seed 1234).\n`,
  );
  t5.dispose();
  const model = randomModel(config, { seed: 1234 });
  await saveCheckpoint(model, dir);
  tok.save(dir);
  writeFileSync(
    join(dir, 'README.md'),
    `# tiny-llama\n\nA randomly initialised 2-layer LLaMA-architecture model (hidden size 32, ${tok.vocabSize}-word vocabulary) for tests and the\nfirst-run example. It knows nothing until fine-tuned. Made by \`node scripts/run-ts.mjs scripts/make-tiny-model.ts\` (seed 1234).\n`,
  );
  console.log(`wrote ${dir} (${tok.vocabSize} tokens)`);
  model.dispose();
}

void main();
