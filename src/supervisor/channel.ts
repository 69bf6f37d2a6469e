/**
 * The IPC channel to one trainer, typed both ways (src/protocol/trainer.ts): what arrives is passed on only when
 * it is an event (`isEvent`) or a declared trainer message (`isTrainerMessage`: a notice that the trainer is
 * alive), so a confused or newer trainer cannot feed a host a malformed one; what is sent is a declared host
 * message, checked again at run time because hosts may build them from untyped input.
 */
import { isEvent, type SculptEvent } from '../protocol/events';
import { isHostMessage, isTrainerMessage, type AliveMessage, type HostMessage } from '../protocol/trainer';

/** The part of a ChildProcess the channel uses (a stand-in in tests). */
export interface IpcEnd {
  readonly connected: boolean;
  send(message: HostMessage): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

export interface ChannelHandlers {
  event(e: SculptEvent): void;
  /** The trainer says it is alive, before it has an event to send. */
  alive(m: AliveMessage): void;
  /** A message that is neither an event nor a trainer message: not passed on as either. */
  stray(message: unknown): void;
}

export class TrainerChannel {
  constructor(
    private readonly end: IpcEnd,
    handlers: ChannelHandlers,
  ) {
    end.on('message', (m) => {
      if (isEvent(m)) handlers.event(m);
      else if (isTrainerMessage(m)) handlers.alive(m);
      else handlers.stray(m);
    });
  }

  get connected(): boolean {
    return this.end.connected;
  }

  /** False when the message was not sent: not a host message, or the channel is closed (the trainer ended). */
  send(message: HostMessage): boolean {
    if (!isHostMessage(message) || !this.end.connected) return false;
    try {
      return this.end.send(message);
    } catch {
      // Closed between the check and the send: the trainer is ending, which its exit will tell.
      return false;
    }
  }
}
