/**
 * The config that New Experiment writes: the builtin benchmark or the user's JSON Lines files as the task
 * sequence, compared under plain sequential fine-tuning (the lower bound) and adaptive SVD.
 */
import * as path from 'node:path';
import type { ExperimentConfig, TaskConfig } from '../protocol/config';

export interface TemplateInput {
  name: string;
  model: string;
  tasks: TaskConfig[];
  /** Small settings for the tiny builtin model, the documented defaults otherwise. */
  tiny: boolean;
}

/** A task name that the config's pattern accepts. */
export function taskName(raw: string): string {
  const s = raw.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '');
  return s || 'task';
}

/** File name for an experiment name: `<name>.sculpt.json`. */
export function configFileName(name: string): string {
  return `${taskName(name)}.sculpt.json`;
}

/**
 * The benchmark sequence from the builtin tasks: the shipped benchmark suite when the assets hold one (tasks
 * `<suite>/<task>` other than the generated `tiny/` ones), else the tiny tasks.
 */
export function builtinBenchmark(ids: string[]): string[] {
  const suites = [...new Set(ids.filter((id) => !id.startsWith('tiny/')).map((id) => id.split('/')[0]))].sort();
  if (suites.length > 0) return ids.filter((id) => id.startsWith(`${suites[0]}/`));
  return ids.filter((id) => id.startsWith('tiny/'));
}

export function builtinTaskConfigs(ids: string[]): TaskConfig[] {
  const names = new Set<string>();
  return ids.map((id) => {
    let name = taskName(id.split('/').pop() ?? id);
    for (let i = 2; names.has(name); i++) name = `${taskName(id.split('/').pop() ?? id)}-${i}`;
    names.add(name);
    return { name, source: { builtin: id } };
  });
}

/**
 * Tasks from data files (paths relative to the config): a file whose name contains `train` pairs with the same
 * name with `test` when that file is among them; a file without a partner is used for both, to be edited.
 */
export function fileTaskConfigs(files: string[]): TaskConfig[] {
  const set = new Set(files);
  const used = new Set<string>();
  const tasks: TaskConfig[] = [];
  const names = new Set<string>();
  for (const f of files) {
    if (used.has(f)) continue;
    const base = path.posix.basename(f);
    const partner = base.includes('train')
      ? path.posix.join(path.posix.dirname(f), base.replace('train', 'test'))
      : undefined;
    const train = f;
    const test = partner && set.has(partner) ? partner : f;
    used.add(train).add(test);
    const stem =
      base.replace(/\.(jsonl|json)$/i, '').replace(/[._-]?train[._-]?/i, '') ||
      path.posix.basename(path.posix.dirname(f));
    let name = taskName(stem);
    for (let i = 2; names.has(name); i++) name = `${taskName(stem)}-${i}`;
    names.add(name);
    tasks.push({ name, source: { train: rel(train), test: rel(test) } });
  }
  return tasks;
}

const rel = (p: string) => (p.startsWith('.') || path.isAbsolute(p) ? p : `./${p}`);

export function experimentConfig(t: TemplateInput): ExperimentConfig {
  return {
    name: t.name,
    seed: 0,
    model: t.model,
    backend: 'auto',
    tasks: t.tasks,
    methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'adaptive', mrr: 0.1, trr: 0.8 } }],
    training: t.tiny
      ? { epochs: 20, batchSize: 16, lr: 0.005, maxSeqLen: 16 }
      : { epochs: 3, batchSize: 16, lr: 0.0003 },
    eval: { modes: ['rank'], zeroShot: true },
    output: 'runs',
  };
}

export function experimentText(t: TemplateInput): string {
  return JSON.stringify(experimentConfig(t), null, 2) + '\n';
}
