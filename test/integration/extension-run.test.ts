/**
 * Run Experiment in the extension (activated against the stand-in `vscode`, test/helpers/vscode-stub.ts) drives
 * the real trainer (dist/trainer.js) to the end, with the status bar, the views and the dashboard following.
 * Needs `npm run build` first (npm test does it).
 */
import { ui, Uri } from '../helpers/vscode-stub';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { experimentCells } from '../../src/runs/experiment-dir';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { activateExtension, command as run, rows, tree, until } from '../helpers/extension-host';
import { tinyExperiment, tinyTraining, writeExperiment } from '../helpers/experiment';
import { fixture } from '../helpers/paths';
import { TRAINER } from '../helpers/runs';

const ws = mkdtempSync(path.join(tmpdir(), 'sculpt-ext-run-'));
const exp = writeExperiment(
  ws,
  tinyExperiment({
    name: 'exp',
    methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', ratio: 0.5 } }],
    training: tinyTraining({ epochs: 1 }),
    eval: { zeroShot: false },
  }),
);
cpSync(fixture('extension', 'runs'), path.join(ws, 'runs'), { recursive: true });
activateExtension(ws);

test('Run Experiment: the trainer runs each method, the status bar and views follow, the dashboard opens', async () => {
  assert.ok(existsSync(TRAINER), 'dist/trainer.js is missing: run npm run build (npm test does)');
  const before = new Set(readdirSync(path.join(ws, 'runs')));
  await run('sculpt.runExperiment', Uri.file(exp));
  const made = readdirSync(path.join(ws, 'runs')).filter((d) => !before.has(d));
  assert.equal(made.length, 1, 'one experiment folder');
  const created = experimentCells(path.join(ws, 'runs', made[0]));
  assert.equal(created.length, 2, 'a run folder per method');
  assert.equal(ui.panels.length, 1, 'the dashboard opened beside the config');
  const bar = ui.statusBar[0];
  await until('status bar', () => bar.visible && /^\$\((sync|loading)~spin\) Sculpt: /.test(bar.text));
  // A grid says once that it is done, not once per cell.
  await until('the grid done', () => ui.messages.some((m) => m.text === 'Sculpt: exp done · 2 of 2 runs finished.'));
  assert.equal(ui.messages.filter((m) => /^Sculpt: exp/.test(m.text)).length, 1, 'one message for the grid');
  await until('status bar hidden', () => !bar.visible);
  // The launch is one row of the Runs view, open, with its runs beneath.
  const launch = rows('sculpt.runs').find((n) => n.label === 'exp')!;
  assert.equal(launch.experimentDir, path.join(ws, 'runs', made[0]));
  assert.match(launch.description ?? '', /^finished · /);
  assert.equal(launch.expanded, true);
  const mine = launch.children!;
  assert.deepEqual(
    mine.map((n) => [n.label, n.description?.split(' · ')[0]]),
    [
      ['seqft · o1 · s0', 'finished'],
      ['adaptive-svd · o1 · s0', 'finished'],
    ],
  );
  assert.equal(
    tree('sculpt.ranks').view.description,
    'exp · adaptive-svd · o1 · s0',
    'the adaptive SVD run is shown in Subspace Ranks',
  );
  assert.ok(existsSync(path.join(created[0], 'trainer.log')));
  assert.ok(!existsSync(path.join(created[0], 'trainer.pid')));
  assert.equal(ui.progress.length, 0, 'progress shows in the status bar and the dashboard, not in a notification');

  const report = path.join(ws, 'report.md');
  ui.answers.push({ label: 'Markdown', ext: 'md' }, Uri.file(report));
  await run('sculpt.exportReport', mine[0], mine);
  assert.match(readFileSync(report, 'utf8'), /^# Sculpt report\n\n## Methods\n\n\| method \| n \|/);
});

test('Stop Run after the runs ended says nothing is running', async () => {
  await run('sculpt.stopRun');
  assert.match(ui.messages.at(-1)!.text, /no run is running or queued/);
});
