/**
 * Follows a growing events.jsonl: each `read()` returns the complete lines appended since the last call. Used
 * for trainers without an IPC channel to this host (started before a reload) and to pick up events written
 * just before a trainer exited, which IPC may not have delivered.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isEvent, type SculptEvent } from '../protocol/events';

export class EventTail {
  private partial = '';

  constructor(
    private readonly file: string,
    /** Byte offset to start from: 0 replays the whole log, the current size follows only what is new. */
    private offset = 0,
  ) {}

  static fromEnd(file: string): EventTail {
    return new EventTail(file, fileSize(file));
  }

  read(): SculptEvent[] {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return [];
    }
    let chunk: string;
    try {
      const size = fstatSync(fd).size;
      if (size < this.offset) {
        // Truncated or replaced: start over rather than read from the middle of a line.
        this.offset = 0;
        this.partial = '';
      }
      if (size === this.offset) return [];
      const buf = Buffer.alloc(size - this.offset);
      readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      chunk = buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    const out: SculptEvent[] = [];
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        const obj: unknown = JSON.parse(line);
        if (isEvent(obj)) out.push(obj);
      } catch {
        // A line broken by a crash mid-write: the trainer's readers skip it too.
      }
    }
    return out;
  }
}

function fileSize(file: string): number {
  try {
    const fd = openSync(file, 'r');
    try {
      return fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
  } catch {
    return 0;
  }
}
