/**
 * The Runs, Subspace Ranks and Experiments views' rows, from recorded run folders
 * (test/fixtures/extension/runs: a 3-task tiny experiment under seqft and adaptive SVD, and a stopped run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunCatalog } from '../../src/extension/run-catalog';
import { readEvents, readRunFolder } from '../../src/extension/run-folder';
import { RunManager, type RunRecord } from '../../src/extension/run-manager';
import { initialProgress } from '../../src/extension/live-progress';
import { runNodes, runStatus, type RunEntry } from '../../src/extension/trees/run-items';
import { pct, rankBoundaries, rankNodes } from '../../src/extension/trees/rank-items';
import {
  configOutput,
  experimentNodes,
  experimentsOfConfig,
  findExperimentFolders,
} from '../../src/extension/trees/experiment-items';
import { tinyExperiment } from '../helpers/experiment';
import { fixture } from '../helpers/paths';

const RUNS = fixture('extension', 'runs');
const SVD = join(RUNS, 'tiny-adaptive-svd-20261127-031550');
const SEQFT = join(RUNS, 'tiny-seqft-20261127-031550');
const LONG = join(RUNS, 'long-seqft-20261127-031557');
const iso = (ms: number) => new Date(ms).toISOString();
const unusedManager = () =>
  new RunManager({
    trainerScript: '',
    runtime: () => ({ command: 'false', env: {}, embedded: false }),
    maxConcurrent: () => 1,
  });

test('run folders are read from their event log, config and job', () => {
  const info = readRunFolder(SVD);
  assert.equal(info.id, 'tiny-adaptive-svd-20261127-031550');
  assert.equal(info.experiment, 'tiny');
  assert.equal(info.method, 'adaptive-svd');
  assert.equal(info.summary.status, 'finished');
  assert.deepEqual(info.summary.tasks, ['sentiment', 'topic', 'size']);
  assert.equal(info.started, readEvents(SVD)[0].time);
  assert.equal(readRunFolder(LONG).summary.status, 'stopped');
});

test('Runs: one row per folder, newest first, with status, AA/BWT when finished and start time', () => {
  const entries = new RunCatalog(() => [RUNS], unusedManager()).entries();
  const nodes = runNodes(entries, iso);
  assert.deepEqual(
    nodes.map((n) => n.label),
    ['long · seqft', 'tiny · adaptive-svd', 'tiny · seqft'],
  );
  const [long, svd, seqft] = nodes;
  assert.equal(svd.description, `finished · AA 61.1 · BWT 0.0 · ${iso(readEvents(SVD)[0].time)}`);
  assert.equal(seqft.description, `finished · AA 44.4 · BWT -25.0 · ${iso(readEvents(SEQFT)[0].time)}`);
  assert.equal(long.description, `stopped · ${iso(readEvents(LONG)[0].time)}`);
  assert.deepEqual(
    nodes.map((n) => n.contextValue),
    ['sculptRun.resumable', 'sculptRun.finished', 'sculptRun.finished'],
  );
  assert.deepEqual(
    nodes.map((n) => n.icon),
    ['debug-pause', 'pass', 'pass'],
  );
  assert.equal(svd.runDir, SVD);
  assert.equal(
    svd.tooltip,
    [
      'tiny · adaptive-svd: finished',
      `Folder: ${SVD}`,
      'Tasks: sentiment → topic → size',
      'Backend: wasm',
      'Final: AA 61.1 · BWT 0.0 · forgetting 0.0 · FWT 0.0',
      `Started: ${iso(readEvents(SVD)[0].time)} · took 3.1 s`,
    ].join('\n'),
  );
});

test('Runs: a live run shows its progress; a log without an end and no trainer is interrupted', () => {
  const info = readRunFolder(LONG);
  const record: RunRecord = {
    dir: LONG,
    state: 'running',
    attached: false,
    embedded: false,
    progress: {
      ...initialProgress(),
      tasks: ['a', 'b', 'c', 'd', 'e'],
      task: 1,
      taskProgress: 0.437,
      loss: 0.6123,
      phase: 'training',
    },
  };
  const [live] = runNodes([{ info, record }], iso);
  assert.equal(live.description, `running · task 2/5 · 43% · loss 0.61 · ${iso(info.started)}`);
  assert.equal(live.contextValue, 'sculptRun.live');

  // The same folder with its last two events (checkpoint, stopped) cut off, as after a kill -9.
  const dir = join(mkdtempSync(join(tmpdir(), 'sculpt-tree-')), 'long-run');
  cpSync(LONG, dir, { recursive: true });
  const lines = readFileSync(join(dir, 'events.jsonl'), 'utf8').trimEnd().split('\n');
  writeFileSync(join(dir, 'events.jsonl'), lines.slice(0, -2).join('\n') + '\n');
  const cut: RunEntry = { info: readRunFolder(dir) };
  assert.equal(runStatus(cut), 'interrupted');
  assert.equal(runStatus({ ...cut, pidAlive: true }), 'running', 'a trainer of an earlier window is still at work');
  const external = runNodes([{ ...cut, quietFor: 4000 }], iso)[0];
  assert.match(external.description ?? '', /^running · /, 'a log that grows without a pid file: the CLI is at work');
  assert.equal(external.contextValue, 'sculptRun.external', 'watched, not controlled');
  assert.match(external.tooltip ?? '', /outside VS Code \(the log was written 4 s ago\)/);
  assert.equal(runStatus({ ...cut, quietFor: 3_600_000 }), 'interrupted');
  const [row] = runNodes([cut], iso);
  assert.equal(row.contextValue, 'sculptRun.resumable');
  assert.match(row.tooltip ?? '', /Resume continues from the last checkpoint/);

  const crashed: RunRecord = {
    ...record,
    dir,
    state: 'crashed',
    problem: 'The trainer exited (code 3) without finishing.',
  };
  const [c] = runNodes([{ info: readRunFolder(dir), record: crashed }], iso);
  assert.match(c.description ?? '', /^crashed · /);
  assert.match(c.tooltip ?? '', /Problem: The trainer exited \(code 3\) without finishing\./);
});

test('Subspace Ranks: boundary -> layer -> matrix, "k/min_dim (ratio%)" with the statistics in tooltips', () => {
  const events = readEvents(SVD);
  assert.deepEqual(
    rankBoundaries(events).map((b) => [b.beforeTask, b.taskName]),
    [
      [1, 'topic'],
      [2, 'size'],
    ],
  );
  const nodes = rankNodes('tiny-svd', events, 'ranks');
  assert.deepEqual(
    nodes.map((n) => n.label),
    ['Before task 2 (topic)', 'Before task 3 (size)'],
  );
  assert.deepEqual(
    nodes.map((n) => n.expanded),
    [false, true],
    'the latest boundary is open',
  );
  const [first] = nodes;
  assert.match(first.description ?? '', /^adaptive · \d+\/384 \(\d+(\.\d)?%\)$/);
  assert.match(
    first.tooltip ?? '',
    /^Subspace protected before training task 2 \(topic\)\npolicy adaptive · computed in 0\.12 s\n14 matrices · /,
  );
  assert.deepEqual(
    first.children?.map((l) => l.label),
    ['Layer 0', 'Layer 1'],
  );
  const layer0 = first.children![0];
  assert.equal(layer0.description, '74/192 (38.5%)');
  assert.deepEqual(
    layer0.children?.map((m) => m.label),
    [
      'q: 3/32 (9.4%)',
      'k: 3/16 (18.8%)',
      'v: 4/16 (25%)',
      'o: 18/32 (56.3%)',
      'gate: 16/32 (50%)',
      'up: 15/32 (46.9%)',
      'down: 15/32 (46.9%)',
    ],
  );
  const q = layer0.children![0];
  assert.equal(q.description, 'importance -0.272');
  const tip = q.tooltip!.split('\n');
  assert.equal(tip[0], 'model.layers.0.self_attn.q_proj.weight');
  assert.equal(tip[1], 'shape 32×32 · protected k = 3 of min_dim 32 (ratio 9.4%)');
  assert.equal(tip[2], 'importance -0.272');
  assert.match(tip[3], /^σ max 0\.\d+ · min [\d.e-]+ · mean 0\.\d+$/);
  assert.match(tip[4], /^effective rank \d+(\.\d+)?$/);
  assert.match(tip[5], /^retained energy \d+(\.\d)?%$/);
  // Ids are unique across the whole view.
  const ids = new Set<string>();
  const walk = (ns: typeof nodes) =>
    ns.forEach((n) => (assert.ok(!ids.has(n.id), n.id), ids.add(n.id), walk(n.children ?? [])));
  walk(nodes);

  const ratios = rankNodes('tiny-svd', events, 'ratios');
  assert.equal(ratios[0].children![0].children![0].label, 'q: 9.4% (3/32)');
  assert.equal(ratios[0].children![0].description, '38.5% (74/192)');
  assert.deepEqual(rankNodes('tiny-seqft', readEvents(SEQFT), 'ranks'), [], 'seqft reports no ranks');
});

test('Subspace Ranks: a new ranks event for a boundary replaces the earlier one, live', () => {
  const events = readEvents(SVD);
  const last = events.filter((e) => e.type === 'ranks').at(-1)!;
  assert.equal(last.type, 'ranks');
  if (last.type !== 'ranks') return;
  const redo = { ...last, seq: 999, matrices: last.matrices.map((m) => ({ ...m, k: 1, ratio: 1 / m.minDim })) };
  const nodes = rankNodes('r', [...events, redo], 'ranks');
  assert.equal(nodes.length, 2);
  assert.equal(nodes[1].children![0].children![0].label, 'q: 1/32 (3.1%)');
});

test('Subspace Ranks: a clamped k and the rank policy warnings show beside the ranks', () => {
  const events = readEvents(SVD);
  const last = events.filter((e) => e.type === 'ranks').at(-1)!;
  assert.equal(last.type, 'ranks');
  if (last.type !== 'ranks') return;
  const warning = 'effectiveRank = 40 exceeds min(d_out, d_in) of 4 of 14 matrices (e.g. x): k is clamped';
  const clampedAt = (m: (typeof last.matrices)[number], i: number) =>
    i === 0 ? { ...m, k: m.minDim, ratio: 1, clamped: true } : i === 1 ? { ...m, k: 1, clamped: true } : m;
  const redo = { ...last, seq: 999, matrices: last.matrices.map(clampedAt), warnings: [warning] };
  const [, b] = rankNodes('r', [...events, redo], 'ranks');
  assert.match(b.description ?? '', /^adaptive · \d+\/384 \(\d+(\.\d)?%\) · 2 clamped · 1 warning$/);
  assert.match(
    b.tooltip ?? '',
    /\n2 of 14 matrices have k clamped to 1 or min_dim\nwarning: effectiveRank = 40 exceeds/,
  );
  const [w, layer0] = b.children!;
  assert.equal(w.label, warning);
  assert.equal(w.icon, 'warning');
  const [q, k] = layer0.children!;
  assert.equal(q.label, 'q: 32/32 (100%)');
  assert.match(q.description ?? '', /^importance -?[\d.]+ · clamped to min_dim$/);
  assert.match(
    q.tooltip!.split('\n').at(-1)!,
    /^k clamped to min_dim: the rank policy's formula asked for a k outside \[1, 32\]$/,
  );
  assert.match(k.description ?? '', / · clamped to 1$/);
  // A log from before ranks events carried warnings: the rank-policy warning events just before it.
  const old = { ...last, seq: 1000 };
  const note = {
    v: last.v,
    runId: last.runId,
    seq: 998,
    time: last.time,
    type: 'warning' as const,
    code: 'rank-policy',
    message: 'm',
  };
  const [, ob] = rankNodes('r', [...events, note, old], 'ranks');
  assert.equal(ob.children![0].label, 'm');
  assert.match(ob.description ?? '', / · 1 warning$/);
});

test('pct keeps one decimal only where it says something', () => {
  assert.deepEqual([pct(0.5), pct(1), pct(3 / 32), pct(0.9996), pct(0)], ['50%', '100%', '9.4%', '100%', '0%']);
});

test('Experiments: one row per config, with its shape in the tooltip; a broken file still shows', () => {
  const file = '/w/examples/tiny.sculpt.json';
  const text = JSON.stringify(tinyExperiment());
  const nodes = experimentNodes([
    { file, relative: 'examples/tiny.sculpt.json', text },
    { file: '/w/broken.sculpt.json', relative: 'broken.sculpt.json', text: '[1, 2' },
  ]);
  assert.deepEqual(
    nodes.map((n) => [n.label, n.description, n.icon]),
    [
      ['broken', undefined, 'warning'],
      ['tiny', 'examples', 'beaker'],
    ],
  );
  assert.equal(nodes[1].tooltip?.split('\n')[0], 'tiny (examples/tiny.sculpt.json)');
  assert.match(
    nodes[1].tooltip ?? '',
    /Model: builtin:tiny-llama\nTasks: sentiment → topic\nMethods: seqft\nRuns: 1 \(1 method × 1 order\)/,
  );
  assert.equal(nodes[1].contextValue, 'sculptExperiment');
});

test('Runs: a cell of an experiment folder says so in its context value; Experiments: a config finds its newest launch', () => {
  const ws = mkdtempSync(join(tmpdir(), 'sculpt-tree-exp-'));
  const config = join(ws, 'grid.sculpt.json');
  const text = JSON.stringify(tinyExperiment({ name: 'grid', output: 'out' }));
  writeFileSync(config, text);
  const launch = (folder: string, created: string, configFile: string | null, name = 'grid') => {
    const dir = join(ws, 'out', folder);
    mkdirSync(join(dir, 'seqft-o1-s0'), { recursive: true });
    cpSync(join(SEQFT, 'events.jsonl'), join(dir, 'seqft-o1-s0', 'events.jsonl'));
    cpSync(join(SEQFT, 'job.json'), join(dir, 'seqft-o1-s0', 'job.json'));
    const cells = [{ dir: 'seqft-o1-s0', methodIndex: 0, method: 'seqft', order: 0, seed: 0 }];
    const record = {
      kind: 'sculpt-experiment',
      version: 1,
      name,
      configFile,
      created,
      methods: ['seqft'],
      orders: [],
      seeds: [0],
      baseline: null,
      cells,
    };
    writeFileSync(join(dir, 'experiment.json'), JSON.stringify(record));
    return dir;
  };
  const older = launch('grid-20261201-090000', '2026-12-01T09:00:00.000Z', config);
  const newer = launch('grid-20261207-090000', '2026-12-07T09:00:00.000Z', config);
  launch('grid-20261209-090000', '2026-12-09T09:00:00.000Z', join(ws, 'other.sculpt.json'));
  const unnamed = launch('grid-20261203-090000', '2026-12-03T09:00:00.000Z', null);
  launch('else-20261210-090000', '2026-12-10T09:00:00.000Z', null, 'else');
  assert.equal(configOutput(config, text), join(ws, 'out'));
  assert.deepEqual(
    experimentsOfConfig(config, text, []).map((f) => f.dir),
    [newer, unnamed, older],
    'launched from this file (or, unrecorded, of its name), newest first',
  );
  assert.equal(findExperimentFolders([join(ws, 'out'), join(ws, 'out')]).length, 5, 'each folder once');

  const cell = join(newer, 'seqft-o1-s0');
  const entries = new RunCatalog(() => [join(ws, 'out'), RUNS], unusedManager()).entries();
  const nodes = runNodes(entries, iso);
  assert.equal(nodes.find((n) => n.runDir === cell)?.contextValue, 'sculptRun.finished.cell');
  assert.equal(nodes.find((n) => n.runDir === SVD)?.contextValue, 'sculptRun.finished', 'a run of its own');
});
