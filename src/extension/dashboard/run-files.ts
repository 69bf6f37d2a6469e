/**
 * Reading runs for the dashboard: a run folder's events.jsonl becomes a snapshot the webview folds into its
 * state. No vscode import, so it is tested directly. Events that arrived live but may not be on disk yet (IPC can
 * overtake the trainer's write) are merged in by sequence number.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseEventLog, type SculptEvent } from '../../protocol/events';
import type { ExperimentInfo, RunSnapshot } from '../../protocol/webview';
import { readExperiment } from '../../runs/experiment-dir';
import { EVENTS_FILE } from '../../runs/run-dir';
import { readRunMeta } from './run-meta';
import type { PredictionPick, PredictionsMessage } from '../../protocol/predictions';
import { choosePredictionSet, listPredictionSets, readPredictionRecords } from '../../runs/predictions';
import { predictionsView } from '../../runs/confusion';

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
  snap.meta = readRunMeta(key, snap.events.length > 0);
  return snap;
}

/**
 * An experiment folder's record as the webview needs it: each cell by the key of its run folder. Throws an
 * ExperimentDirError (naming the file and the problem) when experiment.json cannot be read.
 */
export function readExperimentInfo(dir: string): ExperimentInfo {
  const key = runKey(dir);
  const r = readExperiment(key);
  return {
    dir: key,
    name: typeof r.name === 'string' ? r.name : basename(key),
    methods: Array.isArray(r.methods) ? r.methods.map(String) : [...new Set(r.cells.map((c) => String(c.method)))],
    orders: Array.isArray(r.orders) ? r.orders.map((o) => (Array.isArray(o) ? o.map(String) : [])) : [],
    seeds: Array.isArray(r.seeds) ? r.seeds.filter((x) => Number.isInteger(x)) : [],
    baseline: typeof r.baseline === 'string' ? r.baseline : null,
    cells: r.cells.map((c) => ({
      key: runKey(join(key, c.dir)),
      method: typeof c.method === 'string' ? c.method : (r.methods?.[c.methodIndex] ?? '?'),
      methodIndex: c.methodIndex,
      order: c.order,
      seed: c.seed,
    })),
  };
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

/**
 * The answer to a webview's `predictions-request`: every prediction file the run folder lists and, computed here
 * so that the webview gets a confusion matrix and at most a few hundred rows rather than the whole file, the set
 * `pick` chooses.
 */
export function readPredictions(key: string, pick: PredictionPick, requestId: number): PredictionsMessage {
  const { sets, problems } = listPredictionSets(key);
  const msg: PredictionsMessage = { type: 'predictions', requestId, key, sets, view: null };
  if (problems.length) msg.error = problems.join('; ');
  const set = choosePredictionSet(sets, pick);
  if (!set) return msg;
  try {
    const { records, badLines } = readPredictionRecords(key, set);
    msg.view = predictionsView(set, records, badLines);
  } catch (e) {
    msg.error = `${set.point}/${set.file}: ${(e as Error).message}`;
  }
  return msg;
}
