/**
 * The Runs, Subspace Ranks and Experiments views' rows, from recorded run folders
 * (test/fixtures/extension/runs: a 3-task tiny experiment under seqft and adaptive SVD, and a stopped run), and
 * experiment folders made of them. The stand-in `vscode` (imported first) lets the Runs view's provider be built.
 */
import '../helpers/vscode-stub';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunCatalog } from '../../src/extension/run-catalog';
import { readEvents, readRunFolder } from '../../src/extension/run-folder';
import { RunManager, type RunRecord } from '../../src/extension/run-manager';
import { initialProgress } from '../../src/extension/live-progress';
import { runNodes, runStatus, type RunEntry } from '../../src/extension/trees/run-items';
import { experimentContextValue, experimentProgress, runTreeNodes } from '../../src/extension/trees/run-tree';
import { RunsTree } from '../../src/extension/trees/runs';
import type { TreeNode } from '../../src/extension/trees/node';
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

test('Runs: a torch run names its engine and world size in the row; the tooltip adds the version', () => {
  const info = readRunFolder(SVD);
  const engine = { name: 'torch', version: '2.13.0+cu128', world: 2, shard: 'fsdp2', precision: 'bf16' };
  const torch = { ...info, summary: { ...info.summary, backend: 'torch', engine } };
  const [row] = runNodes([{ info: torch }], iso);
  assert.equal(row.description, `finished · AA 61.1 · BWT 0.0 · torch ×2 (fsdp2, bf16) · ${iso(info.started)}`);
  const tooltip = row.tooltip!.split('\n');
  assert.ok(tooltip.includes('Engine: torch 2.13.0+cu128 ×2 (fsdp2, bf16)'), row.tooltip);
  assert.ok(!tooltip.some((l) => l.startsWith('Backend:')), 'the engine already says torch');
  // The default engine keeps the row as it was; the tooltip says both.
  const tfjs = { ...info, summary: { ...info.summary, engine: { name: 'tfjs' } } };
  const [plain] = runNodes([{ info: tfjs }], iso);
  assert.equal(plain.description, `finished · AA 61.1 · BWT 0.0 · ${iso(info.started)}`);
  assert.match(plain.tooltip!, /\nEngine: tfjs\nBackend: wasm\n/);
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
  const phase = 'loading the model in the PyTorch worker';
  const [loading] = runNodes([{ info, record: { ...record, state: 'starting', phase } }], iso);
  assert.equal(loading.description, `starting · ${phase} · ${iso(info.started)}`, 'why it is still starting');
  const [started] = runNodes([{ info, record: { ...record, phase } }], iso);
  assert.doesNotMatch(started.description ?? '', /loading/, 'once events flow, they say where it is');

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

/** A cell of a launch: its place in the grid and, for one that ran, the fixture run whose log it has. */
interface CellSpec {
  method: 'seqft' | 'adaptive-svd';
  seed: number;
  order?: number;
  /** The run folder whose events.jsonl the cell gets; none for a cell that has not started. */
  from?: string;
}

const METHODS = [{ method: 'seqft' }, { method: 'adaptive-svd' }];

/**
 * An experiment folder as a launch leaves it (src/runs/experiment-dir.ts): experiment.json, and per cell a run
 * folder `<method>-o<order>-s<seed>` with its job.json and config.json, and the events of `from` when it ran.
 */
function makeLaunch(
  parent: string,
  folder: string,
  opts: {
    name: string;
    created: string;
    cells: CellSpec[];
    configFile?: string | null;
    orders?: string[][];
    baseline?: string | null;
  },
): string {
  const dir = join(parent, folder);
  const cells = opts.cells.map((c) => {
    const order = c.order ?? 0;
    const methodIndex = METHODS.findIndex((m) => m.method === c.method);
    const cell = { dir: `${c.method}-o${order + 1}-s${c.seed}`, methodIndex, method: c.method, order, seed: c.seed };
    const run = join(dir, cell.dir);
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, 'job.json'), JSON.stringify({ methodIndex, order, seed: c.seed }));
    writeFileSync(join(run, 'config.json'), JSON.stringify({ name: opts.name, seed: c.seed, methods: METHODS }));
    if (c.from) cpSync(join(c.from, 'events.jsonl'), join(run, 'events.jsonl'));
    return cell;
  });
  const record = {
    kind: 'sculpt-experiment',
    version: 1,
    name: opts.name,
    configFile: opts.configFile ?? null,
    created: opts.created,
    methods: [...new Set(cells.map((c) => c.method))],
    orders: opts.orders ?? [['sentiment', 'topic', 'size']],
    seeds: [...new Set(cells.map((c) => c.seed))],
    baseline: opts.baseline ?? null,
    cells,
  };
  writeFileSync(join(dir, 'experiment.json'), JSON.stringify(record));
  return dir;
}

test('Runs: a cell of an experiment folder says so in its context value; Experiments: a config finds its newest launch', () => {
  const ws = mkdtempSync(join(tmpdir(), 'sculpt-tree-exp-'));
  const config = join(ws, 'grid.sculpt.json');
  const text = JSON.stringify(tinyExperiment({ name: 'grid', output: 'out' }));
  writeFileSync(config, text);
  const out = join(ws, 'out');
  const launch = (folder: string, created: string, configFile: string | null, name = 'grid') =>
    makeLaunch(out, folder, { name, created, configFile, cells: [{ method: 'seqft', seed: 0, from: SEQFT }] });
  const older = launch('grid-20261201-090000', '2026-12-01T09:00:00.000Z', config);
  const newer = launch('grid-20261207-090000', '2026-12-07T09:00:00.000Z', config);
  launch('grid-20261209-090000', '2026-12-09T09:00:00.000Z', join(ws, 'other.sculpt.json'));
  const unnamed = launch('grid-20261203-090000', '2026-12-03T09:00:00.000Z', null);
  launch('else-20261210-090000', '2026-12-10T09:00:00.000Z', null, 'else');
  assert.equal(configOutput(config, text), out);
  assert.deepEqual(
    experimentsOfConfig(config, text, []).map((f) => f.dir),
    [newer, unnamed, older],
    'launched from this file (or, unrecorded, of its name), newest first',
  );
  assert.equal(findExperimentFolders([out, out]).length, 5, 'each folder once');

  const cell = join(newer, 'seqft-o1-s0');
  const entries = new RunCatalog(() => [out, RUNS], unusedManager()).entries();
  const nodes = runNodes(entries, iso);
  assert.equal(nodes.find((n) => n.runDir === cell)?.contextValue, 'sculptRun.finished.cell');
  assert.equal(nodes.find((n) => n.runDir === SVD)?.contextValue, 'sculptRun.finished', 'a run of its own');
  assert.equal(
    nodes.find((n) => n.runDir === cell)?.label,
    'grid · seqft · o1 · s0',
    'standing alone (in a picker), a cell names its experiment and its place in the grid',
  );
});

/**
 * Three launches of `grid` (one of them older than the fixture runs, with two task orders), the fixture runs
 * of their own, and a grid whose experiment.json is broken.
 */
function groupedWorkspace() {
  const ws = mkdtempSync(join(tmpdir(), 'sculpt-tree-group-'));
  const out = join(ws, 'out');
  const configFile = join(ws, 'grid.sculpt.json');
  const newer = makeLaunch(out, 'grid-20261207-090000', {
    name: 'grid',
    created: '2026-12-07T09:00:00.000Z',
    configFile,
    baseline: 'seqft',
    cells: [
      { method: 'seqft', seed: 0, from: SEQFT },
      { method: 'adaptive-svd', seed: 0, from: SVD },
      { method: 'seqft', seed: 1, from: SEQFT },
      { method: 'adaptive-svd', seed: 1 },
    ],
  });
  const older = makeLaunch(out, 'grid-20261201-090000', {
    name: 'grid',
    created: '2026-12-01T09:00:00.000Z',
    configFile,
    cells: [
      { method: 'seqft', seed: 0, from: SEQFT },
      { method: 'adaptive-svd', seed: 0, from: SVD },
    ],
  });
  const ancient = makeLaunch(out, 'grid-20261101-090000', {
    name: 'grid',
    created: '2026-11-01T09:00:00.000Z',
    orders: [
      ['a', 'b'],
      ['b', 'a'],
    ],
    cells: [{ method: 'seqft', seed: 0, order: 1, from: SEQFT }],
  });
  const broken = makeLaunch(out, 'broken-20261208-090000', {
    name: 'broken',
    created: '2026-12-08T09:00:00.000Z',
    cells: [{ method: 'seqft', seed: 0, from: LONG }],
  });
  writeFileSync(join(broken, 'experiment.json'), '{');
  const catalog = new RunCatalog(() => [out, RUNS], unusedManager());
  return { ws, out, configFile, newer, older, ancient, broken, catalog };
}

test('Runs: a row per experiment folder with its cells beneath; runs of their own stay rows; newest first', () => {
  const { configFile, newer, older, ancient, broken, catalog } = groupedWorkspace();
  const nodes = runTreeNodes(catalog.entries(), (d) => catalog.experiment(d), iso);
  assert.deepEqual(
    nodes.map((n) => [n.label, n.experimentDir, n.runDir]),
    [
      ['grid', newer, undefined],
      ['grid', older, undefined],
      ['long · seqft', undefined, LONG],
      // Started when the fixture it was copied from did; ties go by folder name.
      ['broken · seqft · o1 · s0', undefined, join(broken, 'seqft-o1-s0')],
      ['tiny · adaptive-svd', undefined, SVD],
      ['tiny · seqft', undefined, SEQFT],
      ['grid', ancient, undefined],
    ],
    'an experiment by its launch, a run by its start; a broken experiment.json leaves its cells as runs',
  );
  const [n, o, , lost] = nodes;
  const a = nodes[6];
  assert.deepEqual(
    nodes.map((x) => x.expanded),
    [true, false, undefined, undefined, undefined, undefined, false],
    'the newest experiment is open',
  );
  assert.equal(lost.contextValue, 'sculptRun.resumable.cell', 'still a cell for Open Experiment View');

  // Cells in the order the grid runs them, labelled by their place in it; their descriptions are a run row's.
  assert.deepEqual(
    n.children!.map((c) => c.label),
    ['seqft · o1 · s0', 'adaptive-svd · o1 · s0', 'seqft · o1 · s1', 'adaptive-svd · o1 · s1'],
  );
  assert.deepEqual(
    n.children!.map((c) => c.runDir),
    ['seqft-o1-s0', 'adaptive-svd-o1-s0', 'seqft-o1-s1', 'adaptive-svd-o1-s1'].map((c) => join(newer, c)),
  );
  assert.equal(n.children![0].description, `finished · AA 44.4 · BWT -25.0 · ${iso(readEvents(SEQFT)[0].time)}`);
  assert.match(n.children![3].description ?? '', /^new · /);
  assert.deepEqual(
    n.children!.map((c) => c.contextValue),
    ['sculptRun.finished.cell', 'sculptRun.finished.cell', 'sculptRun.finished.cell', 'sculptRun.resumable.cell'],
  );
  assert.equal(n.children![0].experimentDir, undefined, 'a cell row is not its experiment');
  assert.match(n.children![1].tooltip ?? '', /^grid · adaptive-svd · o1 · s0: finished\nFolder: /);
  assert.equal(a.children![0].label, 'seqft · o2 · s0');

  // The experiment's row: its progress and launch, its grid in the tooltip.
  const launched = iso(Date.parse('2026-12-07T09:00:00.000Z'));
  assert.equal(n.description, `3/4 finished · ${launched}`);
  assert.equal(n.contextValue, 'sculptExperimentFolder.resumable');
  assert.equal(n.icon, 'circle-outline');
  assert.equal(
    n.tooltip,
    [
      'grid: 3/4 finished',
      `Folder: ${newer}`,
      `Config: ${configFile}`,
      `Launched: ${launched}`,
      'Methods: seqft, adaptive-svd (baseline seqft)',
      'Order: sentiment → topic → size',
      'Seeds: 0, 1',
      'Runs: 4 (2 methods × 1 order × 2 seeds)',
    ].join('\n'),
  );
  assert.equal(o.description, `finished · ${iso(Date.parse('2026-12-01T09:00:00.000Z'))}`);
  assert.deepEqual([o.contextValue, o.icon], ['sculptExperimentFolder.finished', 'pass']);
  assert.match(
    a.tooltip ?? '',
    /\nConfig: not recorded\n.*\nOrders:\n {2}o1: a → b\n {2}o2: b → a\nSeeds: 0\nRuns: 1 \(1 method × 2 orders × 1 seed\)$/s,
  );

  // Ids are unique across the whole view.
  const ids = new Set<string>();
  const walk = (ns: TreeNode[]) =>
    ns.forEach((x) => (assert.ok(!ids.has(x.id), x.id), ids.add(x.id), walk(x.children ?? [])));
  walk(nodes);
});

test("Runs: an experiment's progress counts its cells' states; one with a live cell is open and offers Stop", () => {
  assert.equal(
    experimentProgress(['finished', 'finished', 'finished', 'running', 'new', 'new'], 6),
    '3/6 finished · 1 running',
  );
  assert.equal(
    experimentProgress(
      ['finished', 'stopping', 'queued', 'stopped', 'cancelled', 'interrupted', 'crashed', 'failed'],
      8,
    ),
    '1/8 finished · 1 running · 1 queued · 2 stopped · 1 interrupted · 2 failed',
  );
  assert.equal(experimentProgress(['finished', 'finished'], 2), 'finished');
  assert.equal(experimentProgress(['finished'], 2), '1/2 finished', 'a cell whose folder is gone is not finished');
  assert.equal(experimentContextValue(['finished', 'queued'], 2), 'sculptExperimentFolder.live');
  assert.equal(experimentContextValue(['finished', 'finished'], 2), 'sculptExperimentFolder.finished');
  assert.equal(experimentContextValue(['finished', 'stopped'], 2), 'sculptExperimentFolder.resumable');
  assert.equal(experimentContextValue(['new', 'new'], 2), 'sculptExperimentFolder.resumable');

  const { older, catalog } = groupedWorkspace();
  const svdCell = join(older, 'adaptive-svd-o1-s0');
  const entries = catalog.entries().map((e) =>
    e.info.dir === svdCell
      ? {
          ...e,
          record: {
            dir: svdCell,
            state: 'running' as const,
            attached: false,
            embedded: false,
            progress: {
              ...initialProgress(),
              tasks: ['sentiment', 'topic', 'size'],
              task: 1,
              phase: 'training' as const,
            },
          },
        }
      : e,
  );
  const o = runTreeNodes(entries, (d) => catalog.experiment(d), iso).find((x) => x.experimentDir === older)!;
  assert.equal(o.expanded, true, 'open while a cell runs');
  assert.equal(o.description, `1/2 finished · 1 running · ${iso(Date.parse('2026-12-01T09:00:00.000Z'))}`);
  assert.deepEqual([o.contextValue, o.icon], ['sculptExperimentFolder.live', 'sync~spin']);
  assert.match(o.children![1].description ?? '', /^running · task 2\/3 · /);
  assert.equal(o.children![1].contextValue, 'sculptRun.live.cell');
});

test('Runs view: a click opens the dashboard of a run, the experiment view of an experiment', () => {
  const { newer, older, catalog } = groupedWorkspace();
  const tree = new RunsTree(catalog, unusedManager());
  try {
    const roots = tree.getChildren();
    const [n, o] = roots;
    const item = tree.getTreeItem(n);
    assert.deepEqual(item.command, {
      command: 'sculpt.openExperiment',
      title: 'Open Experiment View',
      arguments: [newer],
    });
    assert.equal(item.contextValue, 'sculptExperimentFolder.resumable');
    assert.equal(item.collapsibleState, 2, 'expanded');
    assert.equal(tree.getTreeItem(o).collapsibleState, 1, 'collapsed');
    assert.equal(tree.getTreeItem(o).command?.arguments?.[0], older);
    const cells = tree.getChildren(n);
    assert.equal(cells.length, 4);
    const cell = tree.getTreeItem(cells[0]);
    assert.deepEqual(cell.command, {
      command: 'sculpt.openDashboard',
      title: 'Open Dashboard',
      arguments: [join(newer, 'seqft-o1-s0')],
    });
    assert.equal(cell.collapsibleState, 0);
    assert.equal(tree.getParent(cells[0]), n, 'for reveal');
    const loose = roots.find((r) => r.runDir === SVD)!;
    assert.deepEqual(tree.getTreeItem(loose).command?.arguments, [SVD]);
    assert.equal(tree.getTreeItem(loose).command?.command, 'sculpt.openDashboard');
  } finally {
    tree.dispose();
  }
});

test("Runs: run folders read before their grid's experiment.json was written join it once it is", () => {
  const ws = mkdtempSync(join(tmpdir(), 'sculpt-tree-late-'));
  const dir = makeLaunch(ws, 'grid-20261207-090000', {
    name: 'grid',
    created: '2026-12-07T09:00:00.000Z',
    cells: [
      { method: 'seqft', seed: 0 },
      { method: 'adaptive-svd', seed: 0 },
    ],
  });
  const record = readFileSync(join(dir, 'experiment.json'), 'utf8');
  rmSync(join(dir, 'experiment.json'));
  // The folder is now a folder of runs, not an experiment: its runs are listed as runs of their own.
  const catalog = new RunCatalog(() => [dir], unusedManager());
  const before = runTreeNodes(catalog.entries(), (d) => catalog.experiment(d), iso);
  assert.deepEqual(before.map((n) => n.label).sort(), ['grid · adaptive-svd', 'grid · seqft']);
  writeFileSync(join(dir, 'experiment.json'), record);
  const after = runTreeNodes(catalog.entries(), (d) => catalog.experiment(d), iso);
  assert.deepEqual(
    after.map((n) => [n.label, n.description?.split(' · ')[0]]),
    [['grid', '0/2 finished']],
  );
  assert.deepEqual(
    after[0].children!.map((c) => c.label),
    ['seqft · o1 · s0', 'adaptive-svd · o1 · s0'],
  );
});
