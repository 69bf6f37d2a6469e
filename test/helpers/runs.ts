// Run folders made by the built CLI and trainer (dist/): what the integration tests read back from them.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import { repoRoot } from './paths';

export const CLI = join(repoRoot, 'dist', 'cli.js');
export const TRAINER = join(repoRoot, 'dist', 'trainer.js');
/** The environment for the built CLI and trainer: builtin models and tasks from this checkout's assets/. */
export const RUN_ENV = { ...process.env, SCULPT_ASSETS: join(repoRoot, 'assets') };

export function events(dir: string): SculptEvent[] {
  return parseEventLog(readFileSync(join(dir, 'events.jsonl'), 'utf8')).events;
}

export function finished(dir: string) {
  const e = events(dir).find((x) => x.type === 'run-finished');
  assert.ok(e && e.type === 'run-finished', `${dir} did not finish`);
  return e;
}

/** Runs the trainer on run folder `dir`, calling `onEvent` for each IPC event; resolves with its exit code. */
export function trainer(dir: string, onEvent: (e: SculptEvent, child: ReturnType<typeof fork>) => void): Promise<number | null> {
  return new Promise((resolve) => {
    const child = fork(TRAINER, [dir], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: RUN_ENV });
    child.on('message', (m) => onEvent(m as SculptEvent, child));
    child.on('exit', (code) => resolve(code));
  });
}
