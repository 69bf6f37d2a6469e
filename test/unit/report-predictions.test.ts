// Predictions in the HTML and CSV reports (src/runs/report-html.ts, src/runs/report.ts): per task a confusion
// matrix of the latest evaluation and a capped list of misclassified examples, example text shown as text; and a
// predictions CSV, one row per example, whose fields survive commas, quotes and line breaks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { predictionRecord, writePredictionPoint, type PredictionSetData } from '../../src/runs/predictions';
import { PREDICTIONS_CSV_HEADER, predictionsCsv, predictionsCsvPath } from '../../src/runs/report';
import { HTML_MISCLASSIFIED, htmlReport, predictionsHtml } from '../../src/runs/report-html';
import type { PredictionRecord } from '../../src/protocol/predictions';
import { gridRun } from '../helpers/summaries';

const HOSTILE = '<img src=x onerror=alert(1)>';
const LABELS = ['pos', 'neg', `x${HOSTILE}`];

/** Records of one task: `wrong` of them misclassified as `neg`, the rest right; scores favour the prediction. */
function records(n: number, wrong: number, input = (i: number) => `input ${i}`): PredictionRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const expected = LABELS[i % 3 === 2 ? 2 : 0];
    const predicted = i < wrong ? 'neg' : expected;
    const values = LABELS.map((l) => (l === predicted ? -0.5 : -3));
    return predictionRecord(i, input(i), expected, predicted, predicted === expected, { labels: LABELS, values });
  });
}

function set(task: number, name: string, recs: PredictionRecord[], extra: Partial<PredictionSetData> = {}) {
  const correct = recs.filter((r) => r.correct).length;
  return {
    split: 'test' as const,
    task,
    name,
    mode: 'rank' as const,
    labels: LABELS,
    accuracy: (100 * correct) / recs.length,
    records: recs,
    ...extra,
  };
}

/** A run folder with a zero-shot point and the point after the last of two tasks. */
function runFolder(): { dir: string; last: PredictionRecord[][] } {
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-report-predictions-'));
  const tricky = (i: number) =>
    i === 0 ? `${HOSTILE} "quoted", comma\nsecond line\r\nthird & 'last'` : i === 1 ? '=1+2' : `input ${i}`;
  const last = [records(40, 30, tricky), records(6, 0)];
  writePredictionPoint(dir, -1, ['first', 'second'], [set(0, 'first', records(4, 4))]);
  writePredictionPoint(
    dir,
    1,
    ['first', 'second'],
    [set(0, 'first', last[0]), set(1, 'second', last[1]), set(0, 'first', records(3, 1), { split: 'validation' })],
  );
  return { dir, last };
}

/** RFC 4180 fields of a CSV text: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  assert.equal(field + row.join(''), '', 'the text ends with a line break');
  return rows;
}

test('HTML: per task of the latest point a confusion matrix counted by hand, misclassified examples capped and escaped', () => {
  const { dir } = runFolder();
  try {
    const runs = [gridRun('seqft', 0, 1, 0, { name: `${HOSTILE}-run` })];
    const html = htmlReport(runs, undefined, { predictions: [{ name: runs[0].name, dir }], misclassifiedLimit: 10 });
    assert.doesNotMatch(html, /<script|<img|onerror=alert\(1\)>/);
    assert.ok(html.includes('<h2>Predictions</h2>'));
    assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;-run <small>after task 2, test sets</small>'));
    // The latest point only (not zero-shot), test sets only (the validation file is left out).
    assert.equal((html.match(/<table class="confusion">/g) ?? []).length, 2);
    assert.ok(html.includes('<h4>first <small>rank, 40 examples, accuracy 25.0</small></h4>'));
    // Task "first": 40 records, i % 3 == 2 expect the hostile label, the first 30 predicted 'neg'.
    const first = html.slice(html.indexOf('<h4>first'), html.indexOf('<h4>second'));
    const cells = (row: string) => {
      const tr = first.match(new RegExp(`<tr><th scope="row">${row}</th>(.*?)</tr>`))![1];
      return [...tr.matchAll(/<td [^>]*>(\d+)<\/td>/g)].map((m) => Number(m[1]));
    };
    const hand = { pos: [0, 0, 0], neg: [0, 0, 0], other: [0, 0, 0] };
    for (let i = 0; i < 40; i++) {
      const row = i % 3 === 2 ? hand.other : hand.pos;
      row[i < 30 ? 1 : i % 3 === 2 ? 2 : 0]++;
    }
    assert.deepEqual(cells('pos'), [...hand.pos, 27]);
    assert.deepEqual(cells('neg'), [0, 0, 0, 0]);
    assert.deepEqual(cells('x&lt;img src=x onerror=alert\\(1\\)&gt;'), [...hand.other, 13]);
    assert.match(first, /<td class="num diag" style="[^"]*" title="expected pos, predicted pos: 7 of 27">7<\/td>/);
    // 30 misclassified, 10 listed; the input is text: markup escaped, line breaks kept for pre-wrap.
    assert.ok(first.includes('Misclassified examples: the first 10 of 30, in test-set order'));
    assert.equal((first.match(/<td class="input">/g) ?? []).length, 10);
    assert.ok(
      first.includes(
        '<td class="input">&lt;img src=x onerror=alert(1)&gt; &quot;quoted&quot;, comma\nsecond line\r\nthird &amp; &#39;last&#39;</td>',
      ),
    );
    assert.ok(first.includes('<td>pos</td><td>neg</td><td>neg 86%, pos 7%, x&lt;img'), 'best labels with shares');
    const second = html.slice(html.indexOf('<h4>second'));
    assert.ok(second.includes('No misclassified example.'));
    // Without run folders, or with folders that have no predictions, there is no section.
    assert.ok(!htmlReport(runs).includes('<h2>Predictions</h2>'));
    assert.equal(predictionsHtml([{ name: 'x', dir: join(dir, 'none') }]), '');
    // The default cap.
    assert.ok(predictionsHtml([{ name: 'r', dir }]).includes(`the first ${HTML_MISCLASSIFIED} of 30`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CSV: one row per example and evaluation, every column filled, fields that survive a round trip', () => {
  const { dir, last } = runFolder();
  try {
    const run = gridRun('ewc', 1, 2);
    const { csv, rows, problems } = predictionsCsv([{ summary: run, dir }]);
    assert.deepEqual(problems, []);
    const table = parseCsv(csv);
    assert.deepEqual(table[0], [...PREDICTIONS_CSV_HEADER]);
    assert.equal(
      table[0].join(','),
      'run,method,seed,order,point,split,task,mode,index,input,expected,predicted,correct,scores',
    );
    // zero-shot 4, after task 2: 40 + 6 test and 3 validation.
    assert.equal(rows, 4 + 40 + 6 + 3);
    assert.equal(table.length, rows + 1);
    assert.ok(table.every((r) => r.length === PREDICTIONS_CSV_HEADER.length));
    const col = (name: (typeof PREDICTIONS_CSV_HEADER)[number]) => PREDICTIONS_CSV_HEADER.indexOf(name);
    const body = table.slice(1);
    assert.deepEqual(
      [...new Set(body.map((r) => `${r[col('point')]}/${r[col('split')]}/${r[col('task')]}`))],
      ['zero-shot/test/first', 'after-task-2/test/first', 'after-task-2/test/second', 'after-task-2/validation/first'],
    );
    const rowsOf = body.filter((r) => r[col('point')] === 'after-task-2' && r[col('split')] === 'test');
    rowsOf.slice(0, 40).forEach((r, i) => {
      const x = last[0][i];
      assert.deepEqual(r.slice(0, 9), [
        'ewc-o1-s2',
        'ewc',
        '2',
        '1',
        'after-task-2',
        'test',
        'first',
        'rank',
        String(i),
      ]);
      assert.deepEqual(r.slice(9, 13), [x.input, x.expected, x.predicted, String(x.correct)]);
      assert.deepEqual(JSON.parse(r[col('scores')]), x.scores);
    });
    assert.equal(rowsOf[0][col('input')], `${HOSTILE} "quoted", comma\nsecond line\r\nthird & 'last'`);
    assert.equal(rowsOf[1][col('input')], '=1+2');
    // A run without predictions adds nothing; a broken manifest is named.
    const empty = predictionsCsv([{ summary: run, dir: join(dir, 'none') }]);
    assert.equal(empty.rows, 0);
    assert.equal(empty.csv, `${PREDICTIONS_CSV_HEADER.join(',')}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the predictions CSV goes beside the report', () => {
  assert.equal(predictionsCsvPath('/x/report.csv'), '/x/report.predictions.csv');
  assert.equal(predictionsCsvPath('out/report.CSV'), 'out/report.predictions.csv');
  assert.equal(predictionsCsvPath('summary'), 'summary.predictions.csv');
});
