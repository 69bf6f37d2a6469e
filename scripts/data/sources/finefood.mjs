// Amazon fine-food reviews, the 5,000-review subset shipped in R's modeldata package (Debian r-cran-modeldata,
// objects training_data and testing_data): review text and whether the score was 5 stars (`great`) or not.
//   cl5/sentiment   great / other (split by product: no product is in both splits)
import { join } from 'node:path';
import { debDir } from '../fetch.mjs';
import { readLazyLoadDb, dataFrameRows } from '../lib/rdata.mjs';
import { decodeEntities } from '../lib/common.mjs';

// Reviews keep some of their web markup ("<br />", links): text only.
const plain = (s) => decodeEntities(s.replace(/<[^>]*>/g, ' '));

/** Rows {product, review, score} of both shipped data frames (the original split is not kept: ours is by product). */
export function loadReviews() {
  const dir = join(debDir('modeldata'), 'usr/lib/R/site-library/modeldata/data');
  const objs = readLazyLoadDb(dir, ['training_data', 'testing_data']);
  const rows = [...dataFrameRows(objs.training_data, 'training_data'), ...dataFrameRows(objs.testing_data, 'testing_data')];
  if (rows.length !== 5000) throw new Error(`${dir}: expected 5,000 fine-food reviews, got ${rows.length}`);
  return rows;
}

export function sentimentClasses() {
  const rows = loadReviews();
  return ['great', 'other'].map((label) => ({
    label,
    items: rows
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => r.score === label)
      .map(({ r, i }) => ({ text: plain(r.review), group: `food:${r.product}`, key: `food:${i}` })),
  }));
}
