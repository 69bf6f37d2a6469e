/**
 * Notices that the trainer is alive (`alive`, src/protocol/trainer.ts) for the time before its first event: the
 * host kills a trainer that says nothing for its start-up timeout (120 s in the extension), and the first event
 * waits for the model to load (in the PyTorch engine's worker, or in this process for the tfjs engine) and the
 * data to be tokenized, which for a large checkpoint or dataset takes longer. Notices
 * go over the trainer's IPC channel only: without one (the CLI's runs, which have no start-up timeout, and tests)
 * nobody is waiting for them. They are not events and never reach events.jsonl.
 */
import type { AliveMessage } from '../protocol/trainer';

/**
 * How often a notice is repeated: a quarter of the extension's start-up timeout, so that a notice delayed by a
 * busy trainer (a synchronous probe, data preparation) still arrives in time.
 */
export const ALIVE_INTERVAL_MS = 30_000;

export type SendAlive = (m: AliveMessage) => void;

/** Where the notices before a run's first event go (tests); by default the trainer's IPC channel, every 30 s. */
export interface AliveNotices {
  send?: SendAlive;
  intervalMs?: number;
}

/** The part of `process` that notices go through (a stand-in in tests). */
export interface IpcProcess {
  send?: NodeJS.Process['send'];
  readonly connected: boolean;
}

/** Sends notices to the host over this process's IPC channel; undefined when it has none. */
export function ipcSendAlive(proc: IpcProcess = process): SendAlive | undefined {
  if (!proc.send) return undefined;
  return (m) => {
    if (!proc.connected) return;
    try {
      // With a callback, a channel that closes meanwhile is reported to it rather than as an 'error' event on
      // the process, which would end the trainer over a notice that only mattered to a host now gone.
      proc.send?.(m, undefined, undefined, () => {});
    } catch {
      // As above: a notice is worth nothing once the host cannot hear it.
    }
  };
}

export interface Heartbeat {
  /** Says what the trainer does now: sent at once, and in the notices that follow. Nothing once stopped. */
  phase(phase: string): void;
  /** No more notices (the first event is on its way, or the work ended); stopping twice is harmless. */
  stop(): void;
  readonly stopped: boolean;
}

/**
 * Sends `{type: 'alive', phase}` now and every `intervalMs` until stopped. Without `send` (no IPC channel) it
 * sends nothing and sets no timer. Its timer never keeps the process alive on its own.
 */
export function startHeartbeat(
  send: SendAlive | undefined,
  phase: string,
  intervalMs: number = ALIVE_INTERVAL_MS,
): Heartbeat {
  if (!send) return { phase: () => {}, stop: () => {}, stopped: true };
  let current = phase;
  const say = () => send({ type: 'alive', phase: current });
  let timer: NodeJS.Timeout | undefined = setInterval(say, intervalMs);
  timer.unref();
  say();
  return {
    phase(p: string) {
      if (!timer) return;
      current = p;
      say();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
    get stopped() {
      return timer === undefined;
    },
  };
}
