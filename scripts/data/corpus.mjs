// Pretraining corpus for the shipped base model: public-domain and permissively licensed raw text of the
// benchmark's sources (Brown, Moby-Dick, Austen, KJV, WordNet glosses, State of the Union addresses, Debian
// descriptions, fortunes, the UDHR windows of the ten languages) and the fine-food reviews (for the language of
// reviews; not a benchmark source), with every test example taken out:
//   1. by source unit: each sentence, verse, synset, description or window that went into a test split
//      (recorded by the build in .cache/data-build/test-keys.json);
//   2. by text: any sentence that shares a run of 8 words (after lower-casing and dropping punctuation)
//      with a test input, or equals a short test input, whatever source it comes from; for the word-pair
//      tasks, any sentence that holds both words of a test pair.
// Training splits stay in: the model may read them unlabelled, as in domain-adaptive pretraining.
// Not included: the spam mails (private persons' correspondence).
//   node scripts/data/corpus.mjs      after build.mjs; writes .cache/corpus/pretrain.txt and stats.json
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './fetch.mjs';
import { cleanText, normKey, words } from './lib/common.mjs';
import * as brown from './sources/brown.mjs';
import * as novels from './sources/novels.mjs';
import * as kjv from './sources/kjv.mjs';
import * as wordnet from './sources/wordnet.mjs';
import * as sotu from './sources/sotu.mjs';
import * as debian from './sources/debian.mjs';
import * as fortunes from './sources/fortunes.mjs';
import * as udhr from './sources/udhr.mjs';
import * as finefood from './sources/finefood.mjs';

const N = 8;
const OUT_DIR = join(REPO, '.cache', 'corpus');
const DATA_DIR = join(REPO, 'assets', 'data');
const KEYS_FILE = join(REPO, '.cache', 'data-build', 'test-keys.json');

function testInputs() {
  const out = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name === 'test.jsonl')
        for (const line of readFileSync(p, 'utf8').split('\n')) if (line.trim()) out.push(JSON.parse(line).input);
    }
  };
  walk(DATA_DIR);
  if (!out.length) throw new Error(`no test.jsonl under ${DATA_DIR}: run node scripts/data/build.mjs first`);
  return out;
}

/**
 * A test matcher over the inputs' normalised word 8-grams (and whole short inputs). A word-pair input
 * "a ; b" matches any text holding both words: a dictionary line "speed, velocity: ..." states the answer.
 */
export function testMatcher(inputs) {
  const grams = new Set();
  const short = new Set();
  const pairs = new Map();
  for (const input of inputs) {
    const pair = /^(\S+) ; (\S+)$/.exec(input);
    if (pair) {
      const [a, b] = [normKey(pair[1]), normKey(pair[2])];
      if (!pairs.has(a)) pairs.set(a, new Set());
      pairs.get(a).add(b);
      continue;
    }
    const t = normKey(input).split(' ').filter(Boolean);
    if (t.length < N) short.add(t.join(' '));
    for (let i = 0; i + N <= t.length; i++) grams.add(t.slice(i, i + N).join(' '));
  }
  return (text) => {
    const t = normKey(text).split(' ').filter(Boolean);
    if (short.has(t.join(' '))) return true;
    for (let i = 0; i + N <= t.length; i++) if (grams.has(t.slice(i, i + N).join(' '))) return true;
    const present = new Set(t);
    for (const w of present) for (const b of pairs.get(w) ?? []) if (present.has(b)) return true;
    return false;
  };
}

const SOURCES = [
  ['brown', brown.corpusUnits],
  ['novels', novels.corpusUnits],
  ['kjv', kjv.corpusUnits],
  ['wordnet', wordnet.corpusUnits],
  ['sotu', sotu.corpusUnits],
  ['debian', debian.corpusUnits],
  ['fortunes', fortunes.corpusUnits],
  ['udhr', udhr.corpusUnits],
  ['finefood', finefood.corpusUnits],
];

export function buildCorpus({ testKeys } = {}) {
  if (!testKeys) {
    if (!existsSync(KEYS_FILE)) throw new Error(`${KEYS_FILE} is missing: run node scripts/data/build.mjs first`);
    testKeys = JSON.parse(readFileSync(KEYS_FILE, 'utf8'));
  }
  const excluded = new Set(testKeys);
  const matches = testMatcher(testInputs());
  const stats = {};
  const lines = [];
  for (const [, units] of SOURCES) {
    for (const doc of units()) {
      const st = (stats[doc.source] ??= { words: 0, units: 0, droppedByKey: 0, droppedByText: 0 });
      const docLines = [];
      for (const para of doc.paragraphs) {
        const kept = [];
        for (const { text, key } of para) {
          st.units++;
          if (excluded.has(key)) st.droppedByKey++;
          else if (matches(text)) st.droppedByText++;
          else kept.push(cleanText(text));
        }
        const line = kept.filter(Boolean).join(' ');
        if (line) {
          docLines.push(line);
          st.words += words(line).length;
        }
      }
      if (docLines.length) lines.push(docLines.join('\n'));
    }
  }
  mkdirSync(OUT_DIR, { recursive: true });
  // Documents are separated by a blank line, paragraphs by a newline.
  writeFileSync(join(OUT_DIR, 'pretrain.txt'), lines.join('\n\n') + '\n');
  const total = Object.values(stats).reduce((n, s) => n + s.words, 0);
  writeFileSync(
    join(OUT_DIR, 'stats.json'),
    JSON.stringify({ words: total, excludedKeys: excluded.size, sources: stats }, null, 2) + '\n',
  );
  for (const [source, s] of Object.entries(stats))
    console.log(
      `corpus ${source}: ${s.words} words; dropped ${s.droppedByKey} test units, ${s.droppedByText} overlapping ones of ${s.units}`,
    );
  console.log(`corpus: ${total} words in .cache/corpus/pretrain.txt`);
  return { words: total, stats };
}

if (import.meta.url === `file://${process.argv[1]}`) buildCorpus();
