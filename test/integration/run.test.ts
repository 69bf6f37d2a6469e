/**
 * The whole loop through the built CLI and trainer (dist/): a tiny model on two tiny tasks. Needs `npm run
 * build` first (npm test does it).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExperimentConfig, MethodConfig } from '../../src/protocol/config';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import type { ExperimentAggregate } from '../../src/runs/aggregate-types';
import type { RunSummary } from '../../src/runs/fold';
import { metricsAfter } from '../../src/runs/metrics';
import { isAlive } from '../../src/supervisor';
import { repoRoot } from '../helpers/paths';
import { tinyExperiment, tinyTraining, writeExperiment } from '../helpers/experiment';
import { CLI, RUN_ENV, assertEventLog, cli, events, finished, runDirs as listRunDirs, trainer } from '../helpers/runs';

const work = mkdtempSync(join(tmpdir(), 'sculpt-run-'));

function config(overrides: Partial<ExperimentConfig> = {}): string {
  const cfg = tinyExperiment({ name: 'it', output: join(work, 'runs'), ...overrides });
  return writeExperiment(work, cfg, `cfg-${Math.random().toString(36).slice(2)}.sculpt.json`);
}

const runDirs = () => listRunDirs(join(work, 'runs'));

function newRunDir(cfg: string): string {
  // `sculpt run` with --jobs 0 is not allowed; prepare the folder through a run that we stop at once.
  const before = new Set(runDirs());
  const r = cli('run', cfg, '--json');
  assert.equal(r.status, 0, r.stderr);
  return runDirs().find((d) => !before.has(d))!;
}

test('a complete run: ordered events that fit the schema, a T x T matrix, metrics from the matrix', () => {
  const r = cli('run', config(), '--json');
  assert.equal(r.status, 0, r.stderr);
  const [dir] = runDirs();
  const evs = events(dir);
  assertEventLog(evs);
  // One-answer warnings follow the evaluations (the tiny model may end a task on one answer): not in the order.
  const oneAnswer = (e: SculptEvent) => e.type === 'warning' && e.code === 'one-answer';
  assert.deepEqual(
    evs
      .filter((e) => e.type !== 'step' && e.type !== 'eval' && e.type !== 'checkpoint' && !oneAnswer(e))
      .map((e) => e.type),
    ['run-started', 'warning', 'task-started', 'task-finished', 'task-started', 'task-finished', 'run-finished'],
  );
  for (const [i, e] of evs.entries()) if (oneAnswer(e)) assert.equal(evs[i - 1].type, 'eval', 'right after an eval');
  // The builtin tiny topic data shares an input between its train and test sets: reported, the run goes on.
  const warning = evs.find((e) => e.type === 'warning');
  assert.ok(warning?.type === 'warning' && warning.code === 'data-overlap', JSON.stringify(warning));
  assert.match(
    warning.message,
    /^task 'topic': 1 of \d+ test examples have an input that is also in the training data/,
  );
  // The --json stream printed the same events.
  assert.equal(r.stdout.trim().split('\n').length, evs.length);
  const fin = finished(dir);
  const R = fin.matrix;
  assert.equal(R.length, 2);
  R.forEach((row) => assert.equal(row.length, 2));
  const zs = fin.zeroShot!;
  assert.equal(fin.metrics.AA, (R[1][0] + R[1][1]) / 2);
  assert.equal(fin.metrics.BWT, R[1][0] - R[0][0]);
  assert.equal(fin.metrics.forgetting, R[0][0] - R[1][0]);
  assert.equal(fin.metrics.FWT, R[0][1] - zs[1]!);
  // Each matrix entry is the accuracy of a test eval event (validation ones: the test below).
  const evals = evs.filter((e) => e.type === 'eval' && e.split === 'test');
  assert.equal(evals.length, 2 + 4, 'zero-shot row plus one row per task');
  for (const e of evals) {
    if (e.type !== 'eval') continue;
    assert.equal(e.afterTask === -1 ? zs[e.task] : R[e.afterTask][e.task], e.accuracy);
  }
  const report = cli('report', dir);
  assert.equal(report.status, 0);
  assert.match(report.stdout, /\| seqft-o1-s0 \| seqft \| finished \|/);
  rmSync(dir, { recursive: true });
});

test('the validation split: evaluated beside the test set in the events, the fold and sculpt report --json', () => {
  const r = cli('run', config({ seed: 5 }), '--json');
  assert.equal(r.status, 0, r.stderr);
  const dir = runDirs().at(-1)!;
  const evs = events(dir);
  assertEventLog(evs);
  const evals = evs.flatMap((e) => (e.type === 'eval' ? [e] : []));
  assert.ok(
    evals.every((e) => e.split === 'test' || e.split === 'validation'),
    'every eval says its split',
  );
  const valid = evals.filter((e) => e.split === 'validation');
  assert.equal(valid.length, 2 + 4, 'the validation splits: zero-shot and after each task');
  // round(0.1 x 95 distinct inputs) = 10 inputs held out of each task (11 examples when a held-out input repeats).
  for (const e of valid) assert.ok(e.examples === 10 || e.examples === 11, `${e.name}: ${e.examples}`);
  // Each task trains on what the split leaves.
  for (const s of evs.flatMap((e) => (e.type === 'task-started' ? [e] : []))) {
    const held = valid.find((e) => e.task === s.task)!.examples;
    assert.equal(s.trainExamples, 96 - held, `${s.name}: trained on the rest`);
  }
  const fin = finished(dir);
  const V = fin.validationMatrix!;
  const vz = fin.validationZeroShot!;
  assert.equal(V.length, 2);
  for (const e of valid) assert.equal(e.afterTask === -1 ? vz[e.task] : V[e.afterTask][e.task], e.accuracy);
  const rows = evs.flatMap((e) => (e.type === 'task-finished' ? [e] : []));
  assert.deepEqual(
    rows.map((e) => e.validationRow),
    V,
  );
  assert.deepEqual(fin.validationMetrics, metricsAfter(V, vz));
  assert.deepEqual(rows[1].validationMetrics, fin.validationMetrics);
  assert.deepEqual(fin.metrics, metricsAfter(fin.matrix, fin.zeroShot), 'the test metrics are those of R');
  const report = cli('report', dir, '--json');
  assert.equal(report.status, 0, report.stderr);
  const { runs, aggregate } = JSON.parse(report.stdout) as { runs: RunSummary[]; aggregate: ExperimentAggregate };
  assert.deepEqual(
    [runs[0].validationMatrix, runs[0].validationZeroShot, runs[0].validationMetrics],
    [V, vz, fin.validationMetrics],
  );
  assert.deepEqual(runs[0].matrix, fin.matrix);
  assert.deepEqual(aggregate.methods[0].validationMetrics.AA.values, [fin.validationMetrics!.AA]);
  assert.deepEqual(aggregate.methods[0].metrics.AA.values, [fin.metrics.AA]);
  const md = cli('report', dir);
  assert.match(
    md.stdout,
    /\| run \| method \| status \| AA \| BWT \| forgetting \| FWT \| validation AA \| validation BWT \|/,
  );
  rmSync(dir, { recursive: true });
});

const METHODS: MethodConfig[] = [
  { method: 'seqft' },
  { method: 'adaptive-svd' },
  { method: 'adaptive-svd', parametrisation: 'factored', rank: { policy: 'fixed', ratio: 0.5 } },
];

for (const m of METHODS) {
  test(`stop in the second task, then resume, ends with the same metrics as an uninterrupted run (${JSON.stringify(m)})`, async () => {
    const cfg = config({ methods: [m], checkpoint: { every: 'never' } });
    const whole = newRunDir(cfg);
    const reference = finished(whole);
    // A second folder for the same job, stopped 4 steps into the second task (where the method's state matters).
    const dir = whole + '-stopped';
    cpSync(join(whole, 'config.json'), join(dir, 'config.json'), { recursive: true });
    cpSync(join(whole, 'job.json'), join(dir, 'job.json'));
    let asked = false;
    const code = await trainer(dir, (e, child) => {
      if (e.type === 'step' && e.task === 1 && e.step >= 4 && !asked) {
        asked = true;
        child.send({ type: 'stop' });
      }
    });
    assert.equal(code, 0);
    const stopped = events(dir).find((e) => e.type === 'stopped');
    assert.ok(
      stopped && stopped.type === 'stopped' && stopped.checkpoint && existsSync(stopped.checkpoint),
      'stopped with a checkpoint',
    );
    assert.equal(stopped.task, 1);
    assert.ok(!events(dir).some((e) => e.type === 'run-finished'));
    const r = cli('resume', dir);
    assert.equal(r.status, 0, r.stderr);
    const resumed = finished(dir);
    assert.deepEqual(resumed.matrix, reference.matrix);
    assert.deepEqual(resumed.metrics, reference.metrics);
    assert.ok(reference.validationMatrix?.length === 2, 'the reference has validation figures');
    assert.deepEqual(
      [resumed.validationMatrix, resumed.validationZeroShot, resumed.validationMetrics],
      [reference.validationMatrix, reference.validationZeroShot, reference.validationMetrics],
      'the same validation figures',
    );
  });
}

test('after kill -9 the folder is readable and resume continues from the last checkpoint', async () => {
  const cfg = config({ checkpoint: { every: 4, keep: 2 } });
  const whole = newRunDir(cfg);
  const reference = finished(whole);
  const dir = whole + '-killed';
  cpSync(join(whole, 'config.json'), join(dir, 'config.json'));
  cpSync(join(whole, 'job.json'), join(dir, 'job.json'));
  let killed = false;
  await trainer(dir, (e, child) => {
    if (e.type === 'step' && e.globalStep === 10 && !killed) {
      killed = true;
      child.kill('SIGKILL');
    }
  });
  assert.ok(killed);
  const log = parseEventLog(readFileSync(join(dir, 'events.jsonl'), 'utf8'));
  assert.equal(log.badLines.length, 0);
  assert.ok(log.events.some((e) => e.type === 'checkpoint'));
  // Its log still says running; with no trainer behind it the report says interrupted.
  const report = cli('report', dir);
  assert.equal(report.status, 0, report.stderr);
  assert.match(report.stdout, /\| seqft \| interrupted \|/);
  assert.match(report.stdout, /left out because they did not finish with metrics: \S+-killed \(interrupted\)/);
  const r = cli('resume', dir);
  assert.equal(r.status, 0, r.stderr);
  const resumed = finished(dir);
  assert.deepEqual(resumed.matrix, reference.matrix);
  const restarted = events(dir).filter((e) => e.type === 'run-started');
  assert.equal(restarted.length, 2);
  assert.ok(restarted[1].type === 'run-started' && restarted[1].resumedFrom && restarted[1].resumedFrom.step === 8);
});

test('a corrupt checkpoint on resume is a clear error event and leaves the rest of the folder untouched', async () => {
  const cfg = config({ checkpoint: { every: 4, keep: 1 } });
  const whole = newRunDir(cfg);
  const dir = whole + '-corrupt';
  cpSync(whole, dir, { recursive: true });
  rmSync(join(dir, 'events.jsonl'));
  writeFileSync(
    join(dir, 'events.jsonl'),
    readFileSync(join(whole, 'events.jsonl'), 'utf8').split('\n').slice(0, 12).join('\n') + '\n',
  );
  const cp = join(dir, 'checkpoints', readFileSync(join(dir, 'checkpoints', 'LATEST'), 'utf8').trim());
  writeFileSync(join(cp, 'model.safetensors'), Buffer.from('garbage'));
  // trainer.log records every attempt and events.jsonl gets the error event; every other file stays as it was.
  const logBefore = readFileSync(join(dir, 'events.jsonl'), 'utf8');
  const snapshot = () =>
    readdirSync(dir, { recursive: true, withFileTypes: false })
      .map(String)
      .filter((f) => f !== 'trainer.log' && f !== 'events.jsonl')
      .sort()
      .map((f) => `${f}:${statSync(join(dir, f)).size}:${statSync(join(dir, f)).mtimeMs}`);
  const before = snapshot();
  const r = cli('resume', dir);
  assert.equal(r.status, 1);
  // The trainer's message reaches the terminal from the tail of trainer.log.
  assert.match(r.stderr, /checkpoint .* cannot be used: model\.safetensors/);
  // The trainer wrote an error event, so the run is reported as failed, not as a crash.
  assert.match(r.stderr, /^failed: .*-corrupt$/m);
  assert.match(readFileSync(join(dir, 'trainer.log'), 'utf8'), /checkpoint .* cannot be used: model\.safetensors/);
  assert.deepEqual(snapshot(), before);
  const log = readFileSync(join(dir, 'events.jsonl'), 'utf8');
  assert.ok(log.startsWith(logBefore));
  assert.deepEqual(
    parseEventLog(log.slice(logBefore.length)).events.map((e) => e.type),
    ['error'],
  );
});

test('invalid configs exit 2 and name the JSON path', () => {
  const bad = (obj: Record<string, unknown>, pattern: RegExp) => {
    const f = join(work, 'bad.sculpt.json');
    writeFileSync(f, JSON.stringify(obj));
    const r = cli('run', f);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(cli('validate', f).status, 2);
  };
  const base = JSON.parse(readFileSync(config(), 'utf8'));
  bad({ ...base, model: undefined }, /: model: is required/);
  bad({ ...base, seed: 'x' }, /: seed: expected integer, got the string "x"/);
  bad({ ...base, methods: [{ method: 'nope' }] }, /methods\[0\]\.method: unknown method/);
  bad(
    { ...base, tasks: [{ name: 'a', source: { train: 'missing.jsonl', test: 'missing.jsonl' } }] },
    /tasks\[0\]\.source\.train: data file not found/,
  );
  bad({ ...base, tasks: [] }, /tasks: needs at least 1 item/);
  const empty = join(work, 'empty.jsonl');
  writeFileSync(empty, '\n');
  const f = join(work, 'empty-task.sculpt.json');
  writeFileSync(f, JSON.stringify({ ...base, tasks: [{ name: 'e', source: { train: empty, test: empty } }] }));
  const r = cli('run', f);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /tasks\[0\]\.source: .*empty\.jsonl: no examples/);
  const runs = runDirs().filter((d) => d.includes('empty'));
  assert.deepEqual(runs, []);
});

test('a diverging run ends with an error event naming the task and step, keeping what it computed', () => {
  const r = cli('run', config({ training: tinyTraining({ lr: 1e30, gradClip: 0 }) }), '--json');
  assert.equal(r.status, 1);
  const dir = runDirs().sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  const evs = events(dir);
  const err = evs.find((e) => e.type === 'error');
  assert.ok(err && err.type === 'error', 'an error event');
  assert.match(
    err.message,
    /training diverged: the loss became (NaN|Infinity|-Infinity) at step \d+ of task 'sentiment'/,
  );
  assert.match(err.where ?? '', /task 'sentiment', step \d+/);
  assert.ok(
    evs.some((e) => e.type === 'eval'),
    'the zero-shot evaluation is kept',
  );
});

test('report --html is one self-contained page with the runs, escaped', () => {
  const r = cli('run', config({ name: 'html<b>' }), '--json');
  assert.equal(r.status, 0, r.stderr);
  const made = runDirs().find((d) => d.includes('html_b_'))!;
  assert.match(made, /html_b_-\d{8}-\d{6}\/seqft-o1-s0$/);
  // A run's name is its folder's, which a user may rename to anything: the page shows it as text.
  const dir = join(work, 'renamed<b>run');
  renameSync(made, dir);
  const out = join(work, 'report.html');
  assert.equal(cli('report', dir, '--html', '--out', out).status, 0);
  const html = readFileSync(out, 'utf8');
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.doesNotMatch(html, /<script|src="http|href="http/);
  assert.match(html, /<svg[^>]+aria-label="accuracy matrix of renamed&lt;b&gt;run/);
  assert.ok(!html.includes('<b>run'), 'the name never as markup');
  const fin = finished(dir);
  assert.ok(html.includes(`>${fin.metrics.AA.toFixed(1)}<`), 'the AA figure is on the page');
});

test('the trainer names itself in trainer.pid while it runs and removes it when it ends', async () => {
  const whole = newRunDir(config());
  const dir = whole + '-pid';
  cpSync(join(whole, 'config.json'), join(dir, 'config.json'));
  cpSync(join(whole, 'job.json'), join(dir, 'job.json'));
  let seen: { pid: number; host: string } | undefined;
  let childPid: number | undefined;
  await trainer(dir, (e, child) => {
    if (e.type === 'run-started' && !seen) {
      childPid = child.pid;
      seen = JSON.parse(readFileSync(join(dir, 'trainer.pid'), 'utf8'));
    }
  });
  assert.equal(seen?.pid, childPid);
  assert.equal(typeof seen?.host, 'string');
  assert.ok(!existsSync(join(dir, 'trainer.pid')), 'removed at exit');
});

test('every shipped example passes sculpt validate', () => {
  const examples = readdirSync(join(repoRoot, 'examples')).filter((f) => f.endsWith('.sculpt.json'));
  assert.ok(examples.length >= 5, `examples: ${examples.join(', ')}`);
  const r = cli('validate', ...examples.map((f) => join(repoRoot, 'examples', f)));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, examples.length);
});

test('trainers running side by side share the cores: each gets cores / jobs wasm threads', () => {
  const cores = availableParallelism();
  for (const jobs of [1, 2]) {
    const before = new Set(runDirs());
    const r = cli(
      'run',
      config({ methods: [{ method: 'seqft' }, { method: 'ewc' }], training: tinyTraining({ epochs: 1 }) }),
      '--jobs',
      String(jobs),
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const dirs = runDirs().filter((d) => !before.has(d));
    assert.equal(dirs.length, 2);
    const want = Math.max(1, Math.floor(cores / jobs));
    for (const dir of dirs) {
      const started = events(dir).find((e) => e.type === 'run-started');
      assert.ok(started?.type === 'run-started');
      assert.match(
        started.backend.device,
        new RegExp(`, ${want} threads?, fused kernels in SIMD$`),
        `--jobs ${jobs} on ${cores} cores: ${started.backend.device}`,
      );
    }
  }
});

const running = new Set<ChildProcess>();
after(() => {
  // A test that failed half-way: Ctrl-C twice, so that the CLI takes its trainers with it.
  for (const child of running) {
    child.kill('SIGINT');
    child.kill('SIGINT');
  }
});

/** `sculpt <args>` in the background, so that a test can signal it while it runs; resolves at its exit. */
function cliRunning(args: string[]): {
  child: ChildProcess;
  /** What it wrote to stderr so far. */
  stderr: () => string;
  done: Promise<{ status: number | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, [CLI, ...args], { env: RUN_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    child,
    stderr: () => stderr,
    done: new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr }))),
  };
}

/** Waits until a run folder below `root` has logged `steps` step events; returns it and its trainer's pid. */
async function runningFolder(root: string, steps: number): Promise<{ dir: string; pid: number }> {
  for (let t = 0; t < 120_000; t += 50) {
    for (const dir of listRunDirs(root)) {
      if (!existsSync(join(dir, 'events.jsonl')) || !existsSync(join(dir, 'trainer.pid'))) continue;
      let pid: number;
      try {
        pid = (JSON.parse(readFileSync(join(dir, 'trainer.pid'), 'utf8')) as { pid: number }).pid;
      } catch {
        continue; // being written
      }
      if (events(dir).filter((e) => e.type === 'step').length >= steps) return { dir, pid };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no run below ${root} reached ${steps} steps`);
}

async function gone(pid: number): Promise<boolean> {
  for (let t = 0; t < 5000; t += 50) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

test('Ctrl-C: the run finishes its step, writes a checkpoint and stops; the CLI exits 3 (stopped); the output is in trainer.log', async () => {
  const out = join(work, 'ctrl-c');
  const run = cliRunning(['run', config({ output: out, training: tinyTraining({ epochs: 200 }) }), '--json']);
  const { dir, pid } = await runningFolder(out, 3);
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.status, 3, r.stderr);
  const evs = events(dir);
  const stopped = evs.find((e) => e.type === 'stopped');
  assert.ok(
    stopped?.type === 'stopped' && stopped.checkpoint && existsSync(stopped.checkpoint),
    'stopped with a checkpoint',
  );
  assert.equal(r.stdout.trim().split('\n').length, evs.length, '--json printed every event, and nothing else');
  assert.match(readFileSync(join(dir, 'trainer.log'), 'utf8'), /^--- \S+ .*trainer\.js .*ctrl-c/);
  assert.ok(!existsSync(join(dir, 'trainer.pid')));
  assert.ok(await gone(pid));
});

test(
  'Ctrl-C twice: the running trainer is killed, the queued run is cancelled, the CLI exits 3 (stopped on request) naming both',
  { skip: process.platform === 'win32' },
  async () => {
    const out = join(work, 'ctrl-c-twice');
    const cfg = config({
      output: out,
      methods: [{ method: 'seqft' }, { method: 'ewc' }],
      training: tinyTraining({ epochs: 200 }),
    });
    const run = cliRunning(['run', cfg, '--jobs', '1']);
    const { dir, pid } = await runningFolder(out, 3);
    // Frozen, the trainer cannot finish its step and stop before the second Ctrl-C; a kill still ends it.
    process.kill(pid, 'SIGSTOP');
    run.child.kill('SIGINT');
    // Two signals sent at once may arrive as one: the second follows the CLI's answer to the first.
    for (let t = 0; t < 30_000 && !run.stderr().includes('Ctrl-C again'); t += 20)
      await new Promise((r) => setTimeout(r, 20));
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /Ctrl-C again to kill/);
    assert.match(r.stderr, /killed on request/);
    assert.ok(!r.stderr.includes('--- end of'), 'no trainer.log tail for a kill the user asked for');
    assert.ok(r.stderr.includes(`killed: ${dir}\n`), r.stderr);
    assert.match(r.stderr, /^cancelled: .*\/ewc-o1-s0$/m);
    assert.ok(await gone(pid), 'the trainer is gone with the CLI');
  },
);

test('the trainer ignores a host message it does not know, with a note on its stderr; resuming a finished run does nothing and succeeds', async () => {
  const whole = newRunDir(config());
  const again = cli('resume', whole);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /finished \(already; nothing to resume\)/);
  assert.equal(events(whole).filter((e) => e.type === 'run-started').length, 1, 'no trainer ran again');
  const dir = whole + '-unknown-message';
  cpSync(join(whole, 'config.json'), join(dir, 'config.json'));
  cpSync(join(whole, 'job.json'), join(dir, 'job.json'));
  let stderr = '';
  let sent = false;
  const code = await trainer(dir, (e, child) => {
    if (e.type !== 'step' || sent) return;
    sent = true;
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.send({ type: 'pause' });
    child.send({ type: 'stop' });
  });
  assert.equal(code, 0);
  assert.ok(
    events(dir).some((e) => e.type === 'stopped'),
    'the stop that followed was obeyed',
  );
  assert.match(stderr, /ignored a message from the host that is not a known host message: \{"type":"pause"\}/);
});
