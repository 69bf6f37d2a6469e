/**
 * The one place the command line turns bad input into exit code 2: any error of the input hierarchy
 * (src/protocol/errors.ts: config, model files, data files, arguments), and a backend request this machine
 * cannot meet. It prints the message (a usage error adds its command's usage); other errors are not its to
 * report, and the caller lets them fail the command (exit 1).
 */
import { InputError, UsageError } from '../protocol/errors';
import { BackendError } from '../engine/backend';

export const INPUT_ERROR_EXIT = 2;

/** Exit code 2 after printing `<prefix>: <message>` for input errors; undefined for anything else. */
export function inputFailure(e: unknown, prefix: string): number | undefined {
  if (!(e instanceof InputError || e instanceof BackendError)) return undefined;
  const usage = e instanceof UsageError && e.usage ? `\n\n${e.usage}` : '';
  console.error(`${prefix}: ${e.message}${usage}`);
  return INPUT_ERROR_EXIT;
}
