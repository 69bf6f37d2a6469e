/**
 * Writes assets/models/tiny-llama: a randomly initialised 2-layer LLaMA-architecture model (d 32) with a
 * word-level tokenizer over the tiny builtin tasks' words. It exists for tests and the first-run example
 * (examples/tiny.sculpt.json): small enough to train in seconds, through the same loading path as any
 * Hugging Face checkpoint. Deterministic: rerunning writes the same files.
 *   node scripts/run-ts.mjs scripts/make-tiny-model.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tinyVocabulary } from '../src/engine/builtin/tiny-tasks';
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
async function main(): Promise<void> {
  await selectBackend('cpu');
  const model = randomModel(config, { seed: 1234 });
  saveCheckpoint(model, dir);
  tok.save(dir);
  writeFileSync(
    join(dir, 'README.md'),
    `# tiny-llama\n\nA randomly initialised 2-layer LLaMA-architecture model (hidden size 32, ${tok.vocabSize}-word vocabulary) for tests and the\nfirst-run example. It knows nothing until fine-tuned. Made by \`node scripts/run-ts.mjs scripts/make-tiny-model.ts\` (seed 1234).\n`,
);
  console.log(`wrote ${dir} (${tok.vocabSize} tokens)`);
  model.dispose();
}

void main();
