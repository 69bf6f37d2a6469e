/**
 * How examples become model inputs, by the model's kind: decoder-only models train on prompt + answer as one
 * sequence (batches.ts); encoder-decoder models take the prompt as encoder input and the answer as decoder
 * target (seq2seq.ts). Everything above the data layer (runner, calibration, evaluation) goes through this.
 */
import type { CausalLM } from '../models/types';
import { isSeq2Seq } from '../models/types';
import { encodeExample, makeBatch, type Batch, type EncodedExample, type TextTokenizer } from './batches';
import type { Example } from '../../data/examples';
import { encodeSeq2SeqExample, encodeSeq2SeqPrompt, makeSeq2SeqBatch } from './seq2seq';

export interface Codec {
  /** A training example (prompt and answer). */
  example(ex: Example, template: string): EncodedExample;
  /** The prompt alone, for evaluation; `room` tokens are left for what follows it. */
  prompt(ex: Example, template: string, room: number): number[];
  batch(items: EncodedExample[]): Batch;
}

export function codecFor(model: CausalLM, tok: TextTokenizer, maxSeqLen: number): Codec {
  return codecOfKind(isSeq2Seq(model) ? 'seq2seq' : 'causal', tok, maxSeqLen);
}

/**
 * The codec of a kind of model, for checks that run before a model is loaded (the input checks of `sculpt
 * validate` and of a run's start, ./coverage.ts): they must encode exactly as training and evaluation will.
 */
export function codecOfKind(kind: 'causal' | 'seq2seq', tok: TextTokenizer, maxSeqLen: number): Codec {
  if (kind === 'seq2seq') {
    return {
      example: (ex, template) => encodeSeq2SeqExample(tok, template, ex, maxSeqLen),
      prompt: (ex, template) => encodeSeq2SeqPrompt(tok, template, ex, maxSeqLen),
      batch: (items) => makeSeq2SeqBatch(items, tok.padId),
    };
  }
  return {
    example: (ex, template) => encodeExample(tok, template, ex, maxSeqLen),
    prompt: (ex, template, room) =>
      encodeExample(tok, template, { ...ex, output: '' }, maxSeqLen - room + 1, false).prompt,
    batch: (items) => makeBatch(items, tok.padId),
  };
}
