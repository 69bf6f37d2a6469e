/**
 * The extension activated against a stand-in `vscode` (test/helpers/vscode-stub.ts) in a scratch workspace:
 * commands, views, diagnostics and completion are wired, and an untrusted workspace or an invalid config
 * refuses to run. test/integration/extension-run.test.ts runs the real trainer through the same commands.
 */
import { ui, events, textDocument, Uri } from '../helpers/vscode-stub';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { activateExtension, command as run, rows, tree, until } from '../helpers/extension-host';
import { tinyExperiment } from '../helpers/experiment';
import { fixture, repoRoot } from '../helpers/paths';

const ws = mkdtempSync(path.join(tmpdir(), 'sculpt-ext-'));
writeFileSync(path.join(ws, 'exp.sculpt.json'), JSON.stringify(tinyExperiment({ name: 'exp' }), null, 2));
mkdirSync(path.join(ws, 'more'));
const badText = JSON.stringify(
  tinyExperiment({ name: 'bad', tasks: [{ name: 'a', source: { train: 'data/a.jsonl', test: 'data/a.jsonl' } }] }),
  null,
  2,
);
writeFileSync(path.join(ws, 'more', 'bad.sculpt.json'), badText);
cpSync(fixture('extension', 'runs'), path.join(ws, 'runs'), { recursive: true });
activateExtension(ws);

test('activation registers every contributed command and the three views', () => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const contributed = pkg.contributes.commands.map((c: { command: string }) => c.command).sort();
  assert.deepEqual([...ui.commands.keys()].filter((k) => k.startsWith('sculpt.')).sort(), contributed);
  assert.deepEqual([...ui.treeViews.keys()].sort(), ['sculpt.experiments', 'sculpt.ranks', 'sculpt.runs']);
  assert.equal(ui.completion.length, 1);
});

test("the Runs and Experiments views list the workspace's runs and configs", async () => {
  const experiments = await until(
    'experiments',
    () => rows('sculpt.experiments').length === 2 && rows('sculpt.experiments'),
  );
  assert.deepEqual(
    experiments.map((n) => [n.label, n.description]),
    [
      ['exp', undefined],
      ['bad', 'more'],
    ],
  );
  const runs = rows('sculpt.runs');
  assert.deepEqual(
    runs.map((n) => n.label),
    ['long · seqft', 'tiny · adaptive-svd', 'tiny · seqft'],
  );
  const item = tree('sculpt.runs').provider.getTreeItem(runs[1]);
  assert.equal(item.iconPath.id, 'pass');
  assert.equal(item.contextValue, 'sculptRun.finished');
});

test('selecting a run shows its subspace ranks; the toggle switches to ratios first', async () => {
  const svd = rows('sculpt.runs')[1];
  tree('sculpt.runs').view.select([svd]);
  const ranks = await until('ranks', () => rows('sculpt.ranks').length > 0 && rows('sculpt.ranks'));
  assert.deepEqual(
    ranks.map((n) => n.label),
    ['Before task 2 (topic)', 'Before task 3 (size)'],
  );
  assert.equal(tree('sculpt.ranks').view.description, 'tiny · adaptive-svd');
  await run('sculpt.ranks.showRatios');
  assert.equal(ui.context.get('sculpt.ranksShowRatios'), true);
  await until('ratios', () =>
    /^q: \d+(\.\d)?% \(\d+\/\d+\)$/.test(rows('sculpt.ranks')[0].children![0].children![0].label),
  );
  await run('sculpt.ranks.showRanks');
});

test('diagnostics: a missing data file is an error at its exact range', () => {
  const file = path.join(ws, 'more', 'bad.sculpt.json');
  events.openDocument.fire(textDocument(file, badText));
  const diags = ui.diagnostics.get(file)!;
  assert.deepEqual(
    diags.map((d) => d.code),
    ['tasks[0].source.train', 'tasks[0].source.test'],
  );
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
  assert.match(
    ui.messages.at(-1)!.text,
    /cannot run more\/bad\.sculpt\.json: tasks\[0\]\.source\.train: data file not found/,
  );
});

test('Stop Run with nothing running says so', async () => {
  await run('sculpt.stopRun');
  assert.match(ui.messages.at(-1)!.text, /no run is running or queued/);
});
