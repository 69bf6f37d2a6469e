/**
 * Builtin models and tasks: `builtin:<model>` resolves to a checkpoint folder under assets/models/, and
 * `{"builtin": "<task>"}` to a generated tiny task or a task folder under assets/data/ (train.jsonl, test.jsonl).
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TaskSplit } from '../../data/examples';
import { readJsonl } from '../../data/examples';
import { closestBuiltin } from './names';
import { TINY_TASK_IDS, tinyTask } from './tiny-tasks';

/** The assets folder: SCULPT_ASSETS, else the nearest `assets/` above the running bundle. */
export function assetsDir(): string {
  if (process.env.SCULPT_ASSETS) return process.env.SCULPT_ASSETS;
  let dir = __dirname;
  for (;;) {
    const candidate = join(dir, 'assets');
    if (existsSync(join(candidate, 'models'))) return candidate;
    const up = dirname(dir);
    if (up === dir)
      throw new Error(`the assets folder (assets/models) was not found above ${__dirname}; set SCULPT_ASSETS`);
    dir = up;
  }
}

export function builtinModels(): string[] {
  const root = join(assetsDir(), 'models');
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'config.json')))
    .map((d) => d.name)
    .sort();
}

/** Checkpoint folder of `builtin:<name>`; the error lists what exists. */
export function builtinModelDir(ref: string): string {
  const name = ref.replace(/^builtin:/, '');
  const dir = join(assetsDir(), 'models', name);
  if (!existsSync(join(dir, 'config.json'))) {
    const known = builtinModels();
    const near = closestBuiltin(name, known);
    throw new Error(
      `unknown builtin model '${name}'${near ? ` (did you mean '${near}'?)` : ''}; builtin models: ${known.join(', ') || '(none)'}`,
    );
  }
  return dir;
}

function dataTaskIds(): string[] {
  const root = join(assetsDir(), 'data');
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const suite of readdirSync(root, { withFileTypes: true })) {
    if (!suite.isDirectory()) continue;
    for (const task of readdirSync(join(root, suite.name), { withFileTypes: true })) {
      if (task.isDirectory() && existsSync(join(root, suite.name, task.name, 'train.jsonl')))
        out.push(`${suite.name}/${task.name}`);
    }
  }
  return out.sort();
}

export function builtinTasks(): string[] {
  return [...TINY_TASK_IDS, ...dataTaskIds()];
}

export function builtinTask(id: string): TaskSplit {
  const tiny = tinyTask(id);
  if (tiny) return tiny;
  const dir = join(assetsDir(), 'data', id);
  if (!existsSync(join(dir, 'train.jsonl'))) {
    const known = builtinTasks();
    const near = closestBuiltin(id, known);
    throw new Error(
      `unknown builtin task '${id}'${near ? ` (did you mean '${near}'?)` : ''}; builtin tasks: ${known.join(', ')}`,
    );
  }
  return { train: readJsonl(join(dir, 'train.jsonl')), test: readJsonl(join(dir, 'test.jsonl')) };
}
