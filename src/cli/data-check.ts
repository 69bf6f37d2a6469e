/**
 * The task data of a config, read as a run reads it: file problems are issues at the task's JSON path, and
 * problems that do not stop a run (a test set that overlaps the training set) are printed as warnings.
 */
import * as path from 'node:path';
import { ConfigError, formatIssues, type ResolvedConfig } from '../protocol/config-validate';
import { loadTasks } from '../engine/experiment';

/** Loads every task of `config`; prints issues and warnings for `file`; false when a task cannot be loaded. */
export function checkTaskData(config: ResolvedConfig, file: string): boolean {
  const abs = path.resolve(file);
  try {
    // Every order holds the same tasks with the same subsets (drawn from the seed and the task name).
    loadTasks(config, 0, (message) => console.error(`${abs}: warning: ${message}`));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(formatIssues(e.issues, abs));
    return false;
  }
  return true;
}
