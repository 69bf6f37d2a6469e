/**
 * Stamps events ({v, runId, seq, time}) and delivers them: appended to events.jsonl (one write per line, so
 * a crash leaves at most a truncated last line, which readers tolerate) and sent to the parent over IPC when
 * there is one. The log is the record; IPC is only for liveness.
 *
 * A truncated last line left by a crash is terminated before the first append, so that the next event starts a
 * line of its own: appended to the fragment, it would make one unreadable line and be lost with it. A failed append
 * (a full disk) may leave such a fragment too: it throws a WriteFailedError naming the file, and the next append
 * checks the tail again.
 */
import { appendFileSync, closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { WriteFailedError, noSpaceError, testWriteFault } from '../engine/io/write-failure';
import { EVENTS_VERSION, type EventBody, type SculptEvent } from '../protocol/events';

export class EventWriter {
  private seq: number;
  private checkedTail = false;

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
    const line = JSON.stringify(event) + '\n';
    try {
      if (!this.checkedTail) {
        if (endsMidLine(this.file)) appendFileSync(this.file, '\n');
        this.checkedTail = true;
      }
      // Test-only (SCULPT_TEST_FAIL_WRITE, see write-failure.ts): the disk fills up during this append.
      const fault = testWriteFault('events');
      if (fault) {
        if (fault === 1) appendFileSync(this.file, line.slice(0, line.length >> 1));
        throw noSpaceError();
      }
      appendFileSync(this.file, line);
    } catch (e) {
      this.checkedTail = false;
      throw new WriteFailedError(this.file, 'append an event to', e);
    }
    if (process.send && process.connected) process.send(event);
    this.echo?.(event);
    return event;
  }
}

/** Whether a non-empty file's last byte is not a newline. */
function endsMidLine(file: string): boolean {
  if (!existsSync(file)) return false;
  const size = statSync(file).size;
  if (size === 0) return false;
  const fd = openSync(file, 'r');
  try {
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}
