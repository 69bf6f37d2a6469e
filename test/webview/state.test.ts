// The dashboard's state is a fold over events: live increments, a replay and a reload give the same state; unknown
// types, repeats and a truncated log are tolerated; a resume drops superseded events; numbers match the engine's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import { effectiveEvents, foldRun } from '../../src/runs/fold';
import {
  applyEvents,
  emptyDashboard,
  emptyRun,
  reduceHost,
  runFromEvents,
  runStatus,
  type RunState,
} from '../../webview/state';
import {
  averageAccuracyPerTask,
  bestKeys,
  completeRows,
  forgettingPerTask,
  rankHeatmap,
  summaryRow,
} from '../../webview/derive';
import { decimateMinMax } from '../../webview/series';
import { fixture } from '../helpers/paths';

const load = (name: string) => parseEventLog(readFileSync(fixture('events', `${name}.jsonl`), 'utf8'));
const info = (name: string) => ({ key: `/runs/${name}`, name });

/** The state without bookkeeping that legitimately differs between deliveries (version, ignored count). */
function project(run: RunState): unknown {
  const { steps, version: _v, ignored: _i, events, ...rest } = run;
  return {
    ...rest,
    steps: Object.fromEntries(Object.entries(steps).map(([k, c]) => [k, Array.from(c.view())])),
    events: events.map((e) => e.seq),
  };
}

/** Deterministic chunking, so a failure reproduces. */
function chunks<T>(xs: T[], seed: number): T[][] {
  const out: T[][] = [];
  let s = seed;
  for (let i = 0; i < xs.length;) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const n = 1 + (s % 17);
    out.push(xs.slice(i, i + n));
    i += n;
  }
  return out;
}

const FIXTURES = [
  'adaptive-svd-finished',
  'seqft-finished',
  'adaptive-svd-stopped',
  'adaptive-svd-resumed',
  'adaptive-svd-crashed',
];

for (const name of FIXTURES) {
  test(`${name}: live increments give the same state as a replay of the log`, () => {
    const log = load(name);
    const replay = runFromEvents(info(name), log.events);
    for (const seed of [1, 7, 42]) {
      const live = emptyRun(info(name));
      for (const c of chunks(log.events, seed)) applyEvents(live, c);
      assert.deepEqual(project(live), project(replay));
    }
  });
}

test('the matrix, zero-shot row and metrics equal the shared fold of the same log', () => {
  for (const name of FIXTURES) {
    const log = load(name);
    const run = runFromEvents(info(name), log.events);
    const s = foldRun(name, log.events);
    assert.deepEqual(completeRows(run), s.matrix, name);
    assert.deepEqual(summaryRow(run).metrics, s.metrics, name);
    assert.deepEqual(summaryRow(run).summary, s, `${name}: the dashboard's summary is the shared fold`);
    assert.equal(run.method, s.method);
    assert.deepEqual(run.tasks, s.tasks);
  }
});

test('a finished run: the run-finished matrix and metrics, OP_t and forgetting per task from the task events', () => {
  const log = load('adaptive-svd-finished');
  const fin = log.events.find((e) => e.type === 'run-finished');
  assert.ok(fin && fin.type === 'run-finished');
  const run = runFromEvents(info('a'), log.events);
  assert.equal(runStatus(run), 'finished');
  assert.deepEqual(run.matrix, fin.matrix);
  assert.deepEqual(run.zeroShot, fin.zeroShot);
  assert.deepEqual(summaryRow(run).metrics, fin.metrics);
  const taskAA = log.events.flatMap((e) => (e.type === 'task-finished' ? [e.metrics.AA] : []));
  assert.deepEqual(
    averageAccuracyPerTask(run).map((p) => p.value),
    taskAA,
  );
  const f = forgettingPerTask(run);
  assert.equal(f.after, 2);
  // max over earlier rows minus the last row: sentiment 100 -> 100, topic 100 -> 33.3
  assert.deepEqual(
    f.perTask.map((p) => Math.round(p.value! * 1000) / 1000),
    [0, 66.667],
  );
  assert.equal(f.bwt, fin.metrics.BWT);
  assert.equal(run.steps.globalStep.length, log.events.filter((e) => e.type === 'step').length);
  assert.deepEqual(
    run.spans.map((s) => [s.name, s.offset]),
    [
      ['sentiment', 0],
      ['topic', 120],
      ['size', 240],
    ],
  );
  assert.equal(run.ranks.length, 2);
  const h = rankHeatmap(run);
  assert.deepEqual(
    h.rows.map((r) => r.label),
    ['layer 0', 'layer 1'],
  );
  const r0 = run.ranks[0].matrices.filter((m) => m.layer === 0);
  assert.equal(h.cells[0][0], r0.reduce((s, m) => s + m.ratio, 0) / r0.length);
});

test('unknown event types, malformed objects and repeated events are ignored', () => {
  const log = load('seqft-finished');
  const clean = runFromEvents(info('s'), log.events);
  const noisy: unknown[] = [];
  for (const e of log.events) {
    noisy.push(e);
    if (e.seq % 10 === 0)
      noisy.push({ v: 1, runId: e.runId, seq: e.seq + 0.5, time: e.time, type: 'gpu-temperature', celsius: 71 });
    if (e.seq % 25 === 0) noisy.push(null, 'text', { type: 'step' }, e);
  }
  const run = runFromEvents(info('s'), noisy);
  assert.deepEqual(project(run), project(clean));
  assert.ok(run.ignored > 0);
});

test('a truncated log renders what it has: rows so far, status crashed, no final metrics', () => {
  const log = load('adaptive-svd-crashed');
  assert.equal(log.truncatedTail, true);
  const run = runFromEvents(info('c'), log.events, { truncatedTail: true, badLines: 0 });
  assert.equal(runStatus(run), 'crashed');
  assert.equal(run.finished, null);
  assert.equal(completeRows(run).length, 2);
  assert.deepEqual(run.matrix[2], undefined);
  assert.equal(run.current?.task, 2);
  assert.ok(run.steps.globalStep.length > 120);
  // Without the truncation flag and no trainer attached it was interrupted; with one it is running.
  assert.equal(runStatus(runFromEvents(info('c'), log.events)), 'interrupted');
  assert.equal(runStatus(runFromEvents({ ...info('c'), live: true }, log.events)), 'running');
});

test('a resumed run drops the events its checkpoint superseded, live or replayed', () => {
  const log = load('adaptive-svd-resumed');
  const resumed = log.events.find(
    (e): e is Extract<SculptEvent, { type: 'run-started' }> => e.type === 'run-started' && !!e.resumedFrom,
  );
  assert.ok(resumed?.resumedFrom);
  const run = runFromEvents(info('r'), log.events);
  const effective = effectiveEvents(log.events);
  assert.deepEqual(
    run.events.map((e) => e.seq),
    effective.map((e) => e.seq),
  );
  assert.ok(run.events.length < log.events.length);
  assert.equal(run.resumes, 1);
  // No superseded step survives: global steps strictly increase.
  const gs = Array.from(run.steps.globalStep.view());
  assert.ok(gs.every((g, i) => i === 0 || g > gs[i - 1]));
  // The same result when the interrupted part arrived live before the resume.
  const live = emptyRun(info('r'));
  const cut = log.events.indexOf(resumed);
  applyEvents(live, log.events.slice(0, cut));
  assert.equal(runStatus(live), 'interrupted');
  applyEvents(live, log.events.slice(cut));
  assert.deepEqual(project(live), project(run));
  assert.equal(runStatus(run), 'finished');
  const fin = log.events.find((e) => e.type === 'run-finished');
  assert.ok(fin?.type === 'run-finished');
  assert.deepEqual(summaryRow(run).metrics, fin.metrics);
  assert.deepEqual(run.matrix, fin.matrix);
});

test('a stopped run reports where it stopped and its partial matrix', () => {
  const run = runFromEvents(info('st'), load('adaptive-svd-stopped').events);
  assert.equal(runStatus(run), 'stopped');
  assert.equal(run.stopped?.task, 1);
  assert.equal(completeRows(run).length, 1);
});

test('host messages: init, appended events, run set changes and liveness', () => {
  const a = load('adaptive-svd-finished').events;
  const b = load('seqft-finished').events;
  const st = emptyDashboard();
  reduceHost(st, {
    type: 'init',
    protocol: 1,
    theme: 'light',
    runs: [{ ...info('a'), live: true, events: a.slice(0, 50), truncatedTail: false, badLines: 0 }],
  });
  assert.equal(st.theme, 'light');
  assert.equal(st.runs[0].events.length, 50);
  reduceHost(st, { type: 'events', key: '/runs/a', events: a.slice(40) });
  assert.deepEqual(project(st.runs[0]), project(runFromEvents({ ...info('a'), live: true }, a)));
  const kept = st.runs[0];
  reduceHost(st, {
    type: 'runs',
    runs: [
      { ...info('a'), live: false },
      { ...info('b'), live: false, events: b },
    ],
  });
  assert.equal(st.runs[0], kept, 'a listed run without events keeps its state');
  assert.equal(st.runs[1].events.length, b.length);
  reduceHost(st, { type: 'live', key: '/runs/b', live: false, exitCode: 3 });
  assert.equal(st.runs[1].exitCode, 3);
  reduceHost(st, { type: 'runs', runs: [{ ...info('b'), live: false }] });
  assert.deepEqual(
    st.runs.map((r) => r.key),
    ['/runs/b'],
  );
  reduceHost(st, { type: 'init', protocol: 99, theme: 'dark', runs: [] });
  assert.match(st.protocolError ?? '', /protocol 1 but the extension sent 99/);
});

test('best values in the comparison: higher AA/BWT/FWT, lower forgetting and time; none when all equal', () => {
  const a = summaryRow(runFromEvents(info('a'), load('adaptive-svd-finished').events));
  const s = summaryRow(runFromEvents(info('s'), load('seqft-finished').events));
  assert.deepEqual([...bestKeys([a, s], 'AA')], ['/runs/a']);
  assert.deepEqual([...bestKeys([a, s], 'BWT')], ['/runs/a']);
  assert.deepEqual([...bestKeys([a, s], 'forgetting')], ['/runs/a']);
  assert.deepEqual([...bestKeys([a, s], 'seconds')], ['/runs/s']);
  assert.deepEqual([...bestKeys([a, s], 'FWT')], [], 'FWT is 0 for both');
  assert.deepEqual([...bestKeys([a], 'AA')], []);
});

test('min/max decimation keeps every extreme and at most ~2,000 points', () => {
  const n = 20000;
  const xs = Float64Array.from({ length: n }, (_, i) => i);
  const ys = Float64Array.from(
    { length: n },
    (_, i) => Math.sin(i / 50) + (i === 12345 ? 40 : 0) - (i === 777 ? 40 : 0),
  );
  ys[5000] = NaN;
  const pts = decimateMinMax(xs, ys, 2000);
  assert.ok(pts.length <= 2000, `${pts.length} points`);
  assert.ok(pts.some((p) => p.x === 12345 && p.y > 39));
  assert.ok(pts.some((p) => p.x === 777 && p.y < -39));
  assert.ok(
    pts.some((p) => p.x === 5000 && Number.isNaN(p.y)),
    'a NaN loss stays a visible gap',
  );
  assert.ok(pts.every((p, i) => i === 0 || p.x > pts[i - 1].x));
  assert.equal(pts[0].x, 0);
  assert.equal(pts[pts.length - 1].x, n - 1);
  assert.deepEqual(decimateMinMax([1, 2], [3, 4]), [
    { x: 1, y: 3 },
    { x: 2, y: 4 },
  ]);
});
