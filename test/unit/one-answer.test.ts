/**
 * The `one-answer` warning (src/engine/run-evaluation.ts): a model that gives one answer to every test example of
 * the task it was just trained on, whose expected outputs differ, has not learned it; both engines say so from
 * the same predictions. Checked on its own and through a tiny run that collapses (an lr that drives every
 * prompt to one label).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tinyRun } from '../helpers/tiny-run';
import type { RunTask } from '../../src/engine/experiment';
import type { EvalResult } from '../../src/engine/evaluate';
import { oneAnswerWarning } from '../../src/engine/run-evaluation';

const examples = [
  { input: 'a', output: 'pos' },
  { input: 'b', output: 'neg' },
  { input: 'c', output: 'neg' },
];
const task: RunTask = {
  index: 1,
  configIndex: 1,
  name: 'review',
  train: [],
  test: examples,
  validation: [],
  labels: ['neg', 'pos'],
  template: '{input}\nAnswer:',
};
const answers = (predicted: string[]): EvalResult => ({
  accuracy: (100 * predicted.filter((p, i) => p === examples[i].output).length) / predicted.length,
  predictions: predicted.map((p, i) => ({ predicted: p, correct: p === examples[i].output })),
});

test('one answer to every test example of the task just trained, whose outputs differ: a warning naming it', () => {
  const w = oneAnswerWarning(task, 'test', 'rank', examples, answers(['neg', 'neg', 'neg']), 1);
  assert.ok(w?.type === 'warning');
  assert.equal(w.code, 'one-answer');
  assert.equal(
    w.message,
    `after training task 2 ('review') the model answers "neg" to every one of its 3 test examples (rank mode), whose expected outputs hold 2 labels: it has not learned the task, and its accuracy (66.7%) is that answer's share of the test set`,
  );
  // Not when the answers differ, on another task's or point's evaluation, on validation, or when every
  // expected output is the same answer.
  assert.equal(oneAnswerWarning(task, 'test', 'rank', examples, answers(['neg', 'pos', 'neg']), 1), null);
  assert.equal(oneAnswerWarning(task, 'test', 'rank', examples, answers(['neg', 'neg', 'neg']), 0), null);
  assert.equal(oneAnswerWarning(task, 'test', 'rank', examples, answers(['neg', 'neg', 'neg']), -1), null);
  assert.equal(oneAnswerWarning(task, 'validation', 'rank', examples, answers(['neg', 'neg', 'neg']), 1), null);
  const same = examples.map((e) => ({ ...e, output: 'neg' }));
  assert.equal(oneAnswerWarning(task, 'test', 'rank', same, answers(['neg', 'neg', 'neg']), 1), null);
});

test('a run whose model collapses to one label warns after that task, beside its eval event', async () => {
  const { events } = await tinyRun('one-answer', {
    tasks: [{ name: 'sentiment', source: { builtin: 'tiny/sentiment' }, trainLimit: 16, testLimit: 8 }],
    // A rate this high sends the tiny model to one answer for every prompt.
    training: { epochs: 2, batchSize: 4, lr: 0.5, gradClip: 0 },
    checkpoint: { final: false },
  });
  const i = events.findIndex((e) => e.type === 'warning' && e.code === 'one-answer');
  assert.ok(i > 0, events.map((e) => e.type).join(' '));
  const before = events[i - 1];
  assert.ok(before.type === 'eval' && before.afterTask === 0 && before.split === 'test', 'right after the eval');
});
