/**
 * Stamps events ({v, runId, seq, time}) and delivers them: appended to events.jsonl (one write per line, so
 * a crash leaves at most a truncated last line, which readers tolerate) and sent to the parent over IPC when
 * there is one. The log is the record; IPC is only for liveness.
 */
import { appendFileSync } from 'node:fs';
import { EVENTS_VERSION, type EventBody, type SculptEvent } from '../protocol/events';

export class EventWriter {
  private seq: number;

  constructor(
    private readonly file: string,
    private readonly runId: string,
    lastSeq: number,
    private readonly echo?: (e: SculptEvent) => void,
  ) {
    this.seq = lastSeq;
  }

  get lastSeq(): number {
    return this.seq;
  }

  emit(body: EventBody): SculptEvent {
    const event = { v: EVENTS_VERSION, runId: this.runId, seq: ++this.seq, time: Date.now(), ...body } as SculptEvent;
    appendFileSync(this.file, JSON.stringify(event) + '\n');
    if (process.send && process.connected) process.send(event);
    this.echo?.(event);
    return event;
  }
}
