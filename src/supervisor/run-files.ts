/**
 * What the supervisor reads and writes in a run folder beside the trainer: the event log (read back for what
 * IPC missed), trainer.log (the trainer's output, which the supervisor opens and notes in) and the pid file
 * (who runs the folder now, so that a later host can find a live trainer again).
 */
import { appendFileSync, closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseEventLog, type SculptEvent } from '../protocol/events';
import { EVENTS_FILE, LOG_FILE, readPidFile, type PidRecord } from '../runs/run-dir';
import { commandLine, isAlive } from './process-tree';

export const eventsPath = (dir: string): string => join(dir, EVENTS_FILE);
export const logPath = (dir: string): string => join(dir, LOG_FILE);

/** The events of a run folder's log, in file order; none when it has no log yet. */
export function readLogEvents(dir: string): SculptEvent[] {
  const file = eventsPath(dir);
  return existsSync(file) ? parseEventLog(readFileSync(file, 'utf8')).events : [];
}

/** The highest seq in `events` (0 for none): a new session's events come after it. */
export const lastSeq = (events: readonly SculptEvent[]): number => events.reduce((m, e) => Math.max(m, e.seq), 0);

/** Adds a line of the supervisor's own to trainer.log (where a user looks when a run misbehaves). */
export function noteInLog(dir: string, text: string): void {
  try {
    appendFileSync(logPath(dir), `--- ${text}\n`);
  } catch {
    // A folder deleted under a live run: nothing to note in.
  }
}

/**
 * The last `maxBytes` of a text file from byte `from` on (from a line start where possible); '' when it does
 * not exist.
 */
export function tailText(file: string, maxBytes = 4000, from = 0): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(from, size - maxBytes, 0);
    if (start >= size) return '';
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    let text = buf.toString('utf8');
    if (start > from && text.includes('\n')) text = text.slice(text.indexOf('\n') + 1);
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
    return Date.now() - statSync(eventsPath(dir)).mtimeMs < 10 * 60_000 ? rec : undefined;
  } catch {
    return undefined;
  }
}
