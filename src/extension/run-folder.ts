/**
 * Reading run folders for display: any folder with an events.jsonl is a run, whether the extension, the CLI or
 * another machine made it; config.json and job.json add the experiment and method when present. The files a
 * supervisor adds beside the trainer's (trainer.log, the trainer's output, and trainer.pid, who runs the folder
 * now, so that a reloaded window can find a live trainer again) are re-exported here from src/runs/run-dir.ts and
 * src/supervisor/run-files.ts.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { experimentOf, isExperimentFolder } from '../runs/experiment-dir';
import { basename, join } from 'node:path';
import { parseEventLog, type SculptEvent } from '../protocol/events';
import { foldRun, type RunSummary } from '../runs/fold';
import { EVENTS_FILE, readPidFile, withFolderJob, type PidRecord } from '../runs/run-dir';
import { hasEnded } from '../runs/status';
import { readRunNotes, type RunNotes } from '../runs/run-notes';

export { LOG_FILE, PID_FILE, readPidFile, removePidFile, writePidFile, type PidRecord } from '../runs/run-dir';
export { livePid, tailText } from '../supervisor/run-files';

export interface RunFolderInfo {
  dir: string;
  /** The folder name, which is also the run id in its events. */
  id: string;
  experiment: string;
  method: string;
  /** 0-based task order of the config. */
  order: number;
  /** The seed of the run (job.json, else config.json); null when neither says. */
  seed: number | null;
  /** The experiment folder the run belongs to (a cell of its grid), if any. */
  experimentDir?: string;
  /** The fold of its log; `summary.status` is what the log alone says (see runStatus in trees/run-items.ts). */
  summary: RunSummary;
  /** Time of the first event, else of the folder's creation; for sorting and display. */
  started: number;
  /** Whether any event was written yet. */
  hasEvents: boolean;
  hasCheckpoint: boolean;
  pid?: PidRecord;
  /** The last event seq in the log (0 when empty). */
  lastSeq: number;
  /** When events.jsonl was last written (0 when it does not exist). */
  logWritten: number;
  /** The user's name, notes and tags for the run (notes.json); absent when it has none. */
  notes?: RunNotes;
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

/** @deprecated Use `foldRun(...).status` (src/runs/fold.ts): how the log's last session ended, if it did. */
export type LogOutcome = 'finished' | 'stopped' | 'failed' | undefined;

/** @deprecated Use `foldRun(...).status` (src/runs/fold.ts); kept until its last caller moves. */
export function logOutcome(events: SculptEvent[]): LogOutcome {
  const { status } = foldRun('', events);
  return hasEnded(status) ? status : undefined;
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

function withNotes(dir: string): { notes?: RunNotes } {
  const notes = readRunNotes(dir);
  return notes.title || notes.notes || notes.tags.length ? { notes } : {};
}

export function readRunFolder(dir: string): RunFolderInfo {
  const id = basename(dir);
  const events = readEvents(dir);
  const config = readJson(join(dir, 'config.json'));
  const job = readJson(join(dir, 'job.json'));
  // Method, order and seed from job.json and config.json while the log does not say them (a queued cell).
  const summary = withFolderJob(foldRun(id, events), config, job);
  const started = events.find((e) => e.type === 'run-started');
  return {
    dir,
    id,
    experiment:
      typeof config?.name === 'string'
        ? config.name
        : (started?.type === 'run-started' && (started.config as { name?: string })?.name) || id,
    method: summary.method,
    order: summary.order ?? 0,
    seed: summary.seed,
    experimentDir: experimentOf(dir),
    summary,
    started: events[0]?.time ?? folderTime(dir),
    hasEvents: events.length > 0,
    hasCheckpoint: existsSync(join(dir, 'checkpoints', 'LATEST')),
    pid: readPidFile(dir),
    lastSeq: events.reduce((m, e) => Math.max(m, e.seq), 0),
    logWritten: mtime(eventsFile(dir)),
    ...withNotes(dir),
  };
}

/**
 * Run folders in each root: the root itself when it is one, else the run folders directly inside it and inside
 * its experiment folders (one level down: `<root>/<experiment>-<time>/<cell>/`), without duplicates.
 */
export function listRunFolders(roots: string[]): string[] {
  const out = new Set<string>();
  const subfolders = (dir: string): string[] => {
    try {
      return readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(dir, d.name));
    } catch {
      return [];
    }
  };
  const visit = (dir: string, depth: number) => {
    if (isRunFolder(dir)) out.add(dir);
    else if (depth > 0 && (depth > 1 || isExperimentFolder(dir))) for (const d of subfolders(dir)) visit(d, depth - 1);
  };
  for (const root of roots) if (existsSync(root)) visit(root, 2);
  return [...out];
}
