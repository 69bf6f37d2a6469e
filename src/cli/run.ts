/**
 * `sculpt run <config>` and `sculpt resume <runDir...>`: every (order, method) of a config is a run folder
 * and a trainer process; up to `--jobs` (default: the number of cores) run at once, since the wasm backend
 * uses one core per process. Progress goes to stderr (a bar and ETA on a TTY), `--json` prints the events.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import type { SculptEvent } from '../protocol/events';
import { threadsPerTrainer } from '../runs/threads';
import { ConfigError, parseConfigText, validateConfig, formatIssues, type ResolvedConfig } from '../protocol/config-validate';
import { loadTasks, modelDir } from '../engine/experiment';
import { createRunDir, readRunDir } from '../runs/run-dir';
import { Progress } from './progress';

export interface RunArgs {
  backend?: string;
  out?: string;
  json: boolean;
  jobs?: number;
}

/** Reads and validates a config file; prints the issues and returns null when it is invalid. */
export function loadConfig(file: string, overrides: { backend?: string; out?: string } = {}): ResolvedConfig | null {
  const abs = path.resolve(file);
  if (!existsSync(abs)) {
    console.error(`sculpt: config file not found: ${abs}`);
    return null;
  }
  const parsed = parseConfigText(readFileSync(abs, 'utf8'));
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
  return config;
}

export async function runCommand(file: string, args: RunArgs): Promise<number> {
  const config = loadConfig(file, args);
  if (!config) return 2;
  const orders = 1 + (config.orders?.length ?? 0);
  // Read the data and find the model before creating anything: a bad task is an input error, not a failed run.
  try {
    modelDir(config);
    for (let order = 0; order < orders; order++) loadTasks(config, order);
  } catch (e) {
    console.error(e instanceof ConfigError ? formatIssues(e.issues, path.resolve(file)) : `sculpt: ${(e as Error).message}`);
    return 2;
  }
  const dirs: string[] = [];
  for (let order = 0; order < orders; order++) {
    for (let m = 0; m < config.methods.length; m++) dirs.push(createRunDir(config, { methodIndex: m, order }));
  }
  return runFolders(dirs, args);
}

export async function resumeCommand(dirs: string[], args: RunArgs): Promise<number> {
  for (const d of dirs) {
    try {
      readRunDir(d);
    } catch (e) {
      console.error(`sculpt: ${(e as Error).message}`);
      return 2;
    }
  }
  return runFolders(dirs.map((d) => path.resolve(d)), args);
}

/** Runs the folders' jobs as trainer processes; 0 when all finished (or stopped on request), 1 otherwise. */
async function runFolders(dirs: string[], args: RunArgs): Promise<number> {
  const jobs = Math.max(1, Math.min(args.jobs ?? availableParallelism(), dirs.length));
  // Trainers running side by side share the cores: each wasm trainer gets its part as threads.
  const threads = process.env.SCULPT_WASM_THREADS ?? String(threadsPerTrainer(jobs));
  const progress = args.json ? null : new Progress(process.stderr, dirs.map((d) => path.basename(d)));
  const children = new Set<ChildProcess>();
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) for (const c of children) c.kill('SIGKILL');
    interrupted = true;
    for (const c of children) if (c.connected) c.send({ type: 'stop' });
    progress?.note('stopping: each run finishes its step and writes a checkpoint (Ctrl-C again to kill)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: string[] = new Array(dirs.length);
  let next = 0;
  const worker = async () => {
    while (next < dirs.length && !interrupted) {
      const i = next++;
      results[i] = await runOne(dirs[i], i, args, progress, children, threads);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  progress?.done();
  if (!args.json) {
    for (let i = 0; i < dirs.length; i++) console.error(`${results[i] ?? 'not started'}: ${dirs[i]}`);
  }
  return results.every((r) => r === 'finished' || r === 'stopped') ? 0 : 1;
}

function runOne(dir: string, index: number, args: RunArgs, progress: Progress | null, children: Set<ChildProcess>, threads: string): Promise<string> {
  return new Promise((resolve) => {
    const trainer = path.join(__dirname, 'trainer.js');
    const child = fork(trainer, [dir], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], env: { ...process.env, SCULPT_WASM_THREADS: threads } });
    children.add(child);
    let status = 'crashed';
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('message', (m: unknown) => {
      const e = m as SculptEvent;
      if (args.json) process.stdout.write(JSON.stringify(e) + '\n');
      progress?.update(index, e);
      if (e.type === 'run-finished') status = 'finished';
      else if (e.type === 'stopped') status = 'stopped';
      else if (e.type === 'error') {
        status = 'failed';
        if (!args.json) progress?.note(`${path.basename(dir)}: ${e.message}${e.where ? ` (${e.where})` : ''}${e.hint ? `\n  hint: ${e.hint}` : ''}`);
      }
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (status === 'crashed') {
        progress?.note(`${path.basename(dir)}: the trainer exited (${signal ?? `code ${code}`}) without finishing${stderr ? `:\n${stderr.trim()}` : ''}`);
      }
      resolve(status);
    });
  });
}
