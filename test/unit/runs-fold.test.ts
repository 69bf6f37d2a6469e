// The one reading of a run's event log (src/runs/fold.ts): status through stops, errors and resumes with
// supersession, the matrix, zero-shot row and metrics, the live progress fields, and tolerance of what a newer
// trainer may write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseEventLog, type EventBody, type Metrics, type SculptEvent } from '../../src/protocol/events';
import {
  effectiveEvents,
  emptySummary,
  finishSummary,
  foldEvent,
  foldRun,
  isFinalEvent,
  type RunSummary,
} from '../../src/runs/fold';
import { metricsAfter } from '../../src/runs/metrics';
import { engineText, runEngine } from '../../src/runs/run-engine';
import { fixture } from '../helpers/paths';

/** A log written by hand: each body gets the next seq (or the one it names with `at`). */
function log(...bodies: (EventBody & { at?: number })[]): SculptEvent[] {
  let seq = 0;
  return bodies.map(({ at, ...b }) => {
    seq = at ?? seq + 1;
    return { v: 1, runId: 'r', seq, time: 1000 * seq, ...b } as SculptEvent;
  });
}

const TASKS = ['a', 'b'];
const m = (AA: number, BWT: number | null = null): Metrics => ({ AA, BWT, forgetting: null, FWT: null });
const started = (resumedFrom?: { task: number; step: number; supersededFrom: number }): EventBody => ({
  type: 'run-started',
  config: { name: 'x' },
  method: 'adaptive-svd',
  tasks: TASKS,
  order: 0,
  backend: { name: 'wasm', device: 'cpu', isGpu: false, fallbacks: [] },
  model: { arch: 'llama', source: 'builtin', parameters: 1, trainable: 1, layers: 1, targets: 1 },
  ...(resumedFrom ? { resumedFrom } : {}),
});
const taskStarted = (task: number): EventBody => ({
  type: 'task-started',
  task,
  name: TASKS[task],
  trainExamples: 8,
  steps: 4,
});
const step = (task: number, s: number, loss: number): EventBody => ({
  type: 'step',
  task,
  step: s,
  globalStep: 4 * task + s,
  loss,
  lr: 1e-3,
  tokensPerSecond: 10,
  progress: s / 4,
});
const evalOn = (afterTask: number, task: number, accuracy: number): EventBody => ({
  type: 'eval',
  afterTask,
  task,
  name: TASKS[task],
  mode: 'rank',
  accuracy,
  examples: 4,
});
const taskFinished = (task: number, row: number[], metrics: Metrics): EventBody => ({
  type: 'task-finished',
  task,
  name: TASKS[task],
  row,
  metrics,
  seconds: 1,
});
const checkpoint = (task: number, s: number): EventBody => ({
  type: 'checkpoint',
  path: `ckpt-${task}-${s}`,
  task,
  step: s,
  reason: 'steps',
});
const runFinished = (matrix: number[][], zeroShot: (number | null)[] | null, metrics: Metrics): EventBody => ({
  type: 'run-finished',
  matrix,
  zeroShot,
  metrics,
  seconds: 12,
});

/** The status after each event, folded one at a time as a live view does. */
const statuses = (events: SculptEvent[]) => {
  const s = emptySummary('r');
  return events.map((e) => foldEvent(s, e).status);
};

test('an empty log is new: nothing known yet, and the fold of no events is the empty summary', () => {
  const s = foldRun('r', []);
  assert.deepEqual(s, emptySummary('r'));
  assert.equal(s.status, 'new');
  assert.deepEqual(
    [s.method, s.tasks, s.backend, s.matrix, s.zeroShot, s.metrics, s.seconds, s.error],
    ['?', [], null, [], null, null, null, null],
  );
  assert.deepEqual([s.task, s.taskProgress, s.loss, s.phase], [-1, 0, null, 'starting']);
});

test('a finished run: run-finished gives the matrix, zero-shot row, metrics and time', () => {
  const R = [
    [90, 20],
    [80, 95],
  ];
  const fin = m(87.5, -10);
  const events = log(
    started(),
    evalOn(-1, 0, 30),
    evalOn(-1, 1, 25),
    taskStarted(0),
    step(0, 4, 0.5),
    taskFinished(0, R[0], m(90)),
    taskStarted(1),
    step(1, 4, 0.25),
    taskFinished(1, R[1], fin),
    runFinished(R, [30, 25], fin),
  );
  const s = foldRun('r', events);
  assert.equal(s.status, 'finished');
  assert.deepEqual([s.name, s.method, s.tasks, s.backend], ['r', 'adaptive-svd', TASKS, 'wasm']);
  assert.deepEqual(s.matrix, R);
  assert.deepEqual(s.zeroShot, [30, 25]);
  assert.deepEqual(s.metrics, fin);
  assert.equal(s.seconds, 12);
  assert.equal(s.error, null);
  assert.deepEqual([s.task, s.taskProgress, s.loss, s.phase], [1, 1, 0.25, 'done']);
});

test('an unfinished run: rows and metrics after the last finished task, zero-shot from the base model evals', () => {
  const events = log(
    started(),
    evalOn(-1, 0, 30),
    evalOn(-1, 1, 25),
    evalOn(-1, 1, 99),
    taskStarted(0),
    taskFinished(0, [90, 20], m(90)),
    taskStarted(1),
    step(1, 2, 0.75),
  );
  const s = foldRun('r', events);
  assert.equal(s.status, 'running');
  assert.deepEqual(s.matrix, [[90, 20]]);
  assert.deepEqual(s.zeroShot, [30, 25], 'the first measurement of a task counts');
  assert.deepEqual(s.metrics, m(90));
  assert.equal(s.seconds, null);

  // A log whose task events carry no metrics (an older trainer): computed from R and the zero-shot row.
  const bare = events.map((e) =>
    e.type === 'task-finished' ? ({ ...e, metrics: undefined } as unknown as SculptEvent) : e,
  );
  assert.deepEqual(foldRun('r', bare).metrics, metricsAfter([[90, 20]], [30, 25]));

  // A trainer that did not send a zero-shot row at the end: the evals' row stands.
  const fin = foldRun('r', [
    ...events,
    {
      ...log(
        runFinished(
          [
            [90, 20],
            [80, 95],
          ],
          null,
          m(87.5),
        ),
      )[0],
      seq: 100,
    },
  ]);
  assert.deepEqual(fin.zeroShot, [30, 25]);
});

test('validation splits: their evals, rows and metrics fold beside the test figures, never into them', () => {
  const R = [
    [90, 20],
    [80, 95],
  ];
  const V = [
    [85, 30],
    [70, 90],
  ];
  const split = (e: EventBody, which: 'test' | 'validation') => ({ ...e, split: which }) as EventBody;
  const vFin = metricsAfter(V, [40, 35]);
  const events = log(
    started(),
    split(evalOn(-1, 0, 30), 'test'),
    evalOn(-1, 1, 25),
    split(evalOn(-1, 0, 40), 'validation'),
    split(evalOn(-1, 1, 35), 'validation'),
    taskStarted(0),
    split(evalOn(0, 0, 90), 'test'),
    split(evalOn(0, 0, 85), 'validation'),
    {
      ...taskFinished(0, R[0], m(90)),
      validationRow: V[0],
      validationMetrics: metricsAfter([V[0]], [40, 35]),
    } as EventBody,
    taskStarted(1),
    { ...taskFinished(1, R[1], m(87.5, -10)), validationRow: V[1], validationMetrics: vFin } as EventBody,
  );
  const live = foldRun('r', events);
  assert.deepEqual([live.matrix, live.zeroShot], [R, [30, 25]], 'the test figures are the test events alone');
  assert.deepEqual([live.validationMatrix, live.validationZeroShot, live.validationMetrics], [V, [40, 35], vFin]);
  const fin = foldRun('r', [
    ...events,
    ...log({
      ...runFinished(R, [30, 25], m(87.5, -10)),
      validationMatrix: V,
      validationZeroShot: [40, 35],
      validationMetrics: vFin,
      at: 50,
    } as EventBody & { at: number }),
  ]);
  assert.equal(fin.status, 'finished');
  assert.deepEqual([fin.validationMatrix, fin.validationZeroShot, fin.validationMetrics], [V, [40, 35], vFin]);
  // Rows without metrics (a trimmed log): computed from V and its zero-shot row.
  const bare = events.map((e) =>
    e.type === 'task-finished' ? ({ ...e, validationMetrics: undefined } as unknown as SculptEvent) : e,
  );
  assert.deepEqual(foldRun('r', bare).validationMetrics, vFin);
  // A log without validation splits (validation 0, or from before them): null, and the test figures as ever.
  const plain = foldRun('r', log(started(), evalOn(-1, 0, 30), taskStarted(0), taskFinished(0, R[0], m(90))));
  assert.deepEqual([plain.validationMatrix, plain.validationZeroShot, plain.validationMetrics], [null, null, null]);
  assert.deepEqual(plain.zeroShot, [30, null]);
});

test('live progress: task, fraction of it, last loss and phase', () => {
  const s = emptySummary('r');
  const seen: [number, number, number | null, string][] = [];
  for (const e of log(
    started(),
    evalOn(-1, 0, 30),
    taskStarted(0),
    step(0, 1, 2.5),
    step(0, 3, 1.5),
    evalOn(0, 0, 80),
    taskFinished(0, [80, 10], m(80)),
    { type: 'ranks', beforeTask: 1, policy: 'adaptive', matrices: [], seconds: 0.1 },
    taskStarted(1),
    step(1, 2, 0.5),
  )) {
    foldEvent(s, e);
    seen.push([s.task, s.taskProgress, s.loss, s.phase]);
  }
  assert.deepEqual(seen, [
    [-1, 0, null, 'starting'],
    [-1, 0, null, 'evaluating'],
    [0, 0, null, 'training'],
    [0, 0.25, 2.5, 'training'],
    [0, 0.75, 1.5, 'training'],
    [0, 0.75, 1.5, 'evaluating'],
    [0, 1, 1.5, 'evaluating'],
    [0, 1, 1.5, 'ranks'],
    [1, 0, 1.5, 'training'],
    [1, 0.5, 0.5, 'training'],
  ]);
});

test('an error fails the run and says why; a resume superseding it starts clean and finishes', () => {
  const failed = log(started(), taskStarted(0), step(0, 1, 2), checkpoint(0, 1), step(0, 2, 1.9), {
    type: 'error',
    message: 'out of memory',
    where: 'task 1 (a), step 3',
  });
  const f = foldRun('r', failed);
  assert.deepEqual([f.status, f.error, f.phase], ['failed', 'out of memory', 'done']);

  // The resume continues from the checkpoint (seq 4): what the failed process wrote after it (seq 5, 6) goes.
  const resumed = [
    ...failed,
    ...log(
      { ...started({ task: 0, step: 1, supersededFrom: 5 }), at: 7 },
      step(0, 2, 1.8),
      step(0, 4, 1.2),
      taskFinished(0, [85, 15], m(85)),
      taskStarted(1),
      step(1, 4, 0.3),
      taskFinished(1, [70, 90], m(80, -15)),
      runFinished(
        [
          [85, 15],
          [70, 90],
        ],
        null,
        m(80, -15),
      ),
    ),
  ];
  assert.deepEqual(
    effectiveEvents(resumed).map((e) => e.seq),
    [1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 14],
  );
  assert.deepEqual(
    statuses(resumed).slice(5, 8),
    ['failed', 'running', 'running'],
    'live: failed until the resume starts',
  );
  const s = foldRun('r', resumed);
  assert.equal(s.status, 'finished');
  assert.equal(s.error, null, 'the superseded error is gone');
  assert.deepEqual(s.matrix, [
    [85, 15],
    [70, 90],
  ]);
  assert.equal(s.loss, 0.3);

  // Cut right after the resume started: running again (no live trainer makes that 'interrupted', see status.ts).
  assert.equal(foldRun('r', resumed.slice(0, 7)).status, 'running');
  // A session that failed before any checkpoint and was started over without supersession: its error is history.
  const restarted = [...failed, ...log({ ...started(), at: 7 })];
  assert.deepEqual([foldRun('r', restarted).status, foldRun('r', restarted).error], ['running', null]);
});

test('stopped, then resumed, then finished: the status follows the last session', () => {
  const events = log(
    started(),
    taskStarted(0),
    step(0, 4, 1),
    taskFinished(0, [80, 10], m(80)),
    taskStarted(1),
    step(1, 2, 0.9),
    checkpoint(1, 2),
    { type: 'stopped', task: 1, step: 2, checkpoint: 'ckpt-1-2' },
    started({ task: 1, step: 2, supersededFrom: 9 }),
    step(1, 4, 0.4),
    taskFinished(1, [75, 88], m(81.5, -5)),
    runFinished(
      [
        [80, 10],
        [75, 88],
      ],
      null,
      m(81.5, -5),
    ),
  );
  const st = statuses(events);
  assert.deepEqual(st.slice(6), ['running', 'stopped', 'running', 'running', 'running', 'finished']);
  assert.equal(foldRun('r', events.slice(0, 8)).status, 'stopped');
  assert.equal(foldRun('r', events.slice(0, 8)).phase, 'done');
  assert.equal(foldRun('r', events.slice(0, 9)).status, 'running');
  const s = foldRun('r', events);
  assert.equal(s.status, 'finished');
  assert.deepEqual(s.metrics, m(81.5, -5));
  // Nothing was superseded (the stop wrote its checkpoint last), so the fold is the plain one.
  assert.deepEqual(s, finishSummary(events.reduce(foldEvent, emptySummary('r'))));
});

test('final events are exactly the ones that settle a log', () => {
  const events = log(
    started(),
    taskStarted(0),
    step(0, 1, 1),
    checkpoint(0, 1),
    { type: 'warning', message: 'w' },
    { type: 'stopped', task: 0, step: 1 },
    { type: 'error', message: 'e' },
    runFinished([], null, m(0)),
  );
  for (const e of events) {
    const after = foldEvent({ ...emptySummary('r'), status: 'running' }, e).status;
    assert.equal(isFinalEvent(e), after !== 'running', e.type);
  }
});

test("the engine: from run-started's engine block, null without one, and what cannot be read is left out", () => {
  const torch = { name: 'torch', version: '2.13.0+cu128', world: 2, shard: 'fsdp2', precision: 'bf16' };
  const withEngine = (engine: unknown) => ({ ...started(), engine }) as EventBody;
  assert.equal(foldRun('r', log(started())).engine, null, 'a log from before the PyTorch engine');
  assert.deepEqual(foldRun('r', log(withEngine(torch))).engine, torch);
  assert.deepEqual(foldRun('r', log(withEngine({ name: 'tfjs' }))).engine, { name: 'tfjs' });
  // A block a newer (or broken) trainer wrote: the fields that read as expected, or nothing without a name.
  assert.deepEqual(foldRun('r', log(withEngine({ name: 'torch', world: 'two', shard: 3, gpus: 8 }))).engine, {
    name: 'torch',
  });
  for (const bad of [null, 'torch', { world: 2 }, { name: '' }])
    assert.equal(foldRun('r', log(withEngine(bad))).engine, null, JSON.stringify(bad));
  // A resume's run-started without the block keeps what the first session said.
  assert.deepEqual(foldRun('r', log(withEngine(torch), taskStarted(0), started())).engine, torch);
});

test('engineText: the name, the world size above one, and a shard or precision other than the plain ones', () => {
  assert.equal(engineText({ name: 'torch', world: 2, shard: 'fsdp2', precision: 'bf16' }), 'torch ×2 (fsdp2, bf16)');
  assert.equal(engineText({ name: 'torch', world: 4, shard: 'ddp', precision: 'fp32' }), 'torch ×4 (ddp)');
  assert.equal(engineText({ name: 'torch', world: 1, shard: 'none', precision: 'fp32' }), 'torch');
  assert.equal(engineText({ name: 'torch', version: '2.13.0', world: 1, precision: 'bf16' }), 'torch (bf16)');
  assert.equal(engineText({ name: 'torch', version: '2.13.0', world: 2 }, { version: true }), 'torch 2.13.0 ×2');
  assert.equal(engineText({ name: 'tfjs' }, { version: true }), 'tfjs');
  assert.deepEqual(runEngine({ engine: { name: 'torch', world: 1.5 } }), { name: 'torch' }, 'a world is a count');
});

test('unknown event types change nothing, and an event without run-started still means the log has begun', () => {
  const events = log(started(), taskStarted(0), step(0, 2, 1));
  const noisy: SculptEvent[] = [];
  for (const e of events)
    noisy.push(e, {
      v: 1,
      runId: 'r',
      seq: e.seq,
      time: 0,
      type: 'gpu-temperature',
      celsius: 71,
    } as unknown as SculptEvent);
  assert.deepEqual(foldRun('r', noisy), foldRun('r', events));
  assert.equal(
    foldRun('r', noisy.slice(1, 2)).status,
    'new',
    'only unknown events: nothing has happened that this reader knows of',
  );
  assert.equal(foldRun('r', events.slice(1)).status, 'running');
});

test('fixture logs: the same summary whether folded whole or event by event, and settled ones say how they ended', () => {
  const load = (name: string) => parseEventLog(readFileSync(fixture('events', `${name}.jsonl`), 'utf8')).events;
  const expected: Record<string, RunSummary['status']> = {
    'adaptive-svd-finished': 'finished',
    'seqft-finished': 'finished',
    'adaptive-svd-stopped': 'stopped',
    'adaptive-svd-resumed': 'finished',
    'adaptive-svd-crashed': 'running',
  };
  for (const [name, status] of Object.entries(expected)) {
    const events = load(name);
    const s = foldRun(name, events);
    assert.equal(s.status, status, name);
    assert.deepEqual(s, finishSummary(effectiveEvents(events).reduce(foldEvent, emptySummary(name))), name);
    const fin = events.find((e) => e.type === 'run-finished');
    if (fin?.type === 'run-finished') {
      assert.deepEqual(
        [s.matrix, s.zeroShot, s.metrics, s.seconds],
        [fin.matrix, fin.zeroShot, fin.metrics, fin.seconds],
        name,
      );
    }
  }
});
