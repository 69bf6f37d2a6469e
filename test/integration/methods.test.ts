/**
 * Every peer method (O-LoRA, EWC, replay, LwF, MTL, per-task) through the built CLI and trainer on the tiny
 * model and tasks: complete event logs that fit the schema, a full accuracy matrix, and a stop in the middle
 * of training that resumes to the same numbers. Needs `npm run build` first (npm test does it).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MethodConfig } from '../../src/protocol/config';
import { tinyExperiment, writeExperiment } from '../helpers/experiment';
import { assertEventLog, cli, cliAsync, events, finished, runDirs, trainer } from '../helpers/runs';

const work = mkdtempSync(join(tmpdir(), 'sculpt-methods-'));

const METHODS: MethodConfig[] = [
  { method: 'o-lora', lr: 0.05 },
  { method: 'ewc', fisherSamples: 16 },
  { method: 'replay' },
  { method: 'lwf' },
  { method: 'mtl' },
  { method: 'per-task' },
];

function config(methods: MethodConfig[], name = 'pm'): string {
  return writeExperiment(
    work,
    tinyExperiment({ name, methods, checkpoint: { every: 'never' }, output: join(work, 'runs') }),
  );
}

/** Run folder of each method of the one `sculpt run` below, by method index. */
const runOf = new Map<number, string>();

test('every peer method runs end to end: schema-valid events, a full matrix, metrics from it', () => {
  const r = cli('run', config(METHODS), '--json');
  assert.equal(r.status, 0, r.stderr);
  const root = join(work, 'runs');
  for (const d of runDirs(root)) {
    const job = JSON.parse(readFileSync(join(d, 'job.json'), 'utf8')) as { methodIndex: number };
    runOf.set(job.methodIndex, d);
  }
  assert.equal(runOf.size, METHODS.length);
  METHODS.forEach((m, i) => {
    const evs = events(runOf.get(i)!);
    const what = `${m.method}`;
    assertEventLog(evs, what);
    assert.ok(!evs.some((e) => e.type === 'error'), `${what}: no error`);
    assert.deepEqual(
      evs
        .filter((e) => ['run-started', 'task-started', 'task-finished', 'run-finished'].includes(e.type))
        .map((e) => e.type),
      ['run-started', 'task-started', 'task-finished', 'task-started', 'task-finished', 'run-finished'],
      what,
    );
    const fin = finished(runOf.get(i)!);
    assert.equal(fin.matrix.length, 2, what);
    fin.matrix.forEach((row) =>
      assert.ok(row.length === 2 && row.every((a) => a >= 0 && a <= 100), `${what}: row ${row}`),
    );
    assert.equal(fin.metrics.AA, (fin.matrix[1][0] + fin.matrix[1][1]) / 2, what);
    // Every announced step happened, with a finite loss and progress in (0, 1].
    for (const ts of evs.filter((e) => e.type === 'task-started')) {
      if (ts.type !== 'task-started') continue;
      const stepEvents = evs.filter((e) => e.type === 'step' && e.task === ts.task);
      assert.equal(stepEvents.length, ts.steps, `${what}: steps of task ${ts.task}`);
      for (const s of stepEvents)
        assert.ok(
          s.type === 'step' && Number.isFinite(s.loss) && s.progress > 0 && s.progress <= 1,
          `${what}: step ${JSON.stringify(s)}`,
        );
    }
    const started = evs.filter((e) => e.type === 'task-started').map((e) => (e.type === 'task-started' ? e : null)!);
    // Each task trains on its 96 examples less those of its validation split (the default tenth).
    const own = [0, 1].map((task) => {
      const held = evs.find((e) => e.type === 'eval' && e.split === 'validation' && e.task === task);
      assert.ok(held?.type === 'eval' && held.examples >= 10, `${what}: validation split of task ${task}`);
      return 96 - held.examples;
    });
    if (m.method === 'mtl') {
      const joint = own[0] + own[1];
      assert.deepEqual(
        started.map((s) => [s.trainExamples, s.steps]),
        [
          [joint, 2 * Math.ceil(joint / 16)],
          [0, 0],
        ],
        'MTL trains once on both tasks',
      );
      assert.deepEqual(fin.matrix[1], fin.matrix[0], 'MTL: nothing changes after the joint training');
    }
    if (m.method === 'replay')
      assert.deepEqual(
        started.map((s) => s.trainExamples),
        [own[0], own[1] + Math.round(own[1] / 3)],
        'replay adds mixRatio/(1 - mixRatio) of buffer examples',
      );
  });
});

describe(
  'stop in the middle of training, then resume: the same matrix and metrics as the uninterrupted run',
  { concurrency: 2 },
  () => {
    METHODS.forEach((m, i) => {
      test(`${JSON.stringify(m)}`, async () => {
        const whole = runOf.get(i);
        assert.ok(whole, 'the end-to-end run above made a folder for this method');
        const reference = finished(whole);
        const dir = `${whole}-stopped`;
        cpSync(join(whole, 'config.json'), join(dir, 'config.json'));
        cpSync(join(whole, 'job.json'), join(dir, 'job.json'));
        // Stop where the method's state matters: 4 steps into the second task (MTL trains only in the first).
        const stopTask = m.method === 'mtl' ? 0 : 1;
        let asked = false;
        const code = await trainer(dir, (e, child) => {
          if (e.type === 'step' && e.task === stopTask && e.step >= 4 && !asked && child.connected) {
            asked = true;
            child.send({ type: 'stop' });
          }
        });
        assert.equal(code, 0);
        const stopped = events(dir).find((e) => e.type === 'stopped');
        assert.ok(
          stopped && stopped.type === 'stopped' && stopped.checkpoint && existsSync(stopped.checkpoint),
          'stopped with a checkpoint',
        );
        assert.equal(stopped.task, stopTask);
        const r = await cliAsync('resume', dir);
        assert.equal(r.status, 0, r.stderr);
        const resumed = finished(dir);
        assert.deepEqual(resumed.matrix, reference.matrix);
        assert.deepEqual(resumed.metrics, reference.metrics);
        assert.deepEqual(
          [resumed.validationMatrix, resumed.validationMetrics],
          [reference.validationMatrix, reference.validationMetrics],
          'the same validation figures',
        );
        // Stronger than the (coarse) accuracies: every step's loss, before and after the stop, is the same.
        const losses = (d: string) =>
          new Map(events(d).flatMap((e) => (e.type === 'step' ? [[`${e.task}/${e.step}`, e.loss] as const] : [])));
        const want = losses(whole);
        const got = losses(dir);
        assert.equal(got.size, want.size);
        for (const [k, v] of want) assert.equal(got.get(k), v, `loss at task/step ${k}`);
      });
    });
  },
);

test('a bad method option stops the run before it starts (exit 2, invalid input) with its JSON path', () => {
  const r = cli('run', config([{ method: 'o-lora', modules: ['q', 'q'] }], 'bad'));
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr + r.stdout, /methods\[0\]\.modules: names 'q' twice/);
});
