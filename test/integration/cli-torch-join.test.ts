/**
 * A torch run over two "machines" on this one (the built CLI, `npm run build` first, and the project's .venv,
 * `npm run provision`): node 0 is `sculpt run`, node 1 is `sculpt join <folder> --node-rank 1`, one CPU process
 * each, meeting over loopback at a free port (DDP over gloo), the tiny Llama on the tiny tasks.
 * - An experiment of two runs (two seeds, --jobs 2): node 0 runs them one at a time and join follows both; the
 *   first run's events are those of a one-machine run with two processes, its step losses within 1e-5 relative.
 * - A stop on node 0 mid-run, then `sculpt resume` and `sculpt join <runDir>`: node 1 resumes from the checkpoint
 *   node 0 resumes from, and the run ends with the uninterrupted run's losses.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExperimentConfig } from '../../src/protocol/config';
import type { SculptEvent, StepEvent } from '../../src/protocol/events';
import { effectiveEvents } from '../../src/runs/fold';
import { experimentCells } from '../../src/runs/experiment-dir';
import { LAUNCH_FILE, type LaunchRecord } from '../../src/trainer/torch/launch';
import { tinyExperiment, tinyTasks, tinyTraining, writeExperiment } from '../helpers/experiment';
import { repoRoot } from '../helpers/paths';
import { CLI, RUN_ENV, assertEventLog, events } from '../helpers/runs';

const PYTHON = join(repoRoot, '.venv', 'bin', 'python');
const work = mkdtempSync(join(tmpdir(), 'sculpt-join-'));
// One thread per process on both nodes, so that the two ways of running make the same sums.
const ENV = { ...RUN_ENV, OMP_NUM_THREADS: '1' };
const LIMIT_MS = 240_000;

before(() => {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing: run \`npm run provision\``);
  assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\``);
});

function config(name: string, torch: ExperimentConfig['torch'], extra: Partial<ExperimentConfig> = {}): string {
  const c = tinyExperiment({
    name,
    backend: undefined,
    engine: 'torch',
    output: join(work, name),
    tasks: tinyTasks(undefined, { trainLimit: 32, testLimit: 16 }),
    training: tinyTraining({ epochs: 2, batchSize: 8, lr: 0.01, stepEventInterval: 1 }),
    eval: { modes: ['rank'], zeroShot: true },
    torch: { python: PYTHON, ...torch },
    ...extra,
  });
  return writeExperiment(work, c);
}

/** A port free on 127.0.0.1 now, for the rendezvous. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
const twoNodes = async () => ({ nnodes: 2, nprocPerNode: 1, rdzvEndpoint: `127.0.0.1:${await freePort()}` });

interface Cli {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<number | null>;
}

const live = new Set<ChildProcess>();

/** The built CLI, in a process group of its own, so that a failed test can end it and its trainer. */
function sculpt(...args: string[]): Cli {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: ENV,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const r: Cli = {
    child,
    stdout: '',
    stderr: '',
    done: new Promise((resolve) =>
      child.on('close', (code) => {
        live.delete(child);
        resolve(code);
      }),
    ),
  };
  child.stdout!.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return r;
}

/** Ends whatever a test left running (a hung rendezvous must not hold the suite). */
function killAll(): void {
  for (const child of live) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

// A test that timed out is still waiting on its processes: end them, or they would hold the test run open.
after(killAll);

/** Resolves with the experiment folder `sculpt run` says it made. */
async function experimentFolder(node0: Cli): Promise<string> {
  for (;;) {
    const m = /experiment folder (\S+) \(/.exec(node0.stderr);
    if (m) return m[1];
    const exited = await Promise.race([node0.done.then(() => true), new Promise((r) => setTimeout(r, 100))]);
    if (exited === true) assert.fail(`sculpt run ended before making its experiment folder:\n${node0.stderr}`);
  }
}

async function exitOf(p: Cli, what: string, expected: number): Promise<void> {
  const code = await p.done;
  assert.equal(code, expected, `${what} exited ${code}; its output:\n${p.stderr.slice(-4000)}`);
}

const steps = (evs: SculptEvent[]) => evs.filter((e): e is StepEvent => e.type === 'step');

function finishedLog(dir: string): SculptEvent[] {
  const evs = events(dir);
  assertEventLog(evs, dir);
  const eff = effectiveEvents(evs);
  assert.equal(eff.at(-1)?.type, 'run-finished', `${dir} finished`);
  return eff;
}

function assertLossesClose(a: StepEvent[], b: StepEvent[], rel: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: as many steps (${a.length}, ${b.length})`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual([a[i].task, a[i].step], [b[i].task, b[i].step], `${what}: step ${i + 1} is the same step`);
    const err = Math.abs(a[i].loss - b[i].loss) / Math.max(Math.abs(b[i].loss), 1e-12);
    worst = Math.max(worst, err);
    assert.ok(err <= rel, `${what}: step ${i + 1} loss ${a[i].loss} vs ${b[i].loss}: relative ${err} > ${rel}`);
  }
  console.log(`${what}: ${a.length} step losses, largest relative difference ${worst}`);
}

/** The pid of the worker process of global rank `rank` of the run in `dir` (not torchrun's). */
function workerPid(dir: string, rank: number): number | undefined {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const m = cmd.indexOf('-m');
      if (m < 0 || cmd[m + 1] !== 'sculpt_torch' || !cmd.includes(dir)) continue;
      if (readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`)) return Number(p);
    } catch {
      // ended meanwhile
    }
  }
  return undefined;
}

/** Pauses node 1's worker, asks node 0 to stop, and lets the worker go on once the stop request is written. */
async function stopWithNode1Paused(node0: Cli, dir: string): Promise<void> {
  const pid = workerPid(dir, 1);
  assert.ok(pid, "node 1's worker runs");
  process.kill(pid, 'SIGSTOP');
  try {
    node0.child.kill('SIGINT');
    const request = join(dir, 'stop-request');
    for (let waited = 0; !existsSync(request); waited += 20) {
      assert.ok(waited < 60_000, `${request} was not written`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

const worlds = (evs: SculptEvent[]) => evs.flatMap((e) => (e.type === 'run-started' ? [e.engine?.world] : []));

/** The reference: one machine, two processes under torchrun. */
let reference: SculptEvent[];

before(async () => {
  const node = sculpt('run', config('one', { nprocPerNode: 2 }));
  try {
    await exitOf(node, 'the one-machine run', 0);
  } finally {
    killAll();
  }
  const [dir] = experimentCells((/experiment folder (\S+) \(/.exec(node.stderr) ?? [])[1]);
  reference = finishedLog(dir);
  assert.deepEqual(worlds(reference), [2]);
});

test(
  'two nodes over loopback: join follows the experiment run by run, as one machine with two processes',
  { timeout: LIMIT_MS },
  async () => {
    try {
      const node0 = sculpt('run', config('two', await twoNodes(), { seeds: [0, 1] }), '--jobs', '2');
      const exp = await experimentFolder(node0);
      const node1 = sculpt('join', exp, '--node-rank', '1', '--json');
      await exitOf(node0, 'node 0 (sculpt run)', 0);
      await exitOf(node1, 'node 1 (sculpt join)', 0);
      assert.match(node0.stderr, /run one at a time, whatever --jobs says/);

      const cells = experimentCells(exp);
      assert.equal(cells.length, 2);
      const logs = cells.map(finishedLog);
      // One at a time: the second run started after the first had finished.
      assert.ok(logs[1][0].time >= logs[0].at(-1)!.time, 'the runs did not overlap');
      assert.deepEqual(
        logs[0].map((e) => e.type),
        reference.map((e) => e.type),
        'the events of a one-machine run',
      );
      assert.deepEqual(worlds(logs[0]), [2], 'run-started says two processes');
      assertLossesClose(steps(logs[0]), steps(reference), 1e-5, 'two nodes against one');

      const lines = node1.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; run?: string; launch?: number; resume?: string | null });
      assert.deepEqual(
        lines.filter((l) => l.type === 'launch').map((l) => [l.run, l.launch, l.resume]),
        cells.map((c) => [c, 1, null]),
        'join launched its worker for each run, in order, from the start',
      );
      assert.deepEqual(lines.at(-1), { ...lines.at(-1), type: 'done', code: 0 });
    } finally {
      killAll();
    }
  },
);

test(
  'a stop on node 0, then resume and join: node 1 continues from the same checkpoint',
  { timeout: LIMIT_MS },
  async () => {
    try {
      const file = config('stopped', await twoNodes());
      const node0 = sculpt('run', file, '--json');
      const exp = await experimentFolder(node0);
      const node1 = sculpt('join', exp, '--node-rank', '1');
      const [dir] = experimentCells(exp);
      // At the first step: node 1's worker is paused, so the run cannot end before the stop request is there
      // (the ranks go in step), then node 0 gets a Ctrl-C, which stops the run for both nodes.
      let asked: Promise<void> | null = null;
      node0.child.stdout!.on('data', () => {
        if (asked || !/"type":"step"/.test(node0.stdout)) return;
        asked = stopWithNode1Paused(node0, dir);
        asked.catch(() => {}); // awaited below
      });
      await exitOf(node0, 'node 0 (sculpt run, stopped)', 3);
      await exitOf(node1, 'node 1 (sculpt join, stopped)', 3);
      await asked;
      const stopped = events(dir).find((e) => e.type === 'stopped');
      assert.ok(stopped?.type === 'stopped' && stopped.checkpoint, 'node 0 stopped with a checkpoint');
      assert.ok(
        stopped.task > 0 || stopped.step > 0,
        `stopped after training began (task ${stopped.task}, step ${stopped.step})`,
      );
      assert.match(node1.stderr, new RegExp(`^stopped: ${dir}$`, 'm'));

      const resumed0 = sculpt('resume', exp);
      const resumed1 = sculpt('join', dir, '--node-rank', '1');
      await exitOf(resumed0, 'node 0 (sculpt resume)', 0);
      await exitOf(resumed1, 'node 1 (sculpt join <runDir>)', 0);
      const launch = JSON.parse(readFileSync(join(dir, LAUNCH_FILE), 'utf8')) as LaunchRecord;
      assert.equal(launch.launch, 2);
      assert.equal(join(dir, launch.resume ?? ''), stopped.checkpoint, 'node 0 resumed from the stop checkpoint');
      assert.match(
        resumed1.stderr,
        new RegExp(`launch 2, resuming from ${launch.resume}: starting global rank 1 of 2`),
      );

      const log = finishedLog(dir);
      assert.equal(log.filter((e) => e.type === 'run-started').length, 2, 'two sessions');
      assertLossesClose(steps(log), steps(reference), 1e-5, 'stopped and resumed on two nodes');
    } finally {
      killAll();
    }
  },
);
