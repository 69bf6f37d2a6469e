/**
 * Tokenizers in the Hugging Face `tokenizer.json` format, run by @huggingface/tokenizers (pure JavaScript):
 * byte-level BPE (GPT-2, Qwen, LLaMA-3), SentencePiece-style BPE with byte fallback (LLaMA-2), and the
 * project's own tokenizers trained here (byte-level BPE or word-level), saved in the same format.
 */
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ModelFileError, type ModelFileLocation } from '../../protocol/errors';

type Json = Record<string, unknown>;

/** A tokenizer file that cannot be used. */
export class TokenizerError extends ModelFileError {
  override readonly name: string = 'TokenizerError';

  constructor(file: string, detail: string, at?: ModelFileLocation) {
    super(file, detail, at);
  }
}

export interface EncodeOptions {
  /** Add BOS/EOS as the tokenizer is configured to (add_bos_token/add_eos_token, else its post-processor). */
  specialTokens?: boolean;
}

/** A special token in tokenizer_config.json: a string or an AddedToken object. */
function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/**
 * The JavaScript runtime has no WordLevel model. A WordPiece model over the same vocabulary behaves the same
 * (whole words or the unknown token) as long as no continuation piece can match: pre-tokens never contain a
 * space, so a space prefix never does.
 */
function runtimeJson(json: Json): Json {
  const model = json.model as Json | undefined;
  if (model?.type !== 'WordLevel') return json;
  return {
    ...json,
    model: {
      type: 'WordPiece',
      vocab: model.vocab,
      unk_token: model.unk_token,
      continuing_subword_prefix: ' ',
      max_input_chars_per_word: 200,
    },
  };
}

export class Tokenizer {
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Padding id: pad_token, else EOS, else 0 (padding is always masked, so any valid id works). */
  readonly padId: number;
  readonly unkId: number | null;
  readonly vocabSize: number;
  private readonly hf: HfTokenizer;
  private readonly addBos: boolean | null;
  private readonly addEos: boolean | null;
  private readonly cleanUp: boolean;

  /**
   * `json` is tokenizer.json, `config` tokenizer_config.json; `modelConfig` (config.json) supplies BOS/EOS ids
   * when the tokenizer files do not name them.
   */
  constructor(
    readonly json: Json,
    readonly config: Json = {},
    modelConfig: Json = {},
    readonly source = '(in-memory tokenizer)',
  ) {
    try {
      this.hf = new HfTokenizer(runtimeJson(json), config);
    } catch (e) {
      throw new TokenizerError(source, `cannot build the tokenizer: ${(e as Error).message}`);
    }
    const vocab = this.hf.get_vocab(true);
    this.vocabSize = Math.max(-1, ...vocab.values()) + 1;
    const id = (field: string, fallbacks: string[]): number | null => {
      const name = tokenName(config[field]);
      if (name !== null) {
        const found = vocab.get(name);
        if (found === undefined)
          throw new TokenizerError(source, `tokenizer_config.json ${field} '${name}' is not in the vocabulary`, {
            field,
          });
        return found;
      }
      const fromModel = modelConfig[`${field}_id`];
      if (typeof fromModel === 'number') return fromModel;
      if (Array.isArray(fromModel) && typeof fromModel[0] === 'number') return fromModel[0];
      for (const f of fallbacks) if (vocab.has(f)) return vocab.get(f)!;
      return null;
    };
    this.bosId = id('bos_token', ['<s>', '<bos>', '<|begin_of_text|>', '<|endoftext|>']);
    this.eosId = id('eos_token', ['</s>', '<eos>', '<|end_of_text|>', '<|endoftext|>']);
    this.unkId = id('unk_token', ['<unk>']);
    this.padId = id('pad_token', ['<pad>']) ?? this.eosId ?? 0;
    this.addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : null;
    this.addEos = typeof config.add_eos_token === 'boolean' ? config.add_eos_token : null;
    this.cleanUp = config.clean_up_tokenization_spaces === true;
  }

  /** Token ids of `text`; no BOS/EOS unless asked (the data pipeline places them itself). */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (!opts.specialTokens) return this.hf.encode(text, { add_special_tokens: false }).ids;
    if (this.addBos === null && this.addEos === null) return this.hf.encode(text, { add_special_tokens: true }).ids;
    const ids = this.hf.encode(text, { add_special_tokens: false }).ids;
    if (this.addBos && this.bosId !== null) ids.unshift(this.bosId);
    if (this.addEos && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.hf.decode(ids, {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUp,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Writes tokenizer.json and tokenizer_config.json (each to a temporary name, then renamed). */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    for (const [file, value] of [
      ['tokenizer.json', this.json],
      ['tokenizer_config.json', this.config],
    ] as const) {
      const temp = join(dir, `.${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
      writeFileSync(temp, JSON.stringify(value, null, 2) + '\n');
      renameSync(temp, join(dir, file));
    }
  }
}

function readJson(path: string, required: boolean): Json | null {
  if (!existsSync(path)) {
    if (required)
      throw new TokenizerError(
        dirname(path),
        `${basename(path)} not found; a tokenizer folder needs tokenizer.json (the HF "fast" tokenizer file)`,
      );
    return null;
  }
  try {
    const v = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected a JSON object');
    return v as Json;
  } catch (e) {
    throw new TokenizerError(path, `not valid JSON (${(e as Error).message})`);
  }
}

/** Loads tokenizer.json (+ tokenizer_config.json and config.json when present) from a checkpoint folder. */
export function loadTokenizer(dir: string): Tokenizer {
  return loadTokenizerFile(join(dir, 'tokenizer.json'), dir);
}

/**
 * Loads a tokenizer.json with the tokenizer_config.json beside it (when present), for the model of the
 * checkpoint folder `modelDir`, whose config.json (when present) supplies BOS/EOS ids the tokenizer files do
 * not name: a tokenizer kept apart from its checkpoint (the config's `tokenizer` field).
 */
export function loadTokenizerFile(path: string, modelDir: string): Tokenizer {
  const json = readJson(path, true)!;
  return new Tokenizer(
    json,
    readJson(join(dirname(path), 'tokenizer_config.json'), false) ?? {},
    readJson(join(modelDir, 'config.json'), false) ?? {},
    path,
  );
}

/**
 * The id of the token the tokenizer's model gives what it cannot encode (`unk_token` of a WordLevel, WordPiece
 * or BPE model, `unk_id` of a Unigram one), or null when it has none (byte-level BPE encodes every text). Not
 * the `unk_token` of tokenizer_config.json: GPT-2's names <|endoftext|> there, which no unknown text becomes.
 */
export function unknownTokenId(tok: Tokenizer): number | null {
  const model = tok.json.model as Json | undefined;
  if (typeof model?.unk_token === 'string') return tok.tokenToId(model.unk_token) ?? null;
  if (typeof model?.unk_id === 'number') return model.unk_id;
  return null;
}

// ------------------------------------------------------------------------------------------------ training

export interface TrainOptions {
  vocabSize: number;
  /** 'bpe': byte-level BPE (no unknown tokens); 'word': one id per word or punctuation run, others <unk>. */
  kind?: 'bpe' | 'word';
  /** Lowercase before splitting (a Lowercase normalizer in the saved file). */
  lowercase?: boolean;
  /** Pairs (bpe) or words (word) seen fewer times are not added. Default 2. */
  minFrequency?: number;
  /**
   * Texts that must be single tokens whatever their frequency (e.g. the label words of a benchmark). Word-level:
   * words. BPE: texts the pre-tokenizer keeps in one piece, as they occur after a prompt (' good', with its
   * space); merges are appended for those the learned merges leave in pieces, within `vocabSize`.
   */
  include?: string[];
}

/** Ids 0..3; BOS is added by the saved post-processor, so HF Python and this engine encode alike. */
const SPECIALS = ['<pad>', '<bos>', '<eos>', '<unk>'];

/** GPT-2's reversible map from bytes to printable characters. */
function byteAlphabet(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return cs.map((c) => String.fromCharCode(c));
}

function skeleton(kind: 'bpe' | 'word', lowercase: boolean): Json {
  const specials = SPECIALS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const template = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: '<bos>', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { '<bos>': { id: '<bos>', ids: [1], tokens: ['<bos>'] } },
  };
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials,
    normalizer: lowercase ? { type: 'Lowercase' } : null,
    pre_tokenizer: kind === 'bpe' ? byteLevel : { type: 'Whitespace' },
    post_processor: template,
    decoder: kind === 'bpe' ? byteLevel : null,
    model:
      kind === 'bpe'
        ? {
            type: 'BPE',
            dropout: null,
            unk_token: null,
            continuing_subword_prefix: null,
            end_of_word_suffix: null,
            fuse_unk: false,
            byte_fallback: false,
            ignore_merges: false,
            vocab: {},
            merges: [],
          }
        : { type: 'WordLevel', vocab: {}, unk_token: '<unk>' },
  };
}

/** Pre-token counts, split exactly as the saved tokenizer will split at encode time. */
function countWords(texts: Iterable<string>, json: Json): Map<string, number> {
  const hf = new HfTokenizer(runtimeJson(json), {});
  const counts = new Map<string, number>();
  for (const text of texts) {
    const norm = hf.normalizer ? hf.normalizer(text) : text;
    for (const w of hf.pre_tokenizer ? hf.pre_tokenizer(norm) : [norm]) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return counts;
}

const byCountThenName = (a: [string, number], b: [string, number]): number =>
  b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/**
 * Trains a tokenizer on `texts`. Deterministic: the same texts and options give the same file (ties are
 * broken by the tokens' code-unit order, never by hash or insertion order).
 */
export function trainTokenizer(texts: Iterable<string>, opts: TrainOptions): Tokenizer {
  const kind = opts.kind ?? 'bpe';
  const minFreq = opts.minFrequency ?? 2;
  const json = skeleton(kind, opts.lowercase ?? false);
  const model = json.model as Json;
  // A Map, not an object: words such as 'constructor' must not collide with Object.prototype.
  const vocab = new Map(SPECIALS.map((s, i) => [s, i]));
  const counts = countWords(texts, json);
  if (kind === 'word') {
    for (const w of opts.include ?? []) {
      const key = opts.lowercase ? w.toLowerCase() : w;
      if (!vocab.has(key)) vocab.set(key, vocab.size);
    }
    const words = [...counts].filter(([w, c]) => c >= minFreq && !vocab.has(w)).sort(byCountThenName);
    for (const [w] of words.slice(0, Math.max(0, opts.vocabSize - vocab.size))) vocab.set(w, vocab.size);
  } else {
    const alphabet = byteAlphabet();
    if (opts.vocabSize < SPECIALS.length + alphabet.length) {
      // A bad option of the caller, not a bad file.
      throw new RangeError(
        `trainTokenizer: a byte-level BPE needs vocabSize >= ${SPECIALS.length + alphabet.length} (4 special tokens + 256 bytes), got ${opts.vocabSize}`,
      );
    }
    for (const ch of alphabet) vocab.set(ch, vocab.size);
    const base = new Map(vocab);
    const merges = learnMerges(counts, minFreq, vocab, opts.vocabSize);
    if (opts.include?.length) {
      const fitted = withWholeTokens(includedPieces(opts.include, json), merges, base, opts.vocabSize);
      vocab.clear();
      for (const [t, i] of fitted.vocab) vocab.set(t, i);
      model.merges = fitted.merges;
    } else model.merges = merges;
  }
  model.vocab = Object.fromEntries(vocab);
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<bos>',
    eos_token: '<eos>',
    pad_token: '<pad>',
    unk_token: '<unk>',
    clean_up_tokenization_spaces: false,
  };
  const tok = new Tokenizer(json, config);
  if (kind === 'bpe')
    for (const text of opts.include ?? []) {
      const ids = tok.encode(text);
      // A guard on withWholeTokens' reasoning about merge order, checked with the runtime's own BPE.
      if (ids.length !== 1) throw new Error(`trainTokenizer: '${text}' came out as ${ids.length} tokens, not one`);
    }
  return tok;
}

/** Each included text as the byte-level symbols of its one pre-token. */
function includedPieces(texts: string[], json: Json): string[][] {
  const hf = new HfTokenizer(runtimeJson(json), {});
  return texts.map((text) => {
    const norm = hf.normalizer ? hf.normalizer(text) : text;
    const pre = hf.pre_tokenizer ? hf.pre_tokenizer(norm) : [norm];
    if (pre.length !== 1)
      throw new RangeError(
        `trainTokenizer: '${text}' is split into ${pre.length} pieces before BPE (${JSON.stringify(pre)}), so no merge can make it one token`,
      );
    return Array.from(pre[0]);
  });
}

/** What the BPE model does to one pre-token: merge the adjacent pair of lowest rank until none is left. */
function applyMerges(symbols: string[], ranks: Map<string, number>): string[] {
  const s = [...symbols];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let j = 0; j + 1 < s.length; j++) {
      const r = ranks.get(s[j] + ' ' + s[j + 1]);
      if (r !== undefined && r < bestRank) [best, bestRank] = [j, r];
    }
    if (best < 0) return s;
    s.splice(best, 2, s[best] + s[best + 1]);
  }
}

/**
 * Makes every included text one token: keeps the longest prefix of the learned merges that leaves room, then
 * appends for each text still in pieces p1..pk the merges (p1,p2), (p1p2,p3), ... Appended merges rank after
 * all others, so they change no other word's tokens before its learned merges are done, and a text's own
 * chain always completes: at each step the only pairs left to merge are (prefix so far, next piece).
 */
function withWholeTokens(
  pieces: string[][],
  merges: string[],
  base: Map<string, number>,
  vocabSize: number,
): { merges: string[]; vocab: Map<string, number> } {
  const build = (k: number) => {
    const vocab = new Map(base);
    const ranks = new Map<string, number>();
    const out = merges.slice(0, k);
    for (const m of out) {
      const [a, b] = m.split(' ');
      ranks.set(m, ranks.size);
      if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
    }
    for (const syms of pieces) {
      let s = applyMerges(syms, ranks);
      while (s.length > 1) {
        const m = s[0] + ' ' + s[1];
        out.push(m);
        ranks.set(m, ranks.size);
        if (!vocab.has(s[0] + s[1])) vocab.set(s[0] + s[1], vocab.size);
        s = [s[0] + s[1], ...s.slice(2)];
      }
    }
    return { merges: out, vocab };
  };
  let k = merges.length;
  let fit = build(k);
  // Fewer learned merges can leave more texts in pieces: step down until the whole fits, then up while it does.
  while (fit.vocab.size > vocabSize && k > 0) {
    k = Math.max(0, k - (fit.vocab.size - vocabSize));
    fit = build(k);
  }
  if (fit.vocab.size > vocabSize)
    throw new RangeError(`trainTokenizer: vocabSize ${vocabSize} has no room for the included texts as whole tokens`);
  while (k < merges.length) {
    const next = build(k + 1);
    if (next.vocab.size > vocabSize) break;
    [k, fit] = [k + 1, next];
  }
  return fit;
}

/**
 * Classic BPE: repeatedly merge the most frequent adjacent pair (ties: smaller pair first) until the
 * vocabulary is full; only the words holding the merged pair are revisited.
 */
function learnMerges(
  counts: Map<string, number>,
  minFreq: number,
  vocab: Map<string, number>,
  vocabSize: number,
): string[] {
  const words = [...counts].sort(byCountThenName);
  const syms = words.map(([w]) => Array.from(w));
  const freq = words.map(([, c]) => c);
  const pairCount = new Map<string, number>();
  const where = new Map<string, Set<number>>();
  const SEP = ' '; // byte-level symbols never contain a space (it is mapped to 'Ġ')
  const account = (i: number, sign: number): void => {
    const s = syms[i];
    for (let j = 0; j + 1 < s.length; j++) {
      const key = s[j] + SEP + s[j + 1];
      const c = (pairCount.get(key) ?? 0) + sign * freq[i];
      if (c > 0) pairCount.set(key, c);
      else pairCount.delete(key);
      if (sign > 0) (where.get(key) ?? where.set(key, new Set()).get(key)!).add(i);
    }
  };
  syms.forEach((_, i) => account(i, 1));
  const merges: string[] = [];
  while (vocab.size < vocabSize) {
    let best: string | null = null;
    let bestCount = 0;
    for (const [key, c] of pairCount)
      if (c > bestCount || (c === bestCount && best !== null && key < best)) [best, bestCount] = [key, c];
    if (best === null || bestCount < minFreq) break;
    const [a, b] = best.split(SEP);
    merges.push(best);
    if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
    for (const i of where.get(best)!) {
      account(i, -1);
      const s = syms[i];
      const out: string[] = [];
      for (let j = 0; j < s.length; j++) {
        if (j + 1 < s.length && s[j] === a && s[j + 1] === b) out.push(a + s[++j]);
        else out.push(s[j]);
      }
      syms[i] = out;
      account(i, 1);
    }
    where.delete(best);
  }
  return merges;
}
