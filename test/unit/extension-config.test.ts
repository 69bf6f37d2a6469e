/**
 * Config editing: the generated schema against the example configs and broken ones, completion (builtin ids,
 * workspace files, method options), semantic diagnostics with exact ranges, and the New Experiment template.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CONFIG_SCHEMA, parseConfigText, validateConfig } from '../../src/protocol/config-validate';
import { SchemaChecker } from '../../src/protocol/schema-check';
import { builtinModels, builtinTasks } from '../../src/runs/builtin';
import { configCompletions, methodOptionNames, type CompletionSources } from '../../src/extension/completion-items';
import { configProblems, parseJsonPath } from '../../src/extension/config-problems';
import {
  builtinBenchmark,
  builtinTaskConfigs,
  experimentText,
  fileTaskConfigs,
} from '../../src/extension/experiment-template';
import { checkpointFolderCandidates, dataFileCandidates } from '../../src/extension/workspace-files';
import { isRunFolder } from '../../src/extension/run-folder';
import { repoRoot } from '../helpers/paths';
import { tinyExperiment, tinyTask } from '../helpers/experiment';

const schemaIssues = (v: unknown) => new SchemaChecker(CONFIG_SCHEMA).check(structuredClone(v));

test('the generated schema accepts every example config', () => {
  const dir = path.join(repoRoot, 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.sculpt.json'));
  assert.ok(files.length > 0);
  for (const f of files) {
    const { value, issues } = parseConfigText(readFileSync(path.join(dir, f), 'utf8'));
    assert.deepEqual(issues, [], f);
    assert.deepEqual(schemaIssues(value), [], f);
  }
});

const good = () =>
  tinyExperiment({ name: 'x', backend: undefined, training: undefined, tasks: [tinyTask('sentiment', 'a')] });

test('the generated schema rejects broken configs, naming the path', () => {
  const broken: [string, (c: any) => void, string][] = [
    ['no name', (c) => delete c.name, ''],
    ['an unknown method', (c) => (c.methods = [{ method: 'magic' }]), 'methods[0]'],
    ['no tasks', (c) => (c.tasks = []), 'tasks'],
    ['an empty label set', (c) => (c.tasks[0].labels = []), 'tasks[0].labels'],
    ['a task name with a space', (c) => (c.tasks[0].name = 'a b'), 'tasks[0].name'],
    ['an unknown field', (c) => (c.epochs = 3), ''],
    ['a source of no known kind', (c) => (c.tasks[0].source = { url: 'http://x' }), 'tasks[0].source'],
    [
      'a ratio above 1',
      (c) => (c.methods = [{ method: 'adaptive-svd', rank: { policy: 'adaptive', trr: 1.5 } }]),
      'methods[0]',
    ],
    ['a fractional batch size', (c) => (c.training = { batchSize: 2.5 }), 'training.batchSize'],
    ['an unknown backend', (c) => (c.backend = 'cuda'), 'backend'],
  ];
  assert.deepEqual(schemaIssues(good()), []);
  for (const [what, breakIt, at] of broken) {
    const c = good();
    breakIt(c);
    const issues = schemaIssues(c);
    assert.ok(issues.length > 0, `${what} was accepted`);
    assert.ok(
      issues.some((i) => i.path.startsWith(at)),
      `${what}: ${JSON.stringify(issues)}`,
    );
  }
});

/** A workspace with data files, a checkpoint folder and a run folder (which is not a checkpoint). */
function workspace(): string {
  const ws = mkdtempSync(path.join(tmpdir(), 'sculpt-ws-'));
  const files: Record<string, string> = {
    'data/a.train.jsonl': '{"input":"x","output":"y"}\n',
    'data/a.test.jsonl': '{"input":"x","output":"y"}\n',
    'data/labels.json': '[]',
    'ckpt/gpt2/config.json': '{}',
    'runs/r1/config.json': '{}',
    'runs/r1/job.json': '{}',
    'runs/r1/events.jsonl': '',
    'package.json': '{}',
    'exp.sculpt.json': '{}',
  };
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(ws, f)), { recursive: true });
    writeFileSync(path.join(ws, f), text);
  }
  return ws;
}

function sources(ws: string, configDir = ws): CompletionSources {
  const all = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? all(path.join(d, e.name)) : [path.join(d, e.name)],
    );
  const files = all(ws);
  return {
    builtinModels,
    builtinTasks,
    dataFiles: () => dataFileCandidates(files, configDir),
    checkpointFolders: () =>
      checkpointFolderCandidates(
        files.filter((f) => path.basename(f) === 'config.json'),
        configDir,
        isRunFolder,
      ),
  };
}

/** Completions at the `|` of `text`. */
function complete(text: string, src: CompletionSources) {
  const offset = text.indexOf('|');
  return configCompletions(text.replace('|', ''), offset, src);
}

test('workspace files: data files and checkpoint folders relative to the config, without run folders or manifests', () => {
  const ws = workspace();
  const src = sources(ws);
  assert.deepEqual(src.dataFiles(), ['data/a.test.jsonl', 'data/a.train.jsonl', 'data/labels.json']);
  assert.deepEqual(src.checkpointFolders(), ['ckpt/gpt2']);
  assert.deepEqual(sources(ws, path.join(ws, 'data')).dataFiles()[0], 'a.test.jsonl');
  assert.deepEqual(sources(ws, path.join(ws, 'sub')).checkpointFolders(), ['../ckpt/gpt2']);
});

test('completion: builtin models and checkpoint folders for model, replacing the string typed so far', () => {
  const src = sources(workspace());
  assert.ok(builtinModels().includes('tiny-llama'));
  const inString = complete('{"model": "bu|"}', src);
  assert.deepEqual(
    inString.map((e) => e.label),
    [...builtinModels().map((m) => `builtin:${m}`), './ckpt/gpt2'],
  );
  assert.deepEqual([inString[0].start, inString[0].end], [10, 14], 'the whole string token, quotes included');
  const first = `"builtin:${builtinModels()[0]}"`;
  assert.equal(inString[0].insertText, first);
  assert.equal(inString[0].filterText, first);
  const bare = complete('{"model": |}', src);
  assert.deepEqual([bare[0].start, bare[0].end, bare[0].insertText], [10, 10, first]);
});

test('completion: builtin task ids, data files for train/test, task names in orders', () => {
  const src = sources(workspace());
  const tasks = complete('{"tasks": [{"name": "a", "source": {"builtin": "|"}}]}', src).map((e) => e.label);
  for (const id of ['tiny/sentiment', 'tiny/topic', 'tiny/size']) assert.ok(tasks.includes(id), id);
  assert.deepEqual(tasks, builtinTasks());
  const train = complete('{"tasks": [{"name": "a", "source": {"train": "|", "test": ""}}]}', src);
  assert.deepEqual(
    train.map((e) => e.label),
    ['./data/a.test.jsonl', './data/a.train.jsonl', './data/labels.json'],
  );
  assert.equal(
    train.sort((x, y) => x.sortText!.localeCompare(y.sortText!))[0].label,
    './data/a.train.jsonl',
    'train files first for train',
  );
  const test2 = complete('{"tasks": [{"name": "a", "source": {"train": "", "test": "|"}}]}', src);
  assert.equal(test2.sort((x, y) => x.sortText!.localeCompare(y.sortText!))[0].label, './data/a.test.jsonl');
  const orders = complete('{"tasks": [{"name": "a"}, {"name": "b"}], "orders": [["b", "|"]]}', src);
  assert.deepEqual(
    orders.map((e) => e.label),
    ['a', 'b'],
  );
  assert.deepEqual(complete('{"name": "|"}', src), [], 'the schema handles the rest');
});

test('completion: the options of the chosen method and rank policy only', () => {
  const src = sources(workspace());
  const svd = complete('{"methods": [{"method": "adaptive-svd", "rank": {"policy": "fixed"}, |}]}', src);
  assert.deepEqual(
    svd.map((e) => e.label).sort(),
    methodOptionNames('adaptive-svd')
      .filter((k) => k !== 'rank')
      .sort(),
  );
  assert.ok(svd.every((e) => e.kind === 'property'));
  const projection = svd.find((e) => e.label === 'projection')!;
  assert.equal(projection.insertText, '"projection": ${1:"two-sided"}');
  assert.ok(projection.snippet);
  assert.match(projection.documentation ?? '', /two-sided/);
  assert.deepEqual(
    complete('{"methods": [{"method": "seqft", "|"}]}', src).map((e) => e.label),
    ['label', 'lr'],
  );
  const typed = complete('{"methods": [{"method": "ewc", "la|": 1}]}', src).find((e) => e.label === 'lambda')!;
  assert.equal(typed.insertText, '"lambda"', 'only the key when a value follows');
  const policy = complete('{"methods": [{"method": "adaptive-svd", "rank": {"policy": "adaptive", |}}]}', src).map(
    (e) => e.label,
  );
  assert.deepEqual(policy, ['mrr', 'trr', 'importance', 'normalisation']);
  assert.deepEqual(
    complete('{"methods": [{"label": "x", |}]}', src),
    [],
    'no method chosen yet: the schema offers them all',
  );
});

function rangeText(text: string, p: { start: number; end: number }) {
  return text.slice(p.start, p.end);
}

test('diagnostics: semantic problems with the exact range of the offending value', () => {
  const ws = workspace();
  const file = path.join(ws, 'exp.sculpt.json');
  const text = `{
  // comments are allowed, as in VS Code's JSON editor
  "name": "x",
  "model": "builtin:tiny-llama",
  "tasks": [
    { "name": "a", "source": { "train": "data/a.train.jsonl", "test": "data/missing.jsonl" } },
    { "name": "a", "source": { "builtin": "tiny/topic" }, "labels": ["yes", "yes"] }
  ],
  "orders": [["a"]],
  "methods": [{ "method": "adaptive-svd", "rank": { "policy": "adaptive", "mrr": 0.9, "trr": 0.5 } }],
}`;
  const problems = configProblems(text, file, existsSync);
  const byPath = new Map(problems.map((p) => [p.path, p]));
  assert.deepEqual(
    [...byPath.keys()].sort(),
    ['methods[0].rank.mrr', 'orders[0]', 'tasks[0].source.test', 'tasks[1].labels', 'tasks[1].name'].sort(),
  );
  assert.equal(rangeText(text, byPath.get('tasks[1].name')!), '"a"');
  assert.equal(
    text.slice(0, byPath.get('tasks[1].name')!.start).split('\n').length,
    7,
    'the repeated name, not the first one',
  );
  assert.equal(rangeText(text, byPath.get('tasks[0].source.test')!), '"data/missing.jsonl"');
  assert.match(
    byPath.get('tasks[0].source.test')!.message,
    /^tasks\[0\]\.source\.test: data file not found: .*data[\\/]missing\.jsonl$/,
  );
  assert.equal(rangeText(text, byPath.get('tasks[1].labels')!), '["yes", "yes"]');
  assert.equal(rangeText(text, byPath.get('orders[0]')!), '["a"]');
  assert.equal(rangeText(text, byPath.get('methods[0].rank.mrr')!), '0.9');
});

test('diagnostics: every misspelling at once, each at its exact range with the fix it suggests', () => {
  const ws = workspace();
  const file = path.join(ws, 'exp.sculpt.json');
  const text = `{
  "name": "x",
  "model": "builtin:tiny-llama",
  "backend": "wsam",
  "tasks": [{ "name": "a", "source": { "builtin": "tiny/topic" } }],
  "methods": [{ "method": "seqfy" }, { "method": "adaptive-svd", "rank": { "policy": "adaptve" } }],
  "trainig": { "epochs": 1 }
}`;
  const problems = configProblems(text, file, existsSync);
  assert.deepEqual(
    problems.map((p) => [p.path, rangeText(text, p), p.fix]),
    [
      ['backend', '"wsam"', { title: "Change to 'wasm'", text: '"wasm"' }],
      ['methods[0].method', '"seqfy"', { title: "Change to 'seqft'", text: '"seqft"' }],
      ['methods[1].rank.policy', '"adaptve"', { title: "Change to 'adaptive'", text: '"adaptive"' }],
      // A misspelt field: the range is its name, and the fix renames it.
      ['trainig', '"trainig"', { title: "Change to 'training'", text: '"training"' }],
    ],
  );
  assert.match(problems[0].message, /^backend: must be one of .*\(did you mean 'wasm'\?\)/);
  assert.match(problems[3].message, /^trainig: is not a known field \(did you mean 'training'\?\)/);
});

test('diagnostics: three distinct errors are three problems at their exact ranges', () => {
  const ws = workspace();
  const file = path.join(ws, 'exp.sculpt.json');
  const text = `{
  "name": "x",
  "model": "builtin:tiny-llama",
  "tasks": [
    { "name": "a", "source": { "train": "data/a.train.jsonl", "test": "data/nope.jsonl" } },
    { "name": "a", "source": { "builtin": "tiny/topic" } }
  ],
  "methods": [{ "method": "seqft" }],
  "compare": { "baseline": "seqfy" }
}`;
  const problems = configProblems(text, file, existsSync);
  assert.deepEqual(problems.map((p) => [p.path, rangeText(text, p)]).sort(), [
    ['compare.baseline', '"seqfy"'],
    ['tasks[0].source.test', '"data/nope.jsonl"'],
    ['tasks[1].name', '"a"'],
  ]);
  const baseline = problems.find((p) => p.path === 'compare.baseline')!;
  assert.deepEqual(baseline.fix, { title: "Change to 'seqft'", text: '"seqft"' });
  assert.equal(problems.filter((p) => p.fix).length, 1, 'only a "did you mean" has a fix');
});

test('diagnostics: missing files are reported while the schema still fails; syntax errors are left to the JSON support', () => {
  const ws = workspace();
  const file = path.join(ws, 'exp.sculpt.json');
  const text =
    '{"name": "x", "oops": 1, "model": "./nope", "tasks": [{"name": "a", "source": {"train": "gone.jsonl", "test": "data/a.test.jsonl"}}], "methods": [{"method": "seqft"}]}';
  const problems = configProblems(text, file, existsSync);
  assert.deepEqual(
    problems.map((p) => [p.path, rangeText(text, p)]),
    [
      ['model', '"./nope"'],
      ['tasks[0].source.train', '"gone.jsonl"'],
    ],
  );
  assert.deepEqual(configProblems('{"name": ', file, existsSync), []);
  assert.deepEqual(configProblems(JSON.stringify(good()), file, existsSync), []);
});

test('JSON paths from the validator map back to segments', () => {
  assert.deepEqual(parseJsonPath('tasks[1].source.train'), ['tasks', 1, 'source', 'train']);
  assert.deepEqual(parseJsonPath('methods[0]["odd key"].x'), ['methods', 0, 'odd key', 'x']);
  assert.deepEqual(parseJsonPath(''), []);
});

test('New Experiment: the builtin benchmark and file tasks make a config that validates', () => {
  assert.deepEqual(builtinBenchmark(['tiny/a', 'tiny/b']), ['tiny/a', 'tiny/b']);
  assert.deepEqual(builtinBenchmark(['cl5/x', 'cl5/y', 'tiny/a']), ['cl5/x', 'cl5/y']);
  const ws = workspace();
  const file = path.join(ws, 'exp.sculpt.json');
  const builtin = experimentText({
    name: 'bench',
    model: 'builtin:tiny-llama',
    tasks: builtinTaskConfigs(builtinBenchmark(builtinTasks())),
    tiny: true,
  });
  const r1 = validateConfig(JSON.parse(builtin), { file, path, exists: existsSync });
  assert.deepEqual(r1.issues, []);
  const tasks = fileTaskConfigs(['data/a.train.jsonl', 'data/a.test.jsonl', 'data/labels.json']);
  assert.deepEqual(tasks, [
    { name: 'a', source: { train: './data/a.train.jsonl', test: './data/a.test.jsonl' } },
    { name: 'labels', source: { train: './data/labels.json', test: './data/labels.json' } },
  ]);
  const own = experimentText({ name: 'mine', model: 'builtin:tiny-llama', tasks, tiny: false });
  assert.deepEqual(validateConfig(JSON.parse(own), { file, path, exists: existsSync }).issues, []);
  assert.deepEqual(configProblems(own, file, existsSync), []);
});
