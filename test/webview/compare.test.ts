// Runs as the dashboard names and compares them: short labels (the user's title, else method · order · seed),
// told apart across experiments, the run id kept for tooltips; a queued folder as queued under its method; runs
// of different task sequences aligned by task name, with a note and no "best".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import type { RunMeta } from '../../src/protocol/webview';
import { emptyDashboard, reduceHost, runStatus, type RunState } from '../../webview/state';
import { baseLabel, runTitle } from '../../webview/labels';
import { alignTasks, sequenceNote } from '../../webview/align';
import { averageAccuracySpec, forgettingSpec } from '../../webview/charts/accuracy';
import { summaryRow } from '../../webview/derive';
import { fixture } from '../helpers/paths';

const events = (name: string) => parseEventLog(readFileSync(fixture('events', `${name}.jsonl`), 'utf8')).events;

/** The log with its tasks renamed position by position (the same run, as if it had trained another sequence). */
function retasked(evs: SculptEvent[], tasks: string[], config?: Record<string, unknown>): SculptEvent[] {
  return evs.map((e) => {
    if (e.type === 'run-started')
      return { ...e, tasks, ...(config ? { config: { ...(e.config as object), ...config } } : {}) };
    if (e.type === 'task-started' || e.type === 'task-finished') return { ...e, name: tasks[e.task] };
    return e;
  });
}

function dashboard(runs: { key: string; events: SculptEvent[]; meta?: RunMeta }[]): RunState[] {
  const st = emptyDashboard();
  reduceHost(st, {
    type: 'init',
    protocol: 1,
    theme: 'dark',
    runs: runs.map((r) => ({
      key: r.key,
      name: r.key.split('/').pop()!,
      live: false,
      events: r.events,
      truncatedTail: false,
      badLines: 0,
      ...(r.meta ? { meta: r.meta } : {}),
    })),
  });
  return st.runs;
}

test('labels: method · order · seed, the user\u2019s title first, the run id and notes in the tooltip', () => {
  const [svd, seq] = dashboard([
    { key: '/w/runs/tiny3-20261127/adaptive-svd-o1-s0', events: events('adaptive-svd-finished') },
    {
      key: '/w/runs/tiny3-20261127/seqft-o2-s1',
      events: events('seqft-finished'),
      meta: { order: 1, seed: 1, title: 'seqft retry', notes: 'lr 1e-3', tags: ['baseline'] },
    },
  ]);
  assert.equal(svd.label, 'adaptive-svd · o1 · s0');
  assert.equal(seq.label, 'seqft retry');
  assert.equal(baseLabel({ ...seq, meta: { ...seq.meta, title: '' } }), 'seqft · o2 · s1', 'job.json says the cell');
  assert.equal(
    runTitle(seq),
    'seqft retry: seqft-o2-s1\n/w/runs/tiny3-20261127/seqft-o2-s1\nTags: #baseline\nNotes: lr 1e-3',
  );
  assert.equal(summaryRow(seq).label, 'seqft retry');
});

test('labels that would read the same are told apart by experiment, then by folder', () => {
  const evs = events('seqft-finished');
  const runs = dashboard([
    { key: '/w/a-1/seqft-o1-s0', events: retasked(evs, ['sentiment', 'topic', 'size'], { name: 'exp-a' }) },
    { key: '/w/b-1/seqft-o1-s0', events: retasked(evs, ['sentiment', 'topic', 'size'], { name: 'exp-b' }) },
    { key: '/w/b-2/seqft-o1-s0', events: retasked(evs, ['sentiment', 'topic', 'size'], { name: 'exp-b' }) },
  ]);
  assert.deepEqual(
    runs.map((r) => r.label),
    ['exp-a · seqft · o1 · s0', 'b-1 · exp-b · seqft · o1 · s0', 'b-2 · exp-b · seqft · o1 · s0'],
  );
});

test('a queued folder (job.json, no event yet) is queued under its method, not "no events"', () => {
  const [queued, bare] = dashboard([
    { key: '/w/exp/adaptive-svd-o2-s1', events: [], meta: { method: 'adaptive-svd', order: 1, seed: 1, queued: true } },
    { key: '/w/elsewhere/empty', events: [] },
  ]);
  assert.equal(runStatus(queued), 'queued');
  assert.equal(summaryRow(queued).method, 'adaptive-svd');
  assert.equal(queued.label, 'adaptive-svd · o2 · s1');
  assert.equal(runStatus(bare), 'new', 'a folder with nothing in it stays "no events"');
  assert.equal(bare.label, 'empty');
});

test('runs of different task sequences: per-task figures by task name, a note, OP_t by position', () => {
  const a = events('adaptive-svd-finished');
  const [ra, rb] = dashboard([
    { key: '/w/x/adaptive-svd-o1-s0', events: a },
    { key: '/w/y/seqft-o1-s0', events: retasked(events('seqft-finished'), ['size', 'topic', 'sentiment']) },
  ]);
  const align = alignTasks([ra, rb]);
  assert.equal(align.same, false);
  assert.equal(align.sameSet, true);
  assert.deepEqual(align.tasks, ['sentiment', 'topic', 'size']);
  assert.match(
    sequenceNote(align)!,
    /different task sequences .*sentiment → topic → size.*size → topic → sentiment.*no best/,
  );

  const f = forgettingSpec([ra, rb], (r) => (r === ra ? 0 : 1));
  const t = f.table();
  assert.deepEqual(t.columns, [ra.label, rb.label]);
  assert.deepEqual(t.columnTitles, [runTitle(ra), runTitle(rb)]);
  const rowOf = (name: string) => t.rows.find((r) => r.header === name)!.cells.map((c) => c.value);
  // Each run's forgetting of a task sits in that task's row, wherever the task came in its sequence.
  assert.equal(rowOf('sentiment')[1], null, 'the last task of b forgets nothing yet');
  assert.equal(rowOf('size')[0], null, 'the last task of a forgets nothing yet');
  const R = (run: RunState, i: number, j: number) => run.matrix[i][j] ?? NaN;
  assert.equal(rowOf('sentiment')[0], Math.max(R(ra, 0, 0), R(ra, 1, 0)) - R(ra, 2, 0));
  assert.equal(
    rowOf('size')[1],
    Math.max(R(rb, 0, 0), R(rb, 1, 0)) - R(rb, 2, 0),
    'b trained size first: its forgetting of size',
  );
  assert.equal(f.footer?.[0].kind, 'note');

  const aa = averageAccuracySpec([ra, rb], (r) => (r === ra ? 0 : 1));
  assert.deepEqual(
    aa.table().rows.map((r) => r.header),
    ['task 1', 'task 2', 'task 3'],
    'OP_t is after the t-th task of each run\u2019s own sequence',
  );
  assert.equal(aa.table().rows[0].cells[1].title, 'after size');
  assert.match(aa.footer?.[0].text ?? '', /different task sequences/);

  // The same sequence: task names on the axis, no note.
  const [c, d] = dashboard([
    { key: '/w/x/adaptive-svd-o1-s0', events: a },
    { key: '/w/x/seqft-o1-s0', events: events('seqft-finished') },
  ]);
  assert.equal(alignTasks([c, d]).same, true);
  const same = averageAccuracySpec([c, d], () => 0);
  assert.deepEqual(
    same.table().rows.map((r) => r.header),
    ['sentiment', 'topic', 'size'],
  );
  assert.equal(same.footer, undefined);
  // Runs that have not started do not count as another sequence.
  const [e] = dashboard([{ key: '/w/z/q', events: [], meta: { method: 'seqft', queued: true } }]);
  assert.equal(alignTasks([c, d, e]).same, true);
});
