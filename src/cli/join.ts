/**
 * `sculpt join <runDir | experimentDir> --node-rank R [--json] [--timeout S]`: node R of a PyTorch run that
 * spans several machines (docs/scale.md). Node 0 runs the experiment (`sculpt run`, `sculpt resume`); its
 * trainer prepares the data in the run folder, which every machine sees, and writes `launch.json`
 * (src/trainer/torch/launch.ts) just before its torchrun. Join waits for a launch it has not joined yet and
 * starts this machine's workers: node 0's launch line with `--node-rank R`, the launch's `--rdzv-id`, and the
 * checkpoint node 0 resumes from. Global rank 0 is on node 0 and sends the messages; the workers here send none.
 *
 * An experiment folder: its runs in the order node 0 runs them (one at a time, see run.ts), until each has
 * finished or failed. A run that stops ends the command, as it ends node 0's. A run node 0 went past (a later
 * run was launched first) is left as its log says.
 *
 * SIGINT and SIGTERM go to this machine's torchrun (a second one kills its workers). Exit codes as `sculpt run`:
 * 0 every run finished, 1 a run failed (or the workers here failed: their exit code), 2 invalid input, 3 stopped.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { ResolvedConfig } from '../protocol/config-resolved';
import { ConfigError, UsageError } from '../protocol/errors';
import type { SculptEvent } from '../protocol/events';
import { ExperimentDirError, experimentCells, isExperimentFolder } from '../runs/experiment-dir';
import { foldRun, isFinalEvent } from '../runs/fold';
import { RunDirError, readRunDir } from '../runs/run-dir';
import { lastSeq, readLogEvents } from '../supervisor/run-files';
import { LaunchFileError, launchEnd, launchLive, readLaunch, type LaunchRecord } from '../trainer/torch/launch';
import { PREPARED_DIR } from '../trainer/torch/prepare';
import { findPythonDir, workerCommand, type WorkerCommand } from '../trainer/torch/worker-command';
import { startWorker, type WorkerProcess } from '../trainer/torch/worker-process';

export interface JoinArgs {
  nodeRank: number;
  json: boolean;
  /** Seconds to wait for node 0's next launch (and its prepared data); DEFAULT_JOIN_TIMEOUT_S when absent. */
  timeoutS?: number;
}

/** As long as torchrun's own rendezvous waits for the nodes by default. */
export const DEFAULT_JOIN_TIMEOUT_S = 600;
const EXIT_FAILED = 1;
const EXIT_STOPPED = 3;
const POLL_MS = 500;
const PREPARED_MANIFEST = join(PREPARED_DIR, 'manifest.json');
/** How long node 0's trainer has, once the workers here have ended, to log how the launch ended. */
const END_GRACE_MS = 60_000;

/** A run to join. */
export interface JoinRun {
  dir: string;
  config: ResolvedConfig;
}

type Outcome = 'finished' | 'stopped' | 'failed';

class JoinTimeout extends Error {
  override readonly name = 'JoinTimeout';
}

/** Whether the run folder is a torch run over several machines (its config.json says so); false when unreadable. */
export function acrossMachines(dir: string): boolean {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Partial<ResolvedConfig>;
    return c.engine === 'torch' && (c.torch?.nnodes ?? 1) > 1;
  } catch {
    return false;
  }
}

/** Checks that node `nodeRank` can join a run of `config` (read from `file`); throws an input error otherwise. */
export function checkJoinable(config: ResolvedConfig, file: string, nodeRank: number): void {
  if (config.engine !== 'torch') {
    throw new ConfigError(
      [
        {
          path: 'engine',
          message: `is "${config.engine}", expected "torch": only PyTorch runs span several machines`,
          expected: '"torch"',
          actual: config.engine,
        },
      ],
      file,
    );
  }
  const { nnodes } = config.torch;
  if (!(nnodes > 1)) {
    throw new ConfigError(
      [
        {
          path: 'torch.nnodes',
          message: `is ${nnodes}, expected more than 1: this run uses one machine, so there is nothing to join`,
          expected: 'an integer above 1',
          actual: nnodes,
        },
      ],
      file,
    );
  }
  if (!Number.isInteger(nodeRank) || nodeRank < 1 || nodeRank >= nnodes) {
    const why =
      nodeRank === 0
        ? 'node 0 is the machine that runs `sculpt run` or `sculpt resume`'
        : `torch.nnodes is ${nnodes} in ${file}`;
    throw new UsageError(`--node-rank is ${nodeRank}, expected an integer from 1 to ${nnodes - 1}: ${why}`);
  }
}

/**
 * The runs to join: the run folder given, or the runs of the experiment folder given in their run order, each
 * checked against `nodeRank`. Throws an input error naming the folder or field at fault.
 */
export function joinTargets(target: string, nodeRank: number, onMissing?: (dir: string) => void): JoinRun[] {
  const abs = resolve(target);
  if (!existsSync(abs) || !statSync(abs).isDirectory())
    throw new UsageError(
      `${abs} does not exist: expected the run folder or experiment folder that node 0's sculpt run made, on a filesystem this machine shares`,
    );
  let dirs = [abs];
  if (isExperimentFolder(abs)) {
    try {
      dirs = experimentCells(abs, onMissing);
    } catch (e) {
      if (e instanceof ExperimentDirError) throw new UsageError(e.message);
      throw e;
    }
    if (dirs.length === 0) throw new UsageError(`${abs} has no run folders left to join`);
  }
  return dirs.map((dir) => {
    let config: ResolvedConfig;
    try {
      config = readRunDir(dir).config;
    } catch (e) {
      if (e instanceof RunDirError) throw new UsageError(e.message);
      throw e;
    }
    checkJoinable(config, join(dir, 'config.json'), nodeRank);
    return { dir, config };
  });
}

/** The torchrun line of node `nodeRank` for `launch` of `run`: node 0's, with this node's rank. */
export function joinCommandLine(
  run: JoinRun,
  launch: Pick<LaunchRecord, 'rdzvId' | 'resume'>,
  nodeRank: number,
  pythonDir: string,
  env: NodeJS.ProcessEnv = process.env,
): WorkerCommand {
  return workerCommand({
    torch: run.config.torch,
    runDir: run.dir,
    resume: launch.resume === null ? undefined : resolve(run.dir, launch.resume),
    nodeRank,
    rdzvId: launch.rdzvId,
    pythonDir,
    repo: dirname(pythonDir),
    env,
  });
}

const outcomeOf = (e: SculptEvent): Outcome =>
  e.type === 'run-finished' ? 'finished' : e.type === 'stopped' ? 'stopped' : 'failed';

/** A worker's exit as a process exit code: its own, or 128 + the signal's number. */
function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? constants.signals[signal] : undefined;
  return n ? 128 + n : EXIT_FAILED;
}

/** Progress: plain lines on stderr, or one JSON object per line on stdout with --json. */
function reporter(json: boolean) {
  return (type: string, text: string, fields: Record<string, unknown> = {}) => {
    if (json) process.stdout.write(JSON.stringify({ type, time: Date.now(), ...fields, message: text }) + '\n');
    else console.error(`sculpt join: ${text}`);
  };
}

export async function joinCommand(target: string, args: JoinArgs): Promise<number> {
  const say = reporter(args.json);
  const runs = joinTargets(target, args.nodeRank, (dir) =>
    say('warning', `${dir} is a run of its experiment.json but is missing; it is left out`, { run: dir }),
  );
  const timeoutMs = (args.timeoutS ?? DEFAULT_JOIN_TIMEOUT_S) * 1000;
  const pythonDir = findPythonDir(__dirname);
  const { nnodes, nprocPerNode } = runs[0].config.torch;
  say(
    'joining',
    `node ${args.nodeRank} of ${nnodes} (${nprocPerNode} process${nprocPerNode === 1 ? '' : 'es'} here) joins ${runs.length === 1 ? runs[0].dir : `the ${runs.length} runs of ${resolve(target)}`}`,
    { nodeRank: args.nodeRank, nnodes, runs: runs.map((r) => r.dir) },
  );

  let interrupted = false;
  let current: WorkerProcess | null = null;
  let wake: (() => void) | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (current) {
      if (interrupted) current.terminate(2000);
      else current.signal(sig);
    }
    interrupted = true;
    wake?.();
  };
  const sleep = (ms: number) =>
    new Promise<void>((done) => {
      const timer = setTimeout(done, ms);
      wake = () => {
        clearTimeout(timer);
        done();
      };
    }).finally(() => (wake = null));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // The launch of each run this command joined last, and the log position when it began: a final event after it
  // is a session that ended without a launch to join (node 0 failed before starting its workers).
  const joined = new Map<string, number>();
  const seen = runs.map((r) => lastSeq(readLogEvents(r.dir)));
  const results = new Map<string, Outcome | 'left'>();
  let workerFailure = 0;
  try {
    let i = 0;
    while (i < runs.length && !interrupted) {
      const run = runs[i];
      if (foldRun(basename(run.dir), readLogEvents(run.dir)).status === 'finished') {
        say('run-ended', `${run.dir}: finished (already)`, { run: run.dir, status: 'finished' });
        results.set(run.dir, 'finished');
        i++;
        continue;
      }
      say('waiting', `waiting for node 0 to launch ${run.dir}`, { run: run.dir });
      const found = await nextLaunch(i);
      if (found === 'interrupted') break;
      if ('outcome' in found) {
        say('run-ended', `${run.dir}: ${found.outcome} on node 0 before it launched workers to join`, {
          run: run.dir,
          status: found.outcome,
        });
        results.set(run.dir, found.outcome);
        if (found.outcome === 'stopped') break;
        i++;
        continue;
      }
      for (let j = i; j < found.index; j++) {
        const status = foldRun(basename(runs[j].dir), readLogEvents(runs[j].dir)).status;
        say('run-ended', `${runs[j].dir}: node 0 went on to a later run; this one is left ${status}`, {
          run: runs[j].dir,
          status,
        });
        results.set(runs[j].dir, status === 'finished' ? 'finished' : 'left');
      }
      i = found.index;
      joined.set(runs[i].dir, found.launch.launch);
      const { outcome, code, superseded } = await runLaunch(runs[i], found.launch);
      if (superseded) continue; // node 0 started the run again: join that launch instead
      if (code !== 0 && outcome !== 'finished') workerFailure ||= code;
      results.set(runs[i].dir, outcome);
      // A stopped run stops node 0's whole command.
      if (outcome === 'stopped') break;
      i++;
    }
  } catch (e) {
    if (!(e instanceof JoinTimeout || e instanceof LaunchFileError)) throw e;
    say('error', e.message);
    return EXIT_FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const statuses = runs.map((r) => results.get(r.dir));
  if (!args.json) for (const r of runs) console.error(`${results.get(r.dir) ?? 'not joined'}: ${r.dir}`);
  let code: number;
  if (statuses.every((s) => s === 'finished')) code = 0;
  else if (workerFailure) code = workerFailure;
  else if (interrupted || statuses.includes('stopped')) code = EXIT_STOPPED;
  else code = EXIT_FAILED;
  say('done', `done (exit ${code})`, {
    code,
    runs: runs.map((r) => ({ run: r.dir, status: results.get(r.dir) ?? null })),
  });
  return code;

  /**
   * Waits for a launch this command has not joined, of run `from` or a later one (node 0 went past `from`);
   * or for run `from` to end without one. Throws when neither comes within the timeout.
   */
  async function nextLaunch(
    from: number,
  ): Promise<{ index: number; launch: LaunchRecord } | { outcome: Outcome } | 'interrupted'> {
    const deadline = Date.now() + timeoutMs;
    let unprepared: string | null = null;
    for (;;) {
      if (interrupted) return 'interrupted';
      for (let j = from; j < runs.length; j++) {
        const dir = runs[j].dir;
        const launch = readLaunch(dir);
        if (!launch || launch.launch <= (joined.get(dir) ?? 0)) continue;
        if (!launchLive(dir, launch, readLogEvents(dir))) continue;
        // Written before launch.json, but a shared filesystem may show it here a little later.
        const manifest = join(dir, PREPARED_MANIFEST);
        if (existsSync(manifest)) return { index: j, launch };
        unprepared = manifest;
      }
      const log = readLogEvents(runs[from].dir);
      const end = log.find((e) => e.seq > seen[from] && isFinalEvent(e));
      if (end) return { outcome: outcomeOf(end) };
      if (Date.now() > deadline) {
        throw new JoinTimeout(
          unprepared
            ? `node 0 launched ${dirname(dirname(unprepared))}, but its prepared data (${unprepared}) has not appeared here within ${timeoutMs / 1000} s: is the run folder on a filesystem both machines share?`
            : `no launch of ${runs[from].dir} by node 0 within ${timeoutMs / 1000} s (node 0's trainer writes ${join(runs[from].dir, 'launch.json')} once it has prepared the run's data): is \`sculpt run\` or \`sculpt resume\` running on node 0 for this folder? --timeout <seconds> waits longer`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  /** Runs this machine's workers for `launch` of `run`; the run's outcome as node 0 logged it, and their exit code. */
  async function runLaunch(
    run: JoinRun,
    launch: LaunchRecord,
  ): Promise<{ outcome: Outcome; code: number; superseded: boolean }> {
    const manifestFile = join(run.dir, PREPARED_MANIFEST);
    const modelDir = (JSON.parse(readFileSync(manifestFile, 'utf8')) as { model?: { dir?: string } }).model?.dir;
    if (modelDir && !existsSync(modelDir))
      throw new UsageError(
        `${manifestFile}: model.dir ${modelDir} does not exist on this machine: every node reads the model at the path node 0 has it`,
      );
    const cmd = joinCommandLine(run, launch, args.nodeRank, pythonDir);
    const first = args.nodeRank * nprocPerNode;
    say(
      'launch',
      `${run.dir}: launch ${launch.launch}${launch.resume ? `, resuming from ${launch.resume}` : ''}: starting global rank${nprocPerNode === 1 ? ` ${first}` : `s ${first}-${first + nprocPerNode - 1}`} of ${cmd.world}`,
      { run: run.dir, launch: launch.launch, resume: launch.resume, command: [cmd.command, ...cmd.args] },
    );
    let strayMessage = false;
    const worker = startWorker(
      cmd,
      run.dir,
      () => {
        if (!strayMessage)
          say('warning', `a worker on node ${args.nodeRank} sent a message; only global rank 0 should`);
        strayMessage = true;
      },
      // With --json, stdout carries only this command's lines.
      args.json ? { out: process.stderr, err: process.stderr } : undefined,
    );
    current = worker;
    // A newer launch of the same run means node 0 started it again: the one these workers wait for is gone.
    let superseded = false;
    const watch = setInterval(() => {
      let now: LaunchRecord | null = null;
      try {
        now = readLaunch(run.dir);
      } catch {
        return;
      }
      if (now && now.launch > launch.launch) {
        superseded = true;
        say(
          'superseded',
          `${run.dir}: node 0 started launch ${now.launch}; ending the workers of launch ${launch.launch}`,
        );
        clearInterval(watch);
        worker.terminate(5000);
      }
    }, 2 * POLL_MS);
    const exit = await worker.exited;
    clearInterval(watch);
    current = null;
    if (exit.spawnError) say('error', `${cmd.command} could not be started: ${exit.spawnError.message}`);
    if (superseded) return { outcome: 'failed', code: EXIT_FAILED, superseded };
    const code = exit.spawnError ? EXIT_FAILED : exitCode(exit.code, exit.signal);
    say('workers-exited', `${run.dir}: the workers here exited ${exit.signal ?? code}`, {
      run: run.dir,
      code,
      signal: exit.signal,
    });
    const end = interrupted ? launchEnd(launch, readLogEvents(run.dir)) : await endOf(run.dir, launch);
    const outcome = end ? outcomeOf(end) : 'failed';
    say('run-ended', `${run.dir}: ${end ? outcome : 'ended without a final event from node 0 (counted as failed)'}`, {
      run: run.dir,
      status: outcome,
    });
    return { outcome, code, superseded };
  }
}

/** The final event of `launch`, once node 0's trainer has written it; undefined when its trainer left without one. */
async function endOf(dir: string, launch: LaunchRecord): Promise<SculptEvent | undefined> {
  const deadline = Date.now() + END_GRACE_MS;
  for (;;) {
    const log = readLogEvents(dir);
    const end = launchEnd(launch, log);
    if (end || !launchLive(dir, launch, log) || Date.now() > deadline) return end;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
