/**
 * The folder run folders go into (a config's `output`, or `--out`): checked before anything is written, and
 * file-system errors while a run folder is created turned into messages that name the path and say what to do.
 * Files of a new run folder are written to a temporary name and renamed, so none is ever left half-written.
 */
import { accessSync, constants, lstatSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';

/** A run folder could not be created; the message names the path and what to do. */
export class RunFolderError extends Error {
  override readonly name = 'RunFolderError';

  constructor(
    message: string,
    readonly path: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

const FIX = 'set `output` in the config (or pass --out) to a folder you can write to';

/** Kernel file systems: writing there never makes a run folder (and may not fail cleanly). */
const PSEUDO_ROOTS = ['/proc', '/sys'];

function under(p: string, root: string): boolean {
  return p === root || p.startsWith(root + sep);
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why run folders cannot go into `dir`, or undefined when they can: it must be a folder (or be creatable in
 * the nearest existing folder above it), writable, and not under /proc or /sys.
 */
export function outputDirProblem(dir: string): string | undefined {
  const abs = resolve(dir);
  let existing = abs;
  while (!exists(existing) && dirname(existing) !== existing) existing = dirname(existing);
  let real = existing;
  try {
    real = realpathSync(existing);
  } catch {
    // A dangling link: stat below reports it.
  }
  const pseudo = PSEUDO_ROOTS.find((r) => under(abs, r) || under(real, r));
  if (pseudo)
    return `output folder ${abs} is under ${pseudo}, a kernel file system, not a place for run folders; ${FIX}`;
  let st;
  try {
    st = statSync(existing);
  } catch (e) {
    return `output folder ${abs}: ${existing} cannot be used (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ${FIX}`;
  }
  if (!st.isDirectory()) {
    const what = st.isFile() ? 'a file' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a folder';
    return existing === abs
      ? `output folder ${abs} is ${what}, not a folder; ${FIX}`
      : `output folder ${abs} cannot be created: ${existing} is ${what}, not a folder; ${FIX}`;
  }
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EROFS' ? 'is on a read-only file system' : 'is not writable';
    return existing === abs
      ? `output folder ${abs} ${why}; ${FIX}`
      : `output folder ${abs} cannot be created: ${existing} ${why}; ${FIX}`;
  }
  return undefined;
}

/** A file-system error while creating `path`, as a message that names it and says what to do. */
export function describeFsError(e: unknown, path: string): RunFolderError {
  const err = e as NodeJS.ErrnoException;
  const code = err?.code;
  const at = err?.path ?? path;
  const text: Record<string, string> = {
    ENOSPC: `no space left on the device holding ${at}; free some space, or ${FIX} on another disk`,
    EDQUOT: `the disk quota is exhausted for ${at}; free some space, or ${FIX} on another disk`,
    EEXIST: `${at} already exists and is not a folder; remove or rename it, or ${FIX}`,
    ENOTDIR: `a part of ${at} is a file, not a folder; ${FIX}`,
    EACCES: `no permission to write ${at}; ${FIX}`,
    EPERM: `no permission to write ${at}; ${FIX}`,
    EROFS: `${at} is on a read-only file system; ${FIX}`,
    ENAMETOOLONG: `the path ${at} is too long; ${FIX} with a shorter path`,
  };
  const detail = (code && text[code]) ?? `${at}: ${err instanceof Error ? err.message : String(e)}; ${FIX}`;
  return new RunFolderError(`cannot create the run folder ${path}: ${detail}`, path, code);
}

/** Writes `text` to a temporary file beside `file` and renames it into place. */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
