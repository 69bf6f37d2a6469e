import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  describeDivergence,
  findDivergence,
  formatLoss,
  LossWatch,
  type LossWatchOptions,
} from '../../src/engine/divergence';
import { assertFiniteWeights, nonFiniteTensors } from '../../src/engine/finite-tensors';
import { tf } from '../../src/engine/tf';
import { ModelFileError } from '../../src/protocol/errors';

const V = 68;
const LN_V = Math.log(V);
const opts = (o: Partial<LossWatchOptions> = {}): LossWatchOptions => ({
  enabled: true,
  lossFactor: 10,
  collapseWindow: 5,
  vocabSize: V,
  labelCount: 2,
  ...o,
});

/** A seeded noisy decreasing curve: `n` steps from `start` towards `end`, +-`noise` relative. */
function curve(n: number, start: number, end: number, noise: number, seed = 1): number[] {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return Array.from({ length: n }, (_, i) => (end + (start - end) * Math.exp(-i / (n / 5))) * (1 + noise * rand()));
}

test('a NaN or infinite loss is a divergence at its step, even with the other checks off', () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const d = findDivergence([3, 2.5, bad, 2], opts({ enabled: false }));
    assert.deepEqual(d, { kind: 'non-finite', step: 3, value: bad });
  }
  const d = findDivergence([3, NaN], opts(), 41)!;
  assert.equal(d.step, 42);
  assert.equal(describeDivergence(d, 'a'), "training diverged: the loss became NaN at step 42 of task 'a'");
});

test('a spike above lossFactor x the start value is a divergence at the right step, quoting the values', () => {
  // The start value: the first step's loss (here above ln 68).
  const d = findDivergence([6, 5.2, 4.8, 30, 61, 1e6], opts())!;
  assert.equal(d.kind, 'spike');
  assert.equal(d.step, 5);
  assert.equal(d.value, 61);
  const msg = describeDivergence(d, 'sentiment');
  assert.match(msg, /^training diverged: the loss rose to 61 at step 5 of task 'sentiment', over 10x/);
  assert.match(msg, /its value at the start of the task \(6\); losses of steps 1-5: 6, 5\.2, 4\.8, 30, 61$/);
  // The AdamW blow-up: 4.18, then 6.2e6. The start value is at least ln(68).
  const adamw = findDivergence([4.183, 6.219e6, LN_V, LN_V], opts())!;
  assert.equal(adamw.kind, 'spike');
  assert.equal(adamw.step, 2);
  assert.match(
    describeDivergence(adamw, 't'),
    /over 10x ln\(68\) = 4\.22, the loss of a uniform guess \(the task started at 4\.183\); losses of steps 1-2: 4\.183, 6\.219e\+6$/,
  );
  // A higher factor lets the same curve through.
  assert.equal(findDivergence([6, 5.2, 4.8, 30, 61], opts({ lossFactor: 20 })), null);
});

test('a task whose first step is far above a uniform guess inherited a diverged model', () => {
  const d = findDivergence([1.073e8, 4.8e15], opts(), 1)!;
  assert.equal(d.kind, 'spike');
  assert.equal(d.step, 1);
  assert.match(
    describeDivergence(d, 'topic'),
    /rose to 1\.073e\+8 at step 1 of task 'topic', over 10x ln\(68\) = 4\.22, the loss of a uniform guess; losses of step 1: 1\.073e\+8$/,
  );
});

test('a task starting near zero loss is not flagged for ordinary noise (the start value is at least ln V)', () => {
  assert.equal(findDivergence([0.01, 0.3, 0.05, 0.6, 0.02, 0.9, 0.01], opts()), null);
});

test('a loss sitting at ln(vocabulary) for a window of steps after having been lower is a collapse', () => {
  const losses = [4.183, 3.9, 3.5, LN_V * 1.0002, LN_V, LN_V * 0.9995, LN_V, LN_V, LN_V];
  const d = findDivergence(losses, opts())!;
  assert.equal(d.kind, 'collapse');
  assert.equal(d.step, 8, 'the step that completed the window');
  assert.deepEqual(d.kind === 'collapse' && d.from, { task: null, step: 4 });
  const msg = describeDivergence(d, 'sentiment');
  assert.match(
    msg,
    /^training collapsed: the loss sat at 4\.22 = ln\(68\), a uniform guess over the vocabulary, for 5 steps up to step 8 of task 'sentiment' \(from step 4\), after having been as low as 3\.5/,
  );
  // Four steps at the plateau are not enough with a window of 5.
  assert.equal(findDivergence(losses.slice(0, 7), opts()), null);
  // Nor are five steps broken by one off it.
  assert.equal(findDivergence([3.5, LN_V, LN_V, LN_V, 4, LN_V, LN_V, LN_V], opts()), null);
  // The checks off: nothing but NaN.
  assert.equal(findDivergence(losses, opts({ enabled: false })), null);
});

test('a loss sitting at ln(number of labels) after the task was learned is a collapse too', () => {
  const ln4 = Math.log(4);
  const d = findDivergence([2.5, 1.2, 0.6, ln4, ln4, ln4, ln4, ln4], opts({ labelCount: 4 }))!;
  assert.equal(d.kind, 'collapse');
  assert.equal(d.step, 8);
  assert.match(
    describeDivergence(d, 'x'),
    /= ln\(4\), a uniform guess over the task's 4 labels, for 5 steps up to step 8 of task 'x' \(from step 4\)/,
  );
  // Without a label set only ln(V) counts.
  assert.equal(findDivergence([2.5, 1.2, 0.6, ln4, ln4, ln4, ln4, ln4], opts({ labelCount: 0 })), null);
  // A task not learned yet sits at a uniform guess over its labels as a matter of course: a lucky batch just
  // under ln 2 followed by a stretch at ln 2 is the start of a binary task, not a collapse.
  const ln2 = Math.LN2;
  const start = [3.1, 0.9, 0.684, ln2, ln2 * 1.0004, ln2, ln2 * 0.9996, ln2, ln2, ln2, 0.66, 0.5, 0.3];
  assert.equal(findDivergence(start, opts({ labelCount: 2 })), null);
  // Neither does a loss that was low in an earlier task count for a later task's labels.
  const watch = new LossWatch(opts({ labelCount: 2 }));
  for (const [i, v] of [2, 0.1, 0.05].entries()) assert.equal(watch.push(i + 1, v), null);
  watch.nextTask('b', 2);
  for (const [i, v] of [ln2, ln2, ln2, ln2, ln2, ln2, ln2].entries()) assert.equal(watch.push(i + 1, v), null);
});

test('a run that starts at ln(V) and never drops is not a collapse (it never was lower)', () => {
  const flat = Array.from({ length: 50 }, (_, i) => LN_V * (1 + 0.0008 * Math.sin(i)));
  assert.equal(findDivergence(flat, opts()), null);
  // Nor one that starts a little under it (a randomly initialised model) before sitting at it.
  assert.equal(findDivergence([LN_V * 0.997, ...flat], opts()), null);
});

test('healthy curves, decreasing or noisy, are never flagged', () => {
  const cases = [
    curve(300, 4.18, 0.3, 0),
    curve(300, 4.18, 0.3, 0.3),
    curve(300, 9.2, 1.5, 0.5, 7),
    curve(3000, 2.0, 0.01, 0.9, 3),
    curve(300, 4.3, 0.693, 0.2, 5),
    // A curve that passes through ln V and ln 2 on its way down.
    Array.from({ length: 200 }, (_, i) => 6 - i * 0.029),
  ];
  for (const c of cases) assert.equal(findDivergence(c, opts()), null, c.slice(0, 5).join(', '));
});

test('the watch reads steps one window at a time as the reporter does, with the same result', () => {
  const losses = [4.183, 3.9, 3.5, LN_V, LN_V, LN_V, LN_V, LN_V];
  const watch = new LossWatch(opts());
  const found = [];
  for (let i = 0; i < losses.length; i++) {
    const d = watch.push(i + 1, losses[i]);
    if (d) found.push(d);
  }
  assert.deepEqual(found[0], findDivergence(losses, opts()));
});

test('a collapse spanning tasks: the lowest loss and the plateau at ln(V) carry over, the label plateau does not', () => {
  // The base model's AdamW blow-up: 7.83, then ln(8192) for good, three steps per task.
  const lnV = Math.log(8192);
  const watch = new LossWatch(opts({ vocabSize: 8192, labelCount: 2 }));
  const found = [];
  for (const task of ['software', 'sentiment']) {
    watch.nextTask(task, 2);
    for (let step = 1; step <= 3; step++) {
      const d = watch.push(step, task === 'software' && step === 1 ? 7.833 : lnV);
      if (d) found.push(d);
    }
  }
  assert.equal(found.length, 1);
  const d = found[0];
  assert.equal(d.kind, 'collapse');
  assert.equal(d.step, 3);
  assert.match(
    describeDivergence(d, 'sentiment'),
    /ln\(8192\), a uniform guess over the vocabulary, for 5 steps up to step 3 of task 'sentiment' \(from step 2 of task 'software'\), after having been as low as 7\.833/,
  );
  // A label plateau does not carry over: ln 2 for 3 steps in each of two tasks is no collapse.
  const labels = new LossWatch(opts());
  for (const task of ['a', 'b']) {
    labels.nextTask(task, 2);
    for (const [i, v] of [0.3, Math.LN2, Math.LN2, Math.LN2].entries()) assert.equal(labels.push(i + 1, v), null);
  }
});

test('formatLoss: 4 significant digits, exponents for large values', () => {
  assert.equal(formatLoss(4.219507705), '4.22');
  assert.equal(formatLoss(6219000), '6.219e+6');
  assert.equal(formatLoss(1.6e31), '1.6e+31');
  assert.equal(formatLoss(NaN), 'NaN');
});

test('non-finite tensors are named; a pretrained model with one is a corrupt file naming the tensor', async () => {
  await tf.setBackend('cpu');
  const ok = tf.tensor([1, 2, 3]);
  const nan = tf.tensor([1, NaN, 3]);
  const inf = tf.tensor([[Infinity, 0]]);
  const ids = tf.tensor([1, 2], undefined, 'int32');
  assert.deepEqual(await nonFiniteTensors([['ok', ok]]), []);
  assert.deepEqual(
    await nonFiniteTensors([
      ['ok', ok],
      ['a.weight', nan],
      ['ids', ids],
      ['b.weight', inf],
    ]),
    ['a.weight', 'b.weight'],
  );
  const before = tf.memory().numTensors;
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-finite-'));
  try {
    await assertFiniteWeights(dir, new Map([['ok', ok]]));
    writeFileSync(join(dir, 'model.safetensors'), '');
    await assert.rejects(
      assertFiniteWeights(
        dir,
        new Map([
          ['ok', ok],
          ['model.layers.0.mlp.up_proj.weight', nan],
        ]),
      ),
      (e: unknown) => {
        assert.ok(e instanceof ModelFileError);
        assert.equal(e.file, join(dir, 'model.safetensors'));
        assert.equal(e.at.tensor, 'model.layers.0.mlp.up_proj.weight');
        assert.match(
          e.message,
          /model\.safetensors: tensor "model\.layers\.0\.mlp\.up_proj\.weight": holds NaN or infinite values; the file is corrupt/,
        );
        assert.match(e.hint, /damaged, not the training/);
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  tf.dispose([ok, nan, inf, ids]);
});
