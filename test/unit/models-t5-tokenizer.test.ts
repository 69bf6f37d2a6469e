// A T5-style tokenizer.json (SentencePiece Unigram: Metaspace pre-tokenizer and decoder, </s> appended by the
// post-processor, no BOS) loads through the project's tokenizer loader. The fixture is hand-made; expected ids
// are the best-scoring segmentations worked out by hand from its piece scores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer, Tokenizer } from '../../src/engine/io/tokenizer';
import { fixture } from '../helpers/paths';
import { tempDir } from './models-util';

const DIR = fixture('unigram-t5');

test('Unigram (T5 layout): Viterbi segmentation, unknown runs, </s> appended, special ids', () => {
  const tok = loadTokenizer(DIR);
  assert.deepEqual(tok.encode('the cat sat on the mat.'), [4, 5, 8, 10, 4, 11, 12]);
  // ▁cat+s (-4 - 6) beats ▁ca+ts (-5.5 - 7) and ▁c+at+s (-5 - 5.5 - 6); ▁review (-5.9) beats ▁re+view (-12).
  assert.deepEqual(tok.encode('cats review'), [5, 9, 28]);
  assert.deepEqual(tok.encode('sentiment: positive'), [15, 16, 13]);
  assert.deepEqual(tok.encode('the  cat'), [4, 5], 'runs of spaces collapse');
  assert.deepEqual(tok.encode('ｔｈｅ cat'), [4, 5], 'NFKC folds full-width letters');
  assert.deepEqual(tok.encode('the dog'), [4, 3, 2], 'characters outside the vocabulary: one fused <unk> after ▁');
  assert.deepEqual(tok.encode('the cat', { specialTokens: true }), [4, 5, 1], 'T5 appends </s>, adds no BOS');
  assert.equal(tok.bosId, null);
  assert.equal(tok.eosId, 1);
  assert.equal(tok.padId, 0);
  assert.equal(tok.unkId, 2);
  assert.equal(tok.vocabSize, 29);
});

test('Unigram (T5 layout): decoding joins pieces at ▁ and drops the leading space', () => {
  const tok = loadTokenizer(DIR);
  assert.equal(tok.decode([4, 5, 8, 10, 4, 11, 12]), 'the cat sat on the mat.');
  assert.equal(tok.decode([4, 5, 1], { skipSpecialTokens: true }), 'the cat');
  assert.equal(tok.decode([4, 5, 1]), 'the cat</s>');
  for (const s of ['the cat sat on the mat.', 'sentiment: negative', 'cats review'])
    assert.equal(tok.decode(tok.encode(s)), s);
});

test('Unigram: the single Metaspace pre-tokenizer of newer T5 files segments the same, and save keeps the file', () => {
  const json = JSON.parse(readFileSync(join(DIR, 'tokenizer.json'), 'utf8'));
  json.pre_tokenizer = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
  const tok = new Tokenizer(json, JSON.parse(readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8')));
  assert.deepEqual(tok.encode('the cat sat on the mat.'), [4, 5, 8, 10, 4, 11, 12]);
  assert.deepEqual(tok.encode('cats  review'), [5, 9, 28]);
  const dir = tempDir('unigram');
  tok.save(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 't5', eos_token_id: 1, pad_token_id: 0 }));
  assert.deepEqual(loadTokenizer(dir).encode('cats review', { specialTokens: true }), [5, 9, 28, 1]);
});
