import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError, labelSet, readJsonl, readOLoraFolder, readTraceFolder } from '../../src/data/examples';
import {
  IGNORE_INDEX,
  balancedSubset,
  encodeExample,
  epochOrder,
  makeBatch,
  type TextTokenizer,
} from '../../src/engine/data/batches';
import { Rng } from '../../src/data/rng';
import { fixture } from '../helpers/paths';

const tmp = mkdtempSync(join(tmpdir(), 'sculpt-data-'));
const file = (name: string, text: string) => {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
};

/** Whitespace tokenizer over a growing vocabulary: enough to check positions. */
function wordTokenizer(): TextTokenizer & { vocab: Map<string, number> } {
  const vocab = new Map<string, number>([
    ['<pad>', 0],
    ['<bos>', 1],
    ['<eos>', 2],
  ]);
  const id = (w: string) => {
    if (!vocab.has(w)) vocab.set(w, vocab.size);
    return vocab.get(w)!;
  };
  return {
    vocab,
    encode: (t) =>
      t
        .split(/\s+/)
        .filter((w) => w)
        .map(id),
    decode: (ids) => ids.map((i) => [...vocab.keys()][i]).join(' '),
    bosId: 1,
    eosId: 2,
    padId: 0,
  };
}

test('JSONL: both shapes load; bad lines name the file and line', () => {
  const ok = readJsonl(
    file('ok.jsonl', '{"input": "a b", "output": "x"}\n\n{"instruction": "Say:", "input": "c", "output": "y"}\n'),
  );
  assert.deepEqual(ok, [
    { input: 'a b', output: 'x' },
    { instruction: 'Say:', input: 'c', output: 'y' },
  ]);
  assert.throws(
    () => readJsonl(file('bad.jsonl', '{"input": "a", "output": "x"}\n{"input": 3, "output": "y"}\n')),
    (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /bad\.jsonl:2: "input" must be a string, got 3/);
      return true;
    },
  );
  assert.throws(() => readJsonl(file('broken.jsonl', '{"input": "a", "outp')), /broken\.jsonl:1: not valid JSON/);
  assert.throws(() => readJsonl(file('empty.jsonl', '\n\n')), /empty\.jsonl: no examples/);
  assert.throws(() => readJsonl(join(tmp, 'missing.jsonl')), /data file not found: .*missing\.jsonl/);
});

test('O-LoRA folder: definition becomes the instruction, labels.json the label set', () => {
  const t = readOLoraFolder(fixture('data', 'olora', 'agnews'));
  assert.equal(t.train.length, 4);
  assert.equal(t.test.length, 2);
  assert.equal(t.train[1].output, 'Sports');
  assert.match(t.train[0].instruction!, /^What is the topic/);
  assert.deepEqual(t.labels, ['World', 'Sports', 'Business', 'Sci/Tech']);
  assert.throws(
    () => readOLoraFolder(fixture('data', 'trace', 'C-STANCE')),
    /expected an object with an "Instances" array/,
  );
});

test('TRACE folder: prompt/answer pairs', () => {
  const t = readTraceFolder(fixture('data', 'trace', 'C-STANCE'));
  assert.equal(t.train.length, 2);
  assert.equal(t.train[1].output, 'B');
  assert.throws(
    () => readTraceFolder(fixture('data', 'olora', 'agnews')),
    /expected a JSON array of \{"prompt", "answer"\}/,
  );
});

test('batches: answer tokens labelled, prompt and padding ignored, prompt truncated from the left', () => {
  const tok = wordTokenizer();
  const a = encodeExample(tok, '{input} Answer:', { input: 'one two three', output: 'yes' }, 16);
  const b = encodeExample(tok, '{input} Answer:', { input: 'four', output: 'no' }, 16);
  assert.deepEqual(a.answer, [tok.vocab.get('yes'), 2]);
  assert.equal(a.prompt[0], 1, 'BOS first');
  const batch = makeBatch([a, b], 0);
  assert.equal(batch.B, 2);
  assert.equal(batch.T, a.prompt.length + a.answer.length);
  const row = (arr: Int32Array, r: number) => Array.from(arr.slice(r * batch.T, (r + 1) * batch.T));
  assert.deepEqual(row(batch.labels, 0), [...a.prompt.map(() => IGNORE_INDEX), ...a.answer]);
  const padN = batch.T - b.prompt.length - b.answer.length;
  assert.deepEqual(row(batch.labels, 1), [
    ...b.prompt.map(() => IGNORE_INDEX),
    ...b.answer,
    ...Array(padN).fill(IGNORE_INDEX),
  ]);
  assert.deepEqual(row(batch.mask, 1), [...Array(batch.T - padN).fill(1), ...Array(padN).fill(0)]);
  assert.equal(batch.labelled, 4);
  const short = encodeExample(tok, '{input} Answer:', { input: 'a b c d e f g h', output: 'yes' }, 6);
  assert.equal(short.prompt.length + short.answer.length, 6);
  assert.deepEqual(tok.decode(short.prompt.slice(1)), 'g h Answer:', 'the end of the prompt is kept');
});

test('epoch order and balanced subsets are fixed by the seed and keep every class', () => {
  assert.deepEqual(epochOrder(10, 4, new Rng(7)), epochOrder(10, 4, new Rng(7)));
  assert.notDeepEqual(epochOrder(10, 4, new Rng(7)), epochOrder(10, 4, new Rng(8)));
  assert.deepEqual(
    epochOrder(10, 4, new Rng(1)).map((b) => b.length),
    [4, 4, 2],
  );
  const ex = [...Array(30)].map((_, i) => ({ input: `x${i}`, output: i < 24 ? 'a' : i < 28 ? 'b' : 'c' }));
  const sub = balancedSubset(ex, 9, new Rng(3));
  assert.equal(sub.length, 9);
  const counts = labelSet(sub).map((l) => sub.filter((e) => e.output === l).length);
  assert.deepEqual(labelSet(sub).sort(), ['a', 'b', 'c']);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 2, `counts ${counts}`);
});
