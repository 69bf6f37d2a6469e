// Shared helpers of the data build: seeded randomness, text cleaning, sentence splitting and the balanced,
// deduplicated, group-aware train/test split that every task goes through.
// Everything here is deterministic: no Date, no locale-dependent comparison, no Math.random.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A float generator in [0, 1) seeded from a string (sha256 -> mulberry32). */
export function rng(seed) {
  let a = createHash('sha256').update(String(seed)).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled copy (Fisher-Yates). */
export function shuffle(items, rand) {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Code-unit order, so that sorting never depends on the machine's locale. */
export const byString = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

export function sortedKeys(obj) {
  return Object.keys(obj).sort(byString);
}

const ENTITIES = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  copy: '(c)',
  reg: '(r)',
  mdash: ' - ',
  ndash: ' - ',
  hellip: '...',
  rsquo: "'",
  lsquo: "'",
  rdquo: '"',
  ldquo: '"',
  bull: '*',
  middot: '*',
  trade: '(tm)',
};

/** Decodes HTML character references (named ones of the list above, and numeric ones). */
export function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);?/gi, (m, e) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return code > 0 && code < 0x110000 && !(code >= 0xd800 && code < 0xe000) ? String.fromCodePoint(code) : ' ';
    }
    const v = ENTITIES[e.toLowerCase()];
    return v ?? m;
  });
}

/**
 * One line of plain text: NFC, typographic quotes and dashes made ASCII (a word-level tokenizer should see
 * "ago - never", not "ago—never"), control characters and runs of whitespace collapsed.
 */
export function cleanText(s) {
  return (
    s
      .normalize('NFC')
      .replace(/[\u2018\u2019\u201a\u2032]/g, "'")
      .replace(/[\u201c\u201d\u201e\u2033]/g, '"')
      .replace(/\s*[\u2013\u2014\u2015]\s*/g, ' - ')
      .replace(/\u2026/g, '...')
      .replace(/[\u00a0\u2000-\u200b\u202f\u205f\u3000]/g, ' ')
      // eslint-disable-next-line no-control-regex -- removing control characters is the point
      .replace(/[\u0000-\u001f\u007f-\u009f\ufeff\ufffd]/g, ' ')
      .replace(/\s+/g, ' ')
      .trim()
  );
}

export const words = (s) => s.split(/\s+/).filter(Boolean);

/** The first `max` whitespace-separated words. */
export function truncateWords(s, max) {
  const w = words(s);
  return w.length <= max ? w.join(' ') : w.slice(0, max).join(' ');
}

/** The key two inputs are duplicates under: lower-case letters and digits only. */
export function normKey(s) {
  return s
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

const ABBREV = new Set([
  'mr',
  'mrs',
  'ms',
  'dr',
  'st',
  'jr',
  'sr',
  'prof',
  'gen',
  'gov',
  'sen',
  'rep',
  'col',
  'capt',
  'lt',
  'sgt',
  'mt',
  'ft',
  'co',
  'inc',
  'ltd',
  'no',
  'vs',
  'etc',
  'e.g',
  'i.e',
  'u.s',
  'u.n',
  'a.m',
  'p.m',
  'rev',
  'hon',
  'messrs',
  'jan',
  'feb',
  'mar',
  'apr',
  'aug',
  'sept',
  'oct',
  'nov',
  'dec',
]);

/**
 * Sentences of running English text: a break after . ! or ? (and closing quotes or brackets) when the next
 * word starts with a capital, a digit or an opening quote, unless the dot ends a known abbreviation or an
 * initial ("J. Smith").
 */
export function splitSentences(text) {
  const out = [];
  const re = /([.!?]+["')\]]*)\s+(?=["'([]?[A-Z0-9])/g;
  let start = 0;
  let m;
  while ((m = re.exec(text))) {
    const end = m.index + m[1].length;
    const before = text.slice(start, m.index);
    const lastWord = (before.match(/([A-Za-z.]+)$/) || [''])[0].toLowerCase();
    if (m[1] === '.' && (ABBREV.has(lastWord) || /^[a-z]$/.test(lastWord))) continue;
    const s = text.slice(start, end).trim();
    if (s) out.push(s);
    start = m.index + m[0].length;
  }
  const rest = text.slice(start).trim();
  if (rest) out.push(rest);
  return out;
}

/** Consecutive, non-overlapping chunks of `n` items (a shorter tail is dropped unless it has `minTail`). */
export function chunks(items, n, minTail = n) {
  const out = [];
  for (let i = 0; i < items.length; i += n) {
    const c = items.slice(i, i + n);
    if (c.length === n || c.length >= minTail) out.push(c);
  }
  return out;
}

/**
 * Builds one task: cleans and truncates every candidate, drops duplicates (within a class, across classes,
 * and against inputs that earlier tasks already used), then splits each class by group (a document, a
 * speech, a chapter: no group has items in both splits) and samples a balanced train and test set.
 *
 * classes: [{label, items: [{text, group, key}]}]; `key` identifies the source unit (for corpus exclusion).
 * testPerGroup / trainPerGroup cap how many items one group gives a split, so that a split spans many documents.
 */
export function buildTask(spec, used) {
  const {
    id,
    instruction,
    classes,
    trainPerClass,
    testPerClass,
    maxWords,
    minWords = 3,
    testPerGroup = Infinity,
    trainPerGroup = Infinity,
  } = spec;
  const prepared = new Map();
  const labelsOf = new Map();
  for (const { label, items } of classes) {
    const seen = new Set();
    const list = [];
    for (const it of items) {
      const text = truncateWords(cleanText(it.text), maxWords);
      if (words(text).length < minWords) continue;
      const norm = normKey(text);
      if (!norm || seen.has(norm)) continue;
      seen.add(norm);
      list.push({ text, norm, group: String(it.group), key: it.key });
      if (!labelsOf.has(norm)) labelsOf.set(norm, new Set());
      labelsOf.get(norm).add(label);
    }
    prepared.set(label, list);
  }
  const train = [];
  const test = [];
  const stats = {};
  for (const { label } of classes) {
    // An input under two labels is ambiguous, and one that an earlier task used would tie two tasks together.
    const pool = prepared.get(label).filter((it) => labelsOf.get(it.norm).size === 1 && !used.has(it.norm));
    const groups = new Map();
    for (const it of pool) {
      if (!groups.has(it.group)) groups.set(it.group, []);
      groups.get(it.group).push(it);
    }
    const rand = rng(`${id}/${label}`);
    const order = shuffle([...groups.keys()].sort(byString), rand);
    const take = (g, cap) => shuffle(groups.get(g), rand).slice(0, cap);
    const testPool = [];
    let gi = 0;
    while (testPool.length < testPerClass && gi < order.length) testPool.push(...take(order[gi++], testPerGroup));
    const trainPool = [];
    for (; gi < order.length; gi++) trainPool.push(...take(order[gi], trainPerGroup));
    if (testPool.length < testPerClass || trainPool.length < trainPerClass) {
      throw new Error(
        `task ${id}, label '${label}': not enough distinct examples (${pool.length} usable in ${groups.size} groups; ` +
          `test pool ${testPool.length}/${testPerClass} at most ${testPerGroup} per group, train pool ${trainPool.length}/${trainPerClass} at most ${trainPerGroup} per group)`,
      );
    }
    const te = shuffle(testPool, rand).slice(0, testPerClass);
    const tr = shuffle(trainPool, rand).slice(0, trainPerClass);
    for (const it of [...te, ...tr]) used.add(it.norm);
    test.push(...te.map((it) => ({ ...it, label })));
    train.push(...tr.map((it) => ({ ...it, label })));
    stats[label] = { available: pool.length, groups: groups.size, train: tr.length, test: te.length };
  }
  const mix = rng(`${id}/order`);
  const row = (it) =>
    instruction ? { instruction, input: it.text, output: it.label } : { input: it.text, output: it.label };
  const trainRows = shuffle(train, mix);
  const testRows = shuffle(test, mix);
  return {
    id,
    labels: classes.map((c) => c.label),
    train: trainRows.map(row),
    test: testRows.map(row),
    testKeys: testRows.flatMap((it) => it.key ?? []),
    stats,
  };
}

export function writeJsonl(file, rows) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

export function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}
