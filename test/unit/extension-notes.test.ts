/**
 * A run's name, notes and tags (notes.json) in the extension: the Runs view's rows show them (label,
 * description, tooltip; a cell under its experiment too), Rename Run..., Edit Notes... and Edit Tags... write
 * them from the view's context menu, reports use the name, and live progress is in the status bar alone (no
 * progress notification).
 */
import { ui, Uri } from '../helpers/vscode-stub';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { activateExtension, command as run, rows, until } from '../helpers/extension-host';
import { fixture } from '../helpers/paths';
import { readRunFolder } from '../../src/extension/run-folder';
import { qualifiedRunLabel, runNode } from '../../src/extension/trees/run-items';
import { NOTES_FILE, updateRunNotes } from '../../src/runs/run-notes';
import { RunStatusBar } from '../../src/extension/status-bar';
import { EventEmitter } from '../helpers/vscode-stub';
import type { RunRecord } from '../../src/extension/run-manager';
import { initialProgress } from '../../src/extension/live-progress';

const ws = mkdtempSync(path.join(tmpdir(), 'sculpt-notes-ext-'));
cpSync(fixture('extension', 'runs'), path.join(ws, 'runs'), { recursive: true });
const SVD = path.join(ws, 'runs', 'tiny-adaptive-svd-20261127-031550');
const SEQFT = path.join(ws, 'runs', 'tiny-seqft-20261127-031550');
const LONG = path.join(ws, 'runs', 'long-seqft-20261127-031557');
const iso = (ms: number) => new Date(ms).toISOString();

test('tree rows: the user\u2019s name as label, tags in the description, name, id, tags and notes in the tooltip', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sculpt-notes-row-'));
  cpSync(SVD, dir, { recursive: true });
  const plain = runNode({ info: readRunFolder(dir) }, iso);
  assert.equal(plain.label, 'tiny · adaptive-svd');
  updateRunNotes(dir, { title: 'lr 1e-3 retry', notes: 'after fixing the tokenizer', tags: ['baseline', 'ablation'] });
  const info = readRunFolder(dir);
  assert.deepEqual(info.notes, {
    title: 'lr 1e-3 retry',
    notes: 'after fixing the tokenizer',
    tags: ['baseline', 'ablation'],
  });
  const node = runNode({ info }, iso);
  assert.equal(node.label, 'lr 1e-3 retry');
  assert.equal(node.description, `${plain.description} · #baseline #ablation`);
  assert.deepEqual(node.tooltip!.split('\n').slice(0, 5), [
    'lr 1e-3 retry: finished',
    `Run: tiny · adaptive-svd (${path.basename(dir)})`,
    `Folder: ${dir}`,
    'Tags: #baseline #ablation',
    'Notes: after fixing the tokenizer',
  ]);
  assert.equal(runNode({ info }, iso, { nested: true }).label, 'lr 1e-3 retry', 'under its experiment too');
  assert.equal(qualifiedRunLabel(info), 'lr 1e-3 retry', 'in messages and the status bar');
});

test('Rename Run..., Edit Notes..., Edit Tags... write notes.json and the Runs view shows them', async () => {
  activateExtension(ws);
  const rowOf = (dir: string) => rows('sculpt.runs').find((n) => n.runDir === dir);
  await until('the runs', () => rowOf(SVD));
  ui.answers.push('  svd, fixed ratio ');
  await run('sculpt.renameRun', rowOf(SVD), [rowOf(SVD)]);
  assert.deepEqual(JSON.parse(readFileSync(path.join(SVD, NOTES_FILE), 'utf8')), {
    title: 'svd, fixed ratio',
    notes: '',
    tags: [],
  });
  await until('the renamed row', () => rowOf(SVD)?.label === 'svd, fixed ratio');
  ui.answers.push('compare with the paper\u2019s table 2');
  await run('sculpt.editRunNotes', rowOf(SVD));
  await until('the notes in the tooltip', () => rowOf(SVD)?.tooltip?.includes('Notes: compare with the paper'));
  // Tags on every selected run.
  ui.answers.push('#baseline, sweep');
  await run('sculpt.editRunTags', rowOf(SVD), [rowOf(SVD), rowOf(SEQFT)]);
  await until(
    'tags on both rows',
    () =>
      rowOf(SVD)?.description?.endsWith('#baseline #sweep') && rowOf(SEQFT)?.description?.endsWith('#baseline #sweep'),
  );
  // Cancelled input boxes change nothing; an emptied name goes back to the default.
  ui.answers.push(undefined);
  await run('sculpt.renameRun', rowOf(SVD));
  assert.equal(rowOf(SVD)?.label, 'svd, fixed ratio');
  ui.answers.push('');
  await run('sculpt.renameRun', rowOf(SVD));
  await until('the default name back', () => rowOf(SVD)?.label === 'tiny · adaptive-svd');
  assert.equal(rows('sculpt.runs').find((n) => n.runDir === LONG)?.label, 'long · seqft', 'other runs untouched');
  // Reports name a renamed run by its new name (and its folder).
  ui.answers.push('tiny seqft, lr 3e-4');
  await run('sculpt.renameRun', rowOf(SEQFT));
  const report = path.join(ws, 'report.md');
  ui.answers.push({ label: 'Markdown', ext: 'md' }, Uri.file(report));
  await run('sculpt.exportReport', rowOf(SEQFT), [rowOf(SEQFT), rowOf(SVD)]);
  assert.match(readFileSync(report, 'utf8'), /tiny seqft, lr 3e-4 \(tiny-seqft-20261127-031550\)/);
});

test('live progress: the status bar and its tooltip, never a progress notification', () => {
  const state = new EventEmitter<RunRecord>();
  const events = new EventEmitter<unknown>();
  const progress = { ...initialProgress(), tasks: ['a', 'b'], task: 1, taskProgress: 0.5, loss: 0.5 };
  const rec = { dir: '/runs/x', state: 'running', progress, startedAt: 1 } as unknown as RunRecord;
  const waiting = { dir: '/runs/y', state: 'queued', progress: initialProgress() } as unknown as RunRecord;
  let live: RunRecord[] = [];
  let queued: RunRecord[] = [waiting];
  const manager = { onState: state.event, onEvent: events.event, live: () => live, queued: () => queued };
  const before = ui.progress.length;
  const items = ui.statusBar.length;
  const bar = new RunStatusBar(manager as never, (d) => path.basename(d));
  const item = ui.statusBar[items];
  assert.equal(item.text, '$(clock) Sculpt: 1 queued');
  live = [rec];
  state.fire(rec);
  assert.equal(item.text, '$(sync~spin) Sculpt: task 2/2 · 50% · loss 0.50 (+1)');
  assert.deepEqual(item.tooltip?.split('\n'), [
    'x: task 2/2 · 50% · loss 0.50 · 75% of the run',
    '1 queued: y',
    'Click to open the dashboard.',
  ]);
  live = [];
  queued = [];
  state.fire({ ...rec, state: 'finished' } as RunRecord);
  assert.equal(item.visible, false);
  assert.equal(ui.progress.length, before, 'no progress notification');
  bar.dispose();
});
