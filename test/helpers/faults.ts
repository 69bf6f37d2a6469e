// The shared bench of the fault tests (faults, disk-full): one small experiment with frequent checkpoints, and
// copies of its run folder that start again from nothing.
import { cpSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ExperimentConfig } from '../../src/protocol/config';
import { tinyExperiment, tinyTasks, tinyTraining } from './experiment';

/** 4 steps per task (32 examples, batches of 16, 2 epochs), a checkpoint every 2 steps, the newest 2 kept. */
export function faultExperiment(name: string, output: string): ExperimentConfig {
  return tinyExperiment({
    name,
    output,
    tasks: tinyTasks(undefined, { trainLimit: 32 }),
    training: tinyTraining({ epochs: 2 }),
    checkpoint: { every: 2, keep: 2 },
  });
}

/** A new run folder `work/name` holding only the config and job of run folder `from`: the same run, not started. */
export function freshCopy(from: string, work: string, name: string): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(from, 'config.json'), join(dir, 'config.json'));
  cpSync(join(from, 'job.json'), join(dir, 'job.json'));
  return dir;
}

export const checkpoints = (dir: string): string => join(dir, 'checkpoints');

/** The checkpoint LATEST names, or null when there is none yet. */
export function latestName(dir: string): string | null {
  const f = join(checkpoints(dir), 'LATEST');
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : null;
}

/** Temporary and half-deleted entries left in checkpoints/ (names starting with a dot). */
export const leftovers = (dir: string): string[] =>
  existsSync(checkpoints(dir)) ? readdirSync(checkpoints(dir)).filter((n) => n.startsWith('.')) : [];
