// Fortune cookies (Debian `fortunes`, the non-offensive BSD collection): quotations, jokes and verse filed in
// topical files. Entries are separated by lines holding only "%"; attributions ("-- Name") are kept.
//   cl15/fortune   computers, politics, people, work, poems (file songs-poems)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { debDir } from '../fetch.mjs';

const DIR = () => join(debDir('fortunes'), 'usr/share/games/fortunes');

export const FORTUNE_FILES = {
  computers: 'computers',
  politics: 'politics',
  people: 'people',
  work: 'work',
  poems: 'songs-poems',
};

/** Entries of one fortune file, whitespace collapsed. */
export function readFortunes(file) {
  // Files are UTF-8 (the .u8 names are links to them); "_\bX" overstriking underlines a letter.
  const text = readFileSync(join(DIR(), file), 'utf8')
    // eslint-disable-next-line no-control-regex -- backspaces are what overstriking is made of
    .replace(/_+\x08+|[^\x08]\x08|\x08/g, '');
  return text
    .split(/^%\s*$/m)
    .map((e) => e.replace(/\s+/g, ' ').trim())
    .filter(Boolean);
}

export function fortuneClasses() {
  return Object.entries(FORTUNE_FILES).map(([label, file]) => ({
    label,
    items: readFortunes(file).map((text, i) => ({ text, group: `fortune:${file}:${i}`, key: `fortune:${file}:${i}` })),
  }));
}

/** The prose files of the package (not ascii-art, nor the project-internal debian, perl, knghtbrd, tao, ... ones). */
export const CORPUS_FILES = [
  'art',
  'computers',
  'cookie',
  'definitions',
  'drugs',
  'education',
  'ethnic',
  'food',
  'goedel',
  'humorists',
  'kids',
  'law',
  'linux',
  'linuxcookie',
  'love',
  'magic',
  'medicine',
  'men-women',
  'miscellaneous',
  'news',
  'people',
  'pets',
  'platitudes',
  'politics',
  'pratchett',
  'science',
  'songs-poems',
  'sports',
  'startrek',
  'wisdom',
  'work',
  'zippy',
];

export function* corpusUnits() {
  for (const file of CORPUS_FILES) {
    yield {
      source: 'fortunes',
      paragraphs: readFortunes(file).map((text, i) => [{ text, key: `fortune:${file}:${i}` }]),
    };
  }
}
