/**
 * Running (or resuming) the job of a run folder in this process: the shared core of the trainer process and
 * `sculpt run --in-process`. Failures become an `error` event with where and a hint (bad input of any kind:
 * the input error's own hint); a corrupt checkpoint is reported before anything is written, so the folder
 * stays as it was.
 */
import { basename, join } from 'node:path';
import type { SculptEvent } from '../protocol/events';
import { resolveStoredConfig } from '../protocol/config-validate';
import { InputError } from '../protocol/errors';
import { runExperiment, DivergenceError, type RunOutcome } from '../engine/runner';
import { EVENTS_FILE, readRunDir } from '../runs/run-dir';
import { latestCheckpoint, loadCheckpoint, type CheckpointContents } from '../engine/run-checkpoint';
import { BackendError } from '../engine/backend';
import { EventWriter } from './event-writer';

export interface RunFolderOptions {
  /** Polled between steps. */
  shouldStop: () => boolean;
  /** Called with every event written (e.g. to print progress). */
  echo?: (e: SculptEvent) => void;
}

export async function runFolder(runDir: string, opts: RunFolderOptions): Promise<RunOutcome> {
  const { config: stored, job, log } = readRunDir(runDir);
  if (log.events.some((e) => e.type === 'run-finished')) return 'finished';
  const cpPath = latestCheckpoint(runDir);
  // Read the checkpoint before writing anything: a corrupt one must leave the folder untouched.
  const resume: CheckpointContents | undefined = cpPath ? loadCheckpoint(cpPath) : undefined;
  const lastSeq = log.events.reduce((m, e) => Math.max(m, e.seq), 0);
  const writer = new EventWriter(join(runDir, EVENTS_FILE), basename(runDir), lastSeq, opts.echo);
  const hooks = {
    emit: (b: Parameters<EventWriter['emit']>[0]) => void writer.emit(b),
    shouldStop: opts.shouldStop,
    lastSeq: () => writer.lastSeq,
  };
  try {
    const config = resolveStoredConfig(stored, join(runDir, 'config.json'));
    return await runExperiment({ config, methodIndex: job.methodIndex, order: job.order, runDir }, hooks, resume);
  } catch (e) {
    writer.emit(errorEvent(e));
    return 'failed';
  }
}

function errorEvent(e: unknown): Parameters<EventWriter['emit']>[0] {
  if (e instanceof DivergenceError) {
    return {
      type: 'error',
      message: e.message,
      where: `task '${e.task}', step ${e.step}`,
      hint: 'Lower the learning rate (training.lr) or enable gradient clipping (training.gradClip); the matrix rows computed so far are kept in this log.',
    };
  }
  if (e instanceof InputError) return { type: 'error', message: e.message, where: e.where, hint: e.hint };
  if (e instanceof BackendError) return { type: 'error', message: e.message, where: 'backend', hint: e.hint };
  const err = e as Error;
  return {
    type: 'error',
    message: err?.message ?? String(e),
    where: err?.stack?.split('\n').slice(1, 4).join(' | ').trim(),
  };
}
