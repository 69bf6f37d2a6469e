// The aggregate of an experiment grid (src/runs/aggregate.ts): runs averaged by task name whatever order they
// trained in, paired with the baseline by (order, seed) and never by position, the baseline rules, and the notes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateRuns } from '../../src/runs/aggregate';
import { settingOf } from '../../src/runs/run-dir';
import { finishSummary, type RunSummary } from '../../src/runs/fold';
import { signFlipTest } from '../../src/runs/stats';
import { BASE, failedRun, gridRun, TASKS, ZERO_SHOT } from '../helpers/summaries';

// 2 methods × 2 orders × 2 seeds; ewc's cell (order 1, seed 2) failed. ewc lifts every accuracy by 2 points.
// Runs come in no particular order, ewc first.
const GRID = [
  gridRun('ewc', 1, 1, 2),
  gridRun('seqft', 0, 2),
  gridRun('ewc', 0, 2, 2),
  failedRun('ewc', 1, 2),
  gridRun('seqft', 1, 1),
  gridRun('ewc', 0, 1, 2),
  gridRun('seqft', 1, 2),
  gridRun('seqft', 0, 1),
];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('methods in first-seen order; only finished runs with metrics count, the others are listed', () => {
  const agg = aggregateRuns(GRID);
  assert.deepEqual(
    agg.methods.map((m) => [m.method, m.n, m.cells.length]),
    [
      ['ewc', 3, 4],
      ['seqft', 4, 4],
    ],
  );
  const failed = agg.methods[0].cells.find((c) => !c.counted)!;
  assert.deepEqual(failed, { name: 'ewc-o1-s2', method: 'ewc', order: 1, seed: 2, status: 'failed', counted: false });
  assert.ok(agg.notes.includes('1 run left out because they did not finish with metrics: ewc-o1-s2 (failed).'));
  assert.ok(agg.notes.includes('The methods have different numbers of finished runs (ewc 3, seqft 4).'));
  // Metrics: the estimate over the counted runs, values in the order of the runs.
  const seqft = agg.methods[1];
  const seqftRuns = GRID.filter((r) => r.method === 'seqft');
  assert.deepEqual(
    seqft.metrics.AA.values,
    seqftRuns.map((r) => r.metrics!.AA),
  );
  assert.equal(seqft.metrics.AA.n, 4);
  assert.ok(seqft.metrics.AA.ci95, 'four runs give an interval');
});

test('the experiment tasks are those of order 0, the matrix is averaged by task name', () => {
  const agg = aggregateRuns(GRID);
  // The first counted run trained order 1 (gamma, alpha, beta); the experiment's order is order 0's.
  assert.deepEqual(agg.tasks, TASKS);
  const [ewc, seqft] = agg.methods;
  // shift = order + seed/2 (+ 2 for ewc): seqft cells 0.5, 1, 1.5, 2; ewc cells 2.5, 3, 3.5.
  TASKS.forEach((after, a) =>
    TASKS.forEach((on, b) => {
      assert.equal(seqft.matrix[a][b].n, 4);
      assert.equal(seqft.matrix[a][b].mean, BASE[after][on] + 1.25, `seqft ${after} → ${on}`);
      assert.equal(ewc.matrix[a][b].mean, BASE[after][on] + 3, `ewc ${after} → ${on}`);
    }),
  );
  // Values per cell in run order: seqft's runs are (0,2), (1,1), (1,2), (0,1).
  assert.deepEqual(seqft.matrix[2][0].values, [50 + 1, 50 + 1.5, 50 + 2, 50 + 0.5]);
  // Just trained: R[i][i] by the name of task i, whatever its position in the run.
  assert.deepEqual(Object.keys(seqft.justTrained), TASKS);
  assert.deepEqual(seqft.justTrained.gamma.values, [91, 91.5, 92, 90.5]);
  assert.deepEqual(seqft.justTrained.alpha.values, [81, 81.5, 82, 80.5]);
  assert.deepEqual(
    Object.fromEntries(Object.entries(seqft.zeroShot).map(([k, e]) => [k, [e.n, e.mean]])),
    Object.fromEntries(TASKS.map((t) => [t, [4, ZERO_SHOT[t]]])),
  );
  // The caller's order wins.
  const given = aggregateRuns(GRID, { tasks: ['gamma', 'beta', 'alpha'] });
  assert.deepEqual(given.tasks, ['gamma', 'beta', 'alpha']);
  assert.equal(given.methods[1].matrix[0][2].mean, BASE.gamma.alpha + 1.25);
});

test('pairs by (order, seed): the failed cell leaves its partner unpaired, pairs sorted by (order, seed)', () => {
  const agg = aggregateRuns(GRID);
  assert.equal(agg.baseline, 'seqft', 'seqft is the default baseline even when it is not first');
  assert.equal(agg.comparisons.length, 1);
  const c = agg.comparisons[0];
  assert.deepEqual([c.method, c.baseline], ['ewc', 'seqft']);
  const aa = c.metrics.AA;
  assert.deepEqual(
    aa.pairs.map((p) => [p.order, p.seed]),
    [
      [0, 1],
      [0, 2],
      [1, 1],
    ],
  );
  for (const p of aa.pairs) assert.ok(Math.abs(p.diff - 2) < 1e-12, 'ewc lifts AA by 2 in every cell');
  assert.ok(Math.abs(aa.mean! - 2) < 1e-12);
  assert.equal(aa.n, 3);
  assert.equal(aa.p, 0.25, 'three equal differences: 2 of 8 sign assignments are as extreme');
  assert.equal(aa.minP, 0.25);
  assert.equal(aa.verdict, 'not distinguishable at 95%');
  // A uniform lift cancels in BWT and forgetting, not in FWT (the zero-shot row stays).
  assert.ok(
    c.metrics.BWT.pairs.every((p) => p.diff === 0),
    'equal up to rounding: an exact tie',
  );
  assert.equal(c.metrics.BWT.p, 1);
  assert.ok(c.metrics.FWT.pairs.every((p) => Math.abs(p.diff - 2) < 1e-12));
  assert.ok(
    agg.notes.includes(
      'ewc against seqft: 1 finished run without a partner of the same (order, seed), left out of this comparison: seqft-o1-s2.',
    ),
  );
  assert.ok(
    agg.notes.includes(
      'With 3 pairs the sign-flip test cannot reach p < 0.05 (smallest p = 0.25); run more seeds or orders.',
    ),
  );
});

test('pairing ignores position: runs without (order, seed) are not paired, differences follow the cell', () => {
  const old = [gridRun('seqft', 0, 1, 0, { order: null, seed: null }), gridRun('lora', 0, 1, 5, { order: null })];
  const agg = aggregateRuns(old);
  assert.equal(agg.comparisons[0].metrics.AA.n, 0);
  assert.equal(agg.comparisons[0].metrics.AA.p, null);
  assert.ok(agg.notes.includes('lora and seqft share no (order, seed) cell that both finished: no paired comparison.'));
  assert.ok(agg.notes.some((n) => n.startsWith('lora against seqft: 2 finished runs without a partner')));
  // Six cells, with differences that vary by cell: each pair is matched to its own cell.
  const runs = [];
  const lift = (o: number, s: number) => 1 + o + s / 10;
  for (const o of [1, 0]) {
    for (const s of [3, 1, 2]) runs.push(gridRun('seqft', o, s), gridRun('lora', o, s, lift(o, s)));
  }
  const c = aggregateRuns(runs).comparisons[0];
  assert.deepEqual(
    c.metrics.AA.pairs.map((p) => [p.order, p.seed, Number(p.diff.toFixed(9))]),
    [0, 1].flatMap((o) => [1, 2, 3].map((s) => [o, s, lift(o, s)])),
  );
  assert.equal(c.metrics.AA.p, signFlipTest(c.metrics.AA.pairs.map((p) => p.diff)).p);
  assert.equal(c.metrics.AA.p, 1 / 32);
  assert.equal(c.metrics.AA.verdict, 'better');
});

test('runs of different settings never pair, whatever order they come in, and a note says the settings differ', () => {
  // Two experiments of the same cells, one trained longer (another setting): lora is +3 in the first, -4 in the
  // second. Pooled by (order, seed) alone, the first experiment listed would decide every pair.
  const short = [0, 1, 2].flatMap((s) => [
    gridRun('seqft', 0, s, 0, { setting: 'short' }),
    gridRun('lora', 0, s, 3, { setting: 'short' }),
  ]);
  const long = [0, 1, 2].flatMap((s) => [
    gridRun('seqft', 0, s, 10, { setting: 'long' }),
    gridRun('lora', 0, s, 6, { setting: 'long' }),
  ]);
  for (const runs of [
    [...short, ...long],
    [...long, ...short],
  ]) {
    const agg = aggregateRuns(runs);
    const aa = agg.comparisons[0].metrics.AA;
    assert.equal(aa.n, 6, 'every run has its partner within its own setting');
    assert.deepEqual(aa.pairs.map((p) => Math.round(p.diff)).sort(), [-4, -4, -4, 3, 3, 3]);
    assert.ok(Math.abs(aa.mean! + 0.5) < 1e-9);
    assert.ok(!agg.notes.some((n) => n.includes('without a partner')), agg.notes.join('\n'));
    assert.ok(
      agg.notes.some((n) =>
        n.startsWith('The runs come from 2 settings whose model, tasks, orders, training or evaluation differ'),
      ),
      agg.notes.join('\n'),
    );
  }
  assert.ok(!aggregateRuns(short).notes.some((n) => n.includes('settings')), 'one setting: no note');
});

test('the same cell reported twice (a rerun beside the first) is named in a note', () => {
  const runs = [0, 1].flatMap((s) => [gridRun('seqft', 0, s), gridRun('lora', 0, s, 2)]);
  assert.ok(!aggregateRuns(runs).notes.some((n) => n.includes('more than once')));
  const again = [...runs, { ...gridRun('seqft', 0, 1), name: 'seqft-o1-s1 (rerun)' }];
  const note = aggregateRuns(again).notes.find((n) => n.includes('more than once'));
  assert.equal(
    note,
    '1 cell of one method, setting, order and seed was run more than once (seqft-o0-s1 = seqft-o1-s1 (rerun)): each repeat counts as another run in the means and narrows their intervals without new evidence; report one experiment folder per setting.',
  );
});

test("a run's setting: the same whatever its seed, methods, name, output or key order; another for other training", () => {
  const config = {
    name: 'a',
    seed: 0,
    model: 'builtin:sculpt-base',
    tasks: [{ name: 't', source: { builtin: 'cl5/sentiment' } }],
    methods: [{ method: 'seqft' }],
    training: { epochs: 8, lr: 3e-4 },
    eval: { modes: ['rank'] },
    output: 'runs',
  };
  const same = {
    output: 'elsewhere',
    training: { lr: 3e-4, epochs: 8 },
    eval: { modes: ['rank'] },
    methods: [{ method: 'o-lora' }, { method: 'ewc' }],
    tasks: [{ source: { builtin: 'cl5/sentiment' }, name: 't' }],
    model: 'builtin:sculpt-base',
    seed: 4,
    name: 'b',
  };
  assert.match(settingOf(config)!, /^[0-9a-f]{12}$/);
  assert.equal(settingOf(same), settingOf(config));
  for (const other of [
    { ...config, training: { epochs: 3, lr: 3e-4 } },
    { ...config, model: 'builtin:tiny-llama' },
    { ...config, tasks: [{ name: 't', source: { builtin: 'cl5/sentiment' }, trainLimit: 10 }] },
    { ...config, eval: { modes: ['generate'] } },
    { ...config, engine: 'torch' },
  ])
    assert.notEqual(settingOf(other), settingOf(config), JSON.stringify(other));
  assert.equal(settingOf(null), undefined);
  assert.equal(settingOf([1]), undefined);
});

test('baseline: seqft when present, else the first method, null with one; a named one must exist', () => {
  assert.equal(aggregateRuns([gridRun('ewc', 0, 1), gridRun('lora', 0, 1)]).baseline, 'ewc');
  const one = aggregateRuns([gridRun('ewc', 0, 1), gridRun('ewc', 0, 2)]);
  assert.equal(one.baseline, null);
  assert.deepEqual(one.comparisons, []);
  const named = aggregateRuns(GRID, { baseline: 'ewc' });
  assert.equal(named.baseline, 'ewc');
  assert.deepEqual(
    named.comparisons.map((c) => c.method),
    ['seqft'],
  );
  assert.ok(Math.abs(named.comparisons[0].metrics.AA.mean! + 2) < 1e-12, 'seqft - ewc');
  assert.throws(
    () => aggregateRuns(GRID, { baseline: 'lora' }),
    (e: Error) => /unknown baseline method "lora"/.test(e.message) && /ewc, seqft/.test(e.message),
  );
  assert.deepEqual(aggregateRuns([]), {
    tasks: [],
    methods: [],
    baseline: null,
    comparisons: [],
    selection: null,
    notes: [],
  });
});

test('notes for n = 1: per method when every method has one run, by name otherwise', () => {
  const single = aggregateRuns([gridRun('seqft', 0, 1), gridRun('ewc', 0, 1, 2)]);
  assert.ok(single.notes.includes('n = 1 per method: no confidence interval; one run decides nothing.'));
  assert.equal(single.methods[0].metrics.AA.ci95, null);
  assert.ok(
    single.notes.includes(
      'With 1 pair the sign-flip test cannot reach p < 0.05 (smallest p = 1); run more seeds or orders.',
    ),
  );
  const mixed = aggregateRuns([gridRun('seqft', 0, 1), gridRun('seqft', 0, 2), gridRun('ewc', 0, 1, 2)]);
  assert.ok(mixed.notes.includes('n = 1 for ewc: no confidence interval; one run decides nothing.'));
  assert.ok(!mixed.notes.some((n) => n.startsWith('n = 1 per method')));
  assert.ok(!aggregateRuns(GRID).notes.some((n) => n.includes('n = 1')));
});

test('the aggregate is plain JSON: it survives a round trip unchanged', () => {
  const agg = aggregateRuns(GRID);
  assert.deepEqual(JSON.parse(JSON.stringify(agg)), agg);
  assert.equal(mean(agg.methods[1].metrics.AA.values), agg.methods[1].metrics.AA.mean);
});

test('validation metrics: estimated per method over the counted runs that have them, apart from the test metrics', () => {
  const validated = (r: RunSummary, lift: number): RunSummary =>
    finishSummary({ ...r, validationMatrix: r.matrix.map((row) => row.map((v) => v + lift)), validationMetrics: null });
  const runs = [
    validated(gridRun('seqft', 0, 1), 1),
    validated(gridRun('seqft', 0, 2), 3),
    gridRun('seqft', 1, 1),
    gridRun('ewc', 0, 1, 2),
  ];
  const agg = aggregateRuns(runs);
  const [seqft, ewc] = agg.methods;
  assert.equal(seqft.metrics.AA.n, 3, 'the test metrics count every finished run');
  assert.equal(seqft.validationMetrics.AA.n, 2, 'the validation metrics only the runs with splits');
  assert.deepEqual(
    seqft.validationMetrics.AA.values,
    runs.slice(0, 2).map((r) => r.validationMetrics!.AA),
  );
  assert.equal(seqft.validationMetrics.FWT.n, 0, 'no validation zero-shot row, no FWT');
  assert.deepEqual([ewc.validationMetrics.AA.n, ewc.validationMetrics.AA.mean], [0, null]);
});

test('selection on validation: ranked by validation AA, ties by validation BWT, leader paired with the runner-up', () => {
  // Validation matrix = test matrix + `lift`; `peak` raises the diagonal before the last task, which lowers BWT
  // and leaves AA (the last row) as it was.
  const validated = (r: RunSummary, lift: number, peak = 0): RunSummary =>
    finishSummary({
      ...r,
      validationMatrix: r.matrix.map((row, i) =>
        row.map((v, j) => v + lift + (i === j && i < r.matrix.length - 1 ? peak : 0)),
      ),
      validationMetrics: null,
    });
  const cells = [
    [0, 1],
    [0, 2],
    [1, 1],
  ] as const;
  const runs = cells.flatMap(([o, s]) => [
    // Test accuracies rank them seqft < ewc < lwf; validation ranks lwf first, then ewc, seqft last.
    validated(gridRun('seqft', o, s), 0),
    validated(gridRun('ewc', o, s, 5), s - 1),
    validated(gridRun('lwf', o, s, 9), 0),
  ]);
  const agg = aggregateRuns(runs);
  const sel = agg.selection!;
  const vAA = (m: string) => mean(runs.filter((r) => r.method === m).map((r) => r.validationMetrics!.AA));
  assert.deepEqual(
    sel.ranking.map((r) => r.method),
    ['lwf', 'ewc', 'seqft'],
  );
  for (const r of sel.ranking) assert.ok(Math.abs(r.AA - vAA(r.method)) < 1e-9, `${r.method}'s mean validation AA`);
  const d = sel.leaderVsRunnerUp!;
  assert.deepEqual([d.leader, d.runnerUp, d.n], ['lwf', 'ewc', 3]);
  // lwf - ewc per cell: 9 - 5 - (s - 1) on every accuracy, so on AA too.
  assert.deepEqual(
    d.pairs.map((p) => Math.round(p.diff * 1e6) / 1e6),
    cells.map(([, s]) => 9 - 5 - (s - 1)),
  );

  // Equal validation AA: the higher validation BWT ranks first, whatever the test figures say.
  const tied = cells.flatMap(([o, s]) => [
    validated(gridRun('seqft', o, s, 4), -4, 6),
    validated(gridRun('ewc', o, s), 0),
  ]);
  const [first, second] = aggregateRuns(tied).selection!.ranking;
  assert.deepEqual([first.method, second.method], ['ewc', 'seqft']);
  assert.ok(Math.abs(first.AA - second.AA) < 1e-9, 'equal validation AA');
  assert.ok(Math.abs(first.BWT! - second.BWT! - 6) < 1e-9, 'seqft peaked 6 points higher, so forgot 6 more');

  assert.equal(aggregateRuns(GRID).selection, null, 'no validation split, no selection');
});
