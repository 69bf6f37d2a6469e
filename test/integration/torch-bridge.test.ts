/**
 * The PyTorch engine's TypeScript side (src/trainer/torch/): the prepared data against what the tfjs engine trains
 * on (in process), and the built trainer (dist/; `npm run build` first) driving a scripted stand-in for the worker
 * (test/fixtures/torch/fake-python, named by `torch.python`), so that nothing here needs PyTorch: the events
 * against the schema and a tfjs run's order, accuracies and metrics from the scores, stop, resume, crashes.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExperimentConfig, TaskConfig } from '../../src/protocol/config';
import { validateConfig, type ResolvedConfig } from '../../src/protocol/config-validate';
import type { SculptEvent } from '../../src/protocol/events';
import { isTrainerMessage, type AliveMessage } from '../../src/protocol/trainer';
import { createRunFolder } from '../../src/runs/run-dir';
import { effectiveEvents, foldRun } from '../../src/runs/fold';
import { metricsAfter } from '../../src/runs/metrics';
import { listPredictionSets } from '../../src/runs/predictions';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { makeBatch, type Batch, type EncodedExample } from '../../src/engine/data/batches';
import { makeSeq2SeqBatch } from '../../src/engine/data/seq2seq';
import { rankInputs } from '../../src/engine/evaluate';
import { loadTasks, modelDir, type RunTask } from '../../src/engine/experiment';
import { checkModelFolder, loadPretrained } from '../../src/engine/io/checkpoint';
import { RunContext } from '../../src/engine/method-context';
import { createMethod } from '../../src/engine/methods';
import { Optimizer } from '../../src/engine/optim';
import { checkRunInputs } from '../../src/engine/run-inputs';
import { TaskTrainer } from '../../src/engine/task-trainer';
import { prepareRun, type Manifest } from '../../src/trainer/torch/prepare';
import { runFolder as runTrainerFolder } from '../../src/trainer/run';
import { tinyExperiment, tinyTasks, tinyTraining } from '../helpers/experiment';
import { fixture, repoRoot } from '../helpers/paths';
import { RUN_ENV, TRAINER, assertEventLog, events } from '../helpers/runs';

const FAKE = fixture('torch', 'fake-python');
const work = mkdtempSync(join(tmpdir(), 'sculpt-torch-'));

/** The torch run of the tiny experiment through the fake worker; `torch` and the rest override. */
function torchConfig(overrides: Partial<ExperimentConfig> = {}): ExperimentConfig {
  return tinyExperiment({
    name: 'torch',
    backend: undefined,
    engine: 'torch',
    torch: { python: FAKE },
    tasks: tinyTasks(undefined, { trainLimit: 40 }),
    training: tinyTraining({ stepEventInterval: 2, batchSize: 8 }),
    eval: { modes: ['rank', 'generate'], predictions: 'all', maxNewTokens: 4 },
    ...overrides,
  });
}

function resolve(c: ExperimentConfig): ResolvedConfig {
  const { config, issues } = validateConfig(c);
  assert.deepEqual(issues, []);
  return config!;
}

let folders = 0;
function runFolder(c: ExperimentConfig): string {
  const config = resolve(c);
  return createRunFolder(work, `${c.name}-${++folders}`, config, { methodIndex: 0, order: 0, seed: config.seed });
}

interface Session {
  code: number | null;
  stdout: string;
  stderr: string;
  ipc: SculptEvent[];
  /** The trainer's `alive` notices, which come over the same channel before its first event. */
  notices: AliveMessage[];
}

/** The built trainer on `dir`; `onEvent` may send it a stop or kill it. */
function trainer(
  dir: string,
  env: Record<string, string> = {},
  onEvent: (e: SculptEvent, child: ReturnType<typeof fork>) => void = () => {},
): Promise<Session> {
  return new Promise((done) => {
    const child = fork(TRAINER, [dir], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...RUN_ENV, ...env } });
    const s: Session = { code: null, stdout: '', stderr: '', ipc: [], notices: [] };
    child.stdout!.on('data', (d: Buffer) => (s.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (s.stderr += d.toString()));
    child.on('message', (m) => {
      if (isTrainerMessage(m)) {
        assert.equal(s.ipc.length, 0, 'notices come before the first event only');
        s.notices.push(m);
        return;
      }
      s.ipc.push(m as SculptEvent);
      onEvent(m as SculptEvent, child);
    });
    child.on('exit', (code) => done({ ...s, code }));
  });
}

const fakeSteps = (dir: string) =>
  readFileSync(join(dir, 'fake-steps.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { task: number; step: number; globalStep: number; batch: number[]; lr: number });

// --- What the tfjs engine trains on, against the prepared data --------------------------------------------------

interface Trained {
  batches: Batch[];
  lr: number[];
  examples: number;
  steps: number;
}

/** Runs the tfjs runner's task loop (TaskTrainer, the method's hooks) with the optimizer step replaced by a record. */
async function tfjsPlan(config: ResolvedConfig): Promise<{ trained: Trained[]; ctx: RunContext; tasks: RunTask[] }> {
  await selectBackend('cpu');
  const tasks = loadTasks(config, 0);
  const dir = modelDir(config);
  const tok = checkRunInputs(config, tasks, checkModelFolder(dir).inventory, () => {});
  const model = loadPretrained(dir);
  const hooks = { emit: () => {}, shouldStop: () => false, lastSeq: () => 0 };
  const ctx = new RunContext(model, tok, tasks, config, hooks);
  const methodCfg = config.methods[0];
  const method = createMethod(methodCfg, 'methods[0]');
  const optimizer = new Optimizer({ name: config.training.optimizer, weightDecay: config.training.weightDecay });
  const lrPeak = methodCfg.lr ?? config.training.lr;
  const trainer = new TaskTrainer({
    ctx,
    method,
    optimizer,
    config,
    lrPeak,
    lrField: 'training.lr',
    hooks,
    checkpoint: () => Promise.reject(new Error('no checkpoints here')),
  });
  const trained: Trained[] = [];
  const spy = trainer as unknown as {
    step: (b: Batch, step: number, plan: unknown) => unknown;
    lr: (step: number, plan: unknown) => number;
  };
  let current: Trained | undefined;
  spy.step = (batch, step, plan) => {
    current!.batches.push(batch);
    current!.lr.push(spy.lr(step, plan));
    return { loss: tf.scalar(1), terms: {} };
  };
  await method.setup(ctx);
  let globalStep = 0;
  for (let i = 0; i < tasks.length; i++) {
    ctx.task = i;
    await method.beforeTask?.(ctx);
    const plan = trainer.plan(i);
    current = { batches: [], lr: [], examples: plan.encoded.length, steps: plan.totalSteps };
    const pos = { task: i, epoch: 0, batch: 0, taskStep: 0, globalStep, trained: false };
    assert.equal(await trainer.train(pos, plan), 'done');
    globalStep = pos.globalStep;
    await method.afterTask?.(ctx);
    trained.push(current);
  }
  method.dispose();
  optimizer.dispose();
  return { trained, ctx, tasks };
}

/** A prepared JSON Lines file; seq2seq training lines ({input, target}) as encoded examples. */
const readLines = (dir: string, file: string, seq2seq: boolean) =>
  readFileSync(join(dir, file), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const o = JSON.parse(l) as { prompt: number[]; answer: number[]; input: number[]; target: number[] };
      return seq2seq ? { prompt: o.input, answer: o.target } : o;
    });

const sameBatch = (a: Batch, b: Batch, what: string) => {
  assert.deepEqual([a.B, a.T, a.labelled, a.tokens], [b.B, b.T, b.labelled, b.tokens], what);
  assert.deepEqual(Array.from(a.inputIds), Array.from(b.inputIds), `${what}: input ids`);
  assert.deepEqual(Array.from(a.labels), Array.from(b.labels), `${what}: labels`);
  assert.deepEqual(Array.from(a.mask), Array.from(b.mask), `${what}: mask`);
};

function folderHash(dir: string): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest('hex');
}

/**
 * A task whose labels are two tokens each (so rank evaluation scores continuations, `cont`), in JSON Lines files
 * of words the tiny tokenizer knows.
 */
function twoTokenLabels(): TaskConfig {
  const dir = mkdtempSync(join(work, 'two-token-'));
  const words = { 'good sunny': ['sunny', 'happy', 'great', 'lovely'], 'bad rainy': ['rainy', 'sad', 'awful', 'dark'] };
  const lines = (n: number, salt: number) =>
    Array.from({ length: n }, (_, i) => {
      const [output, pool] = Object.entries(words)[i % 2];
      const input = [0, 1, 2].map((k) => pool[(i * 3 + k * 5 + salt) % pool.length]).join(' ');
      return JSON.stringify({ input, output });
    }).join('\n');
  writeFileSync(join(dir, 'train.jsonl'), lines(30, 0));
  writeFileSync(join(dir, 'test.jsonl'), lines(10, 1));
  return { name: 'pairs', source: { train: join(dir, 'train.jsonl'), test: join(dir, 'test.jsonl') } };
}

const PREPARED_CASES = [
  {
    model: 'builtin:tiny-llama',
    method: { method: 'seqft' },
    tasks: () => tinyTasks(['sentiment', 'topic', 'size'], { trainLimit: 24 }),
  },
  {
    model: 'builtin:tiny-llama',
    method: { method: 'replay', bufferRatio: 0.25, mixRatio: 0.3 },
    tasks: () => tinyTasks(['sentiment', 'topic', 'size'], { trainLimit: 24 }),
  },
  {
    model: 'builtin:tiny-llama',
    method: { method: 'seqft' },
    tasks: () => [twoTokenLabels(), ...tinyTasks(['topic'])],
  },
  {
    model: 'builtin:tiny-t5',
    method: { method: 'seqft' },
    tasks: () => tinyTasks(['sentiment', 'topic'], { trainLimit: 24 }),
  },
] as const;

for (const { model, method, tasks: taskList } of PREPARED_CASES) {
  const names = taskList()
    .map((t) => t.name)
    .join(', ');
  test(`prepared data of ${method.method} on ${model} (${names}): the tfjs engine's examples, batches, lr per step, calibration and prompts`, async () => {
    const config = resolve(
      torchConfig({
        model,
        methods: [method],
        tasks: taskList(),
        training: tinyTraining({ batchSize: 5, epochs: 2, schedule: 'cosine', warmupSteps: 3 }),
      }),
    );
    const runDir = mkdtempSync(join(work, `prepare-${method.method}-`));
    const prepared = await prepareRun({ config, methodIndex: 0, order: 0, runDir });
    const m: Manifest = JSON.parse(readFileSync(join(runDir, 'prepared', 'manifest.json'), 'utf8'));
    assert.deepEqual(m, prepared.manifest);
    const pad = prepared.tok.padId;
    const seq2seq = model === 'builtin:tiny-t5';
    assert.equal(m.model.kind, seq2seq ? 'seq2seq' : 'causal');
    assert.equal(m.model.arch, seq2seq ? 't5' : 'llama');
    // A seq2seq line is {input, target}: the encoder input and the decoder target.
    const batchOf = (items: EncodedExample[]) => (seq2seq ? makeSeq2SeqBatch(items, pad) : makeBatch(items, pad));
    const { trained, ctx, tasks } = await tfjsPlan(config);
    trained.forEach((tr, i) => {
      const t = m.tasks[i];
      assert.equal(t.train.examples, tr.examples, `task ${i}: training examples`);
      assert.equal(t.steps, tr.steps, `task ${i}: steps`);
      assert.deepEqual(t.lr, tr.lr, `task ${i}: lr of every step`);
      const train = readLines(join(runDir, 'prepared'), t.train.file, seq2seq);
      assert.equal(train.length, tr.examples);
      const batches = t.epochs.flat();
      assert.equal(batches.length, tr.batches.length, `task ${i}: batches`);
      batches.forEach((idx, b) => sameBatch(batchOf(idx.map((k) => train[k])), tr.batches[b], `task ${i} batch ${b}`));
      // Calibration: the first n of the file are what ctx.batchesOf draws.
      const calibration = readLines(join(runDir, 'prepared'), t.calibration, seq2seq);
      assert.equal(calibration.length, tasks[i].train.length);
      const drawn = ctx.batchesOf(i, 7, 3);
      drawn.forEach((d, b) =>
        sameBatch(batchOf(calibration.slice(b * 3, Math.min(7, b * 3 + 3))), d, `calibration ${i}/${b}`),
      );
      // Rank prompts as rankInputs makes them.
      const rank = t.evaluations.find((e) => e.split === 'test' && e.mode !== 'generate')!;
      const inputs = rankInputs(ctx.model, prepared.tok, tasks[i], config.training.maxSeqLen);
      assert.equal(rank.mode, inputs.mode);
      const prompts = readLines(join(runDir, 'prepared'), rank.file, false).map((l) => l.prompt);
      if (inputs.mode === 'next' && rank.mode === 'next') {
        assert.deepEqual(prompts, inputs.prompts);
        assert.deepEqual(rank.candidates, inputs.candidates);
      } else if (inputs.mode === 'cont' && rank.mode === 'cont') {
        const L = tasks[i].labels.length;
        assert.deepEqual(
          prompts.flatMap((p) => Array.from({ length: L }, () => p)),
          inputs.prompts,
        );
        assert.deepEqual(
          prompts.flatMap(() => rank.continuations),
          inputs.continuations,
        );
      }
    });
    if (names.startsWith('pairs')) assert.equal(m.tasks[0].evaluations[0].mode, 'cont', 'two-token labels: cont');
    if (method.method === 'replay') {
      assert.ok(m.tasks[2].train.examples > tasks[2].train.length, 'replay mixes buffer examples into task 3');
      assert.equal(m.tasks[0].train.examples, tasks[0].train.length);
    }
    ctx.model.dispose();
    // Deterministic: a second preparation writes the same bytes.
    const first = folderHash(join(runDir, 'prepared'));
    await prepareRun({ config, methodIndex: 0, order: 0, runDir });
    assert.equal(folderHash(join(runDir, 'prepared')), first);
    assert.deepEqual(
      readdirSync(runDir).filter((n) => n.startsWith('prepared.tmp')),
      [],
      'no temporary folder left',
    );
  });
}

// --- The trainer with the fake worker ----------------------------------------------------------------------------

/** The fields of an event both engines must agree on (not timings, losses, accuracies, paths or devices). */
function shape(e: SculptEvent): unknown {
  switch (e.type) {
    case 'run-started':
      return [e.type, e.tasks, e.order, e.method, e.resumedFrom];
    case 'task-started':
      return [e.type, e.task, e.name, e.trainExamples, e.steps];
    case 'step':
      return [e.type, e.task, e.step, e.globalStep, e.lr, e.progress];
    case 'eval':
      return [e.type, e.afterTask, e.task, e.name, e.mode, e.split, e.examples];
    case 'task-finished':
      return [e.type, e.task, e.name];
    case 'checkpoint':
      return [e.type, e.task, e.step, e.reason];
    case 'warning':
      return [e.type, e.code, e.message];
    case 'stopped':
      return [e.type, e.task, e.step];
    default:
      return [e.type];
  }
}

/** The fake worker's accuracy on task `t`'s split after task `a`: example k predicts label (k + a + 1) % L. */
function expectedAccuracy(t: RunTask, split: 'test' | 'validation', a: number): number {
  const examples = split === 'test' ? t.test : t.validation;
  const L = t.labels.length;
  const hits = examples.filter((ex, k) => t.labels[(((k + a + 1) % L) + L) % L] === ex.output).length;
  return (100 * hits) / examples.length;
}

let whole = '';
let wholeEvents: SculptEvent[] = [];

before(() => {
  assert.ok(existsSync(TRAINER), `${TRAINER} exists (npm run build)`);
});

test('a torch run: the events of a tfjs run in the same order, valid, with accuracies, metrics and predictions from the scores', async () => {
  whole = runFolder(torchConfig());
  const s = await trainer(whole);
  assert.equal(s.code, 0, s.stderr);
  wholeEvents = events(whole);
  assertEventLog(wholeEvents, 'torch run');
  assert.deepEqual(
    s.ipc.map((e) => e.seq),
    wholeEvents.map((e) => e.seq),
    'every event also went over IPC',
  );
  // Before run-started, over the same channel: the trainer's notices that it is alive, from its first phase on.
  assert.deepEqual(
    s.notices.slice(0, 2).map((n) => n.phase),
    ['reading the run folder', 'checking Python and torch'],
  );
  // The worker's log lines go to the trainer's stdout (trainer.log), with the repository's python/ on PYTHONPATH.
  assert.match(s.stdout, /fake worker: 2 tasks, resume none/);
  assert.ok(s.stdout.includes(`PYTHONPATH=${join(repoRoot, 'python')}`), s.stdout);

  const started = wholeEvents[0];
  assert.ok(started.type === 'run-started');
  assert.deepEqual(started.engine, {
    name: 'torch',
    version: '2.9.0+fake',
    world: 1,
    shard: 'none',
    precision: 'fp32',
  });
  assert.equal(started.backend.name, 'torch');
  assert.equal(started.model.arch, 'llama');

  // The same config on the tfjs engine: the same events in the same order (steps, lr, evaluations, checkpoints).
  const tfjsDir = runFolder(torchConfig({ engine: 'tfjs', backend: 'wasm', torch: undefined }));
  const ref = await trainer(tfjsDir);
  assert.equal(ref.code, 0, ref.stderr);
  const tfjsEvents = events(tfjsDir);
  assert.deepEqual(tfjsEvents[0].type === 'run-started' && tfjsEvents[0].engine, { name: 'tfjs' });
  // Up to one-answer warnings, which follow the predictions: the fake worker's are made up, the tfjs run's real.
  const comparable = (evs: SculptEvent[]) =>
    evs.filter((e) => !(e.type === 'warning' && e.code === 'one-answer')).map(shape);
  assert.deepEqual(comparable(wholeEvents), comparable(tfjsEvents));

  // Accuracies as the scores make them, and the metrics of those.
  const config = resolve(torchConfig());
  const tasks = loadTasks(config, 0);
  for (const e of wholeEvents) {
    if (e.type !== 'eval') continue;
    // Generation returns the tokens of the label rank mode scores highest: the same accuracy.
    const want = expectedAccuracy(tasks[e.task], e.split ?? 'test', e.afterTask);
    assert.equal(e.accuracy, want, `eval after ${e.afterTask} of task ${e.task} ${e.split} ${e.mode}`);
  }
  const zeroShot = tasks.map((t) => expectedAccuracy(t, 'test', -1));
  const matrix = tasks.map((_, i) => tasks.map((t) => expectedAccuracy(t, 'test', i)));
  const finishedTasks = wholeEvents.filter((e) => e.type === 'task-finished');
  finishedTasks.forEach((e, i) => {
    assert.ok(e.type === 'task-finished');
    assert.deepEqual(e.row, matrix[i]);
    assert.deepEqual(e.metrics, metricsAfter(matrix.slice(0, i + 1), zeroShot));
    assert.deepEqual(
      e.validationRow,
      tasks.map((t) => expectedAccuracy(t, 'validation', i)),
    );
  });
  const fin = wholeEvents.at(-1)!;
  assert.ok(fin.type === 'run-finished');
  assert.deepEqual(fin.matrix, matrix);
  assert.deepEqual(fin.zeroShot, zeroShot);
  assert.deepEqual(fin.metrics, metricsAfter(matrix, zeroShot));
  assert.equal(foldRun('torch', wholeEvents).status, 'finished');

  // Predictions of every point, with the scores of rank mode.
  const sets = listPredictionSets(whole).sets;
  assert.equal(sets.length, 3 * tasks.length * 2 * 2, 'zero-shot and 2 tasks x 2 tasks x 2 splits x 2 modes');
  const firstFile = readFileSync(
    join(whole, 'predictions', 'after-task-1', 'test', `1-${tasks[0].name}.rank.jsonl`),
    'utf8',
  )
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const t0 = tasks[0];
  assert.equal(firstFile.length, t0.test.length);
  assert.equal(firstFile[0].predicted, t0.labels[1 % t0.labels.length]);
  assert.equal(firstFile[0].expected, t0.test[0].output);
  const other = (((1 + 0 + 1) % t0.labels.length) + 1) % t0.labels.length;
  assert.equal(firstFile[1].scores[t0.labels[other]], null, 'a null score is kept as null');
  // The fake worker's steps went through every batch of the plan once.
  assert.deepEqual(
    fakeSteps(whole).map((x) => x.globalStep),
    Array.from({ length: fakeSteps(whole).length }, (_, i) => i + 1),
  );

  // checkpoint.final (the default): the worker's weights, completed with config.json and the tokenizer into
  // <run>/model/ before run-finished, a folder the tfjs loader loads.
  const manifest = JSON.parse(readFileSync(join(whole, 'prepared', 'manifest.json'), 'utf8')) as Manifest;
  assert.equal(manifest.finalModel, join(whole, '.model.partial'));
  for (const f of ['config.json', 'tokenizer.json', 'model.safetensors'])
    assert.ok(existsSync(join(whole, 'model', f)), `model/${f}`);
  assert.ok(!existsSync(join(whole, '.model.partial')), 'the staging folder became model/');
  await selectBackend('cpu');
  loadPretrained(join(whole, 'model')).dispose();
});

test('checkpoint.final false: the manifest asks for no final model, and the run has none', async () => {
  const dir = runFolder(torchConfig({ checkpoint: { final: false }, eval: { modes: ['rank'] } }));
  const s = await trainer(dir);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(events(dir).at(-1)!.type, 'run-finished');
  const manifest = JSON.parse(readFileSync(join(dir, 'prepared', 'manifest.json'), 'utf8')) as Manifest;
  assert.equal(manifest.finalModel, null);
  assert.ok(!existsSync(join(dir, 'model')) && !existsSync(join(dir, '.model.partial')), 'no model folder');
});

test('a stop request becomes stop-request; the worker checkpoints and stops; a resume ends as the uninterrupted run', async () => {
  assert.ok(whole, 'the whole run ran first');
  const dir = runFolder(torchConfig());
  let asked = false;
  const s = await trainer(dir, { SCULPT_FAKE_STEP_MS: '40' }, (e, child) => {
    if (!asked && e.type === 'step' && e.task === 1) {
      asked = true;
      child.send({ type: 'stop' });
    }
  });
  assert.equal(s.code, 0, s.stderr);
  const first = events(dir);
  assertEventLog(first, 'stopped run');
  const last = first.at(-1)!;
  assert.ok(last.type === 'stopped', `last event ${last.type}`);
  assert.equal(last.task, 1);
  const cp = first.at(-2)!;
  assert.ok(cp.type === 'checkpoint' && cp.reason === 'stop');
  assert.equal(last.checkpoint, cp.path);
  assert.ok(existsSync(join(cp.path, 'meta.json')));
  assert.ok(!existsSync(join(dir, 'stop-request')), 'the stop request is removed at the end');
  assert.ok(!existsSync(join(dir, 'model')) && !existsSync(join(dir, '.model.partial')), 'a stopped run has no model');
  assert.equal(foldRun('stopped', first).status, 'stopped');

  const r = await trainer(dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`resume ${cp.path}`));
  const all = events(dir);
  assertEventLog(all, 'resumed run');
  const resumed = all.find((e) => e.seq > last.seq && e.type === 'run-started');
  assert.ok(resumed?.type === 'run-started');
  assert.deepEqual(resumed.resumedFrom, { task: cp.task, step: cp.step, supersededFrom: cp.seq + 1 });
  const eff = effectiveEvents(all);
  const fold = foldRun('resumed', all);
  assert.equal(fold.status, 'finished');
  assert.ok(existsSync(join(dir, 'model', 'model.safetensors')), 'the resumed run ends with its model');
  const fin = eff.at(-1)!;
  const ref = wholeEvents.at(-1)!;
  assert.ok(fin.type === 'run-finished' && ref.type === 'run-finished');
  assert.deepEqual([fin.matrix, fin.zeroShot, fin.metrics], [ref.matrix, ref.zeroShot, ref.metrics]);
  assert.deepEqual(
    fakeSteps(dir).map((x) => [x.globalStep, x.batch, x.lr]),
    fakeSteps(whole).map((x) => [x.globalStep, x.batch, x.lr]),
    'every step once, with the batches and lr of the uninterrupted run',
  );
});

test('a worker crash is an error event quoting its output; a resume supersedes what followed the last committed checkpoint', async () => {
  const dir = runFolder(torchConfig());
  const steps = JSON.parse(readFileSync(join(whole, 'prepared', 'manifest.json'), 'utf8')) as Manifest;
  const crashAt = steps.tasks[0].steps + 3;
  const s = await trainer(dir, { SCULPT_FAKE_WORKER: `crash@${crashAt}` });
  assert.equal(s.code, 1);
  const first = events(dir);
  assertEventLog(first, 'crashed run');
  const err = first.at(-1)!;
  assert.ok(err.type === 'error');
  assert.match(err.message, /the PyTorch worker exited with code 3 without reporting an error/);
  assert.match(err.message, /torch\.OutOfMemoryError: CUDA out of memory \(fake\)/);
  assert.match(err.where ?? '', /PyTorch worker/);
  assert.match(err.hint ?? '', /sculpt resume/);
  assert.match(s.stderr, /CUDA out of memory \(fake\)/, 'the traceback reaches trainer.log');
  assert.equal(foldRun('crashed', first).status, 'failed');
  const committed = first.filter((e) => e.type === 'checkpoint');
  assert.equal(committed.length, 1);
  const cp = committed[0];

  const r = await trainer(dir);
  assert.equal(r.code, 0, r.stderr);
  const all = events(dir);
  assertEventLog(all, 'resumed run');
  const resumed = all.find((e) => e.seq > err.seq && e.type === 'run-started');
  assert.ok(resumed?.type === 'run-started');
  assert.deepEqual(resumed.resumedFrom, { task: 1, step: 0, supersededFrom: cp.seq + 1 });
  const eff = effectiveEvents(all);
  assert.ok(!eff.some((e) => e.type === 'error'), 'the error is superseded');
  for (const type of ['task-started', 'task-finished'] as const)
    assert.equal(eff.filter((e) => e.type === type).length, 2, `one ${type} per task`);
  const steps1 = eff.filter((e) => e.type === 'step').map((e) => (e.type === 'step' ? e.globalStep : 0));
  assert.deepEqual(steps1, [...new Set(steps1)], 'no step twice in the effective log');
  assert.ok(existsSync(join(dir, 'model', 'model.safetensors')), 'the resumed run ends with its model');
  const fin = eff.at(-1)!;
  const ref = wholeEvents.at(-1)!;
  assert.ok(fin.type === 'run-finished' && ref.type === 'run-finished');
  assert.deepEqual([fin.matrix, fin.zeroShot], [ref.matrix, ref.zeroShot]);
  assert.deepEqual(fin.metrics, ref.metrics);
});

test("the worker's error message becomes the run's error event", async () => {
  const dir = runFolder(torchConfig());
  const s = await trainer(dir, { SCULPT_FAKE_WORKER: 'error' });
  assert.equal(s.code, 1);
  const evs = events(dir);
  assertEventLog(evs);
  assert.deepEqual(
    evs.map((e) => e.type),
    ['error'],
  );
  const e = evs[0];
  assert.ok(e.type === 'error');
  assert.deepEqual([e.message, e.where, e.hint], ['CUDA is not available', 'device', 'Set torch.device to cpu.']);
});

test('a malformed message, a worker that ends without a word, a NaN loss, a done without the final model: each a clear error event', async () => {
  const cases: [string, RegExp, RegExp][] = [
    ['garbage', /broke the message protocol: .*step/, /PyTorch worker/],
    [
      'exit0',
      /exited without finishing the run \(no 'done' or 'stopped' message\) and printed nothing/,
      /PyTorch worker/,
    ],
    ['nan@3', /NaN|not finite|non-finite/i, /task 'sentiment', step 3/],
    ['no-final-model', /broke the message protocol: 'done' without the final model's weights/, /PyTorch worker/],
  ];
  for (const [mode, message, where] of cases) {
    const dir = runFolder(torchConfig());
    const s = await trainer(dir, { SCULPT_FAKE_WORKER: mode });
    assert.equal(s.code, 1, `${mode}: ${s.stderr}`);
    const evs = events(dir);
    assertEventLog(evs, mode);
    const e = evs.at(-1)!;
    assert.ok(e.type === 'error', `${mode}: last event ${e.type}`);
    assert.match(e.message, message, mode);
    assert.match(e.where ?? '', where, mode);
  }
});

test('a missing Python is an error event naming torch.python', async () => {
  const missing = join(work, 'no-such-venv', 'bin', 'python');
  const dir = runFolder(torchConfig({ torch: { python: missing } }));
  const s = await trainer(dir);
  assert.equal(s.code, 1);
  const evs = events(dir);
  assertEventLog(evs);
  const e = evs.at(-1)!;
  assert.ok(e.type === 'error');
  assert.ok(e.message.startsWith(`torch.python: ${missing} was not found`), e.message);
  assert.match(e.hint ?? '', /npm run provision/);
  assert.ok(!existsSync(join(dir, 'prepared')), 'found before any work');
  // A bare name not on the PATH.
  const bare = runFolder(torchConfig({ torch: { python: 'sculpt-no-such-python3' } }));
  const b = await trainer(bare);
  assert.equal(b.code, 1);
  const be = events(bare).at(-1)!;
  assert.ok(be.type === 'error');
  assert.match(be.message, /^torch\.python: sculpt-no-such-python3 \(on the PATH\) was not found/);
});

test("a task's boundary work (ranks, warnings) sent after its task-started is logged before it, as tfjs runs log it", async () => {
  const dir = runFolder(torchConfig());
  const s = await trainer(dir, { SCULPT_FAKE_WORKER: 'ranks,abs-paths' });
  assert.equal(s.code, 0, s.stderr);
  const evs = events(dir);
  assertEventLog(evs);
  const at = (type: string, task: number) =>
    evs.findIndex(
      (e) => e.type === type && (e.type === 'ranks' ? e.beforeTask : (e as { task?: number }).task) === task,
    );
  const ranks = at('ranks', 1);
  const warning = evs.findIndex((e) => e.type === 'warning' && e.code === 'rank-policy');
  const started = at('task-started', 1);
  assert.ok(
    ranks > 0 && warning === ranks + 1 && started === warning + 1,
    `ranks ${ranks}, warning ${warning}, task-started ${started}`,
  );
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'ranks', 'before-task-2.rank_pattern.json'), 'utf8')), {
    '^model\\.layers\\.0\\.self_attn\\.q_proj$': 16,
  });
  const cp = evs.find((e) => e.type === 'checkpoint');
  assert.ok(cp?.type === 'checkpoint');
  const manifest = JSON.parse(readFileSync(join(dir, 'prepared', 'manifest.json'), 'utf8')) as Manifest;
  assert.equal(cp.path, join(dir, 'checkpoints', `torch-${manifest.tasks[0].steps}-task`), 'an absolute path is taken');
  assert.equal(foldRun('ranks', evs).status, 'finished');
});

test('until the worker says hello, the host hears alive notices with the phase; none after hello or exit', async () => {
  /** The trainer's runFolder in this process, with notices every 50 ms and the fake worker's options set. */
  const run = async (fake: Record<string, string>) => {
    const dir = runFolder(torchConfig());
    const emitted: SculptEvent[] = [];
    const notices: { phase: string; after: number }[] = [];
    const send = (m: { phase: string }) => notices.push({ phase: m.phase, after: emitted.length });
    Object.assign(process.env, fake);
    try {
      const outcome = await runTrainerFolder(dir, {
        shouldStop: () => false,
        echo: (e) => emitted.push(e),
        notices: { send, intervalMs: 50 },
      });
      const atEnd = notices.length;
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(notices.length, atEnd, 'no notice once the run has returned: no timer left running');
      return { outcome, emitted, notices };
    } finally {
      for (const k of Object.keys(fake)) delete process.env[k];
    }
  };

  // A model slow to load (400 ms before hello), then steps slow enough for several intervals after it.
  const slow = await run({ SCULPT_FAKE_HELLO_MS: '400', SCULPT_FAKE_STEP_MS: '20' });
  assert.equal(slow.outcome, 'finished');
  assert.equal(slow.emitted[0].type, 'run-started');
  assert.deepEqual(
    [...new Set(slow.notices.map((n) => n.phase))],
    [
      'reading the run folder',
      'checking Python and torch',
      "preparing the run's data",
      'loading the model in the PyTorch worker',
    ],
  );
  const loading = slow.notices.filter((n) => n.phase.startsWith('loading')).length;
  assert.ok(loading >= 4, `${loading} notices while the worker loaded for 400 ms`);
  assert.deepEqual(
    slow.notices.filter((n) => n.after > 0),
    [],
    'the notices stop at hello: run-started is the first event and nothing follows it',
  );

  // A worker that exits without a word: the run fails with an error event, and the notices stop with it.
  const silent = await run({ SCULPT_FAKE_WORKER: 'exit0' });
  assert.equal(silent.outcome, 'failed');
  assert.equal(silent.emitted.at(-1)?.type, 'error');
  assert.equal(silent.notices.at(-1)?.phase, 'loading the model in the PyTorch worker');
});

test('kill -9 of the trainer: the worker (its own process group) ends too, and a resume continues from the last commit', async () => {
  const dir = runFolder(torchConfig());
  let killedAfter = 0;
  const s = await trainer(dir, { SCULPT_FAKE_STEP_MS: '50' }, (e, child) => {
    if (!killedAfter && e.type === 'step' && e.task === 1) {
      killedAfter = e.seq;
      child.kill('SIGKILL');
    }
  });
  assert.equal(s.code, null);
  const pid = Number(readFileSync(join(dir, 'fake.pid'), 'utf8'));
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  assert.equal(group, pid, 'the worker leads its own process group');
  const deadline = Date.now() + 20_000;
  while (existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')) {
    assert.ok(Date.now() < deadline, 'the worker ended after the trainer was killed');
    await new Promise((r) => setTimeout(r, 50));
  }
  const before = events(dir);
  const cp = before.filter((e) => e.type === 'checkpoint').at(-1);
  assert.ok(cp?.type === 'checkpoint');
  const r = await trainer(dir);
  assert.equal(r.code, 0, r.stderr);
  const all = events(dir);
  assertEventLog(all);
  const resumed = all.find((e) => e.seq > killedAfter && e.type === 'run-started');
  assert.ok(resumed?.type === 'run-started');
  assert.deepEqual(resumed.resumedFrom, { task: 1, step: 0, supersededFrom: cp.seq + 1 });
  const fin = effectiveEvents(all).at(-1)!;
  const ref = wholeEvents.at(-1)!;
  assert.ok(fin.type === 'run-finished' && ref.type === 'run-finished');
  assert.deepEqual([fin.matrix, fin.metrics], [ref.matrix, ref.metrics]);
});
