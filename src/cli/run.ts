/**
 * `sculpt run <config>` and `sculpt resume <folder...>`: every cell (method, order, seed) of a config's grid is
 * a run folder in one experiment folder, and a trainer process; up to `--jobs` (default: the number of cores)
 * run at once, since the wasm backend uses one core per process. Progress goes to stderr (a bar and ETA on a TTY), `--json` prints the events.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import {
  ConfigError,
  parseConfigText,
  validateConfig,
  configWarnings,
  formatIssues,
  type ResolvedConfig,
} from '../protocol/config-validate';
import { loadTasks, modelDir, type RunTask } from '../engine/experiment';
import { FileReadError, readConfigText } from '../data/read-bounded';
import { outputDirProblem } from '../runs/output-dir';
import { LOG_FILE, readRunDir } from '../runs/run-dir';
import { createExperiment, expandRunFolders, gridSeeds } from '../runs/experiment-dir';
import type { RunStatus } from '../runs/status';
import { Supervisor, nodeTrainerCommand, startRefusal } from '../supervisor';
import { readLogEvents } from '../supervisor/run-files';
import { foldRun } from '../runs/fold';
import { Progress } from './progress';
import { checkModel } from './model-check';
import { checkInputs } from './data-check';
import { torchCheck } from './torch-check';
import { acrossMachines } from './join';
import { folderProblem } from './folders';

export interface RunArgs {
  backend?: string;
  out?: string;
  json: boolean;
  jobs?: number;
}

/** Reads and validates a config file; prints the issues and returns null when it is invalid. */
export function loadConfig(file: string, overrides: { backend?: string; out?: string } = {}): ResolvedConfig | null {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readConfigText(abs);
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    console.error(`sculpt: ${e.message}`);
    return null;
  }
  const parsed = parseConfigText(text);
  if (parsed.issues.length) {
    console.error(formatIssues(parsed.issues, abs));
    return null;
  }
  const raw = parsed.value as Record<string, unknown>;
  if (overrides.backend) raw.backend = overrides.backend;
  if (overrides.out) raw.output = path.resolve(overrides.out);
  const { config, issues } = validateConfig(raw, { file: abs, path, exists: existsSync });
  if (!config) {
    console.error(formatIssues(issues, abs));
    return null;
  }
  for (const w of configWarnings(config)) console.error(`sculpt: warning: ${abs}: ${w.path}: ${w.message}`);
  // The torch engine's Python (torch, CUDA, FSDP2) is checked before any folder is made, as `validate` checks it.
  const torch = torchCheck(config, abs);
  if (!torch.ok) {
    console.error(formatIssues(torch.issues, abs));
    return null;
  }
  if (torch.text) console.error(`sculpt: engine ${torch.text}`);
  // Where run folders go is checked before anything is written, and said.
  const problem = outputDirProblem(config.output);
  if (problem) {
    console.error(formatIssues([{ path: 'output', message: problem, expected: 'a writable folder' }], abs));
    return null;
  }
  console.error(`sculpt: run folders go in ${config.output}`);
  return config;
}

export async function runCommand(file: string, args: RunArgs): Promise<number> {
  const config = loadConfig(file, args);
  if (!config) return 2;
  const orders = 1 + (config.orders?.length ?? 0);
  // Read the data and find the model before creating anything: a bad task is an input error, not a failed run.
  // Data warnings (train/test overlap, coverage) are the same for every order: say them once.
  const warn = (message: string) => console.error(`sculpt: warning: ${message}`);
  let tasks: RunTask[] = [];
  try {
    modelDir(config);
    for (let order = 0; order < orders; order++) {
      const loaded = loadTasks(config, order, order === 0 ? warn : undefined);
      if (order === 0) tasks = loaded;
    }
  } catch (e) {
    console.error(
      e instanceof ConfigError ? formatIssues(e.issues, path.resolve(file)) : `sculpt: ${(e as Error).message}`,
    );
    return 2;
  }
  // The model folder too: config.json and every weight file's header, so a corrupt file is named now.
  const model = checkModel(config, file);
  if (!model) return 2;
  // The tokenizer and the data measured against it, as `sculpt validate` and each trainer check them.
  if (!checkInputs(config, file, tasks, model.inventory, warn)) return 2;
  let dirs: string[];
  try {
    // All of the experiment's folders or none: a half-made grid would run as an experiment it is not.
    const experiment = createExperiment(config, { configFile: file });
    dirs = experiment.cells;
    console.error(`sculpt: experiment folder ${experiment.dir} (${describeGrid(config, dirs.length)})`);
  } catch (e) {
    console.error(`sculpt: ${(e as Error).message}`);
    return 1;
  }
  return runFolders(dirs, args);
}

/** Said when experiment.json names a cell whose folder is gone: the command goes on without it. */
export const missingCell = (dir: string): void =>
  console.error(`sculpt: warning: ${dir} is a run of its experiment.json but is missing; it is left out`);

/** "2 methods × 3 orders × 2 seeds = 12 runs", for the start of a run. */
export function describeGrid(config: ResolvedConfig, runs: number): string {
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
  const orders = 1 + (config.orders?.length ?? 0);
  return `${n(config.methods.length, 'method')} × ${n(orders, 'order')} × ${n(gridSeeds(config).length, 'seed')} = ${n(runs, 'run')}`;
}

/**
 * Resumes run folders, or every cell of experiment folders: finished ones are left as they are, the others
 * continue from their last checkpoint (or start, when they never did).
 */
export async function resumeCommand(dirs: string[], args: RunArgs): Promise<number> {
  let folders: string[];
  try {
    folders = expandRunFolders(dirs, missingCell);
  } catch (e) {
    console.error(`sculpt: ${(e as Error).message}`);
    return 2;
  }
  const pending: string[] = [];
  for (const d of folders) {
    const problem = folderProblem(d);
    if (problem) {
      console.error(`sculpt: ${problem}`);
      return 2;
    }
    try {
      readRunDir(d);
    } catch (e) {
      console.error(`sculpt: ${(e as Error).message}`);
      return 2;
    }
    // A finished run has nothing left to do: resuming it is a no-op that succeeds, so a script can resume a
    // whole set of folders whatever state each is in.
    if (foldRun(path.basename(d), readLogEvents(d)).status === 'finished') {
      console.error(`finished (already; nothing to resume): ${d}`);
      continue;
    }
    // One a live trainer runs now is refused, as any other invalid input.
    const refusal = startRefusal(d);
    if (refusal) {
      console.error(`sculpt: ${refusal}`);
      return 2;
    }
    pending.push(d);
  }
  return pending.length ? runFolders(pending, args) : 0;
}

/** The exit code of a `run` or `resume` that was stopped (Ctrl-C, SIGTERM) before every run finished. */
export const EXIT_STOPPED = 3;

/**
 * Runs the folders' jobs as trainer processes through the supervisor; 0 when all finished, EXIT_STOPPED when some
 * were stopped or cancelled on request (and none failed), 1 otherwise.
 *
 * The trainers are not detached: they share this process's group, so a terminal's Ctrl-C and hang-up reach them
 * as they reach the CLI, and whatever is still running when the CLI exits is killed with it, so that no trainer
 * outlives the command that started it. (A `kill -9` of the CLI alone cannot be caught; its trainers then run to
 * their end, writing their folders as usual.) The extension detaches its trainers instead, so that they survive
 * a window reload.
 */
async function runFolders(dirs: string[], args: RunArgs): Promise<number> {
  let jobs = Math.max(1, Math.min(args.jobs ?? availableParallelism(), dirs.length));
  // Torch runs over several machines all meet at their config's one rendezvous endpoint, and the other nodes'
  // `sculpt join` follows them in this order.
  if (jobs > 1 && dirs.some(acrossMachines)) {
    jobs = 1;
    console.error(
      'sculpt: torch runs over several machines (torch.nnodes > 1) run one at a time, whatever --jobs says',
    );
  }
  const progress = args.json
    ? null
    : new Progress(
        process.stderr,
        dirs.map((d) => path.basename(d)),
      );
  const index = new Map(dirs.map((d, i) => [d, i]));
  const supervisor = new Supervisor({
    // The trainer runs under the CLI's own Node, with its Node options (--max-old-space-size and the like).
    command: (dir) =>
      nodeTrainerCommand({
        node: process.execPath,
        nodeArgs: process.execArgv,
        script: path.join(__dirname, 'trainer.js'),
        dir,
        env: process.env,
      }),
    maxConcurrent: () => jobs,
    detached: false,
    // A terminal user sees the progress and has Ctrl-C: no time limit decides for them.
    startupTimeoutMs: Infinity,
    stopGraceMs: Infinity,
  });
  supervisor.onEvent((dir, e) => {
    if (args.json) process.stdout.write(JSON.stringify(e) + '\n');
    progress?.update(index.get(dir)!, e);
    if (e.type === 'error')
      progress?.note(
        `${path.basename(dir)}: ${e.message}${e.where ? ` (${e.where})` : ''}${e.hint ? `\n  hint: ${e.hint}` : ''}`,
      );
  });
  let interrupted = false;
  let killing = false;
  supervisor.onState((r) => {
    if (r.state !== 'crashed' && r.state !== 'killed') return;
    // A trainer killed at the user's second Ctrl-C did nothing wrong: its log's end would only be noise.
    const log =
      r.logTail && !(killing && r.state === 'killed')
        ? `\n--- end of ${path.join(r.dir, LOG_FILE)} ---\n${r.logTail}`
        : '';
    progress?.note(`${path.basename(r.dir)}: ${r.problem ?? r.state}${log}`);
  });

  const onSignal = () => {
    if (interrupted) {
      killing = true;
      for (const d of dirs) supervisor.kill(d);
      return;
    }
    interrupted = true;
    // Queued runs are cancelled; live ones finish their step, write a checkpoint and stop.
    for (const d of dirs) supervisor.stop(d);
    progress?.note('stopping: each run finishes its step and writes a checkpoint (Ctrl-C again to kill)');
  };
  const killLive = () => {
    for (const r of supervisor.live()) supervisor.kill(r.dir);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killLive);
  let results: RunStatus[];
  try {
    for (const d of dirs) supervisor.start(d);
    results = (await Promise.all(dirs.map((d) => supervisor.whenSettled(d)))).map((r) => r.state);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killLive);
  }
  progress?.done();
  if (!args.json) {
    for (let i = 0; i < dirs.length; i++) console.error(`${results[i]}: ${dirs[i]}`);
  }
  // Killed at a second Ctrl-C or SIGTERM: stopped on request too, resumable from its last checkpoint.
  const onRequest = (r: RunStatus) => r === 'stopped' || r === 'cancelled' || (killing && r === 'killed');
  if (!results.every((r) => r === 'finished' || onRequest(r))) return 1;
  // Stopped on request: nothing failed, but the work is not done; a script must be able to tell.
  return results.every((r) => r === 'finished') ? 0 : EXIT_STOPPED;
}
