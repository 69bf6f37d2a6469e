/**
 * Writing a config in the editor: builtin names checked against the catalog with a quick fix, the checks of
 * `sculpt validate` published while typing at their exact ranges, the snippets the schema gives VS Code (built
 * from the config types' defaults), completion of a method's own options, and New Experiment's suites with
 * their rough duration. Against the stand-in `vscode` (imported first), without processes: the engine's checks
 * run in-process through the function `sculpt validate --json` prints.
 */
import { events, textDocument, ui, Uri, vscode } from '../helpers/vscode-stub';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CONFIG_SCHEMA, resolveMethod, validateConfig } from '../../src/protocol/config-validate';
import type { MethodConfig } from '../../src/protocol/config';
import { builtinModels, builtinTask, builtinTasks } from '../../src/runs/builtin';
import { builtinSuites, describeBuiltinModel, describeBuiltinTask } from '../../src/runs/builtin/catalog';
import { configProblems } from '../../src/extension/config-problems';
import { registerConfigDiagnostics, type DeepValidator } from '../../src/extension/config-diagnostics';
import { configCompletions, methodOptionNames } from '../../src/extension/completion-items';
import { DEMO_TRAIN_LIMITS, estimateConfig, presetConfig } from '../../src/extension/experiment-template';
import { newExperiment } from '../../src/extension/new-experiment';
import { validateReport } from '../../src/cli/validate-report';
import { COSTS } from '../../src/runs/estimate';
import { repoRoot } from '../helpers/paths';

const catalog = { models: builtinModels(), tasks: builtinTasks() };
const ws = mkdtempSync(path.join(tmpdir(), 'sculpt-edit-'));
ui.workspace = ws;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, fn: () => T | undefined | false, ms = 20_000): Promise<T> {
  for (let t = 0; t < ms; t += 50) {
    const v = fn();
    if (v) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// One registration for the file: the deep checks are `sculpt validate --json`'s, run in-process.
const deepCalls: string[] = [];
const deep: DeepValidator = async (text, file) => {
  deepCalls.push(file);
  return validateReport(file, text).findings;
};
const registration = registerConfigDiagnostics(deep);
test.after(() => registration.dispose());

const rangeText = (doc: ReturnType<typeof textDocument>, d: { range: { start: unknown; end: unknown } }) =>
  doc.getText().slice(doc.offsetAt(d.range.start as never), doc.offsetAt(d.range.end as never));

test('diagnostics: a misspelt builtin model or task is an error at its exact range, and its quick fix repairs it', async () => {
  const file = path.join(ws, 'typo.sculpt.json');
  const text = JSON.stringify(
    {
      name: 'typo',
      model: 'builtin:sculpt-bse',
      tasks: [
        { name: 'a', source: { builtin: 'cl5/sentimnet' } },
        { name: 'b', source: { builtin: 'cl5/spma' } },
        { name: 'c', source: { builtin: 'cl5/genre' } },
        // No suite given: the suite of the config's other tasks settles it (tiny/sentiment exists too).
        { name: 'd', source: { builtin: 'sentimen' } },
      ],
      methods: [{ method: 'seqft' }],
    },
    null,
    2,
  );
  const doc = textDocument(file, text);
  events.openDocument.fire(doc);
  const diags = ui.diagnostics.get(file)!;
  assert.deepEqual(
    diags.map((d) => [d.code, rangeText(doc, d), d.severity]),
    [
      ['model', '"builtin:sculpt-bse"', 0],
      ['tasks[0].source.builtin', '"cl5/sentimnet"', 0],
      ['tasks[1].source.builtin', '"cl5/spma"', 0],
      ['tasks[3].source.builtin', '"sentimen"', 0],
    ],
  );
  assert.match(
    diags[1].message,
    /^tasks\[0\]\.source\.builtin: unknown builtin task 'cl5\/sentimnet' \(did you mean 'cl5\/sentiment'\?\)/,
  );
  const { provider } = ui.codeActions.at(-1)!;
  let fixed = text;
  // Applied from the last to the first, so that each edit's offsets still hold.
  for (const d of [...diags].reverse()) {
    const actions = await provider.provideCodeActions(doc, d.range, { diagnostics: [d] });
    assert.equal(actions.length, 1, d.code);
    const [edit] = actions[0].edit.edits;
    fixed = fixed.slice(0, doc.offsetAt(edit.range.start)) + edit.newText + fixed.slice(doc.offsetAt(edit.range.end));
  }
  const repaired = JSON.parse(fixed);
  assert.equal(repaired.model, 'builtin:sculpt-base');
  assert.deepEqual(
    repaired.tasks.map((t: { source: { builtin: string } }) => t.source.builtin),
    ['cl5/sentiment', 'cl5/spam', 'cl5/genre', 'cl5/sentiment'],
  );
  assert.deepEqual(configProblems(fixed, file, existsSync, catalog), []);
  // The CLI names the same fix when a run or `sculpt validate` meets the name.
  assert.throws(() => builtinTask('cl5/spma'), /unknown builtin task 'cl5\/spma' \(did you mean 'cl5\/spam'\?\)/);
});

test("diagnostics: sculpt validate's checks of the data appear at their exact ranges once the quick checks pass, warnings as warnings", async () => {
  const dir = path.join(ws, 'deep');
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  const lines = (rows: [string, string][]) =>
    rows.map(([input, output]) => JSON.stringify({ input, output })).join('\n');
  const train: [string, string][] = Array.from({ length: 24 }, (_, i) => [`sunny day ${i}`, i % 2 ? 'good' : 'bad']);
  writeFileSync(path.join(dir, 'data', 'same.jsonl'), lines(train));
  // A test output outside the task's label set: the run would refuse it, so validate does.
  writeFileSync(path.join(dir, 'data', 'odd.test.jsonl'), lines([['rainy day', 'ugly']]));
  const file = path.join(dir, 'deep.sculpt.json');
  const config = {
    name: 'deep',
    model: 'builtin:tiny-llama',
    tasks: [
      { name: 'same', source: { train: './data/same.jsonl', test: './data/same.jsonl' } },
      { name: 'odd', source: { train: './data/same.jsonl', test: './data/odd.test.jsonl' }, labels: ['good', 'bad'] },
    ],
    methods: [{ method: 'seqft' }],
    eval: { validation: 0 },
  };
  const text = JSON.stringify(config, null, 2);
  const doc = textDocument(file, text);
  const before = deepCalls.length;
  events.openDocument.fire(doc);
  assert.deepEqual(ui.diagnostics.get(file), [], 'the quick checks find nothing');
  const diags = await until('the checks of sculpt validate', () => {
    const d = ui.diagnostics.get(file);
    return d && d.length > 0 && d;
  });
  assert.equal(deepCalls.length, before + 1);
  const byCode = diags.map((d) => [d.code, d.severity, rangeText(doc, d).split('\n')[0]]);
  assert.deepEqual(byCode, [
    ['tasks[0]', 1, '{'],
    ['tasks[1].labels', 0, '['],
  ]);
  assert.match(diags[0].message, /^tasks\[0\]: task 'same': train and test are the same file/);
  assert.match(diags[1].message, /^tasks\[1\]\.labels: test output 'ugly' of task 'odd' is not in the label set/);
  // A config the quick checks fail is not handed to the engine: its problems are the quick checks'.
  const broken = textDocument(path.join(dir, 'broken.sculpt.json'), text.replace('"odd"', '"same"'));
  events.openDocument.fire(broken);
  await sleep(1200);
  assert.equal(deepCalls.length, before + 1);
  assert.deepEqual(
    ui.diagnostics.get(broken.uri.fsPath)!.map((d) => d.code),
    ['tasks[1].name'],
  );
});

interface Snippet {
  label: string;
  description?: string;
  body: unknown;
}
const defs = CONFIG_SCHEMA.definitions as Record<string, Record<string, any>>;
const snippets = (def: string): Snippet[] => defs[def].defaultSnippets;

/** The text VS Code inserts for a snippet body: JSON, with a string starting with `^` inserted as it is. */
function snippetText(body: unknown): string {
  if (typeof body === 'string') return body.startsWith('^') ? body.slice(1) : JSON.stringify(body);
  if (Array.isArray(body)) return `[${body.map(snippetText).join(', ')}]`;
  if (body !== null && typeof body === 'object')
    return `{${Object.entries(body)
      .map(([k, v]) => `${JSON.stringify(k)}: ${snippetText(v)}`)
      .join(', ')}}`;
  return JSON.stringify(body);
}

/** A snippet accepted as it is offered: every tab stop left at its placeholder, a choice at its first option. */
function expand(snippet: string): unknown {
  const text = snippet
    .replace(/\$\{\d+\|([^|,]*)[^|]*\|\}/g, '$1')
    .replace(/\$\{\d+:((?:\\.|[^}\\])*)\}/g, (_, v: string) => v.replace(/\\(.)/g, '$1'))
    .replace(/\$\{\d+\}|\$\d+/g, '');
  return JSON.parse(text);
}

test("snippets: every method and rank policy snippet holds each option at the validator's default", () => {
  const methods = snippets('MethodConfig');
  const names = defs.MethodConfig.anyOf.map(
    (r: { $ref: string }) => defs[r.$ref.split('/').pop()!].properties.method.const,
  );
  assert.deepEqual(
    methods.map((s) => s.label),
    names,
    'a new item of methods offers every method (and VS Code then offers no bare {})',
  );
  for (const s of methods) {
    const method = expand(snippetText(s.body)) as MethodConfig;
    // resolveMethod fills in every default, as validation does for a config's methods.
    assert.deepEqual(method, resolveMethod({ method: method.method } as MethodConfig), s.label);
    assert.ok(s.description && !s.description.startsWith(s.label), `${s.label} has a description`);
  }
  for (const s of snippets('RankPolicy')) {
    const rank = expand(snippetText(s.body)) as { policy: string };
    const resolved = resolveMethod({ method: 'adaptive-svd', rank } as MethodConfig) as { rank: unknown };
    assert.deepEqual(rank, resolved.rank, s.label);
  }
  // The method values themselves carry their descriptions (shown beside each value VS Code offers).
  for (const r of defs.MethodConfig.anyOf) {
    const branch = defs[r.$ref.split('/').pop()!];
    assert.ok(branch.properties.method.description, branch.properties.method.const);
  }
});

test('snippets: a config built from the snippets passes the checks of sculpt validate', () => {
  const dir = path.join(ws, 'snippets');
  // What the JSON Lines and dataset-folder snippets point at, relative to the config.
  mkdirSync(path.join(dir, 'data', 'task'), { recursive: true });
  const rows = Array.from({ length: 40 }, (_, i) => ({
    input: `a calm sunny morning ${i}`,
    output: i % 2 ? 'good' : 'bad',
  }));
  const jsonl = rows.map((r) => JSON.stringify(r)).join('\n');
  writeFileSync(path.join(dir, 'data', 'train.jsonl'), jsonl);
  writeFileSync(path.join(dir, 'data', 'test.jsonl'), jsonl.replace(/morning/g, 'evening'));
  const olora = (word: string) =>
    JSON.stringify({
      Definition: ['Is this good or bad?'],
      Instances: rows.map((r) => ({ sentence: r.input.replace('morning', word), label: [r.output] })),
    });
  writeFileSync(path.join(dir, 'data', 'task', 'train.json'), olora('noon'));
  writeFileSync(path.join(dir, 'data', 'task', 'test.json'), olora('night'));

  const [experiment] = snippets('ExperimentConfig');
  const config = expand(snippetText(experiment.body)) as Record<string, any>;
  assert.equal(config.model, 'builtin:sculpt-base');
  const tasks = snippets('TaskConfig').map((s) => expand(snippetText(s.body)) as { name: string; source: object });
  assert.deepEqual(
    tasks.map((t) => Object.keys(t.source)),
    [['builtin'], ['train', 'test'], ['folder', 'format']],
  );
  // The user names each task; everything else is as the snippets have it.
  config.tasks = [...config.tasks, ...tasks.map((t, i) => ({ ...t, name: `${t.name}${i}` }))];
  config.methods = snippets('MethodConfig').map((s) => expand(snippetText(s.body)));
  const file = path.join(dir, 'from-snippets.sculpt.json');
  const text = JSON.stringify(config, null, 2);
  writeFileSync(file, text);
  assert.deepEqual(validateConfig(JSON.parse(text), { file, path, exists: existsSync }).issues, []);
  const report = validateReport(file);
  assert.deepEqual(
    report.findings.filter((f) => f.severity === 'error'),
    [],
  );
  assert.ok(report.valid && report.summary, JSON.stringify(report));
  assert.deepEqual(configProblems(text, file, existsSync, catalog), []);
});

const complete = (text: string) =>
  configCompletions(text.replace('|', ''), text.indexOf('|'), {
    builtinModels,
    builtinTasks,
    dataFiles: () => [],
    checkpointFolders: () => [],
    describeBuiltinTask,
    describeBuiltinModel,
  });

test("completion: a methods item offers its own method's options only, each inserted with a value", () => {
  const ewc = complete('{"methods": [{"method": "ewc", |}]}');
  assert.deepEqual(
    ewc.map((e) => e.label),
    ['label', 'lr', 'lambda', 'gamma', 'fisherSamples'],
  );
  assert.deepEqual(methodOptionNames('ewc'), ['label', 'lr', 'lambda', 'gamma', 'fisherSamples']);
  const inserted = Object.fromEntries(ewc.map((e) => [e.label, e.insertText]));
  assert.equal(inserted.lambda, '"lambda": ${1:1000}');
  assert.equal(inserted.label, '"label": "$1"');
  assert.ok(ewc.every((e) => e.snippet && e.insertText.startsWith(`"${e.label}": `)));
  const lora = complete('{"methods": [{"method": "o-lora", "|"}]}').map((e) => e.label);
  assert.deepEqual(lora, ['label', 'lr', 'r', 'alpha', 'modules', 'lambda1', 'lambda2', 'dropout']);
  assert.ok(!lora.includes('lambda') && !lora.includes('projection'));
  // In the schema VS Code completes from: a property holding a union of objects is an object, so that VS Code
  // inserts `"source": {$1}` (a value with the cursor inside) rather than the bare key.
  for (const name of ['TaskSource', 'MethodConfig', 'RankPolicy']) assert.equal(defs[name].type, 'object', name);
  const source = defs.TaskConfig.properties.source;
  assert.equal(defs[source.$ref.split('/').pop()].type, 'object');
  assert.ok(!source.default && !source.examples && !defs.TaskSource.defaultSnippets, 'one value proposal: {}');
});

test('completion: builtin tasks come from the catalog with their sizes, and the schema offers no other ids', () => {
  const entries = complete('{"tasks": [{"name": "a", "source": {"builtin": "|"}}]}');
  assert.deepEqual(
    entries.map((e) => e.label),
    builtinTasks(),
  );
  const spam = entries.find((e) => e.label === 'cl5/spam')!;
  assert.equal(spam.detail, 'builtin task: 800 train / 400 test, 2 labels');
  assert.match(entries.find((e) => e.label === 'tiny/topic')!.detail!, /^builtin task: 96 train \/ 48 test, 3 labels$/);
  const models = complete('{"model": "|"}');
  assert.deepEqual(
    models.map((e) => e.label),
    builtinModels().map((m) => `builtin:${m}`),
  );
  assert.match(
    models.find((e) => e.label === 'builtin:sculpt-base')!.detail!,
    /^builtin model: llama, 4 layers × 128, \d\.\dM parameters$/,
  );
  assert.equal(defs.BuiltinTaskSource.properties.builtin.examples, undefined);
  assert.equal(defs.ExperimentConfig.properties.model.examples, undefined);
});

test("New Experiment: CL-5 is the demo's suite in its published order, CL-15 the whole suite in its order; each validates", () => {
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'assets', 'data', 'manifest.json'), 'utf8'));
  const demo = JSON.parse(readFileSync(path.join(repoRoot, 'examples', 'demo.sculpt.json'), 'utf8'));
  const ids = (c: { tasks: { source: object }[] }) => c.tasks.map((t) => (t.source as { builtin: string }).builtin);
  const suites = builtinSuites();
  const cl5 = presetConfig('cl5', 'cl5', suites)!;
  assert.deepEqual(ids(cl5), manifest.suites.cl5.orders['1']);
  assert.deepEqual(ids(cl5), ids(demo), "the demo's order");
  assert.deepEqual(
    cl5.tasks.map((t) => [t.name, t.trainLimit, t.testLimit]),
    demo.tasks.map((t: { name: string; trainLimit?: number; testLimit?: number }) => [
      t.name,
      t.trainLimit,
      t.testLimit,
    ]),
    "the demo's sizes",
  );
  assert.deepEqual(
    Object.keys(DEMO_TRAIN_LIMITS).map((id) => DEMO_TRAIN_LIMITS[id]),
    demo.tasks.filter((t: { trainLimit?: number }) => t.trainLimit).map((t: { trainLimit: number }) => t.trainLimit),
  );
  assert.deepEqual(
    { ...cl5.training, stepEventInterval: undefined },
    { ...demo.training, stepEventInterval: undefined },
  );
  assert.equal(cl5.seeds, demo.seeds);
  const cl15 = presetConfig('cl15', 'cl15', suites)!;
  assert.deepEqual(ids(cl15), manifest.suites.cl15.orders['1']);
  assert.equal(new Set(ids(cl15)).size, manifest.suites.cl15.tasks.length);
  const tiny = presetConfig('tiny', 'tiny', suites)!;
  for (const config of [cl5, cl15, tiny]) {
    const file = path.join(ws, `${config.name}.sculpt.json`);
    writeFileSync(file, JSON.stringify(config, null, 2));
    const report = validateReport(file);
    assert.ok(report.valid, `${config.name}: ${JSON.stringify(report.findings)}`);
  }
  // Rough durations from the measured costs: the demo (no validation split) took 462 s two at a time on 2 cores;
  // the preset adds a validation split to evaluate.
  const demoEstimate = estimateConfig(demo, path.join(repoRoot, 'examples'), 2);
  assert.equal(demoEstimate.runs, 6);
  assert.ok(Math.abs(demoEstimate.seconds - 462) < 0.15 * 462, String(demoEstimate.seconds));
  const presetEstimate = estimateConfig(cl5, ws, 2);
  assert.ok(presetEstimate.seconds > demoEstimate.seconds && presetEstimate.seconds < 1.3 * demoEstimate.seconds);
  assert.match(
    presetEstimate.text,
    /^rough estimate: about [78] minutes \(2 methods × 1 order × 3 seeds = 6 runs, 2 at a time/,
  );
  const quick = estimateConfig(tiny, ws, 1);
  assert.ok(quick.seconds < 90, `the tiny experiment takes seconds: ${quick.seconds}`);
  assert.ok(estimateConfig(cl15, ws, 1).seconds > estimateConfig(cl5, ws, 1).seconds / 3);
  assert.equal(COSTS.base.model, 'sculpt-base');
});

test('New Experiment: the command shows the rough estimate before it writes the chosen suite', async () => {
  const target = path.join(ws, 'new', 'suite.sculpt.json');
  mkdirSync(path.dirname(target), { recursive: true });
  // The dialogs answer in turn; a quick pick's answer sees the choices offered.
  const picks: { title?: string; items: { label: string; detail?: string }[] }[] = [];
  let answers: ((items: { label: string }[]) => unknown)[] = [];
  const answer = async (items: { label: string }[], opts?: { title?: string }) => {
    picks.push({ title: opts?.title, items });
    return answers.shift()!(items);
  };
  const saved = { ...vscode.window };
  const next = async () => answers.shift()!([]);
  Object.assign(vscode.window, { showQuickPick: answer, showInputBox: next, showSaveDialog: next });
  const choose = (last: string) => [
    (items: { label: string }[]) => items.find((i) => i.label.startsWith('CL-5')),
    () => 'suite',
    () => Uri.file(target),
    (items: { label: string }[]) => items.find((i) => i.label.startsWith(last)),
  ];
  try {
    // Declined at the estimate: nothing is written.
    answers = choose('Cancel');
    assert.equal(await newExperiment(), undefined);
    assert.ok(!existsSync(target));
    assert.deepEqual(
      picks[0].items.slice(0, 3).map((i) => i.label),
      ['CL-5 (the demo)', 'CL-15', 'A quick tiny experiment (seconds)'],
    );
    assert.match(picks[0].items[0].detail!, /rough estimate: about \d+ minutes/);
    assert.match(
      picks[1].title!,
      /^Rough estimate: about \d+ minutes \(2 methods × 1 order × 3 seeds = 6 runs, 1 at a time/,
    );
    answers = choose('Write suite.sculpt.json');
    const written = await newExperiment();
    assert.equal(written?.fsPath, target);
    assert.deepEqual(JSON.parse(readFileSync(target, 'utf8')), presetConfig('cl5', 'suite', builtinSuites()));
  } finally {
    Object.assign(vscode.window, saved);
  }
});
