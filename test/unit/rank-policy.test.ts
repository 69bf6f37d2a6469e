/**
 * The rank policies' k against hand computations (fixed with PEFT OSF's effectiveRank and rankPattern,
 * authors-schedule, energy), their validation with JSON paths, and the rank_pattern file a run writes at each
 * boundary: read back as a fixed policy it gives every matrix the same k.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../../src/engine/backend';
import { checkModelFolder, loadPretrained } from '../../src/engine/io/checkpoint';
import { AdaptiveSvd } from '../../src/engine/methods/adaptive-svd';
import { chooseRanks, energyRank, sigmaStats, type ConstrainedMatrix } from '../../src/engine/methods/rank-policy';
import {
  constrainedMatrices,
  rankPatternFile,
  rankPatternIssues,
  rankPatternOf,
} from '../../src/engine/methods/rank-pattern';
import { RunContext } from '../../src/engine/method-context';
import type { RankPolicy } from '../../src/protocol/config';
import type { ResolvedRankPolicy } from '../../src/protocol/config-resolved';
import { ConfigError, resolveMethod, validateConfig } from '../../src/protocol/config-validate';
import type { EventBody } from '../../src/protocol/events';
import type { CausalLM } from '../../src/engine/models/types';
import { fixture } from '../helpers/paths';

const LLAMA = fixture('hf-reference', 'llama-tiny');

/** A target matrix stored as nn.Linear, [d_out, d_in]. */
function matrix(name: string, dOut: number, dIn: number): ConstrainedMatrix {
  return { name, layer: 0, role: 'q', shape: [dOut, dIn], dIn, dOut, orientation: 'out_in' };
}

/** The policy as validation resolves it (defaults filled in, conflicts refused). */
function policy(rank: RankPolicy): ResolvedRankPolicy {
  const m = resolveMethod({ method: 'adaptive-svd', rank }, 'methods[0]');
  return m.rank;
}

const ks = (p: ResolvedRankPolicy, targets: ConstrainedMatrix[], t = 0, spectra: Float64Array[] | null = null) =>
  chooseRanks(p, targets, t, null, 'methods[0].rank', spectra);

test('authors-schedule: k = floor((start + step t) max(d_out, d_in)), capped at min(d_out, d_in), at least 1', () => {
  const targets = [
    matrix('tall', 64, 32), // max 64, min 32
    matrix('wide', 16, 100), // max 100, min 16
    matrix('square', 40, 40),
    matrix('small', 8, 4), // max 8, min 4
  ];
  const p = policy({ policy: 'authors-schedule' });
  assert.deepEqual(p, { policy: 'authors-schedule', start: 0.07, step: 0.07 });
  // t = 0, f = 0.07: floor(4.48), floor(7), floor(2.8), floor(0.56) -> 1.
  const t0 = ks(p, targets, 0);
  assert.deepEqual(
    t0.choices.map((c) => c.k),
    [4, 7, 2, 1],
  );
  assert.deepEqual(
    t0.choices.map((c) => c.clamped),
    [undefined, undefined, undefined, true],
  );
  assert.deepEqual(t0.warnings, [], 'a k raised to 1 is flagged, not warned about');
  // t = 1, f = 0.14: floor(8.96), floor(14), floor(5.6), floor(1.12).
  assert.deepEqual(
    ks(p, targets, 1).choices.map((c) => c.k),
    [8, 14, 5, 1],
  );
  // t = 2, f = 0.21: floor(13.44), floor(21) capped at 16, floor(8.4), floor(1.68).
  const t2 = ks(p, targets, 2);
  assert.deepEqual(
    t2.choices.map((c) => c.k),
    [13, 16, 8, 1],
  );
  assert.deepEqual(
    t2.choices.map((c) => c.clamped),
    [undefined, true, undefined, undefined],
  );
  assert.equal(t2.warnings.length, 1);
  assert.match(t2.warnings[0], /reaches min\(d_out, d_in\) in 1 of 4 matrices \(e\.g\. wide\)/);
  // On a square matrix each task protects `step` more of the rank: 7% of 100 per task.
  const sq = [matrix('sq', 100, 100)];
  assert.deepEqual(
    [0, 1, 2, 3].map((t) => ks(p, sq, t).choices[0].k),
    [7, 14, 21, 28],
  );
  const custom = policy({ policy: 'authors-schedule', start: 0.25, step: 0.5 });
  assert.deepEqual(
    ks(custom, targets, 1).choices.map((c) => c.k),
    [32, 16, 30, 4],
    'f = 0.75: floor(48) -> 32, floor(75) -> 16, floor(30), floor(6) -> 4',
  );
});

test('energy: the smallest k whose retained energy reaches the threshold, stepped per boundary and capped', () => {
  // σ² = 16, 9, 4, 1 of 30: cumulative 0.533, 0.833, 0.967, 1.
  const a = Float64Array.from([4, 3, 2, 1]);
  // σ² = 100, 1, 1, 1, 1 of 104: cumulative 0.962, ...
  const b = Float64Array.from([10, 1, 1, 1, 1]);
  const zero = Float64Array.from([0, 0, 0]);
  const targets = [matrix('a', 4, 6), matrix('b', 5, 5), matrix('zero', 3, 3)];
  const spectra = [a, b, zero];
  const p = policy({ policy: 'energy' });
  assert.deepEqual(p, { policy: 'energy', threshold: 0.9, thresholdStep: 0, maxThreshold: 0.99 });
  assert.deepEqual(
    ks(p, targets, 0, spectra).choices.map((c) => c.k),
    [3, 1, 1],
  );
  assert.deepEqual(
    ks(p, targets, 5, spectra).choices.map((c) => c.k),
    [3, 1, 1],
    'no step: the same threshold at every boundary',
  );
  // τ_t = min(0.95, 0.5 + 0.2 t): 0.5, 0.7, 0.9, 0.95, 0.95.
  const stepped = policy({ policy: 'energy', threshold: 0.5, thresholdStep: 0.2, maxThreshold: 0.95 });
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((t) => ks(stepped, targets, t, spectra).choices[0].k),
    [1, 2, 3, 3, 3],
  );
  // With the cap at 0.99, τ_3 = 0.99 needs all four directions of `a` and four of b's five (103/104 = 0.990).
  const high = policy({ policy: 'energy', threshold: 0.5, thresholdStep: 0.2, maxThreshold: 0.99 });
  assert.deepEqual(
    ks(high, targets, 3, spectra).choices.map((c) => c.k),
    [4, 4, 1],
  );
  // The retained energy the ranks event reports for that k reaches τ, and k - 1 would not.
  for (const tau of [0.1, 0.5, 0.8, 0.9, 0.96, 0.99, 1]) {
    for (const S of [a, b]) {
      const k = energyRank(S, tau);
      assert.ok(sigmaStats(S, k).retainedEnergy >= tau, `τ ${tau}: k ${k}`);
      if (k > 1) assert.ok(sigmaStats(S, k - 1).retainedEnergy < tau, `τ ${tau}: k ${k} is the smallest`);
    }
  }
  assert.throws(() => ks(p, targets, 0, null), /singular values are missing/);
});

test('fixed: rankPattern entries take precedence over effectiveRank, the first matching pattern wins', () => {
  const targets = [
    matrix('model.layers.0.self_attn.q_proj.weight', 32, 32),
    matrix('model.layers.0.self_attn.k_proj.weight', 16, 32),
    matrix('model.layers.0.mlp.up_proj.weight', 64, 32),
    matrix('model.layers.1.self_attn.q_proj.weight', 32, 32),
  ];
  const p = policy({
    policy: 'fixed',
    effectiveRank: 0.25,
    // `q_proj$` is written as PEFT writes it, for the module name (no `.weight`).
    rankPattern: { 'layers\\.1\\.': 5, q_proj$: 0.5, k_proj: 3 },
  });
  assert.equal(p.policy === 'fixed' && p.ratio, undefined, 'effectiveRank given: no default ratio added');
  const d = ks(p, targets);
  assert.deepEqual(
    d.choices.map((c) => c.k),
    [16, 3, 8, 5],
    'q_proj$: floor(0.5 * 32); k_proj: 3; unmatched: floor(0.25 * 32); layer 1 q: the first pattern, 5',
  );
  assert.deepEqual(d.warnings, []);
  // Without effectiveRank the unmatched matrices get PEFT's default, floor(min_dim / 2).
  const defaults = policy({ policy: 'fixed', rankPattern: { k_proj: 3 } });
  assert.deepEqual(
    ks(defaults, targets).choices.map((c) => c.k),
    [16, 3, 16, 16],
  );
  // ratio is the fractional effectiveRank, k the integer one.
  assert.deepEqual(
    ks(policy({ policy: 'fixed', ratio: 0.3 }), targets).choices.map((c) => c.k),
    ks(policy({ policy: 'fixed', effectiveRank: 0.3 }), targets).choices.map((c) => c.k),
  );
  assert.deepEqual(
    ks(policy({ policy: 'fixed', k: 7 }), targets).choices.map((c) => c.k),
    ks(policy({ policy: 'fixed', effectiveRank: 7 }), targets).choices.map((c) => c.k),
  );
  // A k the patterns leave no matrix too small for is fine; a k above an unmatched matrix's min_dim stays an error.
  assert.deepEqual(
    ks(policy({ policy: 'fixed', k: 20, rankPattern: { k_proj: 4 } }), targets).choices.map((c) => c.k),
    [20, 4, 20, 20],
  );
  assert.throws(
    () => ks(policy({ policy: 'fixed', k: 20 }), targets),
    (e: unknown) => e instanceof ConfigError && e.issues[0].path === 'methods[0].rank.k',
  );
});

test('fixed: integer ranks are clamped to [1, min_dim], flagged and warned about once per option', () => {
  const targets = [
    matrix('model.layers.0.self_attn.q_proj.weight', 32, 32),
    matrix('model.layers.0.self_attn.k_proj.weight', 16, 32),
    matrix('model.layers.0.self_attn.v_proj.weight', 16, 32),
    matrix('model.layers.0.mlp.down_proj.weight', 8, 64),
  ];
  const d = ks(policy({ policy: 'fixed', effectiveRank: 20, rankPattern: { down_proj: 100 } }), targets);
  assert.deepEqual(
    d.choices.map((c) => c.k),
    [20, 16, 16, 8],
  );
  assert.deepEqual(
    d.choices.map((c) => c.clamped),
    [undefined, true, true, true],
  );
  assert.deepEqual(d.warnings, [
    'effectiveRank = 20 exceeds min(d_out, d_in) of 2 of 4 matrices (e.g. model.layers.0.self_attn.k_proj): k is clamped to min(d_out, d_in) there',
    'rankPattern["down_proj"] = 100 exceeds min(d_out, d_in) of 1 of 4 matrices (e.g. model.layers.0.mlp.down_proj): k is clamped to min(d_out, d_in) there',
  ]);
  // A fraction that floors to 0 is raised to 1 and flagged, as the ratio always was, without a warning.
  const small = ks(policy({ policy: 'fixed', effectiveRank: 0.1 }), [matrix('m', 8, 8)]);
  assert.deepEqual(small.choices, [{ k: 1, ratio: 0.1, clamped: true }]);
  assert.deepEqual(small.warnings, []);
  // An integer at min_dim exactly is not clamped.
  assert.equal(ks(policy({ policy: 'fixed', effectiveRank: 16 }), [targets[1]]).choices[0].clamped, undefined);
});

test('the other policies keep their numbers: schedule and adaptive k = clamp(round(ratio * min_dim), 1, min_dim)', () => {
  const targets = [matrix('a', 64, 32), matrix('b', 16, 100), matrix('c', 3, 3)];
  const s = policy({ policy: 'schedule' });
  for (const t of [0, 1, 2, 10]) {
    const ratio = Math.min(0.9, 0.3 + 0.1 * t);
    assert.deepEqual(
      ks(s, targets, t).choices.map((c) => c.k),
      [Math.round(ratio * 32), Math.round(ratio * 16), Math.max(1, Math.round(ratio * 3))],
    );
  }
  const a = policy({ policy: 'adaptive', normalisation: 'mean' });
  const d = chooseRanks(a, targets, 0, [2, 0.5, 0.01], 'methods[0].rank');
  const mean = (2 + 0.5 + 0.01) / 3;
  const ratios = [2, 0.5, 0.01].map((v) => 0.1 + (v / mean) * (0.8 - 0.1));
  assert.deepEqual(
    d.choices.map((c) => c.ratio),
    ratios,
  );
  assert.deepEqual(
    d.choices.map((c) => c.k),
    [32, Math.round(ratios[1] * 16), 1],
  );
  assert.deepEqual(
    d.choices.map((c) => c.clamped),
    [true, undefined, true],
    'ratio 1.77 asks for 57 of 32, ratio 0.108 for round(0.33) = 0 of 3',
  );
  assert.deepEqual(d.warnings, [
    '2 of 3 matrices hit a clamp (k = 1 or k = min_dim): their ranks carry little information about importance',
  ]);
});

test('validation: bad rank patterns, fractions outside (0, 1] and non-positive ranks are refused at their JSON path', () => {
  const base = {
    name: 'exp',
    model: 'builtin:tiny-llama',
    tasks: [{ name: 'a', source: { builtin: 'tiny/sentiment' } }],
  };
  const issues = (rank: unknown) =>
    validateConfig({ ...base, methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank }] }).issues.map(
      (i) => `${i.path}: ${i.message}`,
    );
  assert.deepEqual(issues({ policy: 'fixed', rankPattern: { 'q_proj(': 4, 'up_proj\\.': 0.25, down: 2 } }), [
    'methods[1].rank.rankPattern["q_proj("]: is not a valid JavaScript regular expression: Invalid regular expression: /q_proj(/: Unterminated group',
  ]);
  assert.match(
    issues({ policy: 'fixed', rankPattern: { '(?P<x>q)': 4 } })[0],
    /^methods\[1\]\.rank\.rankPattern\["\(\?P<x>q\)"\]: .*Python's \(\?P<name>\.\.\.\) is \(\?<name>\.\.\.\) in JavaScript/,
  );
  assert.deepEqual(issues({ policy: 'fixed', rankPattern: { q_proj: 1.5, k_proj: 0, v_proj: -2, o: 'x' } }), [
    'methods[1].rank.rankPattern["q_proj"]: a fraction must lie in (0, 1] (ranks above 1 are integers), got 1.5',
    'methods[1].rank.rankPattern["k_proj"]: must be a positive integer rank or a fraction in (0, 1], got 0',
    'methods[1].rank.rankPattern["v_proj"]: must be a positive integer rank or a fraction in (0, 1], got -2',
    'methods[1].rank.rankPattern["o"]: must be a number, got the string "x"',
  ]);
  assert.deepEqual(issues({ policy: 'fixed', effectiveRank: 2.5 }), [
    'methods[1].rank.effectiveRank: a fraction must lie in (0, 1] (ranks above 1 are integers), got 2.5',
  ]);
  assert.deepEqual(issues({ policy: 'fixed', effectiveRank: 0 }), [
    'methods[1].rank.effectiveRank: must be > 0, got 0',
  ]);
  assert.deepEqual(issues({ policy: 'fixed', effectiveRank: 4, ratio: 0.5 }), [
    'methods[1].rank.effectiveRank: give one of effectiveRank, ratio and k, not ratio as well',
  ]);
  assert.deepEqual(issues({ policy: 'fixed', effectiveRank: 1 }), [], '1 is the integer rank 1');
  assert.deepEqual(issues({ policy: 'energy', threshold: 0.95, maxThreshold: 0.9 }), [
    'methods[1].rank.threshold: must not exceed maxThreshold (0.9), got 0.95',
  ]);
  assert.deepEqual(issues({ policy: 'authors-schedule', start: 0 }), ['methods[1].rank.start: must be > 0, got 0']);
  assert.deepEqual(issues({ policy: 'energy', threshold: 1.2 }), ['methods[1].rank.threshold: must be <= 1, got 1.2']);
});

test('a rank pattern that matches no target matrix of the model is refused, by name and at run start', async () => {
  const inventory = checkModelFolder(LLAMA).inventory;
  const targets = constrainedMatrices(inventory, ['attention', 'mlp']);
  assert.equal(targets.length, 14);
  const rank = { rankPattern: { q_proj$: 4, lm_head: 8, 'layers\\.7\\.': 2 } };
  const issues = rankPatternIssues(rank, targets, 'methods[1].rank');
  assert.deepEqual(
    issues.map((i) => i.path),
    ['methods[1].rank.rankPattern["lm_head"]', 'methods[1].rank.rankPattern["layers\\\\.7\\\\."]'],
  );
  assert.match(
    issues[0].message,
    /^matches none of the 14 target matrices of this model \(module names such as model\.layers\.0\.self_attn\.q_proj, /,
  );
  // With the head among the targets, `lm_head` names a matrix.
  assert.deepEqual(
    rankPatternIssues(rank, constrainedMatrices(inventory, ['attention', 'mlp', 'head']), 'r').map((i) => i.path),
    ['r.rankPattern["layers\\\\.7\\\\."]'],
  );

  await selectBackend('cpu');
  const model = loadPretrained(LLAMA);
  const method = new AdaptiveSvd(
    resolveMethod({ method: 'adaptive-svd', rank: { policy: 'fixed', rankPattern: { nothing_here: 3 } } }),
    'methods[3]',
  );
  assert.throws(
    () => method.setup(context(model)),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.issues.length === 1 &&
      e.issues[0].path === 'methods[3].rank.rankPattern["nothing_here"]' &&
      /matches none of the 14 target matrices/.test(e.message),
  );
  model.dispose();
});

function context(model: CausalLM, events: EventBody[] = [], runDir?: string, task = 0): RunContext {
  const tok = { encode: () => [], decode: () => '', bosId: null, eosId: null, padId: 0 };
  const t = { configIndex: 0, train: [], test: [], validation: [], labels: [], template: '' };
  const ctx = new RunContext(
    model,
    tok,
    [{ ...t, index: 0, name: 'a' } as never, { ...t, index: 1, name: 'b' } as never],
    { seed: 0, training: { evalBatchSize: 8, maxSeqLen: 32 } as never },
    { emit: (e) => void events.push(e) },
    runDir,
  );
  ctx.task = task;
  return ctx;
}

test('the exported rank pattern, read back as a fixed policy, gives every matrix the same k', () => {
  const inventory = checkModelFolder(LLAMA).inventory;
  const targets = constrainedMatrices(inventory, ['attention', 'mlp', 'head', 'embeddings']);
  assert.equal(targets.length, 16);
  // Ranks that differ from matrix to matrix, 1 and min_dim included.
  const chosen = targets.map((t, i) => {
    const d = Math.min(t.dIn, t.dOut);
    return { name: t.name, k: i === 0 ? 1 : i === 1 ? d : 1 + ((i * 7) % d) };
  });
  const file = JSON.parse(JSON.stringify(rankPatternOf(chosen)));
  assert.equal(file['^model\\.layers\\.0\\.self_attn\\.q_proj$'], chosen[0].k, 'keys are full matches of module names');
  assert.equal(file['^lm_head$'], chosen.find((c) => c.name === 'lm_head.weight')!.k);
  const back = policy({ policy: 'fixed', rankPattern: file });
  assert.deepEqual(rankPatternIssues(back as { rankPattern: Record<string, number> }, targets, 'r'), []);
  const d = ks(back, targets);
  assert.deepEqual(
    d.choices.map((c) => c.k),
    chosen.map((c) => c.k),
  );
  assert.deepEqual(d.warnings, []);
  assert.ok(d.choices.every((c) => !c.clamped));
  // Each key matches its own matrix only.
  for (const key of Object.keys(file)) {
    const re = new RegExp(key);
    assert.equal(targets.filter((t) => re.test(t.name.replace(/\.weight$/, ''))).length, 1, key);
  }
});

test('a run writes each boundary ranks atomically as a rank pattern; the energy policy decides after the SVD', async () => {
  await selectBackend('cpu');
  const runDir = mkdtempSync(join(tmpdir(), 'sculpt-rank-pattern-'));
  const model = loadPretrained(LLAMA);
  const events: EventBody[] = [];
  const method = new AdaptiveSvd(
    resolveMethod({ method: 'adaptive-svd', rank: { policy: 'energy', threshold: 0.6, thresholdStep: 0.2 } }),
    'methods[0]',
  );
  await method.setup(context(model, events, runDir, 0));
  // Boundaries before the second and the third task: τ = 0.6, then 0.8.
  for (const task of [1, 2]) await method.beforeTask(context(model, events, runDir, task));
  const ranks = events.flatMap((e) => (e.type === 'ranks' ? [e] : []));
  assert.equal(ranks.length, 2);
  assert.deepEqual(
    readdirSync(join(runDir, 'ranks')).sort(),
    ['before-task-2.rank_pattern.json', 'before-task-3.rank_pattern.json'],
    'one file per boundary, no temporary file left',
  );
  assert.equal(rankPatternFile(1), 'ranks/before-task-2.rank_pattern.json');
  const targets = constrainedMatrices(model.inventory, ['attention', 'mlp']);
  ranks.forEach((r, b) => {
    const tau = 0.6 + 0.2 * b;
    assert.equal(r.policy, 'energy');
    assert.equal(r.beforeTask, b + 1);
    for (const m of r.matrices) {
      assert.ok(m.retainedEnergy >= tau - 1e-12, `${m.name}: ${m.retainedEnergy} >= ${tau}`);
      assert.ok(m.k >= 1 && m.k < m.minDim, `${m.name}: k ${m.k}`);
    }
    const file = JSON.parse(readFileSync(join(runDir, rankPatternFile(r.beforeTask)), 'utf8'));
    const back = ks(policy({ policy: 'fixed', rankPattern: file }), targets);
    assert.deepEqual(
      back.choices.map((c) => c.k),
      r.matrices.map((m) => m.k),
    );
  });
  assert.ok(
    ranks[1].matrices.reduce((s, m) => s + m.k, 0) > ranks[0].matrices.reduce((s, m) => s + m.k, 0),
    'a higher threshold protects more',
  );
  // The protected subspace holds k vectors, as the ranks say.
  const state = method.state();
  const first = ranks[1].matrices[0];
  assert.deepEqual(state.tensors.get(`Uh/${first.name}`)!.shape[1], first.k);
  assert.ok(!existsSync(join(runDir, 'ranks', `before-task-2.rank_pattern.json.${process.pid}.tmp`)));
  method.dispose();
  model.dispose();
});

test('clamped ranks and the policy warnings travel in the ranks event', async () => {
  await selectBackend('cpu');
  const model = loadPretrained(LLAMA);
  const events: EventBody[] = [];
  const method = new AdaptiveSvd(
    resolveMethod({
      method: 'adaptive-svd',
      rank: { policy: 'fixed', effectiveRank: 40, rankPattern: { 'layers\\.1\\.mlp': 0.25 } },
    }),
    'methods[0]',
  );
  await method.setup(context(model, events));
  assert.equal(events.length, 0, 'setup checks the policy without reporting');
  await method.beforeTask(context(model, events, undefined, 1));
  const r = events.find((e) => e.type === 'ranks');
  assert.ok(r && r.type === 'ranks');
  const byName = new Map(r.matrices.map((m) => [m.name, m]));
  assert.deepEqual(byName.get('model.layers.0.self_attn.k_proj.weight')!.k, 32);
  assert.equal(byName.get('model.layers.0.self_attn.k_proj.weight')!.clamped, true);
  assert.equal(byName.get('model.layers.0.self_attn.q_proj.weight')!.k, 40);
  assert.equal(byName.get('model.layers.0.self_attn.q_proj.weight')!.clamped, undefined);
  assert.equal(byName.get('model.layers.1.mlp.up_proj.weight')!.k, 16);
  assert.deepEqual(r.warnings, [
    'effectiveRank = 40 exceeds min(d_out, d_in) of 4 of 14 matrices (e.g. model.layers.0.self_attn.k_proj): k is clamped to min(d_out, d_in) there',
  ]);
  const warning = events.find((e) => e.type === 'warning');
  assert.ok(warning && warning.type === 'warning' && warning.code === 'rank-policy');
  method.dispose();
  model.dispose();
});
