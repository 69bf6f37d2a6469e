/**
 * Inference on top of a decoder's forward: greedy generation (with or without a key/value cache) and the
 * log-probability of given continuations (rank classification over a label set).
 */
import { readTidy, tf } from '../tf';
import type { DecoderLM } from './decoder';
import { pickColumns, type LayerCache } from './layers';
import type { GenerateOptions } from './types';

function checkIds(m: DecoderLM, seqs: number[][], what: string): void {
  const V = m.config.vocabSize;
  seqs.forEach((s, i) => {
    for (const id of s) {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`${what} ${i} holds token id ${id}, outside the vocabulary [0, ${V})`);
    }
  });
}

/**
 * Prompts are left-padded so every row's next token is in the last column; position ids come from the mask,
 * so padding does not shift positions. With the cache each step feeds one token per row; without it the
 * whole sequence is recomputed (quadratic, kept as the reference the cache is tested against).
 */
export async function greedyGenerate(m: DecoderLM, prompts: number[][], maxNewTokens: number, opts: GenerateOptions): Promise<number[][]> {
  if (prompts.length === 0 || maxNewTokens <= 0) return prompts.map(() => []);
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`generate: prompt ${i} is empty; start it with a BOS token`);
  });
  checkIds(m, prompts, 'generate: prompt');
  const B = prompts.length;
  const L = Math.max(...prompts.map((p) => p.length));
  if (L + maxNewTokens - 1 > m.config.maxPositions) {
    throw new Error(`generate: the longest prompt (${L}) plus ${maxNewTokens} new tokens exceeds the model's ${m.config.maxPositions} positions`);
  }
  const eos = new Set(opts.eosTokenIds ?? m.config.eosTokenIds);
  const rows = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...p]);
  const mask = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  const out: number[][] = prompts.map(() => []);
  const done = new Array<boolean>(B).fill(false);
  const cache: LayerCache[] | null = opts.useCache === false ? null : Array.from({ length: m.config.numLayers }, () => ({ k: null, v: null }));
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      const feed = cache && step > 0 ? rows.map((r) => r.slice(-1)) : rows;
      const old = cache?.map((c) => [c.k, c.v]).flat() ?? [];
      const next = tf.tidy(() => {
        const T = feed[0].length;
        const h = m.forwardHidden(tf.tensor2d(feed, [B, T], 'int32'), tf.tensor2d(mask, [B, mask[0].length], 'float32'), { cache });
        const last = h.reshape([B, T, m.config.hiddenSize]).slice([0, T - 1, 0], [B, 1, m.config.hiddenSize]).reshape([B, m.config.hiddenSize]);
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
export async function continuationLogProbs(m: DecoderLM, prompts: number[][], continuations: number[][], batchSize: number): Promise<number[]> {
  if (prompts.length !== continuations.length) {
    throw new Error(`continuationLogProbs: ${prompts.length} prompts but ${continuations.length} continuations; pass one continuation per prompt`);
  }
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`continuationLogProbs: prompt ${i} is empty; start it with a BOS token`);
  });
  checkIds(m, prompts, 'continuationLogProbs: prompt');
  checkIds(m, continuations, 'continuationLogProbs: continuation');
  const result: number[] = [];
  for (let start = 0; start < prompts.length; start += Math.max(1, batchSize)) {
    const P = prompts.slice(start, start + batchSize);
    const C = continuations.slice(start, start + batchSize);
    const seqs = P.map((p, i) => [...p, ...C[i]]);
    const B = seqs.length;
    const T = Math.max(...seqs.map((s) => s.length));
    const ids = seqs.map((s) => [...s, ...new Array<number>(T - s.length).fill(0)]);
    const mask = seqs.map((s) => [...new Array<number>(s.length).fill(1), ...new Array<number>(T - s.length).fill(0)]);
    const rowIdx: number[] = [];
    const tokens: number[] = [];
    const owner: number[] = [];
    C.forEach((c, b) =>
      c.forEach((tok, j) => {
        rowIdx.push(b * T + P[b].length + j - 1);
        tokens.push(tok);
        owner.push(b);
      }),
    );
    const sums = new Array<number>(B).fill(0);
    if (tokens.length > 0) {
      const vals = await readTidy(() => {
        const h = m.forwardHidden(tf.tensor2d(ids, [B, T], 'int32'), tf.tensor2d(mask, [B, T], 'float32'));
        const logp = tf.logSoftmax(m.headLogits(tf.gather(h, tf.tensor1d(rowIdx, 'int32'))));
        return pickColumns(logp, tf.tensor1d(tokens, 'int32'));
      });
      vals.forEach((x, r) => (sums[owner[r]] += x));
    }
    result.push(...sums);
  }
  return result;
}

/**
 * log p(candidate | prompt) for every prompt and every candidate token: one forward per prompt (not one per
 * candidate), with the head evaluated at each prompt's last position only. Rank classification over
 * single-token labels needs nothing more.
 */
export async function nextTokenLogProbs(m: DecoderLM, prompts: number[][], candidates: number[], batchSize: number): Promise<number[][]> {
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`nextTokenLogProbs: prompt ${i} is empty; start it with a BOS token`);
  });
  checkIds(m, prompts, 'nextTokenLogProbs: prompt');
  checkIds(m, [candidates], 'nextTokenLogProbs: candidates');
  const out: number[][] = [];
  for (let start = 0; start < prompts.length; start += Math.max(1, batchSize)) {
    const P = prompts.slice(start, start + batchSize);
    const B = P.length;
    const T = Math.max(...P.map((p) => p.length));
    const ids = P.map((p) => [...p, ...new Array<number>(T - p.length).fill(0)]);
    const mask = P.map((p) => [...new Array<number>(p.length).fill(1), ...new Array<number>(T - p.length).fill(0)]);
    const vals = await readTidy(() => {
      const h = m.forwardHidden(tf.tensor2d(ids, [B, T], 'int32'), tf.tensor2d(mask, [B, T], 'float32'));
      const last = tf.gather(h, tf.tensor1d(P.map((p, b) => b * T + p.length - 1), 'int32'));
      return tf.gather(tf.logSoftmax(m.headLogits(last)), tf.tensor1d(candidates, 'int32'), 1);
    });
    for (let b = 0; b < B; b++) out.push(Array.from(vals.slice(b * candidates.length, (b + 1) * candidates.length)));
  }
  return out;
}
