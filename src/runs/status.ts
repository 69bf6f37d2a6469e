/**
 * The one vocabulary for where a run stands, used by the CLI, the extension, the dashboard and reports.
 *
 * A run's status comes from two sources: its event log (what the trainer recorded) and, while a supervisor holds
 * it, the trainer process (what is happening now). `foldRun` (./fold.ts) gives the log's part, a `LogStatus`;
 * the supervisor adds the process states; a folder read with no live process turns a log that is still
 * `running` into `interrupted`.
 */

export type RunStatus =
  /** A run folder with no events yet, never started. */
  | 'new'
  /** Waiting for a free trainer slot. */
  | 'queued'
  /** The trainer process exists but has not sent `run-started` yet. */
  | 'starting'
  | 'running'
  /** A stop was asked for; the trainer is finishing its step and writing a checkpoint. */
  | 'stopping'
  | 'finished'
  /** Stopped on request after a checkpoint: resumable. */
  | 'stopped'
  /** The trainer reported an error event. */
  | 'failed'
  /** The trainer process exited without a final event. */
  | 'crashed'
  /** The trainer process was killed after a stop request went unanswered. */
  | 'killed'
  /** Removed from the queue before it started. */
  | 'cancelled'
  /** The log ends mid-run and no process is running it (a reload, a machine restart, kill -9). */
  | 'interrupted';

/** What an event log alone can say. */
export type LogStatus = Extract<RunStatus, 'new' | 'running' | 'finished' | 'stopped' | 'failed'>;

const LIVE: ReadonlySet<RunStatus> = new Set(['starting', 'running', 'stopping']);
const ENDED: ReadonlySet<RunStatus> = new Set(['finished', 'stopped', 'failed']);

/** The log records how its last session ended (run-finished, stopped or error): no trainer will add to it. */
export const hasEnded = (s: LogStatus): s is Extract<LogStatus, 'finished' | 'stopped' | 'failed'> => ENDED.has(s);

/** A trainer process is working on the run now. */
export const isLive = (s: RunStatus): boolean => LIVE.has(s);

/** Nothing more will happen to the run without a new start (resume). */
export const isSettled = (s: RunStatus): boolean => s !== 'queued' && !LIVE.has(s);

/** States from which `resume` continues the run from its last checkpoint (or its start). */
export const RESUMABLE: ReadonlySet<RunStatus> = new Set([
  'new',
  'stopped',
  'failed',
  'crashed',
  'killed',
  'cancelled',
  'interrupted',
]);

/** The status of a run read from disk: a log still `running` with no live trainer was interrupted. */
export function settledStatus(log: LogStatus, live: boolean): RunStatus {
  return log === 'running' && !live ? 'interrupted' : log;
}
