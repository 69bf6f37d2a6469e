/**
 * The task data of a config, read as a run reads it: file problems are issues at the task's JSON path, and
 * problems that do not stop a run (a test set that overlaps the training set) are printed as warnings.
 */
import * as path from 'node:path';
import { ConfigError, formatIssues, type ResolvedConfig } from '../protocol/config-validate';
import { InputError } from '../protocol/errors';
import { loadTasks, type RunTask } from '../engine/experiment';
import { checkRunInputs } from '../engine/run-inputs';
import type { Inventory } from '../engine/models/inventory';

/** Loads every task of `config`; prints issues and warnings for `file`; null when a task cannot be loaded. */
export function checkTaskData(config: ResolvedConfig, file: string): RunTask[] | null {
  const abs = path.resolve(file);
  try {
    // Every order holds the same tasks with the same subsets (drawn from the seed and the task name).
    return loadTasks(config, 0, (message) => console.error(`${abs}: warning: ${message}`));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(formatIssues(e.issues, abs));
    return null;
  }
}

/**
 * The checks a run makes with its tokenizer (engine/run-inputs.ts: the tokenizer found and fitting the model,
 * the data's unknown tokens, truncation and labels), for `validate` and for `run` before it creates anything.
 * Errors are printed as config issues of `file`, warnings through `warn`; false after an error.
 */
export function checkInputs(
  config: ResolvedConfig,
  file: string,
  tasks: RunTask[],
  inventory: Inventory,
  warn: (message: string) => void,
): boolean {
  const abs = path.resolve(file);
  try {
    checkRunInputs(config, tasks, inventory, warn);
    return true;
  } catch (e) {
    if (e instanceof ConfigError) console.error(formatIssues(e.issues, abs));
    else if (e instanceof InputError) console.error(`${abs}: tokenizer: ${e.message}\n  hint: ${e.hint}`);
    else throw e;
    return false;
  }
}
