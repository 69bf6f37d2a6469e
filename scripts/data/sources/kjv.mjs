// King James Bible (1611, public domain), from Debian's bible-kjv-text data read with its own reader program
// (bible-kjv, unpacked next to it; it runs without being installed).
//   cl15/scripture   verses by the traditional division of books: law, history, poetry, prophets, gospels,
//                    epistles (Acts and Revelation, which fit none of these cleanly, are left out);
//                    split by chapter
//   the `bible` class of cl15/author, and pretraining text.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { debDir } from '../fetch.mjs';

const BOOKS = {
  law: ['Genesis', 'Exodus', 'Leviticus', 'Numbers', 'Deuteronomy'],
  history: [
    'Joshua',
    'Judges',
    'Ruth',
    '1 Samuel',
    '2 Samuel',
    '1 Kings',
    '2 Kings',
    '1 Chronicles',
    '2 Chronicles',
    'Ezra',
    'Nehemiah',
    'Esther',
  ],
  poetry: ['Job', 'Psalms', 'Proverbs', 'Ecclesiastes', 'Song of Solomon'],
  prophets: [
    'Isaiah',
    'Jeremiah',
    'Lamentations',
    'Ezekiel',
    'Daniel',
    'Hosea',
    'Joel',
    'Amos',
    'Obadiah',
    'Jonah',
    'Micah',
    'Nahum',
    'Habakkuk',
    'Zephaniah',
    'Haggai',
    'Zechariah',
    'Malachi',
  ],
  gospels: ['Matthew', 'Mark', 'Luke', 'John'],
  epistles: [
    'Romans',
    '1 Corinthians',
    '2 Corinthians',
    'Galatians',
    'Ephesians',
    'Philippians',
    'Colossians',
    '1 Thessalonians',
    '2 Thessalonians',
    '1 Timothy',
    '2 Timothy',
    'Titus',
    'Philemon',
    'Hebrews',
    'James',
    '1 Peter',
    '2 Peter',
    '1 John',
    '2 John',
    '3 John',
    'Jude',
  ],
};

let cache;
/** [{book, chapter, verse, text}] for all 31,102 verses, in canonical order. */
export function loadVerses() {
  if (cache) return cache;
  const reader = join(debDir('kjvReader'), 'usr/bin/bible');
  const data = join(debDir('kjvText'), 'usr/lib');
  // -l with a huge width: one verse per line, no wrapping.
  const r = spawnSync(reader, ['-l100000', '-p', data, 'Gen1:1-Rev22:21'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.error || r.status !== 0)
    throw new Error(`cannot run the KJV reader ${reader}: ${r.error?.message ?? r.stderr}`);
  cache = [];
  let book = null;
  let chapter = 0;
  for (const line of r.stdout.split('\n')) {
    const head = /^(\S.*) (\d+)$/.exec(line);
    if (head) {
      book = head[1];
      chapter = Number(head[2]);
      continue;
    }
    const v = /^\s+(\d+) (.*)$/.exec(line);
    if (v) cache.push({ book, chapter, verse: Number(v[1]), text: v[2].trim() });
  }
  if (cache.length !== 31102) throw new Error(`KJV reader gave ${cache.length} verses, expected 31,102`);
  return cache;
}

const keyOf = (v) => `kjv:${v.book} ${v.chapter}:${v.verse}`;

export function scriptureClasses() {
  const verses = loadVerses();
  return Object.entries(BOOKS).map(([label, books]) => ({
    label,
    items: verses
      .filter((v) => books.includes(v.book))
      .map((v) => ({ text: v.text, group: `kjv:${v.book} ${v.chapter}`, key: keyOf(v) })),
  }));
}

/** All verses as authorship candidates. */
export function bibleVerses() {
  return loadVerses().map((v) => ({ text: v.text, group: `kjv:${v.book} ${v.chapter}`, key: keyOf(v) }));
}

/** Pretraining text: one chapter per line. */
export function* corpusUnits() {
  let cur = null;
  let para = [];
  const doc = [];
  for (const v of loadVerses()) {
    const ch = `${v.book} ${v.chapter}`;
    if (ch !== cur && para.length) {
      doc.push(para);
      para = [];
    }
    cur = ch;
    para.push({ text: v.text, key: keyOf(v) });
  }
  if (para.length) doc.push(para);
  yield { source: 'kjv', paragraphs: doc };
}
