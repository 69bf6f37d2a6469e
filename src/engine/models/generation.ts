/**
 * Inference on top of a decoder's forward: greedy generation (with or without a key/value cache) and the
 * log-probability of given continuations (rank classification over a label set).
 */
import { readTidy, tf } from '../tf';
import type { DecoderLM } from './decoder';
import type { LayerCache } from './layers';
import { checkIds, continuationSums, padRight } from './inference';
import type { GenerateOptions } from './types';

/**
 * Prompts are left-padded so every row's next token is in the last column; position ids come from the mask,
 * so padding does not shift positions. With the cache each step feeds one token per row; without it the
 * whole sequence is recomputed (quadratic, kept as the reference the cache is tested against).
 */
export async function greedyGenerate(
  m: DecoderLM,
  prompts: number[][],
  maxNewTokens: number,
  opts: GenerateOptions,
): Promise<number[][]> {
  if (prompts.length === 0 || maxNewTokens <= 0) return prompts.map(() => []);
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`generate: prompt ${i} is empty; start it with a BOS token`);
  });
  checkIds(m.config.vocabSize, prompts, 'generate: prompt');
  const B = prompts.length;
  const L = Math.max(...prompts.map((p) => p.length));
  if (L + maxNewTokens - 1 > m.config.maxPositions) {
    throw new Error(
      `generate: the longest prompt (${L}) plus ${maxNewTokens} new tokens exceeds the model's ${m.config.maxPositions} positions`,
    );
  }
  const eos = new Set(opts.eosTokenIds ?? m.config.eosTokenIds);
  const rows = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...p]);
  const mask = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  const out: number[][] = prompts.map(() => []);
  const done = new Array<boolean>(B).fill(false);
  const cache: LayerCache[] | null =
    opts.useCache === false ? null : Array.from({ length: m.config.numLayers }, () => ({ k: null, v: null }));
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      const feed = cache && step > 0 ? rows.map((r) => r.slice(-1)) : rows;
      const old = cache?.map((c) => [c.k, c.v]).flat() ?? [];
      const next = tf.tidy(() => {
        const T = feed[0].length;
        const h = m.forwardHidden(
          tf.tensor2d(feed, [B, T], 'int32'),
          tf.tensor2d(mask, [B, mask[0].length], 'float32'),
          { cache },
        );
        const last = h
          .reshape([B, T, m.config.hiddenSize])
          .slice([0, T - 1, 0], [B, 1, m.config.hiddenSize])
          .reshape([B, m.config.hiddenSize]);
        return m.headLogits(last as tf.Tensor2D).argMax(1);
      });
      for (const t of old) t?.dispose();
      // Asynchronous read: webgpu has no synchronous readback in Node (and it would stall the GPU elsewhere).
      const ids = Array.from(await next.data());
      next.dispose();
      for (let b = 0; b < B; b++) {
        rows[b].push(ids[b]);
        mask[b].push(1);
        if (done[b]) continue;
        out[b].push(ids[b]);
        if (eos.has(ids[b])) done[b] = true;
      }
      if (done.every((d) => d)) break;
    }
  } finally {
    for (const c of cache ?? []) {
      c.k?.dispose();
      c.v?.dispose();
    }
  }
  return out;
}

/**
 * Σ_j log p(cont_j | prompt, cont_<j) per example. Sequences are right-padded; the head and the softmax run
 * only on the rows that predict a continuation token, not on the prompt.
 */
export async function continuationLogProbs(
  m: DecoderLM,
  prompts: number[][],
  continuations: number[][],
  batchSize: number,
): Promise<number[]> {
  if (prompts.length !== continuations.length) {
    throw new Error(
      `continuationLogProbs: ${prompts.length} prompts but ${continuations.length} continuations; pass one continuation per prompt`,
    );
  }
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`continuationLogProbs: prompt ${i} is empty; start it with a BOS token`);
  });
  checkIds(m.config.vocabSize, prompts, 'continuationLogProbs: prompt');
  checkIds(m.config.vocabSize, continuations, 'continuationLogProbs: continuation');
  const result: number[] = [];
  for (let start = 0; start < prompts.length; start += Math.max(1, batchSize)) {
    const P = prompts.slice(start, start + batchSize);
    const C = continuations.slice(start, start + batchSize);
    const seqs = P.map((p, i) => [...p, ...C[i]]);
    const T = Math.max(...seqs.map((s) => s.length));
    const sums = await continuationSums(
      C,
      (b, j) => b * T + P[b].length + j - 1,
      () => {
        const { ids, mask } = padRight(seqs, 0);
        return m.forwardHidden(ids, mask);
      },
      (h) => m.headLogits(h),
    );
    result.push(...sums);
  }
  return result;
}

/**
 * log p(candidate | prompt) for every prompt and every candidate token: one forward per prompt (not one per
 * candidate), with the head evaluated at each prompt's last position only. Rank classification over
 * single-token labels needs nothing more.
 */
export async function nextTokenLogProbs(
  m: DecoderLM,
  prompts: number[][],
  candidates: number[],
  batchSize: number,
): Promise<number[][]> {
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`nextTokenLogProbs: prompt ${i} is empty; start it with a BOS token`);
  });
  checkIds(m.config.vocabSize, prompts, 'nextTokenLogProbs: prompt');
  checkIds(m.config.vocabSize, [candidates], 'nextTokenLogProbs: candidates');
  const out: number[][] = [];
  for (let start = 0; start < prompts.length; start += Math.max(1, batchSize)) {
    const P = prompts.slice(start, start + batchSize);
    const B = P.length;
    const T = Math.max(...P.map((p) => p.length));
    const vals = await readTidy(() => {
      const { ids, mask } = padRight(P, 0);
      const h = m.forwardHidden(ids, mask);
      const last = tf.gather(
        h,
        tf.tensor1d(
          P.map((p, b) => b * T + p.length - 1),
          'int32',
        ),
      );
      return tf.gather(tf.logSoftmax(m.headLogits(last)), tf.tensor1d(candidates, 'int32'), 1);
    });
    for (let b = 0; b < B; b++) out.push(Array.from(vals.slice(b * candidates.length, (b + 1) * candidates.length)));
  }
  return out;
}
