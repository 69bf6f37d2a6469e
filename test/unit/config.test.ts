import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { validateConfig, parseConfigText } from '../../src/protocol/config-validate';
import { repoRoot } from '../helpers/paths';

const minimal = () => ({
  name: 'exp',
  model: 'builtin:tiny-llama',
  tasks: [
    { name: 'a', source: { builtin: 'tiny/a' } },
    { name: 'b', source: { train: 'data/b.train.jsonl', test: 'data/b.test.jsonl' } },
  ],
  methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', k: 4 } }],
});

const paths = (issues: { path: string }[]) => issues.map((i) => i.path);

test('the committed JSON schema matches the config types', () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'gen-schema.mjs'), '--check'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('a minimal config validates and gets the documented defaults', () => {
  const { config, issues } = validateConfig(minimal());
  assert.deepEqual(issues, []);
  assert.ok(config);
  assert.equal(config.seed, 0);
  assert.equal(config.backend, 'auto');
  assert.equal(config.output, 'runs');
  assert.equal(config.training.epochs, 3);
  assert.equal(config.training.lr, 0.0003);
  assert.equal(config.training.optimizer, 'adamw');
  assert.deepEqual(config.eval.modes, ['rank']);
  assert.equal(config.checkpoint.every, 'task');
  const svd = config.methods[1];
  assert.equal(svd.method, 'adaptive-svd');
  if (svd.method === 'adaptive-svd') {
    assert.equal(svd.projection, 'two-sided');
    assert.equal(svd.parametrisation, 'dense');
    assert.deepEqual(svd.targets, ['attention', 'mlp']);
    assert.deepEqual(svd.rank, { policy: 'fixed', k: 4 }, 'k given: no ratio default added');
  }
});

test('missing fields, wrong types and unknown fields are reported with their JSON paths', () => {
  const c: Record<string, unknown> = minimal();
  delete c.model;
  (c.tasks as Record<string, unknown>[])[1].name = 42;
  c.trainig = {};
  c.training = { epochs: 0, lr: -1, schedule: 'exponential' };
  const { config, issues } = validateConfig(c);
  assert.equal(config, undefined);
  const byPath = new Map(issues.map((i) => [i.path, i]));
  assert.match(byPath.get('model')!.message, /is required/);
  assert.match(byPath.get('tasks[1].name')!.message, /expected string, got number 42/);
  assert.match(byPath.get('trainig')!.message, /did you mean 'training'/);
  assert.match(byPath.get('training.epochs')!.message, /must be >= 1, got 0/);
  assert.match(byPath.get('training.lr')!.message, /must be > 0, got -1/);
  assert.match(byPath.get('training.schedule')!.message, /one of "constant", "linear", "cosine"/);
  assert.equal(byPath.get('training.schedule')!.actual, 'exponential');
});

test('an unknown method names the value, suggests the nearest, and lists the choices', () => {
  const c = minimal();
  (c.methods as unknown[])[0] = { method: 'adaptive_svd' };
  const { issues } = validateConfig(c);
  assert.deepEqual(paths(issues), ['methods[0].method']);
  assert.match(issues[0].message, /unknown method the string "adaptive_svd" \(did you mean 'adaptive-svd'\?\); expected one of seqft, adaptive-svd, o-lora/);
});

test('bad method options are reported at their own path', () => {
  const c = minimal();
  (c.methods as unknown[])[1] = { method: 'adaptive-svd', rank: { policy: 'adaptive', trr: 1.5 } };
  assert.deepEqual(paths(validateConfig(c).issues), ['methods[1].rank.trr']);
  (c.methods as unknown[])[1] = { method: 'adaptive-svd', rank: { policy: 'adaptive', mrr: 0.9, trr: 0.5 } };
  assert.deepEqual(paths(validateConfig(c).issues), ['methods[1].rank.mrr']);
  (c.methods as unknown[])[1] = { method: 'adaptive-svd', rank: { policy: 'fixed', k: 0 } };
  assert.deepEqual(paths(validateConfig(c).issues), ['methods[1].rank.k']);
  (c.methods as unknown[])[1] = { method: 'adaptive-svd', rank: { policy: 'fixed', k: 3, ratio: 0.5 } };
  assert.deepEqual(paths(validateConfig(c).issues), ['methods[1].rank.k']);
  (c.methods as unknown[])[1] = { method: 'adaptive-svd', rank: { policy: 'magic' } };
  assert.match(validateConfig(c).issues[0].message, /unknown policy .*expected one of adaptive, fixed, schedule/);
});

test('semantic rules: unique task names and labels, orders that are permutations', () => {
  const c = minimal();
  c.tasks[1].name = 'a';
  (c as Record<string, unknown>).orders = [['a', 'zzz']];
  c.methods.push({ method: 'seqft' });
  const ps = paths(validateConfig(c).issues);
  assert.ok(ps.includes('tasks[1].name'));
  assert.ok(ps.includes('orders[0]'));
  assert.ok(ps.includes('methods[2]'));
});

test('an empty task list and an empty method list are rejected', () => {
  const c = minimal();
  c.tasks = [];
  c.methods = [];
  assert.deepEqual(paths(validateConfig(c).issues).sort(), ['methods', 'tasks']);
});

test('relative paths resolve against the config file, and missing files are named', () => {
  const file = '/work/exp/cfg.sculpt.json';
  const present = new Set(['/work/exp/data/b.train.jsonl']);
  const { issues } = validateConfig(minimal(), { file, path, exists: (p) => present.has(p) });
  assert.deepEqual(paths(issues), ['tasks[1].source.test']);
  assert.match(issues[0].message, /data file not found: \/work\/exp\/data\/b.test.jsonl/);
  present.add('/work/exp/data/b.test.jsonl');
  const ok = validateConfig(minimal(), { file, path, exists: (p) => present.has(p) });
  assert.deepEqual(ok.issues, []);
  assert.equal(ok.config!.output, '/work/exp/runs');
});

test('JSON syntax errors give line and column', () => {
  const r = parseConfigText('{\n  "name": "x",\n  "model": \n}');
  assert.equal(r.value, undefined);
  assert.match(r.issues[0].message, /not valid JSON at line 4/);
});

test('the schema file exists for VS Code', () => {
  assert.ok(existsSync(path.join(repoRoot, 'schemas', 'sculpt.schema.json')));
});
