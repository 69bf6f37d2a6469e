/**
 * Run folders: `<output>/<experiment>-<method>[-o<order>]-<time>/` with
 *   config.json   the resolved config (defaults filled in, absolute paths)
 *   job.json      which method and order of the config this run is
 *   events.jsonl  the append-only event log
 *   checkpoints/  see run-checkpoint.ts
 *   trainer.log   the trainer's stderr (written by whoever launched it)
 * Anything that can display or resume a run needs only this folder.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedConfig } from '../protocol/config-validate';
import { methodLabel } from '../protocol/config-validate';
import { parseEventLog, type ParsedLog } from '../protocol/events';

export interface Job {
  methodIndex: number;
  order: number;
}

export const EVENTS_FILE = 'events.jsonl';

function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Creates a run folder for one (method, order) of a config and returns its path. */
export function createRunDir(config: ResolvedConfig, job: Job, now = new Date()): string {
  const label = methodLabel(config.methods[job.methodIndex]);
  const base = `${config.name}-${label}${job.order > 0 ? `-o${job.order + 1}` : ''}-${stamp(now)}`.replace(/[^A-Za-z0-9_.-]/g, '_');
  mkdirSync(config.output, { recursive: true });
  let dir = join(config.output, base);
  for (let i = 2; existsSync(dir); i++) dir = join(config.output, `${base}-${i}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  writeFileSync(join(dir, 'job.json'), JSON.stringify(job) + '\n');
  return dir;
}

export class RunDirError extends Error {
  constructor(dir: string, reason: string) {
    super(`${dir} is not a usable run folder: ${reason}`);
    this.name = 'RunDirError';
  }
}

export function readRunDir(dir: string): { config: ResolvedConfig; job: Job; log: ParsedLog } {
  const read = (f: string) => {
    const p = join(dir, f);
    if (!existsSync(p)) throw new RunDirError(dir, `${f} is missing`);
    try {
      return JSON.parse(readFileSync(p, 'utf8'));
    } catch (e) {
      throw new RunDirError(dir, `${f} is not valid JSON (${(e as Error).message})`);
    }
  };
  const config = read('config.json') as ResolvedConfig;
  const job = read('job.json') as Job;
  const events = join(dir, EVENTS_FILE);
  const log = parseEventLog(existsSync(events) ? readFileSync(events, 'utf8') : '');
  return { config, job, log };
}
