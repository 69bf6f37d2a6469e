/**
 * Batches for encoder-decoder models (T5). The prompt is the encoder input and the answer the decoder target,
 * instead of one concatenated sequence: inputIds/mask are [B, T] (prompts, right-padded: T5's positions are
 * indices, so padding must come last), labels [B, labelsT] (answers, -100 after each). The model derives the
 * decoder inputs (labels shifted right behind its start token) itself. Both sides end with EOS, as T5 was
 * trained (its tokenizer appends </s> to every text).
 */
import { answerText, formatPrompt, IGNORE_INDEX, type Batch, type EncodedExample, type TextTokenizer } from './batches';
import type { Example } from '../../data/examples';

export interface Seq2SeqBatch extends Batch {
  readonly kind: 'seq2seq';
  /** Decoder target length: `labels` is [B, labelsT]; `inputIds` and `mask` are [B, T]. */
  labelsT: number;
}

export function isSeq2SeqBatch(b: Batch): b is Seq2SeqBatch {
  return (b as Partial<Seq2SeqBatch>).kind === 'seq2seq';
}

/** The shape `labels` is uploaded with: [B, labelsT] for a seq2seq batch, [B, T] otherwise. */
export function labelShape(b: Batch): [number, number] {
  return isSeq2SeqBatch(b) ? [b.B, b.labelsT] : [b.B, b.T];
}

/**
 * The encoder input: the filled template, then EOS. Cut from the left to fit `maxSourceLen` (EOS included),
 * as the decoder-only pipeline cuts its prompts, so the template's closing cue ("Answer:") survives.
 */
export function encodeSeq2SeqPrompt(tok: TextTokenizer, template: string, ex: Example, maxSourceLen: number): number[] {
  const eos = tok.eosId != null ? [tok.eosId] : [];
  if (maxSourceLen <= eos.length)
    throw new Error(`maxSourceLen ${maxSourceLen} leaves no room for the prompt (EOS takes ${eos.length})`);
  const ids = tok.encode(formatPrompt(template, ex));
  const room = maxSourceLen - eos.length;
  return [...(ids.length > room ? ids.slice(ids.length - room) : ids), ...eos];
}

/** The decoder target: the answer as the decoder-only pipeline encodes it (its tokens, then EOS). */
export function encodeSeq2SeqAnswer(tok: TextTokenizer, output: string, maxTargetLen: number): number[] {
  const answer = tok.encode(answerText(output));
  if (tok.eosId != null) answer.push(tok.eosId);
  if (answer.length > maxTargetLen) {
    throw new Error(
      `the answer "${output.slice(0, 40)}" takes ${answer.length} tokens (EOS included), more than maxTargetLen ${maxTargetLen}`,
    );
  }
  return answer;
}

/** One example: `prompt` for the encoder, `answer` for the decoder (the same fields as a decoder-only example). */
export function encodeSeq2SeqExample(
  tok: TextTokenizer,
  template: string,
  ex: Example,
  maxSourceLen: number,
  maxTargetLen = maxSourceLen,
): EncodedExample {
  return {
    prompt: encodeSeq2SeqPrompt(tok, template, ex, maxSourceLen),
    answer: encodeSeq2SeqAnswer(tok, ex.output, maxTargetLen),
  };
}

export function makeSeq2SeqBatch(items: EncodedExample[], padId: number): Seq2SeqBatch {
  if (items.length === 0) throw new Error('makeSeq2SeqBatch: no examples');
  const B = items.length;
  const T = Math.max(1, ...items.map((e) => e.prompt.length));
  const L = Math.max(1, ...items.map((e) => e.answer.length));
  const inputIds = new Int32Array(B * T).fill(padId);
  const mask = new Int32Array(B * T);
  const labels = new Int32Array(B * L).fill(IGNORE_INDEX);
  let labelled = 0;
  let tokens = 0;
  items.forEach((e, b) => {
    e.prompt.forEach((id, t) => {
      inputIds[b * T + t] = id;
      mask[b * T + t] = 1;
    });
    e.answer.forEach((id, t) => (labels[b * L + t] = id));
    labelled += e.answer.length;
    tokens += e.prompt.length + e.answer.length;
  });
  return { kind: 'seq2seq', inputIds, labels, mask, B, T, labelsT: L, labelled, tokens };
}
