/**
 * What the dashboard shows of a run folder besides its log: the cell job.json names (a queued run has no event
 * that says its method yet) and the user's notes.json. No vscode import, so it is tested directly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunMeta } from '../../protocol/webview';
import { emptySummary } from '../../runs/fold';
import { withFolderJob } from '../../runs/run-dir';
import { readRunNotes } from '../../runs/run-notes';

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** `hasEvents`: whether the run's log holds any event (a folder with job.json and none waits in the queue). */
export function readRunMeta(dir: string, hasEvents: boolean): RunMeta {
  const config = readJson(join(dir, 'config.json'));
  const job = readJson(join(dir, 'job.json'));
  const cell = withFolderJob(emptySummary(''), config, job);
  const name = config && typeof config === 'object' ? (config as { name?: unknown }).name : undefined;
  const notes = readRunNotes(dir);
  return {
    ...(cell.method !== '?' ? { method: cell.method } : {}),
    order: cell.order,
    seed: cell.seed,
    ...(typeof name === 'string' ? { experiment: name } : {}),
    queued: !hasEvents && existsSync(join(dir, 'job.json')),
    title: notes.title,
    notes: notes.notes,
    tags: notes.tags,
  };
}
