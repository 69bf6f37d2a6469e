/**
 * One trainer session of the run manager (from launch or attach to the end) and the verdict on how it ended.
 */
import type { ChildProcess } from 'node:child_process';
import type { ErrorEvent } from '../protocol/events';
import type { EventTail } from './event-tail';
import type { LogOutcome } from './run-folder';
import type { RunRecord, RunState } from './run-manager';

export interface Session {
  child?: ChildProcess;
  tail?: EventTail;
  /** Events up to this seq predate this session (a resumed run's history). */
  lastSeq: number;
  gotEvent: boolean;
  outcome: LogOutcome;
  error?: ErrorEvent;
  killedFor?: 'timeout' | 'stop';
  stopRequested: boolean;
  timers: Set<NodeJS.Timeout>;
  poll?: NodeJS.Timeout;
  /** Followed logs without a pid: when the log last grew, how long it may stay quiet, and whether it did. */
  lastGrowth: number;
  quietMs: number;
  quiet: boolean;
  done: boolean;
}

export function newSession(lastSeq: number): Session {
  return { lastSeq, gotEvent: false, outcome: undefined, stopRequested: false, timers: new Set(), lastGrowth: Date.now(), quietMs: Infinity, quiet: false, done: false };
}

/** How a session ended, from the events it delivered and what the manager did to it. */
export function judge(rec: RunRecord, s: Session, startupTimeoutMs: number): { state: RunState; problem?: string } {
  if (s.killedFor === 'timeout') {
    const secs = startupTimeoutMs / 1000;
    return { state: 'crashed', problem: `The trainer sent no event within ${secs < 10 ? secs.toFixed(1) : Math.round(secs)} s of starting and was killed.` };
  }
  if (s.outcome === 'finished' || s.outcome === 'stopped') return { state: s.outcome };
  if (s.outcome === 'failed') {
    const e = s.error;
    return { state: 'failed', problem: e ? `${e.message}${e.where ? ` (${e.where})` : ''}${e.hint ? `\n${e.hint}` : ''}` : 'The trainer reported an error.' };
  }
  if (s.quiet) return { state: 'crashed', problem: `The log has not grown for ${Math.round(s.quietMs / 60_000)} min and no trainer of this machine is known to run it.` };
  if (s.killedFor === 'stop') return { state: 'killed', problem: 'The trainer did not stop when asked and was killed; Resume continues from its last checkpoint.' };
  const exit = rec.attached ? 'ended' : `exited (${rec.exitSignal ? `signal ${rec.exitSignal}` : `code ${rec.exitCode}`})`;
  return { state: 'crashed', problem: `The trainer ${exit} without finishing.` };
}
