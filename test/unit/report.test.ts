// Reports (src/runs/report.ts, src/runs/report-html.ts, src/cli/report.ts): the aggregate leads with its numbers
// and verdicts, per-run detail follows, the CSV stays one long table, and the HTML page escapes what runs name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reportCommand } from '../../src/cli/report';
import { aggregateRuns } from '../../src/runs/aggregate';
import { finishSummary, type RunSummary } from '../../src/runs/fold';
import { CSV_HEADER, csvReport, fmtEstimate, markdownReport } from '../../src/runs/report';
import { htmlReport } from '../../src/runs/report-html';
import { fixture } from '../helpers/paths';
import { failedRun, gridRun } from '../helpers/summaries';

// 3 methods × 2 orders × 3 seeds: ewc gains on every cell (6 pairs: p = 1/32, 'better'), drift loses on every
// cell ('worse'); one more ewc run failed.
const HOSTILE = '<img src=x onerror=alert(1)>';
function grid(): RunSummary[] {
  const runs: RunSummary[] = [];
  for (const o of [0, 1]) {
    for (const s of [1, 2, 3]) {
      runs.push(gridRun('seqft', o, s), gridRun('ewc', o, s, 1 + o + s / 10), gridRun('drift', o, s, -(1 + s / 5)));
    }
  }
  runs.push(failedRun('ewc', 1, 4));
  return runs;
}

test('Markdown: the methods table, the paired table with verdicts and the notes lead; runs follow', () => {
  const runs = grid();
  const agg = aggregateRuns(runs);
  const md = markdownReport(runs);
  assert.equal(md, markdownReport(runs, agg), 'the aggregate is computed when not given');
  const order = [
    '# Sculpt report',
    '## Methods',
    '## Against seqft',
    '## Notes',
    '## Per run',
    '### seqft-o0-s1 (seqft)',
  ];
  const at = order.map((h) => md.indexOf(`${h}\n`));
  assert.ok(
    at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1])),
    `sections in order: ${at}`,
  );
  const seqft = agg.methods.find((m) => m.method === 'seqft')!;
  const e = seqft.metrics.AA;
  const half = ((e.ci95![1] - e.ci95![0]) / 2).toFixed(1);
  assert.equal(fmtEstimate(e), `${e.mean!.toFixed(1)} ± ${half}`);
  assert.ok(md.includes(`| seqft | 6 | ${fmtEstimate(e)} | `), 'mean ± half-width per method');
  assert.ok(md.includes('| ewc | 6 | '), 'the failed run is not counted');
  // ewc - seqft on AA: 1 + order + seed/10 per cell, mean 1.7, all six positive.
  assert.match(md, /\| ewc \| AA \| \+1\.7 \| \[\+\d\.\d, \+\d\.\d\] \| 0\.031 \| better \|/);
  assert.match(md, /\| drift \| AA \| -1\.4 \| \[-\d\.\d, -\d\.\d\] \| 0\.031 \| worse \|/);
  assert.match(md, /\| ewc \| BWT \| 0\.0 \| \[0\.0, 0\.0\] \| 1\.000 \| not distinguishable at 95% \|/);
  assert.ok(md.includes('- 1 run left out because they did not finish with metrics: ewc-o1-s4 (failed).'));
  assert.ok(md.includes('| ewc-o1-s4 | ewc | failed | – |'), 'the failed run is still in the per-run table');
  // One run per method: no interval, said so in the cell and in the notes.
  const single = markdownReport([gridRun('seqft', 0, 1)]);
  assert.ok(single.includes(`| seqft | 1 | 70.5 (n = 1, no interval) |`));
  assert.ok(single.includes('- n = 1 per method: no confidence interval; one run decides nothing.'));
  assert.ok(!single.includes('## Against'), 'one method: nothing to compare');
  // A pipe in a name cannot break the table.
  assert.ok(markdownReport([gridRun('a|b', 0, 1)]).includes('| a\\|b | 1 |'));
});

test('CSV: the per-run rows as before, then per-method and per-comparison rows in the same long table', () => {
  const runs = grid();
  const agg = aggregateRuns(runs);
  const lines = csvReport(runs, agg).trimEnd().split('\n');
  assert.equal(lines[0], CSV_HEADER.join(','));
  assert.equal(lines[0], 'run,method,kind,after_task,task,value,metric,baseline');
  assert.ok(
    lines.every((l) => l.split(',').length === 8),
    'one table: every row has every column',
  );
  assert.ok(lines.includes('seqft-o0-s1,seqft,accuracy,zero-shot,alpha,10,,'));
  assert.ok(lines.includes('seqft-o0-s1,seqft,accuracy,alpha,beta,30.5,,'));
  assert.ok(lines.includes('seqft-o0-s1,seqft,seconds,,,12,,'));
  assert.ok(lines.includes(`seqft-o0-s1,seqft,AA,,,${runs[0].metrics!.AA},AA,`));
  const seqftAA = agg.methods.find((m) => m.method === 'seqft')!.metrics.AA;
  assert.ok(lines.includes(`,seqft,n,,,6,AA,`));
  assert.ok(lines.includes(`,seqft,mean,,,${seqftAA.mean},AA,`));
  assert.ok(lines.includes(`,seqft,sd,,,${seqftAA.sd},AA,`));
  assert.ok(lines.includes(`,seqft,ci95_low,,,${seqftAA.ci95![0]},AA,`));
  assert.ok(lines.includes(`,seqft,ci95_high,,,${seqftAA.ci95![1]},AA,`));
  assert.ok(lines.includes(`,seqft,accuracy_mean,gamma,alpha,${50 + (0.5 + 1 + 1.5 + 1.5 + 2 + 2.5) / 6},,`));
  const d = agg.comparisons.find((c) => c.method === 'ewc')!.metrics.AA;
  assert.ok(lines.includes(`,ewc,n_pairs,,,6,AA,seqft`));
  assert.ok(lines.includes(`,ewc,diff_mean,,,${d.mean},AA,seqft`));
  assert.ok(lines.includes(`,ewc,diff_ci95_low,,,${d.ci95![0]},AA,seqft`));
  assert.ok(lines.includes(`,ewc,diff_ci95_high,,,${d.ci95![1]},AA,seqft`));
  assert.ok(lines.includes(`,ewc,p,,,0.03125,AA,seqft`));
  assert.ok(lines.includes(`,ewc,verdict,,,better,AA,seqft`));
  assert.ok(lines.includes(`,drift,verdict,,,worse,AA,seqft`));
  assert.ok(csvReport([gridRun('a,"b"', 0, 1)]).includes('\n"a,""b""-o0-s1","a,""b""",accuracy,'), 'quoted');
});

test('HTML: aggregate and paired tables with verdicts, a chart per metric, every name escaped', () => {
  const runs = grid().map((r) =>
    r.method === 'drift' ? { ...r, name: `${HOSTILE}-${r.name}`, method: `${HOSTILE}"'&` } : r,
  );
  const agg = aggregateRuns(runs);
  const html = htmlReport(runs, agg);
  assert.equal(html, htmlReport(runs), 'the aggregate is computed when not given');
  assert.doesNotMatch(html, /<script|<img|onerror=alert\(1\)>|src="http|href="http/);
  assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;'), 'the method name, escaped');
  assert.ok(html.includes('<h2>Methods</h2>') && html.includes('<h2>Against seqft</h2>'));
  const seqft = agg.methods.find((m) => m.method === 'seqft')!;
  assert.ok(html.includes(`<td class="num">${fmtEstimate(seqft.metrics.AA)}</td>`));
  assert.ok(html.includes('<td class="verdict better">better</td>'));
  assert.ok(html.includes('<td class="verdict worse">worse</td>'));
  assert.ok(html.includes('<td class="verdict same">not distinguishable at 95%</td>'));
  assert.ok(html.includes('ewc-o1-s4 (failed)'), 'the notes');
  for (const k of ['AA', 'BWT', 'forgetting', 'FWT']) {
    assert.ok(html.includes(`aria-label="${k} by method: mean, 95% interval and each run"`), `chart of ${k}`);
  }
  // Every counted run is a dot, with its name in the tooltip.
  assert.equal((html.match(/<circle [^>]*fill-opacity="0.6"><title>seqft-o/g) ?? []).length, 4 * 6);
  // Per-run detail stays: the table and each run's heatmap.
  assert.ok(html.includes('<h2>Per run</h2>'));
  assert.ok(html.includes(`>${runs[0].metrics!.AA.toFixed(1)}<`));
  assert.match(html, /aria-label="accuracy matrix of &lt;img src=x onerror=alert\(1\)&gt;-drift-o0-s1"/);
});

test('validation figures: marked columns in Markdown and HTML, validation_* rows in CSV; absent without them', () => {
  // Validation accuracies 5 points under the test ones.
  const withValidation = (r: RunSummary): RunSummary =>
    finishSummary({
      ...r,
      validationMatrix: r.matrix.map((row) => row.map((v) => v - 5)),
      validationZeroShot: r.zeroShot,
      validationMetrics: null,
    });
  const runs = [gridRun('seqft', 0, 1), gridRun('seqft', 0, 2), gridRun('ewc', 0, 1, 1), gridRun('ewc', 0, 2, 1)].map(
    withValidation,
  );
  const agg = aggregateRuns(runs);
  const seqft = agg.methods[0];
  assert.equal(seqft.validationMetrics.AA.n, 2);
  assert.ok(Math.abs(seqft.validationMetrics.AA.mean! - (seqft.metrics.AA.mean! - 5)) < 1e-9);
  const md = markdownReport(runs, agg);
  assert.ok(md.includes('| method | n | AA | BWT | forgetting | FWT | validation AA | validation BWT |'));
  const v = seqft.validationMetrics;
  assert.ok(md.includes(` | ${fmtEstimate(seqft.metrics.FWT)} | ${fmtEstimate(v.AA)} | ${fmtEstimate(v.BWT)} |`));
  assert.ok(
    md.includes('| run | method | status | AA | BWT | forgetting | FWT | validation AA | validation BWT | time (s) |'),
  );
  assert.ok(md.includes('validation AA / BWT: the same on the validation splits'));
  assert.ok(md.includes('of the first evaluation mode each run lists (`eval.modes`'), 'which mode the figures are');
  assert.ok(md.includes('| after \\ on validation | alpha | beta | gamma |'), 'each run shows its validation matrix');
  // ewc is 1 point above seqft everywhere, so it ranks first on validation, by 1 point on both pairs.
  const ranked = md.slice(md.indexOf('## Ranked on validation'));
  const ewc = agg.methods[1].validationMetrics;
  assert.ok(ranked.includes(`| 1 | ewc | 2 | ${ewc.AA.mean!.toFixed(1)} | ${ewc.BWT.mean!.toFixed(1)} |`));
  assert.ok(ranked.includes(`| 2 | seqft | 2 | ${v.AA.mean!.toFixed(1)} | ${v.BWT.mean!.toFixed(1)} |`));
  assert.ok(ranked.includes('ewc leads seqft by +1.0 validation AA points over 2 paired cells'), ranked);
  assert.ok(ranked.includes('not distinguishable at 95%, so these runs do not settle the choice'), ranked);
  assert.ok(ranked.indexOf('## Ranked on validation') < ranked.indexOf('## Per run'));
  const lines = csvReport(runs, agg).trimEnd().split('\n');
  assert.ok(lines.every((l) => l.split(',').length === 8));
  assert.ok(lines.includes('seqft-o0-s1,seqft,validation_accuracy,alpha,beta,25.5,,'));
  assert.ok(lines.includes('seqft-o0-s1,seqft,validation_accuracy,zero-shot,alpha,10,,'));
  assert.ok(lines.includes(`seqft-o0-s1,seqft,validation_AA,,,${runs[0].validationMetrics!.AA},AA,`));
  assert.ok(lines.includes(`seqft-o0-s1,seqft,AA,,,${runs[0].metrics!.AA},AA,`), 'the test rows as they were');
  assert.ok(lines.includes(`,seqft,validation_n,,,2,AA,`));
  assert.ok(lines.includes(`,seqft,validation_mean,,,${v.AA.mean},AA,`));
  assert.ok(lines.includes(`,seqft,validation_ci95_low,,,${v.AA.ci95![0]},AA,`));
  const html = htmlReport(runs, agg);
  assert.ok(html.includes('<th>validation AA</th><th>validation BWT</th>'));
  assert.ok(html.includes(`<td class="num">${fmtEstimate(v.AA)}</td>`));
  assert.ok(html.includes('aria-label="validation accuracy matrix of seqft-o0-s1"'));
  assert.ok(html.includes('<h2>Ranked on validation</h2>'));
  assert.ok(html.includes(`<td class="num">1</td><td>ewc</td><td class="num">2</td>`));
  // Runs without validation splits: the reports say nothing of them.
  const plain = grid();
  for (const text of [markdownReport(plain), csvReport(plain), htmlReport(plain)])
    assert.doesNotMatch(text, /validation/i);
});

test('HTML: each legend label of the line chart carries its series colour', () => {
  const html = htmlReport(grid());
  // A CSS fill on the label's class would override its fill attribute (the bug that made every label grey).
  const css = html.slice(html.indexOf('<style>'), html.indexOf('</style>'));
  assert.doesNotMatch(css, /\.legend\s*\{[^}]*fill/);
  const chart = html.slice(html.indexOf('aria-label="average accuracy after each task"'));
  const labels = [...chart.matchAll(/<text [^>]*class="([^"]*)" fill="(#[0-9a-f]{6})">([^<]*)<\/text>/g)];
  assert.deepEqual(
    labels.map((m) => [m[1], m[3]]),
    [
      ['legend', 'seqft'],
      ['legend', 'ewc'],
      ['legend', 'drift'],
    ],
  );
  for (const [, , colour, method] of labels) {
    assert.ok(chart.includes(`<polyline fill="none" stroke="${colour}"`), `${method}'s lines are ${colour}`);
  }
  assert.equal(new Set(labels.map((m) => m[2])).size, 3, 'three colours');
});

test('sculpt report: --json gives { runs, aggregate }, --baseline picks the baseline, an unknown one is refused', () => {
  const dirs = ['tiny-seqft-20261127-031550', 'tiny-adaptive-svd-20261127-031550'].map((d) =>
    fixture('extension', 'runs', d),
  );
  const out = join(mkdtempSync(join(tmpdir(), 'sculpt-report-')), 'report.json');
  const errors: string[] = [];
  const { error } = console;
  console.error = (...a: unknown[]) => errors.push(a.join(' '));
  try {
    assert.equal(reportCommand(dirs, { csv: false, json: true, out }), 0);
    const json = JSON.parse(readFileSync(out, 'utf8'));
    assert.deepEqual(Object.keys(json), ['runs', 'aggregate']);
    assert.deepEqual(
      json.runs.map((r: RunSummary) => [r.method, r.status]),
      [
        ['seqft', 'finished'],
        ['adaptive-svd', 'finished'],
      ],
    );
    assert.equal(json.aggregate.baseline, 'seqft');
    assert.deepEqual(json.aggregate, aggregateRuns(json.runs));
    assert.equal(reportCommand(dirs, { csv: false, json: true, out, baseline: 'adaptive-svd' }), 0);
    assert.equal(JSON.parse(readFileSync(out, 'utf8')).aggregate.baseline, 'adaptive-svd');
    assert.equal(errors.length, 0, errors.join('\n'));
    assert.equal(reportCommand(dirs, { csv: false, out, baseline: 'lora' }), 2);
    assert.match(errors.join('\n'), /unknown baseline method "lora": the runs' methods are seqft, adaptive-svd/);
  } finally {
    console.error = error;
  }
});
