/**
 * The extension activated against a stand-in `vscode` (test/helpers/vscode-stub.ts) in a scratch workspace:
 * commands, views, diagnostics and completion are wired, and an untrusted workspace or an invalid config
 * refuses to run. test/integration/extension-run.test.ts runs the real trainer through the same commands.
 */
import { ui, events, textDocument, Uri } from '../helpers/vscode-stub';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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

test('quick fixes: a misspelt method or field name is changed to the one it suggests', async () => {
  const file = path.join(ws, 'more', 'typo.sculpt.json');
  const text = JSON.stringify(
    { ...tinyExperiment({ name: 'typo', methods: [{ method: 'seqfy' as 'seqft' }] }), trainig: {} },
    null,
    2,
  );
  const doc = textDocument(file, text);
  events.openDocument.fire(doc);
  const diags = ui.diagnostics.get(file)!;
  assert.deepEqual(
    diags.map((d) => d.code),
    ['methods[0].method', 'trainig'],
  );
  const { provider, metadata } = ui.codeActions[0];
  assert.deepEqual(metadata, { providedCodeActionKinds: ['quickfix'] });
  const applied = async (d: (typeof diags)[number]) => {
    const actions = await provider.provideCodeActions(doc, d.range, { diagnostics: [d] });
    assert.equal(actions.length, 1);
    assert.equal(actions[0].kind, 'quickfix');
    const [edit] = actions[0].edit.edits;
    assert.equal(edit.uri.fsPath, file);
    return {
      title: actions[0].title,
      text: text.slice(0, doc.offsetAt(edit.range.start)) + edit.newText + text.slice(doc.offsetAt(edit.range.end)),
    };
  };
  const method = await applied(diags[0]);
  assert.equal(method.title, "Change to 'seqft'");
  assert.equal(method.text, text.replace('"method": "seqfy"', '"method": "seqft"'));
  assert.equal(JSON.parse(method.text).methods[0].method, 'seqft');
  const field = await applied(diags[1]);
  assert.equal(field.title, "Change to 'training'");
  assert.equal(field.text, text.replace('"trainig": {}', '"training": {}'));
  // A diagnostic of another source, or of no fix, gets no action.
  const other = { ...diags[0], source: 'json' };
  assert.deepEqual(await provider.provideCodeActions(doc, diags[0].range, { diagnostics: [other] }), []);
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

/** An experiment folder in the workspace's runs folder, its cells copied from the fixture runs. */
function experimentFolder(folder: string, name: string, created: string, cells: [string, string][]): string {
  const dir = path.join(ws, 'runs', folder);
  const record = {
    kind: 'sculpt-experiment',
    version: 1,
    name,
    configFile: null,
    created,
    methods: [...new Set(cells.map(([cell]) => cell.split('-o')[0]))],
    orders: [['sentiment', 'topic', 'size']],
    seeds: [0],
    baseline: null,
    cells: cells.map(([cell], methodIndex) => ({
      dir: cell,
      methodIndex,
      method: cell.split('-o')[0],
      order: 0,
      seed: 0,
    })),
  };
  for (const [cell, from] of cells) {
    cpSync(path.join(ws, 'runs', from), path.join(dir, cell), { recursive: true });
    // A launch gives every cell the experiment's config.
    const config = path.join(dir, cell, 'config.json');
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), name }));
  }
  writeFileSync(path.join(dir, 'experiment.json'), JSON.stringify(record));
  return dir;
}

test('an experiment row of the Runs view: its view, Stop and Delete act on its folder', async () => {
  const grid = experimentFolder('grid-20261207-090000', 'grid', '2026-12-07T09:00:00.000Z', [
    ['seqft-o1-s0', 'tiny-seqft-20261127-031550'],
    ['adaptive-svd-o1-s0', 'tiny-adaptive-svd-20261127-031550'],
  ]);
  const node = rows('sculpt.runs')[0];
  assert.deepEqual([node.label, node.experimentDir], ['grid', grid]);
  assert.deepEqual(
    node.children!.map((c) => c.label),
    ['seqft · o1 · s0', 'adaptive-svd · o1 · s0'],
  );
  // From the context menu (VS Code passes the row and the selection).
  const panels = ui.panels.length;
  await run('sculpt.openExperiment', node, [node]);
  assert.equal(ui.panels.length, panels + 1);
  assert.equal(ui.panels.at(-1)!.title, 'Sculpt: grid');
  // The row's click: the same panel, revealed.
  const click = tree('sculpt.runs').provider.getTreeItem(node).command;
  await run(click.command, ...click.arguments);
  assert.equal(ui.panels.length, panels + 1, 'one panel per experiment');
  const cellClick = tree('sculpt.runs').provider.getTreeItem(node.children![1]).command;
  await run(cellClick.command, ...cellClick.arguments);
  assert.equal(ui.panels.at(-1)!.title, 'Sculpt: adaptive-svd-o1-s0', "a cell's click opens its dashboard");
  // Selecting a cell shows its ranks, named by its place in the grid.
  tree('sculpt.runs').view.select([node.children![1]]);
  assert.equal(tree('sculpt.ranks').view.description, 'grid · adaptive-svd · o1 · s0');
  await run('sculpt.stopExperiment', node, [node]);
  assert.match(ui.messages.at(-1)!.text, /no run of this experiment is running or queued/);

  // Export Report on the row reports every run of the grid, beside the experiment by default.
  const target = path.join(grid, 'exported.md');
  ui.answers.push({ label: 'Markdown', ext: 'md' }, Uri.file(target));
  await run('sculpt.exportReport', node, [node]);
  assert.match(ui.messages.at(-1)!.text, /^Sculpt: report of 2 runs saved to /);
  const report = readFileSync(target, 'utf8');
  assert.match(report, /^# Sculpt report\n\n## Methods\n/);
  for (const cell of ['seqft-o1-s0', 'adaptive-svd-o1-s0']) assert.ok(report.includes(`| ${cell} |`), cell);

  // Delete asks first, naming how many runs go; no answer keeps the folder.
  await run('sculpt.deleteExperiment', node, [node]);
  assert.match(ui.messages.at(-1)!.text, /^Delete the experiment grid \(.*\) and its 2 runs\?/);
  assert.ok(existsSync(grid));
  ui.answers.push('Delete');
  await run('sculpt.deleteExperiment', node, [node]);
  assert.ok(!existsSync(grid), 'the whole folder is gone');
  assert.equal(tree('sculpt.ranks').view.description, undefined, 'its ranks are no longer shown');
  assert.ok(!rows('sculpt.runs').some((n) => n.experimentDir === grid));
});

test('Delete Experiment refuses while a run of it is running', async () => {
  const busy = experimentFolder('busy-20261208-090000', 'busy', '2026-12-08T09:00:00.000Z', [
    ['seqft-o1-s0', 'long-seqft-20261127-031557'],
  ]);
  // The log without its end, written just now: a trainer outside VS Code is at it.
  const log = path.join(busy, 'seqft-o1-s0', 'events.jsonl');
  writeFileSync(log, readFileSync(log, 'utf8').trimEnd().split('\n').slice(0, -2).join('\n') + '\n');
  const node = rows('sculpt.runs').find((n) => n.experimentDir === busy)!;
  assert.equal(node.contextValue, 'sculptExperimentFolder.live');
  ui.answers.push('Delete');
  await run('sculpt.deleteExperiment', node, [node]);
  ui.answers.length = 0;
  assert.match(ui.messages.at(-1)!.text, /busy · seqft · o1 · s0 is still running or queued; stop the experiment/);
  assert.ok(existsSync(busy));
  rmSync(busy, { recursive: true, force: true });
});
