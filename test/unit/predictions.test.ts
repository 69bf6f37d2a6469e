// Per-example prediction files: records as written (inputs cut, scores rounded, odd labels kept), a point written
// whole and replaced whole, superseded points cleared, the listing and the set a viewer's pick chooses, and the
// confusion matrix, misclassified list and report section against counts made by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PredictionRecord, PredictionSetInfo } from '../../src/protocol/predictions';
import {
  MAX_INPUT_CHARS,
  choosePredictionSet,
  clearPredictionsFrom,
  listPredictionSets,
  pointName,
  pointOf,
  predictionRecord,
  predictionsMarkdown,
  readPredictionRecords,
  writePredictionPoint,
  writesPredictions,
  type PredictionSetData,
} from '../../src/runs/predictions';
import {
  OTHER_LABEL,
  confusionMatrix,
  frequentConfusions,
  misclassifiedRows,
  predictionsView,
  topScores,
} from '../../src/runs/confusion';
import { readPredictions } from '../../src/extension/dashboard/run-files';

const rec = (index: number, expected: string, predicted: string, correct = expected === predicted): PredictionRecord =>
  predictionRecord(index, `input ${index}`, expected, predicted, correct);

test('which evaluations write: final = after the last task only, all = every one with zero-shot, none = none', () => {
  assert.deepEqual(
    [-1, 0, 1, 2].map((a) => writesPredictions('final', a, 3)),
    [false, false, false, true],
  );
  assert.deepEqual(
    [-1, 0, 2].map((a) => writesPredictions('all', a, 3)),
    [true, true, true],
  );
  assert.deepEqual(
    [-1, 2].map((a) => writesPredictions('none', a, 3)),
    [false, false],
  );
  assert.deepEqual([pointName(-1), pointName(0), pointName(11)], ['zero-shot', 'after-task-1', 'after-task-12']);
  assert.deepEqual(
    ['zero-shot', 'after-task-1', 'after-task-12', 'after-task-0', 'after-task-x', '.after-task-1.9.tmp'].map(pointOf),
    [-1, 0, 11, undefined, undefined, undefined],
  );
});

test('a record: the input cut at 500 characters (not inside a surrogate pair), scores to 6 digits, every label an own key', () => {
  const long = predictionRecord(3, 'x'.repeat(MAX_INPUT_CHARS + 100), 'a', 'a', true);
  assert.equal(long.input.length, MAX_INPUT_CHARS);
  assert.equal(long.inputTruncated, true);
  // An emoji (two UTF-16 units) across the cut is left out whole.
  const emoji = predictionRecord(0, 'y'.repeat(MAX_INPUT_CHARS - 1) + '\u{1F600}tail', 'a', 'a', true);
  assert.equal(emoji.input, 'y'.repeat(MAX_INPUT_CHARS - 1));
  const short = predictionRecord(0, 'short', 'a', 'b', false);
  assert.equal(short.input, 'short');
  assert.equal('inputTruncated' in short, false);
  assert.equal('scores' in short, false, 'no scores without rank scores');
  const scored = predictionRecord(1, 'in', '__proto__', 'b', false, {
    labels: ['__proto__', 'b', 'c'],
    values: [-1.234567891, -0.1, -Infinity],
  });
  const back = JSON.parse(JSON.stringify(scored)) as PredictionRecord;
  assert.deepEqual(Object.keys(back.scores!), ['__proto__', 'b', 'c']);
  assert.equal(back.scores!['__proto__'], -1.23457);
  assert.equal(back.scores!.c, null, 'a score that is not finite is null');
  assert.equal(Object.getPrototypeOf(back.scores), Object.prototype);
});

test('confusion matrix, misclassified rows and frequent confusions equal counts made by hand', () => {
  const records = [
    rec(0, 'a', 'a'),
    rec(1, 'a', 'b'),
    rec(2, 'a', 'a'),
    rec(3, 'b', 'b'),
    rec(4, 'b', 'c'),
    rec(5, 'c', 'a'),
    rec(6, 'c', 'c'),
    rec(7, 'b', 'zzz'), // generated text that is no label
    rec(8, 'd', 'a'), // an expected output outside the label set
    rec(9, 'c', 'a'),
  ];
  const m = confusionMatrix(records, ['a', 'b', 'c']);
  assert.deepEqual(m.labels, ['a', 'b', 'c', 'd']);
  assert.deepEqual(m.counts, [
    [2, 1, 0, 0],
    [0, 1, 1, 0],
    [2, 0, 1, 0],
    [1, 0, 0, 0],
  ]);
  assert.deepEqual(m.other, [0, 1, 0, 0]);
  assert.equal(m.total, 10);
  assert.equal(m.correct, 4);
  const diagonal = m.counts.reduce((s, row, i) => s + row[i], 0);
  assert.equal(diagonal, m.correct, 'the diagonal is what the accuracy counts');
  assert.deepEqual(frequentConfusions(m), [
    { expected: 'c', predicted: 'a', count: 2 },
    { expected: 'a', predicted: 'b', count: 1 },
    { expected: 'b', predicted: 'c', count: 1 },
  ]);
  assert.deepEqual(
    frequentConfusions(m, 10).map((c) => `${c.expected}>${c.predicted}`),
    ['c>a', 'a>b', 'b>c', `b>${OTHER_LABEL}`, 'd>a'],
  );
  // A generate-mode record marked correct counts on the diagonal even when its text differs in spacing.
  const trimmed = confusionMatrix([predictionRecord(0, 'x', 'yes ', 'yes', true)], ['yes ', 'no']);
  assert.deepEqual(trimmed.counts, [
    [1, 0],
    [0, 0],
  ]);
  assert.equal(trimmed.other, null);
  const wrong = misclassifiedRows(records, 3);
  assert.equal(wrong.total, 6);
  assert.deepEqual(
    wrong.rows.map((r) => r.index),
    [1, 4, 5],
  );
});

test('top scores: best first, shares of the probability over the labels, non-finite scores left out', () => {
  const top = topScores({ a: Math.log(0.25), b: Math.log(0.5), c: Math.log(0.125), d: null }, 2);
  assert.deepEqual(
    top.map((s) => s.label),
    ['b', 'a'],
  );
  assert.ok(Math.abs(top[0].share - 0.5 / 0.875) < 1e-12);
  assert.ok(Math.abs(top[1].share - 0.25 / 0.875) < 1e-12);
  assert.deepEqual(topScores(undefined), []);
});

function tempRun(): string {
  return mkdtempSync(join(tmpdir(), 'sculpt-predictions-'));
}

function setData(task: number, name: string, records: PredictionRecord[], extra: Partial<PredictionSetData> = {}) {
  const correct = records.filter((r) => r.correct).length;
  return {
    split: 'test' as const,
    task,
    name,
    mode: 'rank' as const,
    labels: ['a', 'b'],
    accuracy: (100 * correct) / records.length,
    records,
    ...extra,
  };
}

test('a point is written whole and replaced whole; listing, reading and clearing', () => {
  const dir = tempRun();
  try {
    const t0 = [rec(0, 'a', 'a'), rec(1, 'b', 'a')];
    const t1 = [rec(0, 'b', 'b')];
    writePredictionPoint(
      dir,
      1,
      ['one', 'two/x'],
      [setData(0, 'one', t0), setData(1, 'two/x', t1), setData(0, 'one', t1, { split: 'validation' })],
    );
    writePredictionPoint(dir, -1, ['one', 'two/x'], [setData(0, 'one', t0)]);
    const root = join(dir, 'predictions');
    assert.deepEqual(readdirSync(root).sort(), ['after-task-2', 'zero-shot']);
    assert.deepEqual(readdirSync(join(root, 'after-task-2', 'test')).sort(), [
      '1-one.rank.jsonl',
      '2-two_x.rank.jsonl',
    ]);
    const lines = readFileSync(join(root, 'after-task-2', 'test', '1-one.rank.jsonl'), 'utf8').split('\n');
    assert.equal(lines.length, 3, 'one line per record and a final newline');
    assert.deepEqual(JSON.parse(lines[1]), {
      index: 1,
      input: 'input 1',
      expected: 'b',
      predicted: 'a',
      correct: false,
    });

    const { sets, problems } = listPredictionSets(dir);
    assert.deepEqual(problems, []);
    assert.deepEqual(
      sets.map((s) => `${s.point}/${s.file}`),
      [
        'zero-shot/test/1-one.rank.jsonl',
        'after-task-2/test/1-one.rank.jsonl',
        'after-task-2/test/2-two_x.rank.jsonl',
        'after-task-2/validation/1-one.rank.jsonl',
      ],
    );
    const first = sets[1];
    assert.deepEqual(
      [first.afterTask, first.task, first.name, first.examples, first.correct, first.accuracy],
      [1, 0, 'one', 2, 1, 50],
    );
    assert.deepEqual(readPredictionRecords(dir, first), { records: t0, badLines: 0 });

    // Written again with fewer files: nothing of the earlier write stays.
    writePredictionPoint(dir, 1, ['one', 'two/x'], [setData(1, 'two/x', t1)]);
    assert.deepEqual(readdirSync(join(root, 'after-task-2', 'test')), ['2-two_x.rank.jsonl']);
    assert.equal(existsSync(join(root, 'after-task-2', 'validation')), false);
    assert.equal(readdirSync(root).filter((n) => n.startsWith('.')).length, 0, 'no temporary folder left');

    // A damaged line is counted, the rest read.
    const file = join(root, 'after-task-2', 'test', '2-two_x.rank.jsonl');
    writeFileSync(file, readFileSync(file, 'utf8') + '{"index": 1, "inp\n[1]\n');
    const after = listPredictionSets(dir).sets.find((s) => s.point === 'after-task-2')!;
    assert.deepEqual(readPredictionRecords(dir, after), { records: t1, badLines: 2 });
    assert.throws(() => readPredictionRecords(dir, { point: 'after-task-2', file: '../../config.json' }), /not a/);

    // A broken manifest is reported, the other points still listed.
    mkdirSync(join(root, 'after-task-1'));
    writeFileSync(join(root, 'after-task-1', 'index.json'), '{"format": 1');
    const listed = listPredictionSets(dir);
    assert.equal(listed.problems.length, 1);
    assert.match(listed.problems[0], /after-task-1[/\\]index\.json/);
    assert.equal(listed.sets.length, 2);

    // A resume before task 2 clears after-task-1 and on (and a crash's temporary folder); zero-shot stays.
    mkdirSync(join(root, '.after-task-3.123.tmp'));
    clearPredictionsFrom(dir, 0);
    assert.deepEqual(readdirSync(root), ['zero-shot']);
    clearPredictionsFrom(dir, -1);
    assert.deepEqual(readdirSync(root), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the set a pick chooses: each part kept where it exists, else the last point, test, first task and mode', () => {
  const info = (
    point: string,
    afterTask: number,
    split: 'test' | 'validation',
    task: number,
    mode: 'rank' | 'generate',
  ) => ({ point, afterTask, split, task, mode, file: `${split}/${task}.${mode}.jsonl` }) as PredictionSetInfo;
  const sets = [
    info('zero-shot', -1, 'test', 0, 'rank'),
    info('zero-shot', -1, 'test', 1, 'rank'),
    info('after-task-1', 0, 'test', 0, 'rank'),
    info('after-task-1', 0, 'validation', 0, 'rank'),
    info('after-task-2', 1, 'validation', 1, 'rank'),
    info('after-task-2', 1, 'test', 0, 'rank'),
    info('after-task-2', 1, 'test', 0, 'generate'),
    info('after-task-2', 1, 'test', 1, 'rank'),
  ];
  const key = (s?: PredictionSetInfo) => s && `${s.point} ${s.split} ${s.task} ${s.mode}`;
  assert.equal(key(choosePredictionSet(sets)), 'after-task-2 test 0 rank');
  assert.equal(key(choosePredictionSet(sets, { task: 1 })), 'after-task-2 test 1 rank');
  assert.equal(key(choosePredictionSet(sets, { mode: 'generate' })), 'after-task-2 test 0 generate');
  assert.equal(key(choosePredictionSet(sets, { point: 'zero-shot', task: 1 })), 'zero-shot test 1 rank');
  // A task the point lacks falls back; a split the point lacks too.
  assert.equal(key(choosePredictionSet(sets, { point: 'after-task-1', task: 1 })), 'after-task-1 test 0 rank');
  assert.equal(key(choosePredictionSet(sets, { point: 'zero-shot', split: 'validation' })), 'zero-shot test 0 rank');
  assert.equal(
    key(choosePredictionSet(sets, { point: 'gone', split: 'validation' })),
    'after-task-2 validation 1 rank',
  );
  assert.equal(choosePredictionSet([]), undefined);
});

test('the dashboard answer: every set listed, the chosen one as a confusion matrix and misclassified rows', () => {
  const dir = tempRun();
  try {
    const records = [
      predictionRecord(0, 'fine <b>day</b>', 'pos', 'pos', true, { labels: ['pos', 'neg'], values: [-0.1, -2.4] }),
      predictionRecord(1, 'bad', 'neg', 'pos', false, { labels: ['pos', 'neg'], values: [-0.5, -0.9] }),
    ];
    writePredictionPoint(dir, 0, ['s'], [setData(0, 's', records, { labels: ['pos', 'neg'] })]);
    const msg = readPredictions(dir, {}, 7);
    assert.equal(msg.type, 'predictions');
    assert.equal(msg.requestId, 7);
    assert.equal(msg.sets.length, 1);
    const view = msg.view!;
    assert.deepEqual(view.confusion!.counts, [
      [1, 0],
      [1, 0],
    ]);
    assert.equal(view.misclassifiedTotal, 1);
    assert.deepEqual(
      view.misclassified[0].top.map((s) => s.label),
      ['pos', 'neg'],
    );
    const none = readPredictions(join(dir, 'missing'), {}, 8);
    assert.deepEqual([none.sets, none.view, none.error], [[], null, undefined]);
    // Too many labels for a matrix: the list only, and a note that says why.
    const many = predictionsView(msg.sets[0], records, 0, { maxLabels: 1 });
    assert.equal(many.confusion, null);
    assert.match(many.confusionNote!, /2 distinct labels/);

    const md = predictionsMarkdown([{ name: 'run|1', dir }]).join('\n');
    assert.match(md, /^## Predictions/);
    assert.match(md, /### run\\\|1: after task 1/);
    assert.match(md, /\| s \| rank \| 2 \| 50\.0 \| neg → pos: 1 \|/);
    assert.deepEqual(predictionsMarkdown([{ name: 'none', dir: join(dir, 'missing') }]), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
