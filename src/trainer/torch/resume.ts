/**
 * Where a PyTorch run continues, read from its event log (docs/torch-engine.md): the log is the commit record, so
 * a worker checkpoint counts once its `checkpoint` event is in the effective log (superseded events do not count).
 * The newest such folder that is still there is the one to resume from; the accuracy matrices so far are rebuilt
 * from the `task-finished` and zero-shot `eval` events before it, and the time already spent from the sessions
 * before it. Without a committed checkpoint, a log with events is an earlier attempt that ended before its first
 * checkpoint: the run starts over and supersedes it, as a tfjs run does.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CheckpointEvent, RunStartedEvent, SculptEvent } from '../../protocol/events';
import { effectiveEvents } from '../../runs/fold';
import { checkpointsDir } from '../../engine/run-checkpoint';

/** A worker checkpoint folder's name: `torch-<globalStep>-<reason>`. */
export const TORCH_CHECKPOINT_PREFIX = 'torch-';
/** The file every complete worker checkpoint folder holds. */
export const TORCH_CHECKPOINT_META = 'meta.json';

export interface TorchResume {
  /** The committed checkpoint to continue from (its folder, absolute), with its event; null for a fresh start. */
  checkpoint: { path: string; event: CheckpointEvent } | null;
  resumedFrom?: NonNullable<RunStartedEvent['resumedFrom']>;
  matrix: number[][];
  zeroShot: (number | null)[] | null;
  validationMatrix: number[][] | null;
  validationZeroShot: (number | null)[] | null;
  /** Training time of the sessions before the checkpoint. */
  elapsedMs: number;
  /** Newer committed checkpoints passed over, with why (each a `checkpoint-skipped` warning). */
  skipped: string[];
}

export interface ResumeExpectations {
  tasks: number;
  /** Whether the run has validation splits (and so a validation matrix). */
  validation: boolean;
  /** The mode whose accuracy is the matrix entry: the first of `eval.modes`. */
  mode: 'rank' | 'generate';
}

/** The folder of a committed checkpoint event, inside this run folder (a moved run folder still finds it). */
function folderOf(runDir: string, e: CheckpointEvent): string | null {
  const name = basename(e.path);
  return name.startsWith(TORCH_CHECKPOINT_PREFIX) ? join(checkpointsDir(runDir), name) : null;
}

export function torchResume(runDir: string, log: readonly SculptEvent[], expect: ResumeExpectations): TorchResume {
  const fresh: TorchResume = {
    checkpoint: null,
    matrix: [],
    zeroShot: null,
    validationMatrix: expect.validation ? [] : null,
    validationZeroShot: null,
    elapsedMs: 0,
    skipped: [],
  };
  const eff = effectiveEvents(log);
  const committed = eff.filter((e): e is CheckpointEvent => e.type === 'checkpoint').reverse();
  const skipped: string[] = [];
  for (const event of committed) {
    const path = folderOf(runDir, event);
    if (!path) continue;
    if (!existsSync(join(path, TORCH_CHECKPOINT_META))) {
      skipped.push(`checkpoint ${path} (event ${event.seq}) is gone or has no ${TORCH_CHECKPOINT_META}`);
      continue;
    }
    const before = eff.filter((e) => e.seq < event.seq);
    const rows = matricesBefore(before, event.task, expect);
    if (typeof rows === 'string') {
      skipped.push(`checkpoint ${path} (event ${event.seq}): ${rows}`);
      continue;
    }
    return {
      checkpoint: { path, event },
      resumedFrom: { task: event.task, step: event.step, supersededFrom: event.seq + 1 },
      ...rows,
      elapsedMs: elapsedBefore(before),
      skipped,
    };
  }
  if (log.length === 0) return { ...fresh, skipped };
  const firstSeq = log.reduce((m, e) => Math.min(m, e.seq), Infinity);
  return { ...fresh, resumedFrom: { task: 0, step: 0, supersededFrom: firstSeq }, skipped };
}

/** The rows of tasks 0..task-1 and the zero-shot rows from the events before a checkpoint; a string says what is missing. */
function matricesBefore(
  before: SculptEvent[],
  task: number,
  expect: ResumeExpectations,
): Pick<TorchResume, 'matrix' | 'zeroShot' | 'validationMatrix' | 'validationZeroShot'> | string {
  const rows = new Map<number, { row: number[]; validationRow?: number[] }>();
  const zero = { test: new Map<number, number>(), validation: new Map<number, number>() };
  for (const e of before) {
    if (e.type === 'task-finished') rows.set(e.task, e);
    if (e.type === 'eval' && e.afterTask === -1 && e.mode === expect.mode)
      zero[e.split ?? 'test'].set(e.task, e.accuracy);
  }
  const matrix: number[][] = [];
  const validationMatrix: number[][] = [];
  for (let j = 0; j < task; j++) {
    const r = rows.get(j);
    if (!r) return `the log has no task-finished event of task ${j + 1} before it`;
    if (expect.validation && !r.validationRow) return `task ${j + 1}'s task-finished event has no validation row`;
    matrix.push(r.row);
    if (r.validationRow) validationMatrix.push(r.validationRow);
  }
  const row = (m: Map<number, number>) =>
    m.size ? Array.from({ length: expect.tasks }, (_, j) => m.get(j) ?? null) : null;
  return {
    matrix,
    zeroShot: row(zero.test),
    validationMatrix: expect.validation ? validationMatrix : null,
    validationZeroShot: expect.validation ? row(zero.validation) : null,
  };
}

/** The time the sessions of `events` spent: from each run-started to the last event of its session. */
function elapsedBefore(events: SculptEvent[]): number {
  let total = 0;
  let start: number | null = null;
  let last = 0;
  for (const e of events) {
    if (e.type === 'run-started') {
      if (start !== null) total += last - start;
      start = e.time;
    }
    last = e.time;
  }
  return start === null ? 0 : total + (last - start);
}
