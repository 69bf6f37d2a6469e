/**
 * The folders and files the command line is given or asked to write, checked so that a mistyped path is said
 * to be one: a run folder that does not exist is named as missing, not as a folder without config.json, and a
 * report that cannot be written names its path and why instead of a bare ENOENT.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Why `dir` cannot be a run or experiment folder before it is even read (missing, a file); undefined if a folder. */
export function folderProblem(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is a file, not a run folder or experiment folder`;
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `${dir} does not exist (give a run folder or an experiment folder)`;
    if (code === 'ENOTDIR') return `${dir} does not exist: a folder above it is a file`;
    return `${dir} cannot be read: ${(e as Error).message}`;
  }
}

/** A file the command was asked to write could not be; the message names the path and why. */
export class OutputFileError extends Error {
  override readonly name = 'OutputFileError';
}

const REASONS: Record<string, string> = {
  EISDIR: 'it is a folder',
  ENOTDIR: 'a folder above it is a file',
  EEXIST: 'a folder above it is a file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
};

/**
 * Writes `text` to `file`, creating the folders above it as `--out` users expect of a report path (as a run's
 * `output` folder is created); throws an OutputFileError naming the file when it cannot.
 */
export function writeOutputFile(file: string, text: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined) throw e;
    throw new OutputFileError(`cannot write ${file}: ${REASONS[code] ?? (e as Error).message}`);
  }
}
