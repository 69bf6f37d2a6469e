/**
 * What inference does alike for both model families: right-padded batches, checking token ids against the
 * vocabulary, and summing the log-probabilities of given continuations (rank classification) with the head run
 * only on the rows that predict a continuation token.
 */
import { readTidy, tf } from '../tf';
import { pickColumns } from './layers';

/** Rows right-padded with `fill` to the longest (at least `min` long), as [B, L] plus the 0/1 mask. */
export function padRight(seqs: number[][], fill: number, min = 1): { ids: tf.Tensor2D; mask: tf.Tensor2D } {
  const L = Math.max(min, ...seqs.map((s) => s.length));
  const ids = seqs.map((s) => [...s, ...new Array<number>(L - s.length).fill(fill)]);
  const mask = seqs.map((s) => [...new Array<number>(s.length).fill(1), ...new Array<number>(L - s.length).fill(0)]);
  return { ids: tf.tensor2d(ids, [seqs.length, L], 'int32'), mask: tf.tensor2d(mask, [seqs.length, L], 'float32') };
}

export function checkIds(vocab: number, seqs: number[][], what: string): void {
  seqs.forEach((s, i) => {
    for (const id of s) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab)
        throw new Error(`${what} ${i} holds token id ${id}, outside the vocabulary [0, ${vocab})`);
    }
  });
}

/**
 * Σ_j log p(cont_j | ...) for each continuation of one batch. `rowOf(b, j)` is the row (among the forward's
 * hidden rows) that predicts token j of continuation b; `hidden` runs the forward (inside a tidy) and `head`
 * maps hidden rows to logits.
 */
export async function continuationSums(
  continuations: number[][],
  rowOf: (b: number, j: number) => number,
  hidden: () => tf.Tensor2D,
  head: (h: tf.Tensor2D) => tf.Tensor2D,
): Promise<number[]> {
  const rowIdx: number[] = [];
  const tokens: number[] = [];
  const owner: number[] = [];
  continuations.forEach((c, b) =>
    c.forEach((tok, j) => {
      rowIdx.push(rowOf(b, j));
      tokens.push(tok);
      owner.push(b);
    }),
  );
  const sums = new Array<number>(continuations.length).fill(0);
  if (tokens.length > 0) {
    const vals = await readTidy(() => {
      const h = hidden();
      const logp = tf.logSoftmax(head(tf.gather(h, tf.tensor1d(rowIdx, 'int32'))));
      return pickColumns(logp, tf.tensor1d(tokens, 'int32'));
    });
    vals.forEach((x, r) => (sums[owner[r]] += x));
  }
  return sums;
}
