/**
 * Reading runs for the dashboard: a run folder's events.jsonl becomes a snapshot the webview folds into its
 * state. No vscode import, so it is tested directly. Events that arrived live but may not be on disk yet (IPC can
 * overtake the trainer's write) are merged in by sequence number.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseEventLog, type SculptEvent } from '../../protocol/events';
import type { RunSnapshot } from '../../protocol/webview';
import { EVENTS_FILE } from '../../runs/run-dir';

/** The identity of a run folder in panels and messages: its absolute path without a trailing separator. */
export function runKey(dir: string): string {
  return resolve(dir);
}

export function readRunSnapshot(dir: string, live: boolean, recent: readonly SculptEvent[] = []): RunSnapshot {
  const key = runKey(dir);
  const snap: RunSnapshot = { key, name: basename(key), live, events: [], truncatedTail: false, badLines: 0 };
  try {
    const log = parseEventLog(readFileSync(join(key, EVENTS_FILE), 'utf8'));
    snap.events = log.events;
    snap.truncatedTail = log.truncatedTail;
    snap.badLines = log.badLines.length;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // A run that is about to start has no log yet: that is not an error while its trainer is live, nor while it
    // waits in the queue (its folder is prepared, with job.json, before a trainer is free to start it).
    const notStarted = err.code === 'ENOENT' && (live || recent.length > 0 || existsSync(join(key, 'job.json')));
    if (!notStarted) {
      snap.readError =
        err.code === 'ENOENT'
          ? `${join(key, EVENTS_FILE)} does not exist`
          : `${join(key, EVENTS_FILE)}: ${err.message}`;
    }
  }
  const last = snap.events.length ? snap.events[snap.events.length - 1].seq : -Infinity;
  for (const e of recent) if (e.seq > last) snap.events.push(e);
  return snap;
}

/** Live events kept per run for a webview that loads before they reach the disk; bounded, oldest dropped. */
export class RecentEvents {
  private readonly byRun = new Map<string, SculptEvent[]>();

  constructor(private readonly limit = 500) {}

  add(key: string, e: SculptEvent): void {
    let list = this.byRun.get(key);
    if (!list) this.byRun.set(key, (list = []));
    list.push(e);
    if (list.length > this.limit) list.splice(0, list.length - this.limit);
  }

  get(key: string): readonly SculptEvent[] {
    return this.byRun.get(key) ?? [];
  }

  delete(key: string): void {
    this.byRun.delete(key);
  }
}
