// Run folders made by the built CLI and trainer (dist/): what the integration tests read back from them.
import assert from 'node:assert/strict';
import { fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import { SchemaChecker, type JsonSchema } from '../../src/protocol/schema-check';
import { repoRoot } from './paths';
import { experimentCells, isExperimentFolder } from '../../src/runs/experiment-dir';

export const CLI = join(repoRoot, 'dist', 'cli.js');
export const TRAINER = join(repoRoot, 'dist', 'trainer.js');
/** The environment for the built CLI and trainer: builtin models and tasks from this checkout's assets/. */
export const RUN_ENV = { ...process.env, SCULPT_ASSETS: join(repoRoot, 'assets') };

/** Runs the built CLI (`sculpt <args>`) to its end. */
export function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: RUN_ENV });
}

/** `cli` without blocking the event loop, so that trainers of concurrent tests get their stop requests in time. */
export function cliAsync(...args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: RUN_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

/**
 * The run folders below `root` (none when it does not exist yet): those of each experiment folder in its run
 * order, then any loose ones.
 */
export function runDirs(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .sort()
    .map((d) => join(root, d))
    .flatMap((d) => (isExperimentFolder(d) ? experimentCells(d) : [d]));
}

/** The experiment folders below `root`, oldest name first. */
export function experimentDirs(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .sort()
    .map((d) => join(root, d))
    .filter(isExperimentFolder);
}

export function events(dir: string): SculptEvent[] {
  return parseEventLog(readFileSync(join(dir, 'events.jsonl'), 'utf8')).events;
}

export function finished(dir: string) {
  const e = events(dir).find((x) => x.type === 'run-finished');
  assert.ok(e && e.type === 'run-finished', `${dir} did not finish`);
  return e;
}

let checker: SchemaChecker | undefined;

/** Asserts that `evs` are numbered 1, 2, 3, ... and that each fits schemas/events.schema.json. */
export function assertEventLog(evs: SculptEvent[], what = 'events'): void {
  const schema = (checker ??= new SchemaChecker(
    JSON.parse(readFileSync(join(repoRoot, 'schemas', 'events.schema.json'), 'utf8')) as JsonSchema,
  ));
  evs.forEach((e, i) => {
    assert.equal(e.seq, i + 1, `${what}: seq increases by one`);
    assert.deepEqual(schema.check(structuredClone(e)), [], `${what}: event ${e.seq} (${e.type}) fits the schema`);
  });
}

/** Runs the trainer on run folder `dir`, calling `onEvent` for each IPC event; resolves with its exit code. */
export function trainer(
  dir: string,
  onEvent: (e: SculptEvent, child: ReturnType<typeof fork>) => void,
): Promise<number | null> {
  return new Promise((resolve) => {
    const child = fork(TRAINER, [dir], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: RUN_ENV });
    child.on('message', (m) => onEvent(m as SculptEvent, child));
    child.on('exit', (code) => resolve(code));
  });
}
