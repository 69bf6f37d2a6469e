/**
 * From examples to token batches. A prompt is the task template filled with the example; the answer (the
 * label or expected output, then EOS) follows it. Training computes the loss on the answer tokens only
 * (labels -100 elsewhere, HF convention), which is how instruction-tuned continual-learning benchmarks train.
 * Batches are plain typed arrays: the trainer turns them into tensors, so this module has no tfjs state.
 */
import type { Example } from '../../data/examples';
import type { Rng } from '../../data/rng';

export const IGNORE_INDEX = -100;
export const DEFAULT_TEMPLATE = '{instruction}{input}\nAnswer:';

/** What the data pipeline needs from a tokenizer. */
export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number;
}

export function formatPrompt(template: string, ex: Example): string {
  return template.replace(/\{instruction\}/g, ex.instruction ?? '').replace(/\{input\}/g, ex.input);
}

/** The answer is separated from the prompt by one space, so word-level and BPE tokenizers both see a word. */
export function answerText(output: string): string {
  return ` ${output}`;
}

export interface EncodedExample {
  prompt: number[];
  answer: number[];
}

/**
 * Tokenizes one example. Prompt and answer are encoded separately (so the answer's tokens are the same in
 * training and in rank evaluation); the prompt is truncated from the left to fit `maxSeqLen`.
 */
export function encodeExample(
  tok: TextTokenizer,
  template: string,
  ex: Example,
  maxSeqLen: number,
  withEos = true,
): EncodedExample {
  const answer = tok.encode(answerText(ex.output));
  if (withEos && tok.eosId != null) answer.push(tok.eosId);
  let prompt = tok.encode(formatPrompt(template, ex));
  const bos = tok.bosId != null ? [tok.bosId] : [];
  const room = maxSeqLen - answer.length - bos.length;
  if (room < 1) {
    throw new Error(
      `the answer "${ex.output.slice(0, 40)}" takes ${answer.length} tokens, which leaves no room for the prompt within maxSeqLen ${maxSeqLen}`,
    );
  }
  if (prompt.length > room) prompt = prompt.slice(prompt.length - room);
  return { prompt: [...bos, ...prompt], answer };
}

export interface Batch {
  /** [B, T] row-major, right-padded with the pad id. */
  inputIds: Int32Array;
  /** [B, T]: the answer tokens, -100 on prompt and padding. */
  labels: Int32Array;
  /** [B, T]: 1 for tokens, 0 for padding. */
  mask: Int32Array;
  B: number;
  T: number;
  /** Tokens that carry a label (what the loss averages over). */
  labelled: number;
  /** Non-padding tokens (for throughput). */
  tokens: number;
}

export function makeBatch(items: EncodedExample[], padId: number): Batch {
  const B = items.length;
  const T = Math.max(...items.map((e) => e.prompt.length + e.answer.length));
  const inputIds = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const mask = new Int32Array(B * T);
  let labelled = 0;
  let tokens = 0;
  items.forEach((e, b) => {
    const row = b * T;
    const seq = [...e.prompt, ...e.answer];
    seq.forEach((id, t) => {
      inputIds[row + t] = id;
      mask[row + t] = 1;
    });
    e.answer.forEach((id, i) => (labels[row + e.prompt.length + i] = id));
    labelled += e.answer.length;
    tokens += seq.length;
  });
  return { inputIds, labels, mask, B, T, labelled, tokens };
}

/** Batches of indices for one epoch, in an order fixed by the generator. The last batch may be smaller. */
export function epochOrder(n: number, batchSize: number, rng: Rng): number[][] {
  const idx = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const out: number[][] = [];
  for (let i = 0; i < n; i += batchSize) out.push(idx.slice(i, i + batchSize));
  return out;
}

/**
 * At most `limit` examples, balanced over outputs (round-robin over labels in a seeded order), so that a
 * limit never drops a class.
 */
export function balancedSubset(examples: Example[], limit: number | undefined, rng: Rng): Example[] {
  if (limit === undefined || limit >= examples.length) return examples;
  const byLabel = new Map<string, Example[]>();
  for (const e of examples) {
    if (!byLabel.has(e.output)) byLabel.set(e.output, []);
    byLabel.get(e.output)!.push(e);
  }
  const pools = [...byLabel.values()].map((p) => rng.shuffle([...p]));
  const out: Example[] = [];
  for (let round = 0; out.length < limit; round++) {
    let added = false;
    for (const p of pools) {
      if (round < p.length && out.length < limit) {
        out.push(p[round]);
        added = true;
      }
    }
    if (!added) break;
  }
  return out;
}
