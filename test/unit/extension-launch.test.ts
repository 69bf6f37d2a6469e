/**
 * Launching runs from VS Code: settings written into the run folders, the trainer's runtime (a real Node.js,
 * VS Code's own only for wasm/cpu), the status bar text, the event tail, and the bundle staying free of tfjs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { applyBackendToRunFolder, prepareRuns, runBackend } from '../../src/extension/launch';
import { RuntimeError, findOnPath, resolveRuntime } from '../../src/extension/node-runtime';
import { advance, initialProgress, overallFraction, progressText } from '../../src/extension/live-progress';
import { EventTail } from '../../src/supervisor/event-tail';
import { readEvents } from '../../src/extension/run-folder';
import type { ExperimentConfig } from '../../src/protocol/config';
import type { SculptEvent } from '../../src/protocol/events';
import { tinyExperiment, tinyTask } from '../helpers/experiment';
import { fixture, repoRoot } from '../helpers/paths';

function configFile(overrides: Partial<ExperimentConfig> = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sculpt-launch-'));
  const file = path.join(dir, 'exp.sculpt.json');
  // No training settings: the tests below see which step interval wins when the config gives none.
  const cfg = tinyExperiment({
    name: 'exp',
    tasks: [tinyTask('sentiment', 'a'), tinyTask('topic', 'b')],
    orders: [['b', 'a']],
    methods: [{ method: 'seqft' }, { method: 'adaptive-svd' }],
    training: undefined,
    ...overrides,
  });
  writeFileSync(file, `// a comment\n${JSON.stringify(cfg, null, 2)}`);
  return file;
}

const readConfig = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));

test('prepareRuns: an experiment folder with a run folder per (order, method), the settings in each config', () => {
  const file = configFile();
  const r = prepareRuns(
    file,
    { backend: 'cpu', stepEventInterval: 3, runsDirectory: '' },
    new Date(2025, 0, 2, 3, 4, 5),
  );
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.deepEqual(
    r.dirs.map((d) => path.basename(d)),
    ['seqft-o1-s0', 'adaptive-svd-o1-s0', 'seqft-o2-s0', 'adaptive-svd-o2-s0'],
  );
  assert.equal(path.basename(r.experimentDir), 'exp-20250102-030405');
  assert.ok(r.dirs.every((d) => path.dirname(d) === r.experimentDir));
  assert.equal(
    path.dirname(r.experimentDir),
    path.join(path.dirname(file), 'runs'),
    "the config's output, relative to it",
  );
  const c = readConfig(r.dirs[0]);
  assert.equal(c.backend, 'cpu', "the backend setting replaces the config's");
  assert.equal(c.training.stepEventInterval, 3);
  assert.equal(runBackend(r.dirs[0]), 'cpu');
  const job = JSON.parse(readFileSync(path.join(r.dirs[3], 'job.json'), 'utf8'));
  assert.deepEqual(
    { methodIndex: job.methodIndex, order: job.order, seed: job.seed },
    { methodIndex: 1, order: 1, seed: 0 },
  );
  assert.match(job.config?.sha256 ?? '', /^[0-9a-f]{64}$/, "job.json fingerprints the run's config");
});

test("prepareRuns: 'auto' keeps the config's backend, an explicit step interval wins, runsDirectory relocates", () => {
  const file = configFile({ training: { stepEventInterval: 7 } });
  const out = path.join(path.dirname(file), 'elsewhere');
  const r = prepareRuns(file, { backend: 'auto', stepEventInterval: 3, runsDirectory: out });
  assert.ok(r.ok);
  if (!r.ok) return;
  const c = readConfig(r.dirs[0]);
  assert.equal(c.backend, 'wasm');
  assert.equal(c.training.stepEventInterval, 7);
  assert.equal(path.dirname(r.experimentDir), out);
});

test('prepareRuns: an invalid config creates nothing and returns the issues with their paths', () => {
  const file = configFile({ tasks: [{ name: 'a', source: { train: 'missing.jsonl', test: 'missing.jsonl' } }] });
  const r = prepareRuns(file, { backend: 'auto', runsDirectory: '' });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.ok(r.issues.some((i) => i.path === 'tasks[0].source.train' && /data file not found/.test(i.message)));
  assert.ok(!existsSync(path.join(path.dirname(file), 'runs')));
  const missing = prepareRuns(path.join(path.dirname(file), 'nope.sculpt.json'), {
    backend: 'auto',
    runsDirectory: '',
  });
  assert.equal(missing.ok, false);
});

test('resume: the backend setting is written into the run folder, auto leaves it', () => {
  const file = configFile();
  const r = prepareRuns(file, { backend: 'auto', runsDirectory: '' });
  assert.ok(r.ok);
  if (!r.ok) return;
  applyBackendToRunFolder(r.dirs[0], 'auto');
  assert.equal(runBackend(r.dirs[0]), 'wasm');
  applyBackendToRunFolder(r.dirs[0], 'webgpu');
  assert.equal(runBackend(r.dirs[0]), 'webgpu');
});

test("runtime: a real Node.js from PATH or a path; VS Code's runtime only for wasm/cpu", () => {
  const bin = path.dirname(process.execPath);
  const env = { PATH: bin, ELECTRON_RUN_AS_NODE: '1', HOME: '/h' };
  const name = path.basename(process.execPath);
  assert.equal(findOnPath(name, env), process.execPath);
  const found = resolveRuntime({ nodePath: name, backend: 'webgpu', execPath: '/vscode/code', env });
  assert.equal(found.command, process.execPath);
  assert.equal(found.embedded, false);
  assert.equal(found.env.ELECTRON_RUN_AS_NODE, undefined, 'a real Node must not inherit the Electron flag');
  assert.equal(
    resolveRuntime({ nodePath: process.execPath, backend: 'auto', execPath: '/vscode/code', env: {} }).command,
    process.execPath,
  );

  const none = { PATH: '/nonexistent' };
  const fallback = resolveRuntime({ nodePath: 'node', backend: 'wasm', execPath: '/vscode/code', env: none });
  assert.deepEqual(
    [fallback.command, fallback.embedded, fallback.env.ELECTRON_RUN_AS_NODE],
    ['/vscode/code', true, '1'],
  );
  assert.throws(
    () => resolveRuntime({ nodePath: 'node', backend: 'auto', execPath: '/vscode/code', env: none }),
    (e: Error) => e instanceof RuntimeError && /'node' was not found on PATH.*sculpt\.nodePath/.test(e.message),
  );
  assert.throws(
    () => resolveRuntime({ nodePath: '/opt/node/bin/node', backend: 'webgpu', execPath: '/vscode/code', env: none }),
    /points to \/opt\/node\/bin\/node, which does not exist/,
  );
});

test('status bar text: task, progress within the task, loss', () => {
  const events = readEvents(fixture('extension', 'runs', 'tiny-adaptive-svd-20261127-031550'));
  let p = initialProgress();
  assert.equal(progressText(p), 'starting…');
  const texts: string[] = [];
  for (const e of events) {
    p = advance(p, e);
    if (e.type === 'step' && e.task === 1 && e.step === 6) texts.push(progressText(p));
  }
  assert.match(texts[0], /^task 2\/3 · 50% · loss \d+\.\d\d$/);
  assert.equal(p.phase, 'done');
  assert.equal(overallFraction(p), 1);
  const q = advance(
    advance(initialProgress(), { type: 'run-started', tasks: ['a', 'b', 'c', 'd', 'e'] } as SculptEvent),
    { type: 'step', task: 1, progress: 0.43, loss: 0.614 } as SculptEvent,
  );
  assert.equal(progressText(q), 'task 2/5 · 43% · loss 0.61');
});

test('event tail: complete lines only, in order, across partial writes', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sculpt-tail-'));
  const file = path.join(dir, 'events.jsonl');
  const tail = new EventTail(file);
  assert.deepEqual(tail.read(), [], 'no file yet');
  const e = (seq: number) => JSON.stringify({ v: 1, runId: 'r', seq, time: 0, type: 'warning', message: 'm' });
  writeFileSync(file, `${e(1)}\n${e(2).slice(0, 10)}`);
  assert.deepEqual(
    tail.read().map((x) => x.seq),
    [1],
  );
  appendFileSync(file, `${e(2).slice(10)}\n{"v":1,"type":"someday","seq":3,"runId":"r"}\n${e(4)}\n`);
  assert.deepEqual(
    tail.read().map((x) => x.seq),
    [2, 4],
    'unknown types are skipped',
  );
  assert.deepEqual(EventTail.fromEnd(file).read(), []);
});

test('the extension bundle stays free of tfjs', () => {
  const bundle = path.join(repoRoot, 'dist', 'extension.js');
  assert.ok(existsSync(bundle), 'dist/extension.js is missing: run npm run build (npm test does)');
  const text = readFileSync(bundle, 'utf8');
  // The schema's description of the backend setting mentions tfjs-node by name, and "tfjs" is the name of an
  // engine (a config value, shown in the Runs view); no tfjs code may be bundled.
  assert.doesNotMatch(text, /@tensorflow\/|tfjs-core|tfjs-backend|registerKernel|ENV\.registerFlag/);
  const mentions = text.split('\n').filter((l) => l.replace(/["']tfjs["']/g, '').includes('tfjs'));
  for (const l of mentions)
    assert.match(l, /^\s*description: /, `tfjs outside the schema's descriptions: ${l.slice(0, 120)}`);
});
