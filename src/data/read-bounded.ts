/**
 * Reading a file a user named (a config, a task's data) without trusting what it is: only a regular file is
 * read (the type is taken from the opened descriptor, so a FIFO, a device such as /dev/zero or a folder is
 * refused before a byte is read, and opening a FIFO does not wait for a writer), and only up to a size limit.
 * The text must be UTF-8; invalid bytes are an error naming the line, never silently replaced.
 *
 * Limits, in bytes (a plain number, or with a K, M or G suffix: `SCULPT_MAX_DATA_BYTES=2G`):
 *   SCULPT_MAX_CONFIG_BYTES  experiment configs, default 10 MB
 *   SCULPT_MAX_DATA_BYTES    task data files, default 256 MB (a JavaScript string holds at most ~512 MB)
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

export const DEFAULT_MAX_CONFIG_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_DATA_BYTES = 256 * 1024 * 1024;
export const CONFIG_LIMIT_ENV = 'SCULPT_MAX_CONFIG_BYTES';
export const DATA_LIMIT_ENV = 'SCULPT_MAX_DATA_BYTES';

export type FileReadProblem = 'missing' | 'not-a-file' | 'too-large' | 'unreadable' | 'not-utf8' | 'bad-limit';

/** A file cannot be read as asked; the message names the file and says what to do. */
export class FileReadError extends Error {
  override readonly name = 'FileReadError';

  constructor(
    message: string,
    readonly file: string,
    readonly problem: FileReadProblem,
    /** 1-based line, for text that is not UTF-8. */
    readonly line?: number,
  ) {
    super(message);
  }
}

export interface BoundedReadOptions {
  /** What the file is, for messages: "config file", "data file". */
  what: string;
  /** Largest size read, in bytes. */
  maxBytes: number;
  /** The environment variable that sets the limit, named in the message when the file is larger. */
  limitEnv?: string;
}

/** The limit set by `env` (bytes, or with a K/M/G suffix), else `fallback`. */
export function byteLimit(env: string, fallback: number): number {
  const raw = process.env[env]?.trim();
  if (!raw) return fallback;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i.exec(raw);
  const n = m ? Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  if (!Number.isFinite(n) || n < 1)
    throw new FileReadError(
      `${env}=${raw} is not a size; give bytes, e.g. ${env}=500000000 or ${env}=500M`,
      env,
      'bad-limit',
    );
  return Math.floor(n);
}

export const configByteLimit = (): number => byteLimit(CONFIG_LIMIT_ENV, DEFAULT_MAX_CONFIG_BYTES);
export const dataByteLimit = (): number => byteLimit(DATA_LIMIT_ENV, DEFAULT_MAX_DATA_BYTES);

function size(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(bytes % (1024 * 1024) ? 1 : 0)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(bytes % 1024 ? 1 : 0)} KB`;
  return `${bytes} bytes`;
}

function kind(st: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The bytes of a regular file of at most `maxBytes`. */
export function readBoundedBytes(file: string, opts: BoundedReadOptions): Buffer {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; no effect on regular files.
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FileReadError(`${opts.what} not found: ${file}`, file, 'missing');
    const reason =
      code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : String(code);
    throw new FileReadError(
      `${opts.what} ${file} cannot be opened (${reason}); check the path and its permissions`,
      file,
      code === 'EISDIR' ? 'not-a-file' : 'unreadable',
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new FileReadError(
        `${opts.what} ${file} is ${kind(st)}, not a regular file; point it at a file`,
        file,
        'not-a-file',
      );
    }
    const tooLarge = (n: string) =>
      new FileReadError(
        `${opts.what} ${file} is ${n}, over the limit of ${size(opts.maxBytes)}; use a smaller file` +
          (opts.limitEnv ? ` or raise the limit with ${opts.limitEnv} (bytes, e.g. ${opts.limitEnv}=2G)` : ''),
        file,
        'too-large',
      );
    if (st.size > opts.maxBytes) throw tooLarge(size(st.size));
    // Read at most one byte past the limit: a file growing while it is read is caught too.
    const buf = Buffer.allocUnsafe(Math.min(st.size, opts.maxBytes) + 1);
    let got = 0;
    for (;;) {
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
      if (got === buf.length) {
        if (got > opts.maxBytes) throw tooLarge(`larger than ${size(opts.maxBytes)}`);
        break;
      }
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** The text of a regular UTF-8 file of at most `maxBytes` (a leading byte order mark is dropped). */
export function readBoundedText(file: string, opts: BoundedReadOptions): string {
  return decodeUtf8(readBoundedBytes(file, opts), file, opts.what);
}

/** An experiment config's text: a regular UTF-8 file of at most SCULPT_MAX_CONFIG_BYTES (not a FIFO, device or folder). */
export function readConfigText(file: string): string {
  return readBoundedText(file, { what: 'config file', maxBytes: configByteLimit(), limitEnv: CONFIG_LIMIT_ENV });
}

/** UTF-8 text, or an error naming the first line that is not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array, file: string, what = 'file'): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    if (!(e instanceof TypeError)) {
      throw new FileReadError(
        `${what} ${file} is too large to hold as text (${(e as Error).message}); use a smaller file`,
        file,
        'too-large',
      );
    }
    const at = firstInvalidLine(bytes);
    throw new FileReadError(
      `${file}:${at.line}: ${what} is not valid UTF-8 (byte ${at.column} of the line); save it as UTF-8`,
      file,
      'not-utf8',
      at.line,
    );
  }
}

/** The 1-based line and byte column of the first invalid UTF-8 sequence. */
function firstInvalidLine(bytes: Uint8Array): { line: number; column: number } {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (let line = 1; ; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const chunk = bytes.subarray(start, end);
    try {
      decoder.decode(chunk);
    } catch {
      // The longest valid prefix ends where the bad byte is.
      let lo = 0;
      let hi = chunk.length;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(chunk.subarray(0, mid), { stream: true });
          lo = mid;
        } catch {
          hi = mid - 1;
        }
      }
      return { line, column: lo + 1 };
    }
    if (end >= bytes.length) return { line, column: 1 };
    start = end + 1;
  }
}
