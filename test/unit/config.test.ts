import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  CONFIG_SCHEMA,
  resolveMethod,
  resolveStoredConfig,
  validateConfig,
  parseConfigText,
} from '../../src/protocol/config-validate';
import type { JsonSchema } from '../../src/protocol/schema-check';
import type { TaskConfig } from '../../src/protocol/config';
import { repoRoot } from '../helpers/paths';
import { tinyExperiment, tinyTask } from '../helpers/experiment';

const minimal = () =>
  tinyExperiment({
    name: 'exp',
    backend: undefined,
    training: undefined,
    tasks: [tinyTask('a'), { name: 'b', source: { train: 'data/b.train.jsonl', test: 'data/b.test.jsonl' } }],
    methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', k: 4 } }],
  });

const paths = (issues: { path: string }[]) => issues.map((i) => i.path);

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

/** A schema node with its $ref followed (siblings such as `default` kept, as the checker does). */
function deref(s: JsonSchema): JsonSchema {
  if (!s.$ref) return s;
  const { $ref, ...siblings } = s;
  return deref({ ...CONFIG_SCHEMA.definitions![$ref.replace('#/definitions/', '')], ...siblings });
}

/**
 * Walks the resolved `value` against `schema` beside the `input` it came from: every field the input left out
 * that has a schema default holds that default, the nested defaults of a default included.
 */
function assertDefaults(value: unknown, input: unknown, schema: JsonSchema, at: string): void {
  const s = deref(schema);
  if (s.anyOf) {
    // Discriminated unions (method, policy): the branch whose tag the value carries.
    const branch = s.anyOf
      .map(deref)
      .find((b) =>
        Object.entries(b.properties ?? {}).some(
          ([k, p]) => p.const !== undefined && (value as Record<string, unknown>)?.[k] === p.const,
        ),
      );
    if (branch) assertDefaults(value, input, branch, at);
    return;
  }
  if (!s.properties || value === null || typeof value !== 'object' || Array.isArray(value)) {
    if (Array.isArray(value) && s.items)
      value.forEach((v, i) => assertDefaults(v, (input as unknown[])[i], s.items!, `${at}[${i}]`));
    return;
  }
  const obj = value as Record<string, unknown>;
  const given = (input ?? {}) as Record<string, unknown>;
  const conditional = s.if && s.else ? deref(s.else).properties : undefined;
  for (const [key, sub] of Object.entries(s.properties)) {
    if (key in given) {
      assertDefaults(obj[key], given[key], sub, `${at}.${key}`);
      continue;
    }
    const d = deref(sub).default ?? conditional?.[key]?.default;
    if (d === undefined) continue;
    assert.ok(key in obj, `${at}.${key}: the documented default ${JSON.stringify(d)} was not filled in`);
    if (d !== null && typeof d === 'object' && !Array.isArray(d)) {
      // An object default: its own fields as written, then the defaults of the fields it leaves out.
      for (const [k, v] of Object.entries(d))
        assert.deepEqual((obj[key] as Record<string, unknown>)[k], v, `${at}.${key}.${k}`);
      assertDefaults(obj[key], d, sub, `${at}.${key}`);
    } else {
      assert.deepEqual(obj[key], d, `${at}.${key}`);
    }
  }
}

const methodNames = (): string[] =>
  (deref({ $ref: '#/definitions/MethodConfig' }).anyOf ?? []).map((b) => deref(b).properties!.method.const as string);

test('a minimal config resolves with every documented default, every method option included', () => {
  const c = { ...minimal(), methods: methodNames().map((method) => ({ method, label: method })) };
  const { config, issues } = validateConfig(c);
  assert.deepEqual(issues, []);
  assert.ok(methodNames().length >= 8, 'every method of the schema is covered');
  assertDefaults(config, c, CONFIG_SCHEMA, 'config');
  const svd = config!.methods.find((m) => m.method === 'adaptive-svd');
  // The rank policy the adaptive-svd method gets when none is given, spelled out.
  assert.deepEqual(svd?.method === 'adaptive-svd' && svd.rank, { policy: 'fixed', ratio: 0.5 });
});

test('every rank policy resolves with its documented defaults; a fixed policy without k gets the default ratio', () => {
  for (const rank of [
    { policy: 'adaptive' },
    { policy: 'fixed' },
    { policy: 'schedule' },
    { policy: 'authors-schedule' },
    { policy: 'energy' },
  ] as const) {
    const given = { method: 'adaptive-svd', rank } as const;
    assertDefaults(resolveMethod(given), given, { $ref: '#/definitions/MethodConfig' }, rank.policy);
  }
  assert.deepEqual(resolveMethod({ method: 'adaptive-svd', rank: { policy: 'fixed' } }).rank, {
    policy: 'fixed',
    ratio: 0.5,
  });
  assert.deepEqual(resolveMethod({ method: 'adaptive-svd', rank: { policy: 'fixed', k: 3 } }).rank, {
    policy: 'fixed',
    k: 3,
  });
  assert.deepEqual(resolveMethod({ method: 'adaptive-svd', rank: { policy: 'fixed', ratio: 0.25 } }).rank, {
    policy: 'fixed',
    ratio: 0.25,
  });
  assert.throws(
    () => resolveMethod({ method: 'ewc', gamma: 2 }, 'methods[4]'),
    /methods\[4\]\.gamma: must be <= 1, got 2/,
  );
});

test('the fields left without a default are exactly those the resolved types keep optional', () => {
  // src/protocol/config-resolved.ts makes every other field required; a new option needs a @default or a
  // place in this list (and in those types).
  const optional = new Set([
    'ExperimentConfig.$schema',
    'ExperimentConfig.orders',
    'ExperimentConfig.seeds',
    'ExperimentConfig.tokenizer',
    'CompareConfig.baseline',
    'TaskConfig.labels',
    'TaskConfig.trainLimit',
    'TaskConfig.testLimit',
    'FixedRankPolicy.k',
    'FixedRankPolicy.effectiveRank',
    'FixedRankPolicy.rankPattern',
    'TorchConfig.python',
    'TorchConfig.rdzvEndpoint',
  ]);
  const found: string[] = [];
  for (const [name, def] of Object.entries(CONFIG_SCHEMA.definitions!)) {
    const conditional = def.else && deref(def.else).properties;
    for (const [key, sub] of Object.entries(def.properties ?? {})) {
      const hasDefault = deref(sub).default !== undefined || conditional?.[key]?.default !== undefined;
      const methodCommon = name.endsWith('Config') && def.properties?.method && (key === 'label' || key === 'lr');
      if (!hasDefault && !def.required?.includes(key) && !methodCommon) found.push(`${name}.${key}`);
    }
  }
  assert.deepEqual(found.sort(), [...optional].sort());
});

test('resolving a resolved config changes nothing (run folders are resolved again on resume)', () => {
  const once = validateConfig(minimal()).config!;
  assert.deepEqual(resolveStoredConfig(JSON.parse(JSON.stringify(once)), '/runs/x/config.json'), once);
  // A run folder written before a default existed gets it now (here: the rank policy).
  const old = JSON.parse(JSON.stringify(once));
  delete old.methods[1].rank;
  const again = resolveStoredConfig(old, '/runs/x/config.json');
  assert.deepEqual(again.methods[1], {
    ...once.methods[1],
    rank: { policy: 'fixed', ratio: 0.5 },
  });
  assert.throws(
    () => resolveStoredConfig({ ...once, seed: -1 }, '/runs/x/config.json'),
    /\/runs\/x\/config\.json: seed: must be >= 0/,
  );
});

test('missing fields, wrong types and unknown fields are reported with their JSON paths', () => {
  const c: Record<string, unknown> = { ...minimal() };
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
  assert.match(
    issues[0].message,
    /unknown method "adaptive_svd" \(did you mean 'adaptive-svd'\?\); expected one of seqft, adaptive-svd, o-lora/,
  );
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
  c.orders = [['a', 'zzz']];
  c.methods.push({ method: 'seqft' });
  const ps = paths(validateConfig(c).issues);
  assert.ok(ps.includes('tasks[1].name'));
  assert.ok(ps.includes('orders[0]'));
  assert.ok(ps.includes('methods[2]'));
});

test('seeds: a count or a list of distinct non-negative integers; compare.baseline names a method', () => {
  const ok = (seeds: unknown) => validateConfig({ ...minimal(), seeds }).issues;
  assert.deepEqual(ok(3), []);
  assert.deepEqual(ok([4, 0, 7]), []);
  // A number is a count and a list holds seeds: the message names the value or element and its bound.
  const zero = ok(0);
  assert.deepEqual(paths(zero), ['seeds']);
  assert.match(zero[0].message, /^must be >= 1, got 0 \(Seeds to repeat .* a count n meaning seeds 0 to n-1\)$/);
  assert.deepEqual(
    ok(1001).map((i) => i.message.slice(0, i.message.indexOf(' ('))),
    ['must be <= 1000, got 1001'],
  );
  assert.deepEqual(paths(ok(2.5)), ['seeds']);
  assert.match(ok(2.5)[0].message, /expected array or integer, got number 2\.5/);
  assert.deepEqual(paths(ok([])), ['seeds']);
  assert.deepEqual(
    ok([1, -1]).map((i) => [i.path, i.message]),
    [['seeds[1]', 'must be >= 0, got -1']],
  );
  assert.deepEqual(paths(ok([-1, 2])), ['seeds[0]']);
  assert.deepEqual(paths(ok([1, 'x'])), ['seeds[1]']);
  const repeated = ok([0, 1, 0]);
  assert.deepEqual(paths(repeated), ['seeds[2]']);
  assert.match(repeated[0].message, /repeats seeds\[0\] \(0\)/);

  assert.equal(validateConfig({ ...minimal(), compare: { baseline: 'adaptive-svd' } }).issues.length, 0);
  const typo = validateConfig({ ...minimal(), compare: { baseline: 'seqf' } }).issues;
  assert.deepEqual(paths(typo), ['compare.baseline']);
  assert.match(typo[0].message, /the methods are seqft, adaptive-svd \(did you mean 'seqft'\?\)/);
  // Absent, it stays absent in the resolved config: reports pick seqft, else the first method.
  assert.equal(validateConfig(minimal()).config!.compare.baseline, undefined);
});

test('a template needs {input} and no placeholder but {input} and {instruction}; a label needs text', () => {
  const withTask = (extra: Omit<Partial<TaskConfig>, 'name' | 'source'>) =>
    validateConfig({ ...minimal(), tasks: [tinyTask('a'), tinyTask('b', 'b', extra)] }).issues;
  assert.deepEqual(withTask({ template: 'Q: {input}\nA:' }), []);
  assert.deepEqual(withTask({ template: '{instruction}\n{input} {input}\nAnswer:' }), []);
  // Braces that are no placeholder name (JSON in a prompt) are text.
  assert.deepEqual(withTask({ template: 'Reply as {"label": ...}. {input}\nAnswer:' }), []);

  const none = withTask({ template: 'Topic:' });
  assert.deepEqual(paths(none), ['tasks[1].template']);
  assert.match(none[0].message, /^has no \{input\}, so no prompt shows the model the example it is about\. /);
  assert.match(none[0].message, /The placeholders are \{input\} and \{instruction\}/);

  const typo = withTask({ template: '{inptu}\nAnswer:' });
  assert.deepEqual(paths(typo), ['tasks[1].template']);
  assert.match(typo[0].message, /^\{inptu\} is not a placeholder \(did you mean \{input\}\?\) .*; it has no \{input\}/);
  assert.equal(typo[0].suggestion, '{input}\nAnswer:');

  const extra = withTask({ template: '{context} {question}: {input}' });
  assert.match(extra[0].message, /^\{context\}, \{question\} are not placeholders and would stay in every prompt/);
  assert.ok(!extra[0].message.includes('did you mean'));
  assert.ok(!extra[0].message.includes('has no {input}'));
  assert.match(withTask({ template: '{Instruction}{input}' })[0].message, /did you mean \{instruction\}/);

  const empty = withTask({ labels: ['good', '', 'bad'] });
  assert.deepEqual(
    empty.map((i) => [i.path, i.message]),
    [
      [
        'tasks[1].labels[1]',
        "is an empty label of task 'b'; a label is an answer the model is taught and scored on, so it needs text",
      ],
    ],
  );
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
