/**
 * Accuracy of a model on a task's test set.
 * - rank: every label is scored by Σ log p(answer tokens | prompt) and the best one is the prediction
 *   (classification over the label set, as the O-LoRA protocol evaluates T5 and decoder models);
 * - generate: greedy decoding, exact match with the expected output after trimming (and up to EOS).
 * Both resolve asynchronously: scores are read back with `data()` (webgpu has no synchronous readback in Node).
 */
import type { CausalLM } from './models/types';
import type { Example } from './data/examples';
import { answerText, type TextTokenizer } from './data/batches';
import { codecFor } from './data/codec';

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
 * Percent of test examples whose best-scoring label is the expected output. When every label is a single
 * token (the shipped tokenizer makes benchmark labels so), labels are ranked by the next-token distribution
 * after the prompt: one forward per example instead of one per label. Otherwise each label's full answer
 * (its tokens and EOS) is scored.
 */
export async function rankAccuracy(model: CausalLM, tok: TextTokenizer, task: EvalTask, s: EvalSettings): Promise<number> {
  if (task.test.length === 0) throw new Error('evaluation: the task has no test examples');
  const codec = codecFor(model, tok, s.maxSeqLen);
  const single = task.labels.map((l) => tok.encode(answerText(l)));
  if (model.nextTokenLogProbs && single.every((ids) => ids.length === 1)) {
    const candidates = single.map((ids) => ids[0]);
    const prompts = task.test.map((ex) => codec.prompt(ex, task.template, 1));
    const scores = await model.nextTokenLogProbs(prompts, candidates, s.batchSize);
    let hits = 0;
    task.test.forEach((ex, i) => {
      const row = scores[i];
      const best = row.indexOf(Math.max(...row));
      if (task.labels[best] === ex.output) hits++;
    });
    return (100 * hits) / task.test.length;
  }
  const labelIds = task.labels.map((l) => {
    const ids = tok.encode(answerText(l));
    if (tok.eosId != null) ids.push(tok.eosId);
    return ids;
  });
  const longest = Math.max(...labelIds.map((l) => l.length));
  const prompts: number[][] = [];
  const conts: number[][] = [];
  for (const ex of task.test) {
    // Prompts are truncated so that the longest label fits, the same way for every label.
    const prompt = codec.prompt(ex, task.template, longest);
    for (const ids of labelIds) {
      prompts.push(prompt);
      conts.push(ids);
    }
  }
  const scores = await model.continuationLogProbs(prompts, conts, s.batchSize);
  const L = task.labels.length;
  let correct = 0;
  task.test.forEach((ex, i) => {
    let best = 0;
    for (let j = 1; j < L; j++) if (scores[i * L + j] > scores[i * L + best]) best = j;
    if (task.labels[best] === ex.output) correct++;
  });
  return (100 * correct) / task.test.length;
}

/** Percent of test examples whose greedy continuation equals the expected output. */
export async function generateAccuracy(model: CausalLM, tok: TextTokenizer, task: EvalTask, s: EvalSettings): Promise<number> {
  if (task.test.length === 0) throw new Error('evaluation: the task has no test examples');
  const codec = codecFor(model, tok, s.maxSeqLen);
  let correct = 0;
  for (let i = 0; i < task.test.length; i += s.batchSize) {
    const chunk = task.test.slice(i, i + s.batchSize);
    const prompts = chunk.map((ex) => codec.prompt(ex, task.template, s.maxNewTokens));
    const outs = await model.generate(prompts, s.maxNewTokens, tok.eosId != null ? { eosTokenIds: [tok.eosId] } : {});
    chunk.forEach((ex, j) => {
      const ids = outs[j].filter((id) => id !== tok.eosId);
      if (tok.decode(ids).trim() === ex.output.trim()) correct++;
    });
  }
  return (100 * correct) / task.test.length;
}
