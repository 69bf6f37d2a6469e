// The shipped base model's tokenizer (assets/models/sculpt-base, trained by scripts/pretrain/prepare.ts): a
// lowercase byte-level BPE, so that users' own text is never unknown, in which every label of every builtin task
// is one token after the answer prompt, so that rank evaluation scores them from one next-token distribution.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer, unknownTokenId } from '../../src/engine/io/tokenizer';
import { answerText, DEFAULT_TEMPLATE } from '../../src/engine/data/batches';
import { codecOfKind } from '../../src/engine/data/codec';
import { rankInputsOf } from '../../src/engine/evaluate';
import { builtinTask, builtinTasks } from '../../src/runs/builtin/index';
import { labelSet } from '../../src/data/examples';
import { Rng } from '../../src/data/rng';
import { repoRoot } from '../helpers/paths';

const dir = join(repoRoot, 'assets', 'models', 'sculpt-base');
const tok = loadTokenizer(dir);
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { vocab_size: number };
const SPECIAL = new Set([tok.padId, tok.bosId, tok.eosId, tok.unkId]);

/** A random string of `n` Unicode scalar values drawn from every plane in use (no lone surrogates). */
function randomText(rng: Rng, n: number): string {
  const ranges: [number, number][] = [
    [0x00, 0x7f], // ASCII, control characters included
    [0x80, 0x7ff], // Latin-1 to Arabic: two UTF-8 bytes
    [0x800, 0xd7ff], // CJK and the rest of the BMP: three bytes
    [0xe000, 0xfffd], // private use, compatibility forms, specials
    [0x10000, 0x10ffff], // emoji and the supplementary planes: four bytes
  ];
  let s = '';
  for (let i = 0; i < n; i++) {
    const [lo, hi] = ranges[rng.int(ranges.length)];
    s += String.fromCodePoint(lo + rng.int(hi - lo + 1));
  }
  return s;
}

const USER_TEXT = [
  'Customer wrote: "The café’s crème brûlée was AMAZING!!! 5/5 ⭐⭐⭐⭐⭐ would return 🙂"',
  "ERROR 0x7f3a: ENOENT, no such file or directory, open '/home/ünïcode/naïve résumé.txt'",
  'def f(x):\n\treturn {"k": x ** 2}  # tabs,\r\nCRLF and  double  spaces',
  'Größenwahn, Ærøskøbing, Łódź, İstanbul, Ελληνικά, Кириллица, עברית, العربية, हिन्दी, 日本語のテキスト, 한국어',
  'https://example.com/path?q=a+b&lang=zh-CN#frag — email: someone@example.org, tel. +1 (555) 010-9999',
  'zero\u200Bwidth, non\u00A0breaking, combining e\u0301, ZWJ family 👨‍👩‍👧, flags 🇩🇪🇯🇵, NUL \u0000 end',
];

test('sculpt-base tokenizer: a byte-level BPE as large as the model’s vocabulary, with no unknown token', () => {
  const model = tok.json.model as { type: string; unk_token: unknown };
  assert.equal(model.type, 'BPE');
  assert.equal((tok.json.pre_tokenizer as { type: string }).type, 'ByteLevel');
  assert.equal(unknownTokenId(tok), null, 'a byte-level BPE has no token for what it cannot encode');
  assert.equal(tok.vocabSize, config.vocab_size);
});

test('sculpt-base tokenizer: any text encodes without <unk> or special tokens and decodes to itself, lowercased', () => {
  const rng = new Rng(7);
  const texts = [...USER_TEXT, ...Array.from({ length: 200 }, (_, i) => randomText(rng, 1 + (i % 40)))];
  for (const text of texts) {
    const ids = tok.encode(text);
    assert.ok(ids.length > 0, JSON.stringify(text));
    for (const id of ids) {
      assert.ok(Number.isInteger(id) && id >= 0 && id < config.vocab_size, `${JSON.stringify(text)}: id ${id}`);
      assert.ok(!SPECIAL.has(id), `${JSON.stringify(text)}: special token ${tok.idToToken(id)}`);
    }
    // Lossless but for case: every byte of the input is in some token.
    assert.equal(tok.decode(ids), text.toLowerCase(), JSON.stringify(text));
  }
});

test('sculpt-base tokenizer: every builtin label is one token after the answer prompt, distinct within its task', () => {
  const ids = builtinTasks();
  assert.ok(
    ids.some((id) => id.startsWith('cl5/')) &&
      ids.some((id) => id.startsWith('cl15/')) &&
      ids.some((id) => id.startsWith('tiny/')),
  );
  const prompt = tok.encode('\nAnswer:');
  const tokenOf = new Map<number, string>();
  for (const id of ids) {
    const split = builtinTask(id);
    const labels = labelSet([...split.train, ...split.test]);
    for (const label of labels) {
      const answer = tok.encode(answerText(label));
      assert.equal(answer.length, 1, `${id}: label '${label}' is ${answer.length} tokens`);
      // Encoded after its prompt the label is the same token: prompt and answer do not merge across.
      assert.deepEqual(tok.encode(`\nAnswer:${answerText(label)}`), [...prompt, answer[0]], `${id}: '${label}'`);
      const other = tokenOf.get(answer[0]);
      assert.ok(other === undefined || other === label, `${id}: '${label}' and '${other}' are the same token`);
      tokenOf.set(answer[0], label);
    }
    // So rank evaluation takes the one-forward path, with one candidate per label.
    const inputs = rankInputsOf(
      codecOfKind('causal', tok, 128),
      tok,
      { labels, test: split.test.slice(0, 4), template: DEFAULT_TEMPLATE },
      true,
    );
    assert.equal(inputs.mode, 'next', id);
    assert.equal(new Set(inputs.mode === 'next' ? inputs.candidates : []).size, labels.length, id);
  }
});
