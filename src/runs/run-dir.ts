/**
 * Run folders: one per cell of an experiment's grid, `<output>/<experiment>-<time>/<method>-o<order>-s<seed>/`
 * (./experiment-dir.ts), with
 *   config.json   the resolved config (defaults filled in, absolute paths)
 *   job.json      which method, order and seed of the config this run is
 *   events.jsonl  the append-only event log
 *   checkpoints/  see run-checkpoint.ts
 *   trainer.log   the trainer's output, every session appended (written by whoever launched it)
 * Anything that can display or resume a run needs only this folder.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ResolvedConfig } from '../protocol/config-validate';
import { methodLabel } from '../protocol/config-validate';
import { RunFolderError, describeFsError, outputDirProblem, writeFileAtomic } from './output-dir';
import { parseEventLog, type ParsedLog } from '../protocol/events';
import type { RunSummary } from './fold';

export interface Job {
  methodIndex: number;
  order: number;
  /** The seed of this cell of the experiment's grid (also config.json's `seed`); absent in older folders. */
  seed?: number;
  /**
   * The config.json the run was created with: SHA-256 of its JSON and of each top-level field's JSON, so that a
   * resume can tell that config.json was edited and name what changed. Absent in folders made before it existed.
   */
  config?: ConfigFingerprint;
}

export interface ConfigFingerprint {
  sha256: string;
  fields: Record<string, string>;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The fingerprint of a config as parsed JSON (formatting does not count, values do). */
export function configFingerprint(config: unknown): ConfigFingerprint {
  const fields: Record<string, string> = {};
  if (config && typeof config === 'object') {
    for (const [k, v] of Object.entries(config)) fields[k] = sha256(JSON.stringify(v) ?? 'undefined');
  }
  return { sha256: sha256(JSON.stringify(config)), fields };
}

/**
 * The top-level fields of config.json that differ from the fingerprint in job.json (added, removed or changed),
 * or null when the folder has no fingerprint (made before fingerprints existed).
 */
export function changedConfigFields(config: unknown, job: Job): string[] | null {
  const was = job.config;
  if (!was || typeof was.sha256 !== 'string' || !was.fields || typeof was.fields !== 'object') return null;
  const now = configFingerprint(config);
  if (now.sha256 === was.sha256) return [];
  const names = new Set([...Object.keys(was.fields), ...Object.keys(now.fields)]);
  // Same fields but a different whole: only the order of the fields changed, which changes nothing.
  return [...names].filter((k) => was.fields[k] !== now.fields[k]);
}

function writeJob(dir: string, job: Job, config: unknown): void {
  const record: Job = {
    methodIndex: job.methodIndex,
    order: job.order,
    ...(job.seed !== undefined && { seed: job.seed }),
    config: configFingerprint(JSON.parse(JSON.stringify(config))),
  };
  writeFileSync(join(dir, 'job.json'), JSON.stringify(record) + '\n');
}

export const EVENTS_FILE = 'events.jsonl';
/** The trainer's stdout and stderr, opened for appending by the supervisor that starts it (src/supervisor/). */
export const LOG_FILE = 'trainer.log';
/** Who runs the folder now: written by the trainer at start, removed at exit, so that any viewer (a reloaded
 * VS Code window, a run started from the CLI) can find and stop a live trainer. */
export const PID_FILE = 'trainer.pid';

export interface PidRecord {
  pid: number;
  host: string;
  /** Milliseconds since the epoch. */
  started: number;
}

export function writePidFile(dir: string, pid: number, now = Date.now()): void {
  const rec: PidRecord = { pid, host: hostname(), started: now };
  writeFileSync(join(dir, PID_FILE), JSON.stringify(rec) + '\n');
}

/** Removes the pid file if it still names `pid` (a newer session may have replaced it). */
export function removePidFile(dir: string, pid: number): void {
  if (readPidFile(dir)?.pid === pid) rmSync(join(dir, PID_FILE), { force: true });
}

export function readPidFile(dir: string): PidRecord | undefined {
  let v: Partial<PidRecord> | undefined;
  try {
    v = JSON.parse(readFileSync(join(dir, PID_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  if (!v || typeof v.pid !== 'number' || typeof v.host !== 'string') return undefined;
  return { pid: v.pid, host: v.host, started: typeof v.started === 'number' ? v.started : 0 };
}

/** Local time as `YYYYMMDD-HHMMSS`, for folder names that sort by creation. */
export function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Creates a run folder for one (method, order) of a config in its `output` folder and returns its path. */
export function createRunDir(config: ResolvedConfig, job: Job, now = new Date()): string {
  const label = methodLabel(config.methods[job.methodIndex]);
  const base = `${config.name}-${label}${job.order > 0 ? `-o${job.order + 1}` : ''}-${stamp(now)}`;
  return createRunFolder(config.output, base, config, job);
}

/**
 * Creates `<parent>/<name>` (or `<name>-2`, ... when taken) holding config.json and job.json and returns its
 * path. On failure nothing this call made stays: neither the folder nor the parents it created.
 */
export function createRunFolder(parent: string, name: string, config: ResolvedConfig, job: Job): string {
  const base = safeName(name);
  // Checked first: nothing is written into a place that is not a writable folder.
  const problem = outputDirProblem(parent);
  if (problem) throw new RunFolderError(problem, parent);
  let dir = join(parent, base);
  let createdParent: string | undefined;
  let createdDir = false;
  try {
    createdParent = mkdirSync(parent, { recursive: true });
    for (let i = 2; existsSync(dir); i++) dir = join(parent, `${base}-${i}`);
    mkdirSync(dir);
    createdDir = true;
    // Written to a temporary name and renamed: a full disk leaves no empty or truncated config.json.
    writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    writeJob(dir, job, config);
  } catch (e) {
    // Take back what this call made: the run folder, and the parent folders it created (while empty).
    if (createdDir) rmSync(dir, { recursive: true, force: true });
    if (createdParent) removeEmptyUpTo(parent, createdParent);
    throw describeFsError(e, dir);
  }
  return dir;
}

/** A folder name from user text: anything but letters, digits, `_`, `.` and `-` becomes `_`. */
export const safeName = (name: string): string => name.replace(/[^A-Za-z0-9_.-]/g, '_');

/** Removes `dir` and its parents up to `top` (inclusive) while they are empty. */
export function removeEmptyUpTo(dir: string, top: string): void {
  const first = resolve(top);
  for (let d = resolve(dir); d.length >= first.length; d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      break;
    }
  }
}

/**
 * A run's summary with what its folder says: its order and seed as job.json names its cell of the grid, and its
 * method from config.json while the log does not say it (a queued cell has no events). `config` and `job` are taken as read
 * from disk (anything), so that a folder with a damaged file still gets what can be had.
 */
export function withFolderJob(s: RunSummary, config: unknown, job: unknown): RunSummary {
  const c = (config && typeof config === 'object' ? config : {}) as { methods?: unknown; seed?: unknown };
  const j = (job && typeof job === 'object' ? job : {}) as { methodIndex?: unknown; order?: unknown; seed?: unknown };
  const entry =
    Array.isArray(c.methods) && Number.isInteger(j.methodIndex) ? c.methods[j.methodIndex as number] : undefined;
  const label =
    entry && typeof entry === 'object'
      ? ((entry as { label?: string; method?: string }).label ?? (entry as { method?: string }).method)
      : undefined;
  const int = (v: unknown): number | null => (Number.isInteger(v) ? (v as number) : null);
  const setting = settingOf(config);
  return {
    ...s,
    ...(setting ? { setting } : {}),
    method: s.method !== '?' || typeof label !== 'string' ? s.method : label,
    // job.json says which cell of the grid the folder is; the log's own figures only fill in where it does not.
    order: int(j.order) ?? s.order,
    seed: int(j.seed) ?? s.seed ?? int(c.seed),
  };
}

/**
 * The parts of a run's config that every method of a comparison must share, the ones that decide what an
 * accuracy means: the model and tokenizer, the tasks, the orders, the training, the evaluation and the engine
 * (the two engines agree closely, not exactly). The methods, seed, name, output folder, backend and
 * checkpointing are left out: runs of one setting differ in those and stay comparable.
 */
const SETTING_FIELDS = ['model', 'tokenizer', 'tasks', 'orders', 'training', 'eval', 'engine'] as const;

/** A short fingerprint of a config's setting (SETTING_FIELDS, keys in sorted order); undefined for a non-object. */
export function settingOf(config: unknown): string | undefined {
  if (!config || typeof config !== 'object' || Array.isArray(config)) return undefined;
  const c = config as Record<string, unknown>;
  const picked = Object.fromEntries(SETTING_FIELDS.map((k) => [k, c[k] ?? null]));
  return sha256(canonicalJson(picked)).slice(0, 12);
}

/** JSON with every object's keys sorted, so that two equal configs written in another key order agree. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** The run's fine-tuned model, a Hugging Face folder (checkpoint.final; src/engine/io/final-model.ts). */
export const FINAL_MODEL_DIR = 'model';

export function finalModelPath(runDir: string): string {
  return join(runDir, FINAL_MODEL_DIR);
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
