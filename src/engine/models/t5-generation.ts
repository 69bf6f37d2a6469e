/**
 * Inference for T5: greedy decoding from the decoder start token over an encoded prompt (with or without a
 * key/value cache), and Σ log p(continuation | prompt) for rank classification. Prompts are right-padded: T5's
 * positions are indices, so real tokens keep positions 0..n-1 and a padded row encodes as it would alone.
 */
import { readTidy, tf } from '../tf';
import { checkIds, continuationSums, padRight } from './inference';
import type { Encoded, T5, T5LayerCache } from './t5';
import type { GenerateOptions } from './types';

function checkPrompts(m: T5, prompts: number[][], what: string): void {
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`${what}: prompt ${i} is empty; T5 prompts hold at least their EOS token`);
  });
  checkIds(m.config.vocabSize, prompts, `${what}: prompt`);
}

/** Encodes once and keeps the result beyond any tidy (the caller releases it with `releaseEncoded`). */
function encodeKept(m: T5, prompts: number[][]): Encoded {
  let enc: Encoded | null = null;
  tf.tidy(() => {
    const { ids, mask } = padRight(prompts, m.config.padTokenId ?? 0);
    enc = m.encodeRows(ids, mask);
    tf.keep(enc.h);
    if (enc.bias) tf.keep(enc.bias);
  });
  return enc!;
}

function releaseEncoded(enc: Encoded): void {
  enc.h.dispose();
  enc.bias?.dispose();
}

/**
 * Every row decodes in lockstep from the start token, so the decoder needs no padding. With the cache a step
 * feeds one token per row; without it the whole decoded prefix is recomputed (quadratic in the output length,
 * kept as the reference the cache is tested against). The encoder runs once either way.
 */
export async function t5Generate(
  m: T5,
  prompts: number[][],
  maxNewTokens: number,
  opts: GenerateOptions,
): Promise<number[][]> {
  if (prompts.length === 0 || maxNewTokens <= 0) return prompts.map(() => []);
  checkPrompts(m, prompts, 'generate');
  const B = prompts.length;
  const d = m.config.hiddenSize;
  const eos = new Set(opts.eosTokenIds ?? m.config.eosTokenIds);
  const out: number[][] = prompts.map(() => []);
  const rows = prompts.map(() => [m.decoderStartTokenId]);
  const done = new Array<boolean>(B).fill(false);
  const cache: T5LayerCache[] | null =
    opts.useCache === false
      ? null
      : Array.from({ length: m.numDecoderLayers }, () => ({ self: { k: null, v: null }, cross: { k: null, v: null } }));
  const enc = encodeKept(m, prompts);
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      const feed = cache && step > 0 ? rows.map((r) => r.slice(-1)) : rows;
      const old = cache?.flatMap((c) => [c.self.k, c.self.v]) ?? [];
      const next = tf.tidy(() => {
        const T = feed[0].length;
        const h = m.decodeRows(enc, tf.tensor2d(feed, [B, T], 'int32'), { cache });
        const last = h
          .reshape([B, T, d])
          .slice([0, T - 1, 0], [B, 1, d])
          .reshape([B, d]) as tf.Tensor2D;
        return m.headLogits(last).argMax(1);
      });
      for (const t of old) t?.dispose();
      // Asynchronous read: webgpu has no synchronous readback in Node (and it would stall the GPU elsewhere).
      const ids = Array.from(await next.data());
      next.dispose();
      for (let b = 0; b < B; b++) {
        rows[b].push(ids[b]);
        if (done[b]) continue;
        out[b].push(ids[b]);
        if (eos.has(ids[b])) done[b] = true;
      }
      if (done.every((x) => x)) break;
    }
  } finally {
    releaseEncoded(enc);
    for (const c of cache ?? []) for (const t of [c.self.k, c.self.v, c.cross.k, c.cross.v]) t?.dispose();
  }
  return out;
}

/**
 * Σ_j log p(cont_j | prompt, cont_<j) per example: the prompt is the encoder input, the decoder is fed the
 * start token then the continuation (right-padded; causal attention keeps padding out of earlier positions),
 * and the head runs only on the rows that predict a continuation token.
 */
export async function t5ContinuationLogProbs(
  m: T5,
  prompts: number[][],
  continuations: number[][],
  batchSize: number,
): Promise<number[]> {
  if (prompts.length !== continuations.length) {
    throw new Error(
      `continuationLogProbs: ${prompts.length} prompts but ${continuations.length} continuations; pass one continuation per prompt`,
    );
  }
  checkPrompts(m, prompts, 'continuationLogProbs');
  checkIds(m.config.vocabSize, continuations, 'continuationLogProbs: continuation');
  const pad = m.config.padTokenId ?? 0;
  const step = Math.max(1, batchSize);
  const result: number[] = [];
  for (let start = 0; start < prompts.length; start += step) {
    const P = prompts.slice(start, start + step);
    const C = continuations.slice(start, start + step);
    const T = Math.max(1, ...C.map((c) => c.length));
    const sums = await continuationSums(
      C,
      (b, j) => b * T + j,
      () => {
        const enc = padRight(P, pad);
        const decoderIn = padRight(
          C.map((c) => [m.decoderStartTokenId, ...c.slice(0, -1)]),
          pad,
          T,
        ).ids;
        return m.decodeRows(m.encodeRows(enc.ids, enc.mask), decoderIn);
      },
      (h) => m.headLogits(h),
    );
    result.push(...sums);
  }
  return result;
}

/** log p(candidate | prompt) as the first decoded token, for every prompt and candidate: one decoder step each. */
export async function t5NextTokenLogProbs(
  m: T5,
  prompts: number[][],
  candidates: number[],
  batchSize: number,
): Promise<number[][]> {
  checkPrompts(m, prompts, 'nextTokenLogProbs');
  checkIds(m.config.vocabSize, [candidates], 'nextTokenLogProbs: candidates');
  const step = Math.max(1, batchSize);
  const out: number[][] = [];
  for (let start = 0; start < prompts.length; start += step) {
    const P = prompts.slice(start, start + step);
    const vals = await readTidy(() => {
      const enc = padRight(P, m.config.padTokenId ?? 0);
      const first = tf.tensor2d(
        P.map(() => [m.decoderStartTokenId]),
        [P.length, 1],
        'int32',
      );
      const h = m.decodeRows(m.encodeRows(enc.ids, enc.mask), first);
      return tf.gather(tf.logSoftmax(m.headLogits(h)), tf.tensor1d(candidates, 'int32'), 1);
    });
    P.forEach((_, b) => out.push(Array.from(vals.slice(b * candidates.length, (b + 1) * candidates.length))));
  }
  return out;
}
