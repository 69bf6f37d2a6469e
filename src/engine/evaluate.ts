/**
 * Accuracy of a model on a task's test set.
 * - rank: every label is scored by Σ log p(answer tokens | prompt) and the best one is the prediction
 *   (classification over the label set, as the O-LoRA protocol evaluates T5 and decoder models);
 * - generate: greedy decoding, exact match with the expected output after trimming (and up to EOS).
 * Both resolve asynchronously: scores are read back with `data()` (webgpu has no synchronous readback in Node).
 */
import type { CausalLM } from './models/types';
import type { Example } from '../data/examples';
import { answerText, type TextTokenizer } from './data/batches';
import { codecFor, type Codec } from './data/codec';

export interface EvalTask {
  test: Example[];
  labels: string[];
  template: string;
}

export interface EvalSettings {
  maxSeqLen: number;
  batchSize: number;
  maxNewTokens: number;
}

/**
 * The token ids rank classification scores. When every label is a single token (the shipped tokenizer makes
 * benchmark labels so), labels are ranked by the next-token distribution after each prompt: one forward per
 * example instead of one per label (`next`). Otherwise each label's full answer (its tokens and EOS) is scored
 * after each prompt (`cont`: prompts and continuations pairwise, example-major).
 */
export type RankInputs =
  | { mode: 'next'; prompts: number[][]; candidates: number[] }
  | { mode: 'cont'; prompts: number[][]; continuations: number[][] };

export function rankInputs(model: CausalLM, tok: TextTokenizer, task: EvalTask, maxSeqLen: number): RankInputs {
  return rankInputsOf(codecFor(model, tok, maxSeqLen), tok, task, model.nextTokenLogProbs !== undefined);
}

/**
 * rankInputs from a codec, for a model that is not loaded here (the PyTorch engine's prepared data):
 * `nextToken` says whether the model can score the next token alone.
 */
export function rankInputsOf(codec: Codec, tok: TextTokenizer, task: EvalTask, nextToken: boolean): RankInputs {
  const single = task.labels.map((l) => tok.encode(answerText(l)));
  if (nextToken && single.every((ids) => ids.length === 1)) {
    return {
      mode: 'next',
      prompts: task.test.map((ex) => codec.prompt(ex, task.template, 1)),
      candidates: single.map((ids) => ids[0]),
    };
  }
  const labelIds = single.map((ids) => (tok.eosId != null ? [...ids, tok.eosId] : ids));
  const longest = Math.max(...labelIds.map((l) => l.length));
  const prompts: number[][] = [];
  const continuations: number[][] = [];
  for (const ex of task.test) {
    // Prompts are truncated so that the longest label fits, the same way for every label.
    const prompt = codec.prompt(ex, task.template, longest);
    for (const ids of labelIds) {
      prompts.push(prompt);
      continuations.push(ids);
    }
  }
  return { mode: 'cont', prompts, continuations };
}

/** One example's outcome: the prediction and, for rank classification, each label's score (log-probability). */
export interface ExamplePrediction {
  predicted: string;
  correct: boolean;
  /** rank only: in the order of `task.labels`. */
  scores?: number[];
}

export interface EvalResult {
  /** Percent of correct examples. */
  accuracy: number;
  /** One per test example, in order. */
  predictions: ExamplePrediction[];
}

/** Percent of test examples whose best-scoring label (rankInputs) is the expected output. */
export async function rankAccuracy(
  model: CausalLM,
  tok: TextTokenizer,
  task: EvalTask,
  s: EvalSettings,
): Promise<number> {
  return (await rankEvaluate(model, tok, task, s)).accuracy;
}

/** rankAccuracy with every example's prediction and label scores. */
export async function rankEvaluate(
  model: CausalLM,
  tok: TextTokenizer,
  task: EvalTask,
  s: EvalSettings,
): Promise<EvalResult> {
  if (task.test.length === 0) throw new Error('evaluation: the task has no test examples');
  const inputs = rankInputs(model, tok, task, s.maxSeqLen);
  const L = task.labels.length;
  // Scores of example i's labels: a row of `next`, or L consecutive entries of `cont`.
  const rows =
    inputs.mode === 'next'
      ? await model.nextTokenLogProbs!(inputs.prompts, inputs.candidates, s.batchSize)
      : chunk(await model.continuationLogProbs(inputs.prompts, inputs.continuations, s.batchSize), L);
  return rankResult(task, rows);
}

/** The outcome of rank classification from each test example's label scores (in the order of `task.labels`). */
export function rankResult(task: Pick<EvalTask, 'test' | 'labels'>, rows: number[][]): EvalResult {
  let correct = 0;
  const predictions = task.test.map((ex, i) => {
    const row = rows[i];
    const predicted = task.labels[row.indexOf(Math.max(...row))];
    const hit = predicted === ex.output;
    if (hit) correct++;
    return { predicted, correct: hit, scores: row };
  });
  return { accuracy: (100 * correct) / task.test.length, predictions };
}

function chunk(xs: number[], n: number): number[][] {
  return Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));
}

/** Percent of test examples whose greedy continuation equals the expected output. */
export async function generateAccuracy(
  model: CausalLM,
  tok: TextTokenizer,
  task: EvalTask,
  s: EvalSettings,
): Promise<number> {
  return (await generateEvaluate(model, tok, task, s)).accuracy;
}

/** generateAccuracy with every example's continuation (decoded up to EOS, trimmed). */
export async function generateEvaluate(
  model: CausalLM,
  tok: TextTokenizer,
  task: EvalTask,
  s: EvalSettings,
): Promise<EvalResult> {
  if (task.test.length === 0) throw new Error('evaluation: the task has no test examples');
  const codec = codecFor(model, tok, s.maxSeqLen);
  let correct = 0;
  const predictions: ExamplePrediction[] = [];
  for (let i = 0; i < task.test.length; i += s.batchSize) {
    const chunk = task.test.slice(i, i + s.batchSize);
    const prompts = chunk.map((ex) => codec.prompt(ex, task.template, s.maxNewTokens));
    const outs = await model.generate(prompts, s.maxNewTokens, tok.eosId != null ? { eosTokenIds: [tok.eosId] } : {});
    chunk.forEach((ex, j) => {
      const p = generatedPrediction(tok, outs[j], ex.output);
      if (p.correct) correct++;
      predictions.push(p);
    });
  }
  return { accuracy: (100 * correct) / task.test.length, predictions };
}

/** A greedy continuation's prediction: its ids decoded without EOS and trimmed, compared with the trimmed output. */
export function generatedPrediction(tok: TextTokenizer, ids: number[], expected: string): ExamplePrediction {
  const predicted = tok.decode(ids.filter((id) => id !== tok.eosId)).trim();
  return { predicted, correct: predicted === expected.trim() };
}
