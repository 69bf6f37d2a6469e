// Tokenizers: hand-built tokenizer.json files in the GPT-2 (byte-level BPE) and LLaMA-2 (SentencePiece-style
// BPE with byte fallback) layouts, and the trainable byte-level BPE / word-level tokenizers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer, Tokenizer, trainTokenizer } from '../../src/engine/io/tokenizer';
import type { TextTokenizer } from '../../src/engine/data/batches';
import { tempDir } from './models-util';

function writeTokenizer(json: object, config?: object): string {
  const dir = tempDir('tok');
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  if (config) writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return dir;
}

/** GPT-2's byte -> character table, written out independently of the code under test. */
function gpt2Bytes(): string[] {
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const order = [...Array(256).keys()].filter(printable).concat([...Array(256).keys()].filter((b) => !printable(b)));
  let extra = 0;
  return order.map((b) => String.fromCharCode(printable(b) ? b : 256 + extra++));
}

const GPT2_MERGES = ['Ġ w', 'o r', 'Ġw or', 'l d', 'Ġwor ld', 'H e', 'l l', 'He ll', 'Hell o'];

function gpt2Json(): object {
  const vocab: Record<string, number> = {};
  gpt2Bytes().forEach((c, i) => (vocab[c] = i));
  for (const m of GPT2_MERGES) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const eot = Object.keys(vocab).length;
  vocab['<|endoftext|>'] = eot;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    added_tokens: [
      {
        id: eot,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: GPT2_MERGES,
    },
  };
}

test('byte-level BPE (GPT-2 layout): merges, byte fallback through the alphabet, exact round trips', () => {
  const tok = loadTokenizer(
    writeTokenizer(gpt2Json(), { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>' }),
  );
  const t: TextTokenizer = tok;
  const id = (s: string): number => tok.tokenToId(s)!;
  assert.deepEqual(t.encode('Hello world'), [id('Hello'), id('Ġworld')]);
  assert.equal(tok.vocabSize, 256 + GPT2_MERGES.length + 1);
  assert.equal(t.bosId, 265);
  assert.equal(t.eosId, 265);
  assert.equal(t.padId, 265, 'no pad token: padding uses EOS');
  assert.deepEqual(tok.encode('é'), [id('Ã'), id('©')], 'UTF-8 bytes of é (C3 A9) as byte characters');
  assert.deepEqual(tok.encode('Hello<|endoftext|>'), [id('Hello'), 265]);
  assert.deepEqual(tok.encode('Hello', { specialTokens: true }), [id('Hello')], 'GPT-2 adds no BOS');
  for (const s of ['Hello world', '  two  spaces\nand a newline\t', 'ünïcödé 🙂 ok', "it's 2024, fine!"])
    assert.equal(tok.decode(tok.encode(s)), s);
  assert.equal(tok.decode([id('Hello'), 265]), 'Hello<|endoftext|>');
  assert.equal(tok.decode([id('Hello'), 265], { skipSpecialTokens: true }), 'Hello');
});

function llama2Json(): object {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const merges = ['▁ H', 'l l', 'e ll', '▁H ell', '▁Hell o', '▁ w', 'o r', '▁w or', 'l d', '▁wor ld'];
  for (const c of ['▁', 'H', 'e', 'l', 'o', 'w', 'r', 'd']) vocab[c] = Object.keys(vocab).length;
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const special = (id: number, content: string): object => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges,
    },
  };
}

test('SentencePiece-style BPE (LLaMA-2 layout): ▁ prefix, byte fallback, BOS/EOS as configured', () => {
  const config = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false };
  const tok = loadTokenizer(writeTokenizer(llama2Json(), config));
  const id = (s: string): number => tok.tokenToId(s)!;
  assert.deepEqual(tok.encode('Hello world'), [id('▁Hello'), id('▁world')]);
  assert.deepEqual(tok.encode('Hello world', { specialTokens: true }), [1, id('▁Hello'), id('▁world')]);
  assert.deepEqual(tok.encode('é'), [id('▁'), 3 + 0xc3, 3 + 0xa9], 'é falls back to its UTF-8 bytes');
  for (const s of ['Hello world', 'Hello é world']) assert.equal(tok.decode(tok.encode(s)), s);
  assert.equal(tok.decode(tok.encode('Hello', { specialTokens: true }), { skipSpecialTokens: true }), 'Hello');
  const withEos = loadTokenizer(writeTokenizer(llama2Json(), { ...config, add_eos_token: true }));
  assert.deepEqual(withEos.encode('Hello', { specialTokens: true }), [1, id('▁Hello'), 2]);
  // Without add_bos_token in the config the post-processor (a template adding <s>) decides, as in HF.
  assert.deepEqual(loadTokenizer(writeTokenizer(llama2Json())).encode('Hello', { specialTokens: true }), [
    1,
    id('▁Hello'),
  ]);
});

const CORPUS = Array.from(
  { length: 200 },
  (_, i) => `the cat number ${i % 17} sat on the mat, and the dog ${['ran', 'slept', 'barked'][i % 3]} near the house.`,
);

test('trained byte-level BPE: deterministic, saved as tokenizer.json, loads back and round-trips any text', () => {
  const a = trainTokenizer(CORPUS, { vocabSize: 320 });
  const b = trainTokenizer(CORPUS, { vocabSize: 320 });
  assert.deepEqual(a.json, b.json, 'same texts, same file');
  assert.equal(a.vocabSize, 320);
  const dir = tempDir('trained');
  a.save(dir);
  const loaded = loadTokenizer(dir);
  assert.ok(
    loaded.tokenToId('Ġthe') !== undefined && loaded.tokenToId('Ġmat') !== undefined,
    'frequent words became single tokens',
  );
  assert.deepEqual(loaded.encode('the cat sat'), a.encode('the cat sat'));
  assert.ok(loaded.encode(' the dog barked near the house').length <= 6);
  for (const s of ['the cat sat', 'Zürich 🙂 unseen\ttext  here', '']) assert.equal(loaded.decode(loaded.encode(s)), s);
  assert.deepEqual([loaded.padId, loaded.bosId, loaded.eosId, loaded.unkId], [0, 1, 2, 3]);
  assert.equal(loaded.encode('the', { specialTokens: true })[0], 1, 'BOS from the saved post-processor');
  assert.throws(() => trainTokenizer(CORPUS, { vocabSize: 100 }), /needs vocabSize >= 260/);
});

test('trained byte-level BPE: included texts become single tokens within the vocabulary size', () => {
  const plain = trainTokenizer(CORPUS, { vocabSize: 320 });
  // Rare or absent words, as they follow a prompt (with their space), and one that starts a line.
  const include = [' zebra', ' barked', ' xylophonist', 'answer'];
  assert.ok(
    include.some((t) => plain.encode(t).length > 1),
    'the merges alone leave some in pieces',
  );
  const tok = trainTokenizer(CORPUS, { vocabSize: 320, include });
  assert.equal(tok.vocabSize, 320, 'the appended merges take the place of the last learned ones');
  for (const t of include)
    assert.deepEqual(
      tok.encode(t).map((id) => tok.idToToken(id)),
      [t.replace(' ', 'Ġ')],
    );
  // In a text too, and saved and loaded the file says the same.
  const dir = tempDir('included');
  tok.save(dir);
  const loaded = loadTokenizer(dir);
  assert.deepEqual(
    loaded.encode('the zebra barked').map((id) => loaded.idToToken(id)),
    ['the', 'Ġzebra', 'Ġbarked'],
  );
  assert.deepEqual(trainTokenizer(CORPUS, { vocabSize: 320, include }).json, tok.json, 'deterministic');
  // Other words keep the learned merges' tokens; only the last learned merges made room.
  const learned = (plain.json.model as { merges: string[] }).merges;
  const kept = (tok.json.model as { merges: string[] }).merges;
  const prefix = kept.findIndex((m, i) => m !== learned[i]);
  assert.ok(prefix > 0 && prefix < learned.length);
  assert.deepEqual(plain.encode(' the cat sat on the mat'), tok.encode(' the cat sat on the mat'));
  assert.throws(
    () => trainTokenizer(CORPUS, { vocabSize: 320, include: [' two words'] }),
    /' two words' is split into 2 pieces before BPE/,
  );
  assert.throws(
    () => trainTokenizer(CORPUS, { vocabSize: 262, include: [' xylophonist'] }),
    /vocabSize 262 has no room for the included texts/,
  );
});

test('trained word-level tokenizer: the most frequent words, unknown words as <unk>, HF WordLevel file', () => {
  const tok = trainTokenizer(['The constructor said: toString, toString, the the', ...CORPUS], {
    vocabSize: 30,
    kind: 'word',
    lowercase: true,
  });
  assert.equal((tok.json.model as { type: string }).type, 'WordLevel');
  assert.equal(tok.vocabSize, 30);
  const dir = tempDir('word');
  tok.save(dir);
  const loaded = loadTokenizer(dir);
  const ids = loaded.encode('The cat SAT on the zebra.');
  assert.deepEqual(
    ids,
    ['the', 'cat', 'sat', 'on', 'the', '<unk>', '.'].map((w) => loaded.tokenToId(w)!),
  );
  assert.equal(ids[5], 3);
  assert.equal(loaded.decode(loaded.encode('the cat sat on the mat')), 'the cat sat on the mat');
  assert.ok(
    trainTokenizer(['constructor toString constructor toString'], { vocabSize: 10, kind: 'word' }).tokenToId(
      'constructor',
    ) !== undefined,
  );
});

test('loading errors name the file', () => {
  const empty = tempDir('nothing');
  assert.throws(() => loadTokenizer(empty), /tokenizer\.json not found/);
  const bad = tempDir('bad');
  writeFileSync(join(bad, 'tokenizer.json'), '{ nope');
  assert.throws(
    () => loadTokenizer(bad),
    (e: Error) => e.message.includes(join(bad, 'tokenizer.json')) && /not valid JSON/.test(e.message),
  );
  assert.throws(
    () => loadTokenizer(writeTokenizer(gpt2Json(), { bos_token: '<s>' })),
    /bos_token '<s>' is not in the vocabulary/,
  );
  assert.throws(() => new Tokenizer({ model: { type: 'Mystery' } }), /cannot build the tokenizer/);
});
