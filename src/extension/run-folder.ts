/**
 * Reading run folders for display: any folder with an events.jsonl is a run, whether the extension, the CLI or
 * another machine made it; config.json and job.json add the experiment and method when present. The files the
 * extension adds beside the engine's (see src/engine/run-dir.ts) are declared here: trainer.log (the trainer's
 * output) and trainer.pid (who runs the folder now, so that a reloaded window can find a live trainer again).
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { parseEventLog, type SculptEvent } from '../protocol/events';
import { effectiveEvents, summarize, type RunSummary } from '../runs/report';
import { EVENTS_FILE, readPidFile, type PidRecord } from '../runs/run-dir';
import { commandLine, isAlive } from './process-tree';

export const LOG_FILE = 'trainer.log';
export { PID_FILE, readPidFile, removePidFile, writePidFile, type PidRecord } from '../runs/run-dir';

/** How a run ended, judged from the events after its last `run-started` (earlier sessions do not count). */
export type LogOutcome = 'finished' | 'stopped' | 'failed' | undefined;

export interface RunFolderInfo {
  dir: string;
  /** The folder name, which is also the run id in its events. */
  id: string;
  experiment: string;
  method: string;
  /** 0-based task order of the config. */
  order: number;
  summary: RunSummary;
  /** Time of the first event, else of the folder's creation; for sorting and display. */
  started: number;
  outcome: LogOutcome;
  /** Whether any event was written yet. */
  hasEvents: boolean;
  hasCheckpoint: boolean;
  pid?: PidRecord;
  /** The last event seq in the log (0 when empty). */
  lastSeq: number;
  /** When events.jsonl was last written (0 when it does not exist). */
  logWritten: number;
}

export function eventsFile(dir: string): string {
  return join(dir, EVENTS_FILE);
}

export function isRunFolder(dir: string): boolean {
  return existsSync(eventsFile(dir)) || existsSync(join(dir, 'job.json'));
}

export function readEvents(dir: string): SculptEvent[] {
  const file = eventsFile(dir);
  return existsSync(file) ? parseEventLog(readFileSync(file, 'utf8')).events : [];
}

/** The outcome recorded after the last `run-started`: a resumed run's earlier `stopped` is history. */
export function logOutcome(events: SculptEvent[]): LogOutcome {
  let outcome: LogOutcome;
  for (const e of events) {
    if (e.type === 'run-started') outcome = undefined;
    else if (e.type === 'run-finished') outcome = 'finished';
    else if (e.type === 'stopped') outcome = 'stopped';
    else if (e.type === 'error') outcome = 'failed';
  }
  return outcome;
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function folderTime(dir: string): number {
  for (const f of ['job.json', 'config.json', EVENTS_FILE]) {
    try {
      return statSync(join(dir, f)).mtimeMs;
    } catch {
      // try the next file
    }
  }
  return statSync(dir).mtimeMs;
}

export function readRunFolder(dir: string): RunFolderInfo {
  const id = basename(dir);
  const events = readEvents(dir);
  const summary = summarize(id, { events, badLines: [], truncatedTail: false, unknown: 0 });
  const config = readJson(join(dir, 'config.json'));
  const job = readJson(join(dir, 'job.json'));
  const methods = Array.isArray(config?.methods) ? (config.methods as { method?: string; label?: string }[]) : [];
  const methodIndex = typeof job?.methodIndex === 'number' ? job.methodIndex : 0;
  const configured = methods[methodIndex];
  const started = events.find((e) => e.type === 'run-started');
  return {
    dir,
    id,
    experiment: typeof config?.name === 'string' ? config.name : (started?.type === 'run-started' && (started.config as { name?: string })?.name) || id,
    method: summary.method !== '?' ? summary.method : (configured?.label ?? configured?.method ?? '?'),
    order: typeof job?.order === 'number' ? job.order : started?.type === 'run-started' ? started.order : 0,
    summary,
    started: events[0]?.time ?? folderTime(dir),
    outcome: logOutcome(effectiveEvents(events)),
    hasEvents: events.length > 0,
    hasCheckpoint: existsSync(join(dir, 'checkpoints', 'LATEST')),
    pid: readPidFile(dir),
    lastSeq: events.reduce((m, e) => Math.max(m, e.seq), 0),
    logWritten: mtime(eventsFile(dir)),
  };
}

/** Run folders directly inside each root (or the root itself when it is one), without duplicates. */
export function listRunFolders(roots: string[]): string[] {
  const out = new Set<string>();
  for (const root of roots) {
    if (!existsSync(root)) continue;
    if (isRunFolder(root)) {
      out.add(root);
      continue;
    }
    let entries: string[];
    try {
      entries = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(root, d.name));
    } catch {
      continue;
    }
    for (const d of entries) if (isRunFolder(d)) out.add(d);
  }
  return [...out];
}

/** The last `maxBytes` of a text file (from a line start where possible); '' when it does not exist. */
export function tailText(file: string, maxBytes = 4000): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    let text = buf.toString('utf8');
    if (start > 0 && text.includes('\n')) text = text.slice(text.indexOf('\n') + 1);
    return text.trimEnd();
  } finally {
    closeSync(fd);
  }
}

/**
 * The trainer named by a folder's pid file, if it is alive on this machine and still that trainer: on Linux
 * its command line must name the folder; elsewhere, where that cannot be checked cheaply, its log must have
 * been written in the last ten minutes, so that a pid reused by an unrelated process is not taken for it.
 */
export function livePid(dir: string): PidRecord | undefined {
  const rec = readPidFile(dir);
  if (!rec || rec.host !== hostname() || !isAlive(rec.pid)) return undefined;
  const cmd = commandLine(rec.pid);
  if (cmd !== undefined) return cmd.includes(dir) ? rec : undefined;
  try {
    return Date.now() - statSync(eventsFile(dir)).mtimeMs < 10 * 60_000 ? rec : undefined;
  } catch {
    return undefined;
  }
}
