// Amazon fine-food reviews, the 5,000-review subset shipped in R's modeldata package (Debian r-cran-modeldata,
// objects training_data and testing_data; from McAuley and Leskovec's Amazon Fine Food Reviews). Used as
// unlabelled pretraining text only, for the language of product and food reviews that cl5/sentiment is
// written in. (Its labels, 5 stars or fewer, are too noisy for a sentiment task: a bag-of-words classifier
// on 800 of them reaches 72%, since a 4-star review reads as praise.)
import { join } from 'node:path';
import { debDir } from '../fetch.mjs';
import { readLazyLoadDb, dataFrameRows } from '../lib/rdata.mjs';
import { decodeEntities, splitSentences } from '../lib/common.mjs';

// Reviews keep some of their web markup ("<br />", links): text only.
const plain = (s) => decodeEntities(s.replace(/<[^>]*>/g, ' '));

/** Rows {product, review, score} of both shipped data frames. */
export function loadReviews() {
  const dir = join(debDir('modeldata'), 'usr/lib/R/site-library/modeldata/data');
  const objs = readLazyLoadDb(dir, ['training_data', 'testing_data']);
  const rows = [
    ...dataFrameRows(objs.training_data, 'training_data'),
    ...dataFrameRows(objs.testing_data, 'testing_data'),
  ];
  if (rows.length !== 5000) throw new Error(`${dir}: expected 5,000 fine-food reviews, got ${rows.length}`);
  return rows;
}

/** Each review is a document of sentences, so that the corpus can drop a single sentence that a test input repeats. */
export function* corpusUnits() {
  for (const [i, r] of loadReviews().entries()) {
    yield {
      source: 'finefood',
      paragraphs: [splitSentences(plain(r.review)).map((text, j) => ({ text, key: `food:${i}:${j}` }))],
    };
  }
}
