/**
 * Per-example predictions through the built CLI and trainer (dist/): the files `eval.predictions` asks for, each
 * consistent with the `eval` event of its task, split and mode (the accuracy is the share of correct records);
 * a stopped and resumed run ends with the predictions of an uninterrupted one and nothing of the session it
 * superseded; `sculpt report` sums them up. Needs `npm run build` first (npm test does it).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExperimentConfig } from '../../src/protocol/config';
import type { EvalEvent } from '../../src/protocol/events';
import type { PredictionRecord } from '../../src/protocol/predictions';
import { listPredictionSets, pointName, readPredictionRecords } from '../../src/runs/predictions';
import { effectiveEvents } from '../../src/runs/fold';
import { PREDICTIONS_CSV_HEADER } from '../../src/runs/report';
import { tinyExperiment, writeExperiment } from '../helpers/experiment';
import { cli, events, finished, runDirs as listRunDirs, trainer } from '../helpers/runs';

const work = mkdtempSync(join(tmpdir(), 'sculpt-predictions-'));
after(() => rmSync(work, { recursive: true, force: true }));

function config(overrides: Partial<ExperimentConfig> = {}): string {
  const cfg = tinyExperiment({ name: 'pred', output: join(work, 'runs'), ...overrides });
  return writeExperiment(work, cfg, `cfg-${Math.random().toString(36).slice(2)}.sculpt.json`);
}

function run(cfg: string): string {
  const before = new Set(listRunDirs(join(work, 'runs')));
  const r = cli('run', cfg);
  assert.equal(r.status, 0, r.stderr);
  return listRunDirs(join(work, 'runs')).find((d) => !before.has(d))!;
}

const evalsOf = (dir: string) =>
  effectiveEvents(events(dir)).filter((e): e is EvalEvent & { seq: number } => e.type === 'eval');

/** Every set of the folder by `<point> <split> <task> <mode>`, with its records. */
function predictionsOf(dir: string) {
  const { sets, problems } = listPredictionSets(dir);
  assert.deepEqual(problems, []);
  return new Map(
    sets.map((s) => {
      const { records, badLines } = readPredictionRecords(dir, s);
      assert.equal(badLines, 0);
      return [`${s.point} ${s.split} ${s.task} ${s.mode}`, { set: s, records }];
    }),
  );
}

test('eval.predictions "all": every evaluation written, each file agreeing with its eval event', () => {
  const dir = run(config({ eval: { predictions: 'all', modes: ['rank', 'generate'], maxNewTokens: 2 } }));
  assert.deepEqual(readdirSync(join(dir, 'predictions')).sort(), ['after-task-1', 'after-task-2', 'zero-shot']);
  const evals = evalsOf(dir);
  const found = predictionsOf(dir);
  // 3 points x 2 tasks x 2 splits x 2 modes, and nothing else.
  assert.equal(evals.length, 24);
  assert.equal(found.size, evals.length);
  const tasks = finished(dir).matrix.length;
  assert.equal(tasks, 2);
  for (const e of evals) {
    const key = `${pointName(e.afterTask)} ${e.split ?? 'test'} ${e.task} ${e.mode}`;
    const got = found.get(key);
    assert.ok(got, `${key} is written`);
    const { set, records } = got;
    assert.equal(set.name, e.name);
    assert.equal(set.accuracy, e.accuracy, `${key}: the manifest's accuracy is the event's`);
    assert.equal(records.length, e.examples, `${key}: one record per example`);
    assert.equal(set.examples, e.examples);
    const correct = records.filter((r) => r.correct).length;
    assert.equal(set.correct, correct);
    assert.equal((100 * correct) / records.length, e.accuracy, `${key}: the accuracy is the share of correct records`);
    assert.deepEqual(
      records.map((r) => r.index),
      records.map((_, i) => i),
    );
    for (const r of records) checkRecord(r, set.labels, e.mode);
  }
});

function checkRecord(r: PredictionRecord, labels: string[], mode: 'rank' | 'generate'): void {
  assert.ok(r.input.length > 0 && !r.inputTruncated, 'the tiny inputs are short');
  if (mode === 'generate') {
    assert.equal(r.scores, undefined);
    assert.equal(r.correct, r.predicted === r.expected.trim());
    return;
  }
  assert.ok(labels.includes(r.expected));
  assert.deepEqual(Object.keys(r.scores!).sort(), [...labels].sort(), 'a score for every label');
  const best = Math.max(...Object.values(r.scores!).map((v) => v ?? -Infinity));
  assert.equal(r.scores![r.predicted], best, 'the prediction is the best-scoring label');
  assert.equal(r.correct, r.predicted === r.expected);
}

test('by default only the evaluation after the last task is written, with its validation splits', () => {
  const dir = run(config());
  assert.deepEqual(readdirSync(join(dir, 'predictions')), ['after-task-2']);
  const found = predictionsOf(dir);
  assert.deepEqual([...found.keys()].sort(), [
    'after-task-2 test 0 rank',
    'after-task-2 test 1 rank',
    'after-task-2 validation 0 rank',
    'after-task-2 validation 1 rank',
  ]);
  for (const e of evalsOf(dir).filter((x) => x.afterTask === 1)) {
    const { set, records } = found.get(`after-task-2 ${e.split} ${e.task} rank`)!;
    assert.equal(set.accuracy, e.accuracy);
    assert.equal((100 * records.filter((r) => r.correct).length) / records.length, e.accuracy);
  }
  const md = cli('report', dir);
  assert.equal(md.status, 0, md.stderr);
  assert.match(md.stdout, /## Predictions/);
  assert.match(md.stdout, /: after task 2\n/);
  assert.match(md.stdout, /\| sentiment \| rank \| 48 \| \d+\.\d \| /);
  // The HTML page shows the confusions and misclassified examples; --csv --out writes every record beside it.
  const html = cli('report', dir, '--html');
  assert.equal(html.status, 0, html.stderr);
  assert.match(html.stdout, /<h2>Predictions<\/h2>/);
  const out = join(work, 'report.csv');
  const csv = cli('report', dir, '--csv', '--out', out);
  assert.equal(csv.status, 0, csv.stderr);
  const records = [...found.values()].reduce((n, f) => n + f.records.length, 0);
  const lines = readFileSync(join(work, 'report.predictions.csv'), 'utf8').trimEnd().split('\n');
  assert.equal(lines[0], PREDICTIONS_CSV_HEADER.join(','));
  assert.equal(lines.length - 1, records, 'one row per written prediction (the tiny inputs hold no line breaks)');
  assert.match(csv.stderr, new RegExp(`${records} per-example predictions written`));
  const none = run(config({ eval: { predictions: 'none' } }));
  rmSync(join(work, 'none.predictions.csv'), { force: true });
  assert.equal(cli('report', none, '--csv', '--out', join(work, 'none.csv')).status, 0);
  assert.equal(existsSync(join(work, 'none.predictions.csv')), false, 'no predictions, no file');
  assert.equal(existsSync(join(none, 'predictions')), false);
  assert.doesNotMatch(cli('report', none).stdout, /## Predictions/);
});

test('a run stopped in its second task and resumed ends with the predictions of an uninterrupted run', async () => {
  const cfg = config({ eval: { predictions: 'all' }, checkpoint: { every: 'never' } });
  const whole = run(cfg);
  const dir = whole + '-stopped';
  mkdirSync(dir);
  cpSync(join(whole, 'config.json'), join(dir, 'config.json'));
  cpSync(join(whole, 'job.json'), join(dir, 'job.json'));
  let asked = false;
  const code = await trainer(dir, (e, child) => {
    if (e.type === 'step' && e.task === 1 && e.step >= 2 && !asked) {
      asked = true;
      child.send({ type: 'stop' });
    }
  });
  assert.equal(code, 0);
  assert.deepEqual(readdirSync(join(dir, 'predictions')).sort(), ['after-task-1', 'zero-shot']);
  // What a superseded session might have left: a point the resumed run has not reached, and a half-made folder.
  mkdirSync(join(dir, 'predictions', 'after-task-2'));
  writeFileSync(join(dir, 'predictions', 'after-task-2', 'index.json'), '{"format": 1, "afterTask": 1, "files": []}');
  mkdirSync(join(dir, 'predictions', '.after-task-2.1.tmp'));
  const r = cli('resume', dir);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(join(dir, 'predictions')).sort(), ['after-task-1', 'after-task-2', 'zero-shot']);
  const a = predictionsOf(whole);
  const b = predictionsOf(dir);
  assert.deepEqual([...b.keys()], [...a.keys()]);
  assert.equal(a.size, 12);
  for (const [key, { set, records }] of a) {
    const other = b.get(key)!;
    assert.equal(other.set.accuracy, set.accuracy, key);
    const strip = (rs: PredictionRecord[]) => rs.map(({ scores: _s, ...rest }) => rest);
    assert.deepEqual(strip(other.records), strip(records), `${key}: the same predictions`);
    records.forEach((rec, i) => {
      for (const [label, v] of Object.entries(rec.scores ?? {}))
        assert.ok(Math.abs((other.records[i].scores![label] ?? NaN) - (v ?? NaN)) < 1e-3, `${key} #${i} ${label}`);
    });
  }
  rmSync(dir, { recursive: true, force: true });
});
