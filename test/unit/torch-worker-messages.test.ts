/**
 * The PyTorch worker's messages (src/protocol/torch-worker.ts): what the trainer process accepts, and what it
 * names as wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWorkerMessage, stepEventOf, workerMessageIssue } from '../../src/protocol/torch-worker';

const hello = {
  type: 'hello',
  torch: '2.9.0',
  transformers: '4.57.0',
  device: 'cuda:0',
  deviceName: 'NVIDIA H100',
  isGpu: true,
  world: 8,
  shard: 'fsdp2',
  precision: 'bf16',
  parameters: 8_000_000_000,
  layers: 32,
  targets: 224,
};
const step = {
  type: 'step',
  task: 0,
  step: 10,
  globalStep: 10,
  loss: 1.5,
  lr: 1e-4,
  tokensPerSecond: 9000,
  progress: 0.1,
};

test('the documented messages are accepted', () => {
  for (const m of [
    hello,
    { ...hello, transformers: null },
    { type: 'task-started', task: 1, trainableParameters: 10 },
    step,
    { ...step, losses: [1.4, null, 1.6], memoryBytes: 1e9, terms: { ewc: 0.1 } },
    { type: 'ranks', beforeTask: 1, policy: 'fixed', matrices: [], seconds: 2 },
    { type: 'scores', afterTask: -1, task: 0, split: 'test', mode: 'next', scores: [[-0.1, null]] },
    { type: 'scores', afterTask: 0, task: 0, split: 'validation', mode: 'generate', outputs: [[5, 2]] },
    { type: 'checkpoint', path: 'checkpoints/torch-10-task', task: 1, step: 0, reason: 'task' },
    { type: 'warning', message: 'w' },
    { type: 'stopped', task: 0, step: 3, checkpoint: 'checkpoints/torch-3-stop' },
    { type: 'done' },
    { type: 'error', message: 'boom', where: 'step 3' },
  ])
    assert.equal(workerMessageIssue(m), null, JSON.stringify(m));
});

test('anything else is named: the type, the field, the value', () => {
  assert.match(workerMessageIssue([1])!, /not a JSON object/);
  assert.match(workerMessageIssue({ type: 'hi' })!, /unknown type "hi"/);
  assert.match(workerMessageIssue({ ...hello, world: 0 })!, /hello: field 'world' has a wrong value 0/);
  assert.match(workerMessageIssue({ ...hello, device: undefined })!, /hello: field 'device' is missing/);
  assert.match(workerMessageIssue({ ...step, lr: 'fast' })!, /lr/);
  assert.match(workerMessageIssue({ ...step, losses: [1, 'x'] })!, /losses/);
  assert.match(
    workerMessageIssue({ type: 'scores', afterTask: 0, task: 0, split: 'test', mode: 'cont' })!,
    /exactly one of/,
  );
  assert.match(
    workerMessageIssue({ type: 'scores', afterTask: -2, task: 0, split: 'test', mode: 'cont', scores: [] })!,
    /afterTask/,
  );
  assert.equal(isWorkerMessage({ type: 'checkpoint', path: 'x', task: 0, step: 0, reason: 'later' }), false);
});

test('a step message becomes a step event without the losses', () => {
  assert.deepEqual(stepEventOf({ ...step, losses: [1, 2] } as never), { ...step });
});
