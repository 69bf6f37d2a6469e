/**
 * The evaluations of a run: after every task (and zero-shot) each task's test set, then its validation split, in
 * every mode of `eval.modes`, each an `eval` event; and, where `eval.predictions` asks for it, every example's
 * prediction written to the run folder (src/runs/predictions.ts).
 */
import type { ResolvedConfig } from '../protocol/config-validate';
import type { CausalLM } from './models/types';
import type { TextTokenizer } from './data/batches';
import type { RunTask } from './experiment';
import type { RunHooks } from './runner';
import type { EventBody } from '../protocol/events';
import { generateEvaluate, rankEvaluate, type EvalResult } from './evaluate';
import type { Example } from '../data/examples';
import { predictionRecord, writePredictionPoint, writesPredictions, type PredictionSetData } from '../runs/predictions';

/** Whether the run's tasks have validation splits (all of them or none: `eval.validation` is one setting). */
export function hasValidation(tasks: RunTask[]): boolean {
  return tasks.length > 0 && tasks.every((t) => t.validation.length > 0);
}

/**
 * One accuracy per task, in order, on the test sets and then on the validation splits (null without them).
 * Evaluations read results asynchronously, so they run one after another. Every test evaluation comes first, so
 * that a reader that takes the first `eval` event of a task as its test accuracy (one written before `split`
 * existed) still does. When `eval.predictions` asks for this point, every example's prediction is written to
 * the run folder once all are evaluated.
 */
export async function evaluateAll(
  model: CausalLM,
  tok: TextTokenizer,
  tasks: RunTask[],
  config: ResolvedConfig,
  afterTask: number,
  hooks: RunHooks,
  runDir: string,
): Promise<{ test: number[]; validation: number[] | null }> {
  const keep: PredictionSetData[] | null = writesPredictions(config.eval.predictions, afterTask, tasks.length)
    ? []
    : null;
  const test: number[] = [];
  for (const t of tasks) test.push(await evaluateTask(model, tok, t, 'test', config, afterTask, hooks, keep));
  let validation: number[] | null = null;
  if (hasValidation(tasks)) {
    validation = [];
    for (const t of tasks)
      validation.push(await evaluateTask(model, tok, t, 'validation', config, afterTask, hooks, keep));
  }
  if (keep) writePredictions(runDir, afterTask, tasks, keep, hooks);
  return { test, validation };
}

/** Writes one evaluation point's predictions; a failure is a `warning` event. */
export function writePredictions(
  runDir: string,
  afterTask: number,
  tasks: RunTask[],
  sets: PredictionSetData[],
  hooks: Pick<RunHooks, 'emit'>,
): void {
  try {
    writePredictionPoint(
      runDir,
      afterTask,
      tasks.map((t) => t.name),
      sets,
    );
  } catch (e) {
    // The accuracies are in the events; a full disk here should not end the run.
    hooks.emit({
      type: 'warning',
      code: 'predictions-export',
      message: `could not write the predictions of the evaluation ${afterTask < 0 ? 'before training' : `after task ${afterTask + 1}`} to ${runDir}: ${(e as Error).message}`,
    });
  }
}

/**
 * A warning when the model gives one answer to every test example of the task it has just been trained on,
 * though their expected outputs differ: it has learned which label is frequent, not the task, and its accuracy
 * is that label's share of the test set. A comparison against such a run measures nothing, so the run says so
 * (both engines, from the same predictions).
 */
export function oneAnswerWarning(
  t: RunTask,
  split: 'test' | 'validation',
  mode: 'rank' | 'generate',
  examples: readonly Example[],
  result: EvalResult,
  afterTask: number,
): EventBody | null {
  if (split !== 'test' || afterTask !== t.index || examples.length < 2) return null;
  const expected = new Set(examples.map((e) => e.output));
  const answer = result.predictions[0]?.predicted;
  if (expected.size < 2 || answer === undefined || result.predictions.some((p) => p.predicted !== answer)) return null;
  return {
    type: 'warning',
    code: 'one-answer',
    message: `after training task ${t.index + 1} ('${t.name}') the model answers ${JSON.stringify(answer)} to every one of its ${examples.length} test examples (${mode} mode), whose expected outputs hold ${expected.size} labels: it has not learned the task, and its accuracy (${result.accuracy.toFixed(1)}%) is that answer's share of the test set`,
  };
}

/** One evaluation's predictions as the prediction files hold them. */
export function predictionSet(
  t: RunTask,
  split: 'test' | 'validation',
  mode: 'rank' | 'generate',
  examples: Example[],
  result: EvalResult,
): PredictionSetData {
  return {
    split,
    task: t.index,
    name: t.name,
    mode,
    labels: t.labels,
    accuracy: result.accuracy,
    records: examples.map((ex, i) => {
      const p = result.predictions[i];
      const scores = p.scores && { labels: t.labels, values: p.scores };
      return predictionRecord(i, ex.input || (ex.instruction ?? ''), ex.output, p.predicted, p.correct, scores);
    }),
  };
}

/**
 * The task's accuracy on one split in every mode of `eval.modes` (an `eval` event each); the first mode's counts.
 * With `keep`, each mode's predictions are added to it.
 */
async function evaluateTask(
  model: CausalLM,
  tok: TextTokenizer,
  t: RunTask,
  split: 'test' | 'validation',
  config: ResolvedConfig,
  afterTask: number,
  hooks: RunHooks,
  keep: PredictionSetData[] | null,
): Promise<number> {
  const settings = {
    maxSeqLen: config.training.maxSeqLen,
    batchSize: config.training.evalBatchSize,
    maxNewTokens: config.eval.maxNewTokens,
  };
  // The evaluators score `test`: the validation split takes its place.
  const target = { labels: t.labels, template: t.template, test: split === 'test' ? t.test : t.validation };
  let first: number | undefined;
  for (const mode of config.eval.modes) {
    const result = await (mode === 'rank'
      ? rankEvaluate(model, tok, target, settings)
      : generateEvaluate(model, tok, target, settings));
    const accuracy = result.accuracy;
    hooks.emit({
      type: 'eval',
      afterTask,
      task: t.index,
      name: t.name,
      mode,
      split,
      accuracy,
      examples: target.test.length,
    });
    const oneAnswer = oneAnswerWarning(t, split, mode, target.test, result, afterTask);
    if (oneAnswer) hooks.emit(oneAnswer);
    keep?.push(predictionSet(t, split, mode, target.test, result));
    first ??= accuracy;
  }
  return first!;
}
