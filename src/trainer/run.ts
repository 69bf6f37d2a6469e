/**
 * Running (or resuming) the job of a run folder in this process: the shared core of the trainer process and
 * `sculpt run --in-process`. Failures become an `error` event with where and a hint (bad input of any kind:
 * the input error's own hint), so that every view shows the run as failed.
 *
 * Before anything else is written the folder is checked: config.json must be the one the run was created with
 * (job.json keeps its fingerprint), and the checkpoint to resume from must pass every check (run-checkpoint.ts);
 * a newer one that does not is skipped with a warning. A failure there appends its error event and changes
 * nothing else. A start that finds events but no checkpoint (a trainer killed before its first checkpoint)
 * starts over and supersedes those events, so the effective log holds one history.
 *
 * A write that fails (a full disk: an event append, a checkpoint) fails the run: its message names the file and
 * says to free space and resume. It goes to stderr (trainer.log) first, since the event log may take no more.
 */
import { basename, join } from 'node:path';
import type { EventBody, ErrorEvent, SculptEvent } from '../protocol/events';
import { resolveStoredConfig } from '../protocol/config-validate';
import type { ResolvedConfig } from '../protocol/config-resolved';
import { InputError } from '../protocol/errors';
import { runExperiment, DivergenceError, type RunOutcome } from '../engine/runner';
import { EVENTS_FILE, changedConfigFields, readRunDir } from '../runs/run-dir';
import {
  CheckpointCorruptError,
  checkpointCandidates,
  latestCheckpoint,
  removeTemporaries,
  type ResumeSource,
} from '../engine/run-checkpoint';
import { BackendError } from '../engine/backend';
import { WriteFailedError } from '../engine/io/write-failure';
import { EventWriter } from './event-writer';
import { runTorch } from './torch/bridge';
import { ALIVE_INTERVAL_MS, ipcSendAlive, startHeartbeat, type AliveNotices, type Heartbeat } from './alive';
import { TorchWorkerError } from './torch/worker-error';

type ErrorBody = Omit<ErrorEvent, 'v' | 'runId' | 'seq' | 'time'>;

export interface RunFolderOptions {
  /** Polled between steps. */
  shouldStop: () => boolean;
  /** Called with every event written (e.g. to print progress). */
  echo?: (e: SculptEvent) => void;
  /** Where the alive notices before the first event go (default: the IPC channel, if any). */
  notices?: AliveNotices;
}

/** config.json differs from the config the run was created with. */
export class ConfigChangedError extends Error {
  constructor(
    readonly file: string,
    readonly fields: string[],
  ) {
    super(
      `${file} was changed after the run was created (${fields.length === 1 ? 'field' : 'fields'} ${fields.map((f) => `'${f}'`).join(', ')} ${fields.length === 1 ? 'differs' : 'differ'}), so the run cannot continue with it`,
    );
    this.name = 'ConfigChangedError';
  }

  readonly hint =
    'A run continues only with the config it started with. Put config.json back as it was to resume, or run the changed config as a new run: `sculpt run <experiment>.sculpt.json`.';
}

export async function runFolder(runDir: string, opts: RunFolderOptions): Promise<RunOutcome> {
  const { config: stored, job, log } = readRunDir(runDir);
  if (log.events.some((e) => e.type === 'run-finished')) return 'finished';
  const lastSeq = log.events.reduce((m, e) => Math.max(m, e.seq), 0);
  const writer = new EventWriter(join(runDir, EVENTS_FILE), basename(runDir), lastSeq, opts.echo);
  // Warnings about the folder itself wait for this session's run-started: written before it, a resume would
  // supersede them.
  const pending: EventBody[] = [];
  const hooks = {
    emit: (b: EventBody) => {
      writer.emit(b);
      if (b.type === 'run-started') for (const w of pending.splice(0)) writer.emit(w);
    },
    shouldStop: opts.shouldStop,
    lastSeq: () => writer.lastSeq,
  };
  try {
    const changed = changedConfigFields(stored, job);
    if (changed?.length) throw new ConfigChangedError(join(runDir, 'config.json'), changed);
    if (changed === null) {
      pending.push({
        type: 'warning',
        code: 'config-unchecked',
        message: `${join(runDir, 'job.json')} has no fingerprint of config.json (a folder made by an earlier version): config.json is used as it is, unchecked`,
      });
    }
    const config = resolveStoredConfig(stored, join(runDir, 'config.json'));
    // Until the first event the host hears what the engine does (loading a model can outlast its start-up
    // timeout); the notices stop as that event goes out, or when the engine returns.
    const alive = startHeartbeat(
      opts.notices?.send ?? ipcSendAlive(),
      'reading the run folder',
      opts.notices?.intervalMs ?? ALIVE_INTERVAL_MS,
    );
    try {
      return await runEngine(config, alive);
    } finally {
      alive.stop();
    }
  } catch (e) {
    const event = errorEvent(e, runDir);
    // Also to trainer.log, whose end the CLI prints when a trainer fails: the only record when the event below
    // cannot be written (a full disk).
    console.error(event.hint ? `${event.message}\nhint: ${event.hint}` : event.message);
    try {
      writer.emit(event);
    } catch (again) {
      console.error(`this error could not be recorded in the event log either: ${(again as Error).message}`);
    }
    return 'failed';
  }

  async function runEngine(config: ResolvedConfig, alive: Heartbeat): Promise<RunOutcome> {
    // The PyTorch engine: the same folder checks above, then its worker; its checkpoints are committed by the log.
    if (config.engine === 'torch') {
      removeTemporaries(runDir);
      const spec = { config, methodIndex: job.methodIndex, order: job.order, runDir };
      return await runTorch(spec, hooks, log.events, alive);
    }
    const candidates = checkpointCandidates(runDir);
    // Events but no checkpoint: an earlier attempt ended before its first checkpoint. This one starts over and
    // replaces that attempt's events.
    const firstSeq = log.events.reduce((m, e) => Math.min(m, e.seq), Infinity);
    const from: ResumeSource = {
      candidates,
      ...(candidates.length === 0 && log.events.length ? { restartOf: firstSeq } : {}),
    };
    // Leftovers of an interrupted checkpoint write or prune: never read, removed before this session writes any.
    removeTemporaries(runDir);
    const tfjsHooks = {
      ...hooks,
      emit: (b: EventBody) => {
        alive.stop();
        hooks.emit(b);
      },
      phase: (what: string) => alive.phase(what),
    };
    return await runExperiment({ config, methodIndex: job.methodIndex, order: job.order, runDir }, tfjsHooks, from);
  }
}

/** What to do about a write that failed, and where the run continues from once it is fixed. */
function writeFailureHint(e: WriteFailedError, runDir: string): string {
  let from = 'the start (no checkpoint was written yet)';
  try {
    const latest = latestCheckpoint(runDir);
    if (latest) from = `its last complete checkpoint, ${latest}`;
  } catch {
    from = 'its newest checkpoint that verifies';
  }
  const fix = e.noSpace
    ? `Free space on the disk that holds ${runDir}`
    : `Fix what stopped ${e.path} from being written (${e.code ?? 'see the message'})`;
  return `${fix}, then \`sculpt resume ${runDir}\`: the run continues from ${from}.`;
}

function errorEvent(e: unknown, runDir: string): ErrorBody {
  if (e instanceof WriteFailedError) {
    return { type: 'error', message: e.message, where: e.path, hint: writeFailureHint(e, runDir) };
  }
  if (e instanceof DivergenceError) {
    return {
      type: 'error',
      message: e.message,
      where: `task '${e.task}', step ${e.step}`,
      hint: e.hint,
    };
  }
  if (e instanceof InputError) return { type: 'error', message: e.message, where: e.where, hint: e.hint };
  if (e instanceof BackendError) return { type: 'error', message: e.message, where: 'backend', hint: e.hint };
  if (e instanceof ConfigChangedError) return { type: 'error', message: e.message, where: e.file, hint: e.hint };
  if (e instanceof TorchWorkerError) return { type: 'error', message: e.message, where: e.where, hint: e.hint };
  if (e instanceof CheckpointCorruptError) {
    return {
      type: 'error',
      message: e.message,
      where: e.path,
      hint: 'Delete the checkpoint named here to resume from an earlier one (or every checkpoint to start the run over), or start a new run.',
    };
  }
  const err = e as Error;
  return {
    type: 'error',
    message: err?.message ?? String(e),
    where: err?.stack?.split('\n').slice(1, 4).join(' | ').trim(),
  };
}
