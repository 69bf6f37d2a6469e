/**
 * The supervisor against a fake trainer (test/fixtures/supervisor/fake-trainer.mjs): every path ends in the
 * right state, the log is kept, malformed IPC messages are not taken for events, and no process is left
 * behind. The last tests go through the extension's run manager and the real trainer (dist/trainer.js: run
 * `npm run build` first).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { join } from 'node:path';
import { Supervisor, isAlive, nodeTrainerCommand, type SupervisorOptions } from '../../src/supervisor';
import { RunManager, type RunManagerOptions } from '../../src/extension/run-manager';
import { RuntimeError } from '../../src/extension/node-runtime';
import type { SculptEvent } from '../../src/protocol/events';
import { prepareRuns } from '../../src/extension/launch';
import { tinyExperiment, tinyTraining } from '../helpers/experiment';
import { fixture, repoRoot } from '../helpers/paths';

const FAKE = fixture('supervisor', 'fake-trainer.mjs');
const work = mkdtempSync(join(tmpdir(), 'sculpt-sup-'));
const pids: number[] = [];
after(() => {
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

let n = 0;
function runDir(fake: Record<string, unknown>): string {
  const dir = join(work, `run-${++n}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'fake.json'), JSON.stringify(fake));
  return dir;
}

const FAST = { startupTimeoutMs: 5000, stopGraceMs: 2000, killGraceMs: 500, pollMs: 50 };

function track<S extends Supervisor>(s: S): S {
  s.onState((r) => r.pid && !pids.includes(r.pid) && pids.push(r.pid));
  return s;
}

/** A supervisor whose trainers are the fake trainer, detached as the extension's are unless told otherwise. */
function supervisor(opts: Partial<SupervisorOptions> = {}): Supervisor {
  return track(
    new Supervisor({
      command: (dir) => nodeTrainerCommand({ node: process.execPath, script: FAKE, dir, env: process.env }),
      maxConcurrent: () => 1,
      ...FAST,
      ...opts,
    }),
  );
}

/** The extension's run manager, with the fake trainer unless told otherwise. */
function manager(opts: Partial<RunManagerOptions> = {}): RunManager {
  return track(
    new RunManager({
      trainerScript: FAKE,
      runtime: () => ({ command: process.execPath, env: process.env, embedded: false }),
      maxConcurrent: () => 1,
      ...FAST,
      ...opts,
    }),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gone(pid: number | undefined, ms = 2000): Promise<boolean> {
  if (pid === undefined) return true;
  for (let t = 0; t < ms; t += 25) {
    if (!isAlive(pid)) return true;
    await sleep(25);
  }
  return false;
}

function waitForEvents(m: Supervisor, dir: string, count: number): Promise<SculptEvent[]> {
  const seen: SculptEvent[] = [];
  return new Promise((resolve) => {
    const sub = m.onEvent((d, e) => {
      if (d !== dir) return;
      seen.push(e);
      if (seen.length >= count) {
        sub.dispose();
        resolve(seen);
      }
    });
  });
}

test('a run that finishes: events arrive in order, the log and the record are kept, the pid is gone', async () => {
  const m = supervisor();
  const dir = runDir({ mode: 'finish' });
  const events: SculptEvent[] = [];
  m.onEvent((d, e) => d === dir && events.push(e));
  const states: string[] = [];
  m.onState((r) => r.dir === dir && states.push(r.state));
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'finished');
  assert.deepEqual(states, ['queued', 'starting', 'running', 'finished']);
  assert.deepEqual(
    events.map((e) => e.seq),
    [1, 2, 3, 4, 5, 6, 7],
  );
  assert.equal(events.at(-1)?.type, 'run-finished');
  assert.equal(rec.progress.phase, 'done');
  assert.equal(rec.progress.status, 'finished');
  assert.equal(rec.exitCode, 0);
  assert.equal(rec.logTail, undefined, 'no crash report for a clean finish');
  assert.match(readFileSync(join(dir, 'trainer.log'), 'utf8'), /fake trainer finish/);
  assert.ok(!existsSync(join(dir, 'trainer.pid')), 'the pid file is removed once the trainer has ended');
  assert.ok(await gone(rec.pid));
  assert.throws(() => m.start(dir), /already finished/);
});

test('malformed IPC messages from a trainer are not passed on as events, and are noted once in trainer.log', async () => {
  const m = supervisor();
  const dir = runDir({ mode: 'stray' });
  const events: SculptEvent[] = [];
  m.onEvent((d, e) => d === dir && events.push(e));
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'finished');
  assert.deepEqual(
    events.map((e) => e.seq),
    [1, 2, 3, 4, 5, 6, 7],
    'only the events, each once: a stray seq 1000 did not hide the rest',
  );
  assert.ok(events.every((e) => e.runId === path.basename(dir)));
  const log = readFileSync(join(dir, 'trainer.log'), 'utf8');
  const notes = log.split('\n').filter((l) => l.includes('ignored a message from the trainer'));
  assert.equal(notes.length, 1, log);
  assert.match(notes[0], /not an event/);
});

test('an event IPC did not deliver before the exit is read back from events.jsonl', async () => {
  const m = supervisor();
  const dir = runDir({ mode: 'finish', lastOnlyInLog: true });
  const types: string[] = [];
  m.onEvent((d, e) => d === dir && types.push(e.type));
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'finished');
  assert.equal(types.at(-1), 'run-finished');
});

test('a run that reports an error fails with its message, hint and the log tail', async () => {
  const m = supervisor();
  const dir = runDir({ mode: 'fail' });
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'failed');
  assert.match(rec.problem ?? '', /loss is NaN \(task 'a', step 2\)\nLower the learning rate\./);
  assert.match(rec.logTail ?? '', /loss diverged/);
  assert.ok(await gone(rec.pid));
});

test('an exit without run-finished is a crash, reported with the tail of what this session wrote', async () => {
  const m = supervisor();
  const dir = runDir({ mode: 'crash' });
  writeFileSync(join(dir, 'trainer.log'), 'output of an earlier session\n');
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'crashed');
  assert.match(rec.problem ?? '', /exited \(code 3\) without finishing/);
  assert.match(rec.logTail ?? '', /simulated out-of-memory/);
  assert.doesNotMatch(rec.logTail ?? '', /earlier session/);
  assert.match(
    readFileSync(join(dir, 'trainer.log'), 'utf8'),
    /^output of an earlier session\n--- \S+ .*fake-trainer\.mjs/,
    'the log is appended to',
  );
  assert.ok(await gone(rec.pid));
});

test('a trainer that sends nothing within the start-up timeout is killed and reported', async () => {
  const m = supervisor({ startupTimeoutMs: 400 });
  const dir = runDir({ mode: 'hang' });
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'crashed');
  assert.equal(rec.problem, 'The trainer sent no event within 0.4 s of starting and was killed.');
  assert.equal(rec.phase, undefined);
  assert.ok(await gone(rec.pid));
});

test('a trainer that says it is alive is not killed while it loads, however long past the start-up timeout', async () => {
  const m = supervisor({ startupTimeoutMs: 600 });
  const dir = runDir({ mode: 'alive', aliveMs: 50, firstEventMs: 1500 });
  const seen: [string, string | undefined][] = [];
  m.onState((r) => r.dir === dir && seen.push([r.state, r.phase]));
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'finished', rec.problem);
  assert.equal(rec.progress.status, 'finished', 'it ended as its events say');
  assert.ok(rec.endedAt! - rec.startedAt! >= 1500, 'its first event came after more than two timeouts');
  assert.deepEqual(
    seen.filter(([state]) => state === 'starting'),
    [
      ['starting', undefined],
      ['starting', 'loading the model'],
    ],
    'the phase is shown while it starts, once: a repeated notice changes nothing to show',
  );
  const log = readFileSync(join(dir, 'trainer.log'), 'utf8');
  assert.doesNotMatch(log, /ignored a message/, 'a notice is not a stray message');
  assert.doesNotMatch(readFileSync(join(dir, 'events.jsonl'), 'utf8'), /alive/, 'notices are not events');
});

test('a trainer whose notices stop is killed one start-up timeout after the last, with its last phase', async () => {
  const m = supervisor({ startupTimeoutMs: 600 });
  const dir = runDir({ mode: 'alive', aliveMs: 50, aliveFor: 1000 });
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'crashed');
  assert.equal(
    rec.problem,
    'The trainer sent no event and was killed after 0.6 s without word from it; the last it reported was: loading the model.',
  );
  const last = Number(readFileSync(join(dir, 'alive.last'), 'utf8'));
  assert.ok(last - rec.startedAt! > 600, 'notices went on past the first timeout');
  assert.ok(rec.endedAt! - last >= 600, `killed ${rec.endedAt! - last} ms after the last notice`);
  assert.ok(rec.endedAt! - last < 600 + 3000, `killed ${rec.endedAt! - last} ms after the last notice`);
  assert.ok(await gone(rec.pid));
});

test('stop: the trainer checkpoints and says stopped; resume continues the numbering', async () => {
  const m = supervisor();
  const dir = runDir({ mode: 'run' });
  const first = waitForEvents(m, dir, 4);
  m.start(dir);
  await first;
  m.stop(dir);
  assert.equal(m.get(dir)?.state, 'stopping');
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'stopped');
  assert.ok(existsSync(join(dir, 'checkpoints', 'LATEST')));
  assert.ok(await gone(rec.pid));

  const resumed = waitForEvents(m, dir, 1);
  const again = m.start(dir);
  assert.equal(again.state, 'starting');
  const [firstAfterResume] = await resumed;
  assert.equal(firstAfterResume.type, 'run-started');
  assert.ok(firstAfterResume.seq > 4);
  m.stop(dir);
  assert.equal((await m.whenSettled(dir)).state, 'stopped', 'a stopped event from the earlier session does not count');
});

test('a trainer that ignores stop and SIGTERM is killed with everything it started', async () => {
  const m = supervisor({ stopGraceMs: 200, killGraceMs: 200 });
  const dir = runDir({ mode: 'ignore-stop' });
  const first = waitForEvents(m, dir, 3);
  m.start(dir);
  await first;
  const child = Number(readFileSync(join(dir, 'child.pid'), 'utf8'));
  assert.ok(isAlive(child));
  m.stop(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'killed');
  assert.match(rec.problem ?? '', /did not stop when asked/);
  assert.ok(await gone(rec.pid), 'trainer still running');
  assert.ok(await gone(child), "the trainer's child still running");
});

test('kill: the trainer and everything it started go at once, without waiting for a stop', async () => {
  const m = supervisor({ stopGraceMs: 60_000 });
  const dir = runDir({ mode: 'ignore-stop' });
  const first = waitForEvents(m, dir, 3);
  m.start(dir);
  await first;
  const child = Number(readFileSync(join(dir, 'child.pid'), 'utf8'));
  m.stop(dir);
  m.kill(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'killed');
  assert.match(rec.problem ?? '', /killed on request/);
  assert.ok(await gone(rec.pid));
  assert.ok(await gone(child));
});

test(
  'attached trainers (as the CLI starts them) share the host process group; detached ones lead their own',
  { skip: process.platform !== 'linux' },
  async () => {
    const group = (pid: number) => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    };
    for (const detached of [false, true]) {
      const m = supervisor({ detached });
      const dir = runDir({ mode: 'run' });
      const first = waitForEvents(m, dir, 2);
      const rec = m.start(dir);
      await first;
      assert.equal(group(rec.pid!), detached ? rec.pid : group(process.pid), `detached: ${detached}`);
      m.stop(dir);
      assert.equal((await m.whenSettled(dir)).state, 'stopped');
    }
  },
);

test('one run at a time: the next waits in the queue; stopping a queued run cancels it', async () => {
  const m = supervisor();
  const a = runDir({ mode: 'finish', stepMs: 50 });
  const b = runDir({ mode: 'finish' });
  const c = runDir({ mode: 'finish' });
  m.start(a);
  m.start(b);
  m.start(c);
  assert.deepEqual([m.get(a)?.state, m.get(b)?.state, m.get(c)?.state], ['starting', 'queued', 'queued']);
  m.stop(c);
  assert.equal(m.get(c)?.state, 'cancelled');
  assert.equal((await m.whenSettled(a)).state, 'finished');
  assert.equal(m.get(b)?.state, 'starting', 'the queued run starts as soon as the first ends');
  assert.equal((await m.whenSettled(b)).state, 'finished');
  assert.ok(!existsSync(join(c, 'events.jsonl')), 'a cancelled run never started');
});

test('after a reload, a live trainer is found from its pid file, followed through its log and stopped', async () => {
  const first = manager();
  const dir = runDir({ mode: 'run', stepMs: 30 });
  const some = waitForEvents(first, dir, 3);
  first.start(dir);
  await some;
  const pid = first.get(dir)!.pid!;
  first.dispose(); // the window goes; the trainer keeps running
  await sleep(100);
  assert.ok(isAlive(pid));

  const second = manager();
  assert.throws(() => second.start(dir), /being run by trainer pid \d+/, 'one trainer per folder');
  assert.equal(second.attach(runDir({ mode: 'run' })), undefined, 'a folder without a live trainer is not attached');
  const rec = second.attach(dir);
  assert.ok(rec);
  assert.equal(rec.state, 'running');
  assert.equal(rec.attached, true);
  assert.equal(rec.progress.tasks.length, 2, 'the progress is replayed from the log');
  const later = await waitForEvents(second, dir, 2);
  assert.equal(later[0].type, 'step');
  second.stop(dir);
  const done = await second.whenSettled(dir);
  assert.equal(done.state, 'stopped');
  assert.ok(await gone(pid));
});

test('a run started elsewhere (no pid file) is followed through its log until it ends or goes quiet', async () => {
  const m = supervisor();
  const dir = runDir({ mode: 'none' });
  const line = (seq: number, body: Record<string, unknown>) =>
    JSON.stringify({ v: 1, runId: 'cli', seq, time: Date.now(), ...body }) + '\n';
  const log = join(dir, 'events.jsonl');
  writeFileSync(
    log,
    line(1, { type: 'run-started', method: 'seqft', tasks: ['a'], order: 0, config: {}, backend: {}, model: {} }),
  );
  const rec = m.follow(dir);
  assert.ok(rec);
  assert.equal(rec.attached, true);
  assert.equal(rec.pid, undefined);
  const next = waitForEvents(m, dir, 2);
  appendFileSync(
    log,
    line(2, { type: 'step', task: 0, step: 1, globalStep: 1, loss: 1, lr: 1, tokensPerSecond: 1, progress: 0.5 }),
  );
  appendFileSync(
    log,
    line(3, {
      type: 'run-finished',
      matrix: [[90]],
      zeroShot: null,
      metrics: { AA: 90, BWT: null, forgetting: null, FWT: null },
      seconds: 1,
    }),
  );
  assert.deepEqual(
    (await next).map((e) => e.seq),
    [2, 3],
  );
  assert.equal((await m.whenSettled(dir)).state, 'finished');
  assert.equal(m.follow(dir), undefined, 'a finished log is not followed');

  const quiet = runDir({ mode: 'none' });
  writeFileSync(
    join(quiet, 'events.jsonl'),
    line(1, { type: 'run-started', method: 'seqft', tasks: ['a'], order: 0, config: {}, backend: {}, model: {} }),
  );
  m.follow(quiet, 150);
  const q = await m.whenSettled(quiet);
  assert.equal(q.state, 'crashed');
  assert.match(q.problem ?? '', /has not grown/);
});

test('a command that cannot be built is reported as a crash that says what to do', async () => {
  const m = manager({
    runtime: () => {
      throw new RuntimeError("Cannot start the trainer: 'node' was not found on PATH. Install Node.js 20 or later");
    },
  });
  const dir = runDir({ mode: 'finish' });
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'crashed');
  assert.match(rec.problem ?? '', /Install Node.js 20/);
});

test('an executable that does not exist is a crash that names it and the setting to check', async () => {
  const m = manager({ runtime: () => ({ command: join(work, 'no-such-node'), env: process.env, embedded: false }) });
  const dir = runDir({ mode: 'finish' });
  m.start(dir);
  const rec = await m.whenSettled(dir);
  assert.equal(rec.state, 'crashed');
  assert.match(rec.problem ?? '', /Cannot start the trainer with .*no-such-node: .*ENOENT.*Check "sculpt.nodePath"/);
});

test('the real trainer (dist/trainer.js): a run finishes, another stops on request with a checkpoint', async () => {
  const trainer = path.join(repoRoot, 'dist', 'trainer.js');
  assert.ok(existsSync(trainer), 'dist/trainer.js is missing: run npm run build (npm test does)');
  const cfg = path.join(work, 'real.sculpt.json');
  const config = (epochs: number) =>
    tinyExperiment({ name: 'real', training: tinyTraining({ epochs }), eval: { zeroShot: false } });
  const m = manager({ trainerScript: trainer, startupTimeoutMs: 60_000, stopGraceMs: 20_000 });
  writeFileSync(cfg, JSON.stringify(config(1)));
  const quick = prepareRuns(cfg, { backend: 'auto', runsDirectory: '' });
  assert.ok(quick.ok, JSON.stringify(!quick.ok && quick.issues));
  const types = new Set<string>();
  m.onEvent((_, e) => types.add(e.type));
  m.start(quick.dirs[0]);
  const done = await m.whenSettled(quick.dirs[0]);
  assert.equal(done.state, 'finished', done.problem);
  for (const ty of ['run-started', 'task-started', 'step', 'eval', 'task-finished', 'run-finished'])
    assert.ok(types.has(ty), ty);
  assert.equal(done.exitCode, 0);

  writeFileSync(cfg, JSON.stringify(config(200)));
  const long = prepareRuns(cfg, { backend: 'auto', runsDirectory: '' });
  assert.ok(long.ok);
  const dir = long.dirs[0];
  const steps = new Promise<void>((resolve) => {
    let n = 0;
    m.onEvent((d, e) => d === dir && e.type === 'step' && ++n === 3 && resolve());
  });
  m.start(dir);
  await steps;
  m.stop(dir);
  const stopped = await m.whenSettled(dir);
  assert.equal(stopped.state, 'stopped', stopped.problem);
  assert.ok(existsSync(path.join(dir, 'checkpoints', 'LATEST')));
  assert.ok(await gone(stopped.pid));
});

test('no trainer started by these tests is still running', async () => {
  for (const pid of pids) assert.ok(await gone(pid, 3000), `pid ${pid} is still running`);
});
