/**
 * What the supervisor knows of a run (its record, which hosts read) and of one trainer session (from launch or
 * attach to the end, private to the supervisor), and the verdict on how a session ended.
 */
import type { ChildProcess } from 'node:child_process';
import type { ErrorEvent } from '../protocol/events';
import type { RunSummary } from '../runs/fold';
import type { RunStatus } from '../runs/status';
import type { TrainerChannel } from './channel';
import type { EventTail } from './event-tail';

export interface RunRecord {
  readonly dir: string;
  state: RunStatus;
  pid?: number;
  /** Started by an earlier host (a window before a reload): watched through its events.jsonl, stopped by signals. */
  attached: boolean;
  /** Runs in a stand-in for Node (see TrainerCommand.embedded). */
  embedded: boolean;
  /**
   * The fold of this session's events (src/runs/fold.ts): where training is, for progress displays, and how the
   * session's log ended. An attached run's starts from its whole log.
   */
  progress: RunSummary;
  /**
   * What the trainer last said it was doing before its first event (its `alive` notices, src/protocol/trainer.ts),
   * e.g. loading the model: shown while it is starting, and named if it is killed for saying nothing in time.
   */
  phase?: string;
  /** Why it ended as it did when that was not a clean finish or stop: what to tell the user. */
  problem?: string;
  /** The end of what this session wrote to trainer.log, when it failed, crashed or was killed. */
  logTail?: string;
  exitCode?: number | null;
  exitSignal?: string | null;
  startedAt?: number;
  endedAt?: number;
}

/** Why the supervisor killed a trainer: no first event in time, no stop in time, or the host said so. */
export type KillReason = 'timeout' | 'stop' | 'kill';

export interface Session {
  /** Only for a trainer this supervisor started (an attached one is not its child): its exit ends the session. */
  child?: ChildProcess;
  channel?: TrainerChannel;
  tail?: EventTail;
  /** Events up to this seq predate this session (a resumed run's history). */
  lastSeq: number;
  /** Where this session's output starts in trainer.log; 0 for an attached trainer. */
  logOffset: number;
  gotEvent: boolean;
  error?: ErrorEvent;
  killedFor?: KillReason;
  stopRequested: boolean;
  /** Whether a stray IPC message was already noted in trainer.log (once is enough to diagnose it). */
  strayNoted: boolean;
  timers: Set<NodeJS.Timeout>;
  /** The start-up deadline (one of `timers`): set at launch, moved on by each notice that the trainer is alive. */
  startup?: NodeJS.Timeout;
  poll?: NodeJS.Timeout;
  /** Followed logs without a pid: when the log last grew, how long it may stay quiet, and whether it did. */
  lastGrowth: number;
  quietMs: number;
  quiet: boolean;
  done: boolean;
}

export function newSession(lastSeq: number, logOffset = 0): Session {
  return {
    lastSeq,
    logOffset,
    gotEvent: false,
    stopRequested: false,
    strayNoted: false,
    timers: new Set(),
    lastGrowth: Date.now(),
    quietMs: Infinity,
    quiet: false,
    done: false,
  };
}

const seconds = (ms: number) => {
  const s = ms / 1000;
  return s < 10 ? s.toFixed(1) : String(Math.round(s));
};

/** How a session ended, from the events it delivered and what the supervisor did to it. */
export function judge(rec: RunRecord, s: Session, startupTimeoutMs: number): { state: RunStatus; problem?: string } {
  if (s.killedFor === 'timeout') {
    const t = seconds(startupTimeoutMs);
    return {
      state: 'crashed',
      problem: rec.phase
        ? `The trainer sent no event and was killed after ${t} s without word from it; the last it reported was: ${rec.phase}.`
        : `The trainer sent no event within ${t} s of starting and was killed.`,
    };
  }
  const logged = rec.progress.status;
  if (logged === 'finished' || logged === 'stopped') return { state: logged };
  if (logged === 'failed') {
    const e = s.error;
    return {
      state: 'failed',
      problem: e
        ? `${e.message}${e.where ? ` (${e.where})` : ''}${e.hint ? `\n${e.hint}` : ''}`
        : 'The trainer reported an error.',
    };
  }
  if (s.quiet)
    return {
      state: 'crashed',
      problem: `The log has not grown for ${Math.round(s.quietMs / 60_000)} min and no trainer of this machine is known to run it.`,
    };
  if (s.killedFor === 'kill')
    return {
      state: 'killed',
      problem: 'The trainer was killed on request; resume continues from its last checkpoint.',
    };
  if (s.killedFor === 'stop')
    return {
      state: 'killed',
      problem: 'The trainer did not stop when asked and was killed; Resume continues from its last checkpoint.',
    };
  const exit = rec.attached
    ? 'ended'
    : `exited (${rec.exitSignal ? `signal ${rec.exitSignal}` : `code ${rec.exitCode}`})`;
  return { state: 'crashed', problem: `The trainer ${exit} without finishing.` };
}
