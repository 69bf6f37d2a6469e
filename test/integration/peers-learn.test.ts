/**
 * Every method at its documented defaults learns every task of the tiny suite (examples/tiny.sculpt.json: its
 * model, tasks and training settings): the accuracy right after training a task is at least chance + 25 points,
 * the bar docs/peers.md holds the methods to on the demo suite. A method whose defaults stop it from learning
 * (O-LoRA's adapters at a full fine-tuning learning rate did) fails here in seconds, before any study is run on
 * it. Needs `npm run build` first (npm test does it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExperimentConfig, MethodConfig, MethodName } from '../../src/protocol/config';
import { labelSet } from '../../src/data/examples';
import { tinyTask } from '../../src/runs/builtin/tiny-tasks';
import { writeExperiment } from '../helpers/experiment';
import { repoRoot } from '../helpers/paths';
import { cli, finished, runDirs } from '../helpers/runs';

const METHODS: MethodName[] = ['seqft', 'adaptive-svd', 'o-lora', 'ewc', 'replay', 'lwf', 'mtl', 'per-task'];
const MARGIN = 25;

test('every method at its defaults learns both tiny tasks to chance + 25 right after training them', () => {
  const work = mkdtempSync(join(tmpdir(), 'sculpt-peers-learn-'));
  const example = JSON.parse(readFileSync(join(repoRoot, 'examples', 'tiny.sculpt.json'), 'utf8')) as ExperimentConfig;
  const config: ExperimentConfig = {
    name: 'peers-learn',
    model: example.model,
    backend: 'wasm',
    seed: 0,
    tasks: example.tasks,
    methods: METHODS.map((method) => ({ method }) as MethodConfig),
    // The example's settings as they are: with a third of its epochs SeqFT, EWC and LwF left the topic task at
    // one label, so fewer are not enough. Eight runs, two at a time, take about half a minute.
    training: { ...example.training, stepEventInterval: 100 },
    eval: { ...example.eval, predictions: 'none' },
    checkpoint: { every: 'never' },
    output: join(work, 'runs'),
  };
  const r = cli('run', writeExperiment(work, config), '--jobs', '2');
  assert.equal(r.status, 0, r.stderr);
  const bars = config.tasks.map((t) => {
    const id = (t.source as { builtin: string }).builtin;
    return { name: t.name, bar: 100 / labelSet(tinyTask(id)!.train).length + MARGIN };
  });
  const dirs = runDirs(join(work, 'runs'));
  assert.equal(dirs.length, METHODS.length);
  const below: string[] = [];
  for (const dir of dirs) {
    const fin = finished(dir);
    const job = JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8')) as { methodIndex: number };
    bars.forEach(({ name, bar }, j) => {
      const v = fin.matrix[j][j];
      if (!(v >= bar)) below.push(`${METHODS[job.methodIndex]} on ${name}: ${v} < ${bar.toFixed(1)}`);
    });
  }
  assert.deepEqual(below, [], 'every task learned right after its training');
});
