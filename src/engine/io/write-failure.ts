/**
 * Writes of a run folder that fail: `WriteFailedError` names the file and keeps the file system's error (a full
 * disk's ENOSPC, an exhausted quota's EDQUOT, ...) as its cause, so that the trainer can say which file could not
 * be written and what to do. A test-only hook (`testWriteFault`) makes chosen writes fail as on a full disk.
 */

/** A write of `path` failed; `cause` is the file system's error. */
export class WriteFailedError extends Error {
  override readonly name: string = 'WriteFailedError';

  constructor(
    readonly path: string,
    /** What was being written, for the message: "append an event to", "write checkpoint". */
    readonly what: string,
    cause: unknown,
  ) {
    super(`could not ${what} ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }

  /** The file system's error code (`ENOSPC`, `EDQUOT`, `EACCES`, ...), from the first cause that has one. */
  get code(): string | undefined {
    for (let e: unknown = this.cause; e instanceof Error; e = e.cause) {
      const code = (e as NodeJS.ErrnoException).code;
      if (typeof code === 'string') return code;
    }
    return undefined;
  }

  /** Whether the write failed for want of space: a full disk or an exhausted quota. */
  get noSpace(): boolean {
    return this.code === 'ENOSPC' || this.code === 'EDQUOT';
  }
}

/** The error Node's fs throws when a write finds the disk full. */
export function noSpaceError(syscall = 'write'): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), {
    errno: -28,
    code: 'ENOSPC',
    syscall,
  });
}

/**
 * Test-only: `SCULPT_TEST_FAIL_WRITE=<target>@<n>` makes the n-th write of `target` fail as on a full disk, and
 * `<target>@<n>+` that write and every later one (a disk that stays full). Targets: `events` (an append to
 * events.jsonl: the first failing one writes half of its line, as a disk that fills up mid-write does) and
 * `checkpoint` (a checkpoint write, which fails after model.safetensors is written). Returns 0 for a write that
 * goes ahead, else how many writes of `target` have failed with this one (1 for the first); the site then throws
 * `noSpaceError()`. Never set outside tests.
 */
const writes = new Map<string, { seen: number; failed: number }>();
export function testWriteFault(target: 'events' | 'checkpoint'): number {
  const m = /^(\w+)@(\d+)(\+?)$/.exec(process.env.SCULPT_TEST_FAIL_WRITE ?? '');
  if (!m || m[1] !== target) return 0;
  const count = writes.get(target) ?? { seen: 0, failed: 0 };
  writes.set(target, count);
  count.seen++;
  const fail = m[3] ? count.seen >= Number(m[2]) : count.seen === Number(m[2]);
  return fail ? ++count.failed : 0;
}
