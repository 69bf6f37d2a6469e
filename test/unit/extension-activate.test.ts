/**
 * The extension activated against a stand-in `vscode` (test/helpers/vscode-stub.ts) in a scratch workspace:
 * commands, views, diagnostics and completion are wired, an untrusted workspace refuses to run, and Run
 * Experiment drives the real trainer (dist/trainer.js) to the end with the views and status bar following.
 */
import { ui, events, textDocument, vscode, Uri } from '../helpers/vscode-stub';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { activate } from '../../src/extension/main';
import type { TreeNode } from '../../src/extension/trees/node';
import { fixture, repoRoot } from '../helpers/paths';

const ws = mkdtempSync(path.join(tmpdir(), 'sculpt-ext-'));
const config = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  model: 'builtin:tiny-llama',
  backend: 'wasm',
  tasks: [
    { name: 'sentiment', source: { builtin: 'tiny/sentiment' } },
    { name: 'topic', source: { builtin: 'tiny/topic' } },
  ],
  methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', ratio: 0.5 } }],
  training: { epochs: 1, batchSize: 16, lr: 0.01, maxSeqLen: 16, stepEventInterval: 1 },
  eval: { zeroShot: false },
  ...extra,
});
writeFileSync(path.join(ws, 'exp.sculpt.json'), JSON.stringify(config('exp'), null, 2));
mkdirSync(path.join(ws, 'more'));
const badText = JSON.stringify(config('bad', { tasks: [{ name: 'a', source: { train: 'data/a.jsonl', test: 'data/a.jsonl' } }] }), null, 2);
writeFileSync(path.join(ws, 'more', 'bad.sculpt.json'), badText);
cpSync(fixture('extension', 'runs'), path.join(ws, 'runs'), { recursive: true });

ui.workspace = ws;
ui.settings['sculpt.nodePath'] = process.execPath;
const state = new Map<string, unknown>();
const context = {
  subscriptions: [] as { dispose(): unknown }[],
  extensionUri: Uri.file(repoRoot),
  extensionPath: repoRoot,
  asAbsolutePath: (p: string) => path.join(repoRoot, p),
  workspaceState: { get: (k: string, d?: unknown) => (state.has(k) ? state.get(k) : d), update: async (k: string, v: unknown) => void state.set(k, v) },
};
activate(context as never);
after(() => context.subscriptions.forEach((d) => d.dispose()));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => T | undefined | false, ms = 30_000): Promise<T> {
  for (let t = 0; t < ms; t += 50) {
    const v = fn();
    if (v) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
const tree = (id: string) => ui.treeViews.get(id)!;
const rows = (id: string): TreeNode[] => tree(id).provider.getChildren();
const run = (id: string, ...args: unknown[]) => vscode.commands.executeCommand(id, ...args);

test('activation registers every contributed command and the three views', () => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const contributed = pkg.contributes.commands.map((c: { command: string }) => c.command).sort();
  assert.deepEqual([...ui.commands.keys()].filter((k) => k.startsWith('sculpt.')).sort(), contributed);
  assert.deepEqual([...ui.treeViews.keys()].sort(), ['sculpt.experiments', 'sculpt.ranks', 'sculpt.runs']);
  assert.equal(ui.completion.length, 1);
});

test('the Runs and Experiments views list the workspace\'s runs and configs', async () => {
  const experiments = await until('experiments', () => rows('sculpt.experiments').length === 2 && rows('sculpt.experiments'));
  assert.deepEqual(experiments.map((n) => [n.label, n.description]), [['exp', undefined], ['bad', 'more']]);
  const runs = rows('sculpt.runs');
  assert.deepEqual(runs.map((n) => n.label), ['long · seqft', 'tiny · adaptive-svd', 'tiny · seqft']);
  const item = tree('sculpt.runs').provider.getTreeItem(runs[1]);
  assert.equal(item.iconPath.id, 'pass');
  assert.equal(item.contextValue, 'sculptRun.finished');
});

test('selecting a run shows its subspace ranks; the toggle switches to ratios first', async () => {
  const svd = rows('sculpt.runs')[1];
  tree('sculpt.runs').view.select([svd]);
  const ranks = await until('ranks', () => rows('sculpt.ranks').length > 0 && rows('sculpt.ranks'));
  assert.deepEqual(ranks.map((n) => n.label), ['Before task 2 (topic)', 'Before task 3 (size)']);
  assert.equal(tree('sculpt.ranks').view.description, 'tiny · adaptive-svd');
  await run('sculpt.ranks.showRatios');
  assert.equal(ui.context.get('sculpt.ranksShowRatios'), true);
  await until('ratios', () => /^q: \d+(\.\d)?% \(\d+\/\d+\)$/.test(rows('sculpt.ranks')[0].children![0].children![0].label));
  await run('sculpt.ranks.showRanks');
});

test('diagnostics: a missing data file is an error at its exact range', () => {
  const file = path.join(ws, 'more', 'bad.sculpt.json');
  events.openDocument.fire(textDocument(file, badText));
  const diags = ui.diagnostics.get(file)!;
  assert.deepEqual(diags.map((d) => d.code), ['tasks[0].source.train', 'tasks[0].source.test']);
  const line = badText.split('\n')[diags[0].range.start.line];
  assert.equal(line.slice(diags[0].range.start.character, diags[0].range.end.character), '"data/a.jsonl"');
  assert.equal(diags[0].source, 'sculpt');
});

test('completion offers builtin ids at the cursor', async () => {
  const text = '{"model": "", "tasks": [{"name": "a", "source": {"builtin": ""}}]}';
  const doc = textDocument(path.join(ws, 'exp.sculpt.json'), text);
  const provider = ui.completion[0].provider;
  const models = await provider.provideCompletionItems(doc, doc.positionAt(11));
  assert.ok(models.some((i: { label: string }) => i.label === 'builtin:tiny-llama'));
  const tasks = await provider.provideCompletionItems(doc, doc.positionAt(text.lastIndexOf('""') + 1));
  assert.ok(tasks.some((i: { label: string }) => i.label === 'tiny/topic'));
});

test('an untrusted workspace refuses to run or resume, and says why', async () => {
  ui.trusted = false;
  const before = readdirSync(path.join(ws, 'runs')).length;
  await run('sculpt.runExperiment', Uri.file(path.join(ws, 'exp.sculpt.json')));
  await run('sculpt.resumeRun', path.join(ws, 'runs', 'long-seqft-20261127-031557'));
  ui.trusted = true;
  const refusals = ui.messages.filter((m) => /disabled in an untrusted workspace/.test(m.text));
  assert.equal(refusals.length, 2);
  assert.equal(readdirSync(path.join(ws, 'runs')).length, before);
});

test('an invalid config is not run: the error names the path', async () => {
  await run('sculpt.runExperiment', Uri.file(path.join(ws, 'more', 'bad.sculpt.json')));
  assert.match(ui.messages.at(-1)!.text, /cannot run more\/bad\.sculpt\.json: tasks\[0\]\.source\.train: data file not found/);
});

test('Run Experiment: the trainer runs each method, the status bar and views follow, the dashboard opens', async () => {
  assert.ok(existsSync(path.join(repoRoot, 'dist', 'trainer.js')), 'dist/trainer.js is missing: run npm run build (npm test does)');
  const before = new Set(readdirSync(path.join(ws, 'runs')));
  await run('sculpt.runExperiment', Uri.file(path.join(ws, 'exp.sculpt.json')));
  const created = readdirSync(path.join(ws, 'runs')).filter((d) => !before.has(d));
  assert.equal(created.length, 2);
  assert.equal(ui.panels.length, 1, 'the dashboard opened beside the config');
  const bar = ui.statusBar[0];
  await until('status bar', () => bar.visible && /^\$\((sync|loading)~spin\) Sculpt: /.test(bar.text));
  await until('both runs finished', () => ui.messages.filter((m) => /^Sculpt: exp · .* finished · AA/.test(m.text)).length === 2);
  await until('status bar hidden', () => !bar.visible);
  const mine = rows('sculpt.runs').filter((n) => n.label.startsWith('exp · '));
  assert.deepEqual(mine.map((n) => n.description?.split(' · ')[0]), ['finished', 'finished']);
  assert.equal(tree('sculpt.ranks').view.description, 'exp · adaptive-svd', 'the adaptive SVD run is shown in Subspace Ranks');
  assert.ok(existsSync(path.join(ws, 'runs', created[0], 'trainer.log')));
  assert.ok(!existsSync(path.join(ws, 'runs', created[0], 'trainer.pid')));
  assert.ok(ui.progress.length >= 2, 'a progress notification per run');

  const report = path.join(ws, 'report.md');
  ui.answers.push({ label: 'Markdown', ext: 'md' }, Uri.file(report));
  await run('sculpt.exportReport', mine[0], mine);
  assert.match(readFileSync(report, 'utf8'), /^# Sculpt report\n\n\| run \| method \|/);
});

test('Stop Run with nothing running says so', async () => {
  await run('sculpt.stopRun');
  assert.match(ui.messages.at(-1)!.text, /no run is running or queued/);
});
