/**
 * Every run the Runs view shows: the run folders under the runs folders of the workspace, the folders opened
 * with Open Run..., and those this window's run manager knows. Folder reads are cached by the event log's size
 * and time, so refreshing the view while a run streams re-reads only that run.
 */
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { EXPERIMENT_FILE, experimentOf, readExperiment, type ExperimentRecord } from '../runs/experiment-dir';
import { eventsFile, listRunFolders, livePid, readRunFolder, type RunFolderInfo } from './run-folder';
import { NOTES_FILE } from '../runs/run-notes';
import { isLive, type RunManager } from './run-manager';
import type { RunEntry } from './trees/run-items';

interface Cached {
  stamp: string;
  info: RunFolderInfo;
  at: number;
}

const LIVE_REREAD_MS = 15_000;

function stampOf(file: string): string {
  try {
    const s = statSync(file);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'none';
  }
}

export class RunCatalog {
  private readonly cache = new Map<string, Cached>();
  private readonly experiments = new Map<string, { stamp: string; record: ExperimentRecord | undefined }>();

  constructor(
    /** Folders holding run folders (or run folders themselves). */
    private readonly roots: () => string[],
    private readonly manager: RunManager,
  ) {}

  dirs(): string[] {
    const known = this.manager.list().map((r) => r.dir);
    const all = new Set([...listRunFolders(this.roots().map((r) => path.resolve(r))), ...known]);
    return [...all];
  }

  info(dir: string): RunFolderInfo | undefined {
    // A grid's run folders are made before its experiment.json: a folder read in between is read again once
    // the record is there, so that it joins its experiment.
    // Renaming a run or editing its notes changes notes.json only: that is read again too.
    const stamp = `${stampOf(eventsFile(dir))}|${stampOf(path.join(dir, NOTES_FILE))}|${experimentOf(dir) ?? ''}`;
    const hit = this.cache.get(dir);
    if (hit && hit.stamp === stamp) return hit.info;
    // A live run's log grows with every step; its row shows the manager's progress, so re-reading the whole
    // log (which can be large) once in a while is enough.
    const live = this.manager.get(dir);
    if (hit && live && isLive(live.state) && Date.now() - hit.at < LIVE_REREAD_MS) return hit.info;
    try {
      const info = readRunFolder(dir);
      this.cache.set(dir, { stamp, info, at: Date.now() });
      return info;
    } catch {
      // Deleted or unreadable since it was listed.
      this.cache.delete(dir);
      return undefined;
    }
  }

  entries(): RunEntry[] {
    const out: RunEntry[] = [];
    for (const dir of this.dirs()) {
      const info = this.info(dir);
      if (!info) continue;
      const record = this.manager.get(dir);
      const pidAlive = !record && info.pid ? livePid(dir) !== undefined : undefined;
      const quietFor =
        !record && !pidAlive && info.summary.status === 'running' ? Date.now() - info.logWritten : undefined;
      out.push({ info, record, pidAlive, quietFor });
    }
    return out;
  }

  /**
   * The experiment.json of an experiment folder, or undefined when it cannot be read (its cells then show as
   * runs of their own). Cached by the file's size and time: the view asks at every refresh.
   */
  experiment(dir: string): ExperimentRecord | undefined {
    const stamp = stampOf(path.join(dir, EXPERIMENT_FILE));
    const hit = this.experiments.get(dir);
    if (hit && hit.stamp === stamp) return hit.record;
    let record: ExperimentRecord | undefined;
    try {
      record = readExperiment(dir);
    } catch {
      record = undefined;
    }
    this.experiments.set(dir, { stamp, record });
    return record;
  }

  forget(dir: string): void {
    this.cache.delete(dir);
    this.experiments.delete(dir);
  }
}
