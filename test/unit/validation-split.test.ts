// The validation split (`eval.validation`; src/engine/data/validation-split.ts and loadTasks): held out of the
// training data, disjoint from what is trained on and from the test set, stable per seed and different across
// seeds, stratified by label, sized by a count or a fraction, and refused with its JSON path when impossible.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Example } from '../../src/data/examples';
import { Rng } from '../../src/data/rng';
import { exampleKey, holdOut, inputGroups, validationSize } from '../../src/engine/data/validation-split';
import { loadTasks, type RunTask } from '../../src/engine/experiment';
import type { ExperimentConfig } from '../../src/protocol/config';
import { ConfigError, resolveStoredConfig, validateConfig } from '../../src/protocol/config-validate';
import { tinyTask as tinyData } from '../../src/runs/builtin/tiny-tasks';
import { tinyExperiment, tinyTasks } from '../helpers/experiment';

/** `n` examples per label, each input distinct. */
function labelled(counts: Record<string, number>): Example[] {
  return Object.entries(counts).flatMap(([label, n]) =>
    Array.from({ length: n }, (_, i) => ({ input: `${label} ${i}`, output: label })),
  );
}

const byLabel = (xs: Example[]) => {
  const out: Record<string, number> = {};
  for (const e of xs) out[e.output] = (out[e.output] ?? 0) + 1;
  return out;
};

function load(over: Partial<ExperimentConfig> = {}, evalOver: Record<string, unknown> = {}): RunTask[] {
  const { config, issues } = validateConfig(tinyExperiment({ eval: { ...evalOver }, ...over }));
  assert.ok(config, JSON.stringify(issues));
  return loadTasks(config, 0);
}

test('holdOut: every example lands on exactly one side, in the data order, and no input is on both', () => {
  const data = labelled({ a: 30, b: 20 });
  const { train, validation } = holdOut(data, 10, new Rng(7));
  assert.equal(validation.length, 10);
  assert.equal(train.length + validation.length, data.length);
  const held = new Set(validation);
  assert.ok(
    train.every((e) => !held.has(e)),
    'no example object on both sides',
  );
  assert.deepEqual(
    [...train, ...validation].sort((x, y) => data.indexOf(x) - data.indexOf(y)),
    data,
    'together they are the data',
  );
  const order = (xs: Example[]) => xs.map((e) => data.indexOf(e));
  assert.deepEqual(
    order(validation),
    [...order(validation)].sort((x, y) => x - y),
  );
  assert.deepEqual(
    order(train),
    [...order(train)].sort((x, y) => x - y),
  );
  assert.deepEqual(holdOut(data, 0, new Rng(7)), { train: data, validation: [] });
});

test('holdOut: the same generator holds out the same examples; another seed others', () => {
  const data = labelled({ a: 50, b: 50 });
  const pick = (seed: number) => holdOut(data, 10, new Rng(seed)).validation.map((e) => e.input);
  assert.deepEqual(pick(1), pick(1));
  assert.notDeepEqual(pick(1), pick(2));
});

test('holdOut: stratified by label, by largest remainder; a label keeps its last training input', () => {
  // Balanced data gives a balanced split.
  assert.deepEqual(byLabel(holdOut(labelled({ a: 48, b: 48 }), 10, new Rng(1)).validation), { a: 5, b: 5 });
  assert.deepEqual(byLabel(holdOut(labelled({ x: 32, y: 32, z: 32 }), 9, new Rng(1)).validation), {
    x: 3,
    y: 3,
    z: 3,
  });
  // Imbalanced data keeps its mix: 60/30/10 of 100 with 10 held out is 6/3/1.
  assert.deepEqual(byLabel(holdOut(labelled({ a: 60, b: 30, c: 10 }), 10, new Rng(3)).validation), {
    a: 6,
    b: 3,
    c: 1,
  });
  // Remainders: 7 of 10 inputs labelled 5/3/2 -> 3.5, 2.1, 1.4: floors 3/2/1, the spare one to the largest (a).
  assert.deepEqual(byLabel(holdOut(labelled({ a: 5, b: 3, c: 2 }), 7, new Rng(5)).validation), { a: 4, b: 2, c: 1 });
  // A label with one example keeps it for training while another label can give one instead.
  for (let seed = 0; seed < 20; seed++) {
    const { train } = holdOut(labelled({ common: 19, rare: 1 }), 10, new Rng(seed));
    assert.equal(byLabel(train).rare, 1, `seed ${seed}`);
  }
  // Free-form outputs (every label once, as in generate tasks): inputs are held out all the same.
  const free = Array.from({ length: 10 }, (_, i) => ({ input: `q${i}`, output: `answer ${i}` }));
  assert.equal(holdOut(free, 3, new Rng(1)).validation.length, 3);
});

test('holdOut: copies of an input are held out together; sizes count distinct inputs', () => {
  const data: Example[] = [];
  for (let i = 0; i < 20; i++) data.push({ input: `x${i}`, output: i % 2 ? 'a' : 'b' });
  // Three copies of each of four inputs, one of them under another instruction (a different input).
  for (const i of [0, 1, 2, 3]) data.push({ ...data[i] }, { ...data[i] });
  data.push({ instruction: 'Say:', input: 'x0', output: 'b' });
  assert.equal(inputGroups(data).length, 21);
  for (let seed = 0; seed < 10; seed++) {
    const { train, validation } = holdOut(data, 8, new Rng(seed));
    const trained = new Set(train.map(exampleKey));
    assert.ok(!validation.some((e) => trained.has(exampleKey(e))), `seed ${seed}: no validation input is trained on`);
    assert.equal(inputGroups(validation).length, 8, `seed ${seed}: 8 distinct inputs held out`);
  }
  assert.throws(() => holdOut(data, 21, new Rng(1)), /cannot hold out 21 of 21 distinct inputs/);
});

test('validationSize: 0 is none, a fraction rounds (at least 1), an integer is a count', () => {
  assert.equal(validationSize(0, 96), 0);
  assert.equal(validationSize(0.1, 96), 10);
  assert.equal(validationSize(0.1, 95), 10);
  assert.equal(validationSize(0.25, 10), 3);
  assert.equal(validationSize(0.001, 96), 1);
  assert.equal(validationSize(0.999, 96), 96);
  assert.equal(validationSize(1, 96), 1);
  assert.equal(validationSize(30, 96), 30);
});

test('loadTasks: the default holds out a tenth, disjoint from training and test, trainLimit applies to the rest', () => {
  const [sentiment, topic] = load();
  const data = tinyData('tiny/sentiment')!;
  for (const t of [sentiment, topic]) {
    const trained = new Set(t.train.map(exampleKey));
    assert.equal(inputGroups(t.validation).length, 10, `${t.name}: round(0.1 x 95 distinct inputs)`);
    assert.ok(!t.validation.some((e) => trained.has(exampleKey(e))), `${t.name}: no validation input trained on`);
    assert.ok(!t.validation.some((e) => t.test.includes(e)), `${t.name}: no validation example is a test example`);
    assert.equal(t.train.length + t.validation.length, 96, `${t.name}: nothing lost`);
    assert.deepEqual(Object.keys(byLabel(t.validation)).sort(), [...t.labels].sort(), `${t.name}: every label`);
  }
  assert.deepEqual(byLabel(sentiment.validation), { good: 5, bad: 5 });
  assert.ok(sentiment.validation.every((e) => data.train.some((d) => d.input === e.input && d.output === e.output)));
  // trainLimit takes its subset from what is left.
  const [limited] = load({ tasks: tinyTasks(undefined, { trainLimit: 32 }) });
  assert.equal(limited.train.length, 32);
  assert.deepEqual(limited.validation, sentiment.validation, 'the split does not depend on the limit');
  const held = new Set(limited.validation.map(exampleKey));
  assert.ok(!limited.train.some((e) => held.has(exampleKey(e))));
  // A count, and 0 for no split (the data as it was without one).
  assert.equal(inputGroups(load({}, { validation: 20 })[0].validation).length, 20);
  const [none] = load({}, { validation: 0 });
  assert.deepEqual([none.validation, none.train], [[], data.train]);
});

test('loadTasks: the same seed holds out the same examples, another seed others; every order alike', () => {
  const inputs = (ts: RunTask[]) => ts.map((t) => t.validation.map(exampleKey));
  assert.deepEqual(inputs(load({ seed: 3 })), inputs(load({ seed: 3 })));
  assert.notDeepEqual(inputs(load({ seed: 3 }))[0], inputs(load({ seed: 4 }))[0]);
  const { config } = validateConfig(tinyExperiment({ orders: [['topic', 'sentiment']] }));
  const [o1, o2] = [loadTasks(config!, 0), loadTasks(config!, 1)];
  assert.deepEqual(o1[0].validation, o2[1].validation, 'a task holds out the same examples in every order');
});

test('eval.validation: impossible sizes are refused naming eval.validation and the task', () => {
  const refused = (evalOver: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => load({}, evalOver),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.issues[0].path, 'eval.validation');
        assert.match(e.issues[0].message, re);
        return true;
      },
    );
  refused(
    { validation: 200 },
    /asks for 200 validation examples of task 'sentiment' \(tasks\[0\]\), which has only 95 distinct training inputs \(96 examples\)/,
  );
  refused(
    { validation: 95 },
    /holds out all 95 distinct training inputs \(96 examples\) of task 'sentiment'.*leaving none/,
  );
  refused({ validation: 0.999 }, /holds out all 95 .* of task 'sentiment'/);
  // What the schema and the semantic checks refuse without data.
  const issue = (v: unknown) => validateConfig(tinyExperiment({ eval: { validation: v as number } })).issues;
  assert.match(issue(1.5)[0].message, /must be a fraction below 1 or a whole number of examples, got 1\.5/);
  assert.equal(issue(1.5)[0].path, 'eval.validation');
  assert.equal(issue(-0.1)[0].path, 'eval.validation');
  assert.equal(issue('10%')[0].path, 'eval.validation');
  assert.deepEqual(issue(0.5), []);
  assert.deepEqual(issue(1), []);
  assert.equal(validateConfig(tinyExperiment()).config!.eval.validation, 0.1, 'the default');
});

test('a run folder from before the split resumes without one; a stored split is kept', () => {
  const resolved = validateConfig(tinyExperiment()).config!;
  const old = JSON.parse(JSON.stringify(resolved));
  delete old.eval.validation;
  assert.equal(resolveStoredConfig(old, '/runs/x/config.json').eval.validation, 0);
  const noEval = JSON.parse(JSON.stringify(resolved));
  delete noEval.eval;
  assert.equal(resolveStoredConfig(noEval, '/runs/x/config.json').eval.validation, 0);
  assert.equal(resolveStoredConfig(JSON.parse(JSON.stringify(resolved)), '/x').eval.validation, 0.1);
});
