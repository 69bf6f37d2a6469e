/**
 * The channel between a host (the extension, the CLI) and a trainer process it started: an IPC channel of JSON
 * messages. Trainer -> host: the events of events.ts, checked with `isEvent` on arrival, and the trainer messages
 * declared here (`isTrainerMessage`), which are not events: they are never written to events.jsonl and say
 * nothing about the run, only about the process. Host -> trainer: the messages declared here, checked with
 * `isHostMessage` by the trainer, which ignores (with a note on its stderr) anything else, so that a newer host
 * never makes an older trainer misbehave.
 *
 * A trainer written in another language reads the same channel: Node passes its file descriptor in
 * NODE_CHANNEL_FD, one JSON object per line.
 */

/**
 * Finish the current step, write a checkpoint, send `stopped` and exit. Asking twice changes nothing; a host
 * that will not wait sends SIGTERM (see src/supervisor/).
 */
export interface StopMessage {
  type: 'stop';
}

export type HostMessage = StopMessage;

export type HostMessageType = HostMessage['type'];

export const HOST_MESSAGE_TYPES: readonly HostMessageType[] = ['stop'];

export function isHostMessage(m: unknown): m is HostMessage {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return false;
  const type = (m as { type?: unknown }).type;
  return typeof type === 'string' && (HOST_MESSAGE_TYPES as readonly string[]).includes(type);
}

/**
 * Trainer -> host: the trainer is alive, and is doing `phase` (e.g. "loading the model in the PyTorch worker").
 * Sent while it has no event to send yet: the host kills a trainer that says nothing for its start-up timeout
 * (120 s in the extension), and loading a large model can take longer than that before run-started. Each notice
 * gives the trainer another timeout from its arrival; after the first event, notices change nothing.
 */
export interface AliveMessage {
  type: 'alive';
  phase: string;
}

export type TrainerMessage = AliveMessage;

export function isTrainerMessage(m: unknown): m is TrainerMessage {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return false;
  const { type, phase } = m as { type?: unknown; phase?: unknown };
  return type === 'alive' && typeof phase === 'string';
}

/** A short, printable account of a message, for the notes that say it was ignored. */
export function describeMessage(m: unknown, max = 200): string {
  let text: string;
  try {
    text = JSON.stringify(m) ?? String(m);
  } catch {
    text = String(m);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
