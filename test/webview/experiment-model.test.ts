// The experiment view's model without a browser: which runs it is offered for, the grid's cell states (a cell
// without a log is queued under its recorded method, a crash is a failure), the summaries the aggregate reads
// (the shared fold, with a queued cell's method, order and seed from experiment.json), and the aggregate itself
// being `aggregateRuns` over them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import type { ExperimentInfo } from '../../src/protocol/webview';
import { aggregateRuns } from '../../src/runs/aggregate';
import { finishSummary, foldRun } from '../../src/runs/fold';
import { emptyDashboard, reduceHost } from '../../webview/state';
import {
  cellSummaries,
  experimentModel,
  hasExperimentView,
  severalRunsPerMethod,
} from '../../webview/experiment/model';
import { fixture } from '../helpers/paths';

const load = (name: string) => parseEventLog(readFileSync(fixture('events', `${name}.jsonl`), 'utf8')).events;

/** A fixture's events as the run of another cell: its config's seed and its order replaced. */
function asCell(name: string, order: number, seed: number): SculptEvent[] {
  return load(name).map((e) =>
    e.type === 'run-started' ? ({ ...e, order, config: { ...(e.config as object), seed } } as SculptEvent) : e,
  );
}

const key = (c: string) => `/runs/grid-20261207/${c}`;

const experiment: ExperimentInfo = {
  dir: '/runs/grid-20261207',
  name: 'grid',
  methods: ['seqft', 'adaptive-svd'],
  orders: [['sentiment', 'topic', 'size']],
  seeds: [0, 1],
  baseline: null,
  cells: [
    { key: key('seqft-o1-s0'), method: 'seqft', methodIndex: 0, order: 0, seed: 0 },
    { key: key('adaptive-svd-o1-s0'), method: 'adaptive-svd', methodIndex: 1, order: 0, seed: 0 },
    { key: key('seqft-o1-s1'), method: 'seqft', methodIndex: 0, order: 0, seed: 1 },
    { key: key('adaptive-svd-o1-s1'), method: 'adaptive-svd', methodIndex: 1, order: 0, seed: 1 },
  ],
};

function state() {
  const s = emptyDashboard();
  const events: Record<string, SculptEvent[]> = {
    'seqft-o1-s0': asCell('seqft-finished', 0, 0),
    'adaptive-svd-o1-s0': asCell('adaptive-svd-finished', 0, 0),
    'seqft-o1-s1': asCell('adaptive-svd-crashed', 0, 1).map((e) =>
      e.type === 'run-started' ? ({ ...e, method: 'seqft' } as SculptEvent) : e,
    ),
    'adaptive-svd-o1-s1': [],
  };
  reduceHost(s, {
    type: 'init',
    protocol: 1,
    theme: 'dark',
    experiment,
    runs: experiment.cells.map((c) => {
      const name = c.key.split('/').pop()!;
      return {
        key: c.key,
        name,
        live: false,
        events: events[name],
        truncatedTail: name === 'seqft-o1-s1',
        badLines: 0,
      };
    }),
  });
  return s;
}

test('the grid: cells by method and (order, seed), a queued cell under its recorded method, a crash as failed', () => {
  const s = state();
  assert.ok(hasExperimentView(s));
  assert.ok(severalRunsPerMethod(s));
  const m = experimentModel(s);
  assert.equal(m.name, 'grid');
  assert.deepEqual(m.methods, ['seqft', 'adaptive-svd']);
  assert.deepEqual(
    m.columns.map((c) => c.label),
    ['order 1 \u00b7 seed 0', 'order 1 \u00b7 seed 1'],
  );
  assert.deepEqual(
    m.grid.map((row) => row.map((c) => c && [c.name, c.state, c.status])),
    [
      [
        ['seqft-o1-s0', 'finished', 'finished'],
        ['seqft-o1-s1', 'failed', 'crashed'],
      ],
      [
        ['adaptive-svd-o1-s0', 'finished', 'finished'],
        ['adaptive-svd-o1-s1', 'queued', 'new'],
      ],
    ],
  );
  assert.deepEqual(m.counts, { queued: 1, running: 0, finished: 2, failed: 1, stopped: 0 });
  assert.deepEqual(m.shape, { methods: 2, orders: 1, seeds: 2 });
  // A live trainer makes the queued cell running.
  reduceHost(s, { type: 'live', key: key('adaptive-svd-o1-s1'), live: true });
  assert.equal(experimentModel(s).grid[1][1]?.state, 'running');
});

test('the aggregate is aggregateRuns over the shared fold of each cell, a queued cell filed under its method', () => {
  const s = state();
  const summaries = cellSummaries(s);
  const queued = summaries[3];
  assert.deepEqual(
    [queued.name, queued.method, queued.order, queued.seed, queued.status],
    ['adaptive-svd-o1-s1', 'adaptive-svd', 0, 1, 'new'],
  );
  const folded = s.runs.map((r) => finishSummary(foldRun(r.name, r.events)));
  assert.deepEqual(summaries.slice(0, 3), folded.slice(0, 3), 'the same fold as the CLI for every started cell');
  const m = experimentModel(s);
  assert.deepEqual(m.aggregate, aggregateRuns(summaries, { baseline: null }));
  assert.deepEqual(
    m.aggregate.methods.map((x) => [x.method, x.n]),
    [
      ['seqft', 1],
      ['adaptive-svd', 1],
    ],
  );
  // Unchanged summaries give the very same aggregate object (not recomputed on every event).
  assert.equal(experimentModel(s).aggregate, m.aggregate);
});

test('one run per method is not an experiment view; a baseline no run has falls back to the default, with a note', () => {
  const s = emptyDashboard();
  reduceHost(s, {
    type: 'init',
    protocol: 1,
    theme: 'dark',
    runs: [
      { key: '/r/a', name: 'a', live: false, events: load('seqft-finished'), truncatedTail: false, badLines: 0 },
      { key: '/r/b', name: 'b', live: false, events: load('adaptive-svd-finished'), truncatedTail: false, badLines: 0 },
    ],
  });
  assert.equal(hasExperimentView(s), false);
  const e = state();
  reduceHost(e, { type: 'experiment', experiment: { ...experiment, baseline: 'ewc' } });
  const m = experimentModel(e);
  assert.equal(m.aggregate.baseline, 'seqft');
  assert.match(m.aggregate.notes[0], /recorded baseline cannot be used: unknown baseline method "ewc"/);
});
