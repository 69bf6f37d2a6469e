/**
 * The config that New Experiment writes: a whole builtin suite in its published order (CL-5, the demo's, or
 * CL-15), a quick tiny experiment, chosen builtin tasks or the user's JSON Lines files as the task sequence,
 * compared under plain sequential fine-tuning (the lower bound) and adaptive SVD.
 */
import * as path from 'node:path';
import type { ExperimentConfig, TaskConfig } from '../protocol/config';
import { readJsonl } from '../data/examples';
import { builtinModelInfo, builtinTaskInfo, modelFolderInfo, type BuiltinSuite } from '../runs/builtin/catalog';
import { describeDuration, estimateDuration, type Estimate, type TaskSize } from '../runs/estimate';

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
    methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', ratio: 0.5 } }],
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

/** The ready-made experiments New Experiment offers beside a choice of tasks. */
export type Preset = 'cl5' | 'cl15' | 'tiny';

/**
 * Training examples per task in the CL-5 demo (examples/demo.sculpt.json): sizes at which every task is learned
 * within about 8 minutes on 2 cores at 8 epochs (README, "The demo"). A task not listed trains on all its examples.
 */
export const DEMO_TRAIN_LIMITS: Record<string, number> = {
  'cl5/software': 120,
  'cl5/spam': 360,
  'cl5/concept': 160,
  'cl5/genre': 280,
};

/**
 * A preset's config. `cl5` is the demo: CL-5 in its published order with the demo's sizes and settings on
 * sculpt-base, 3 seeds, plus the default validation split (the demo selects nothing and holds none out); `cl15`
 * is the whole CL-15 suite in its published order with the same settings, one seed; `tiny` is the tiny model on
 * two tiny tasks, done in about a minute. Undefined when the assets lack the suite.
 */
export function presetConfig(preset: Preset, name: string, suites: BuiltinSuite[]): ExperimentConfig | undefined {
  if (preset === 'tiny') {
    return {
      name,
      model: 'builtin:tiny-llama',
      tasks: builtinTaskConfigs(['tiny/sentiment', 'tiny/topic']),
      methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', ratio: 0.5 } }],
      training: { epochs: 15, batchSize: 16, lr: 0.02, maxSeqLen: 16, stepEventInterval: 5 },
      eval: { modes: ['rank'] },
      output: 'runs',
    };
  }
  const suite = suites.find((s) => s.id === preset);
  if (!suite) return undefined;
  const tasks = builtinTaskConfigs(suite.tasks).map((t, i) => {
    const limit = preset === 'cl5' ? DEMO_TRAIN_LIMITS[suite.tasks[i]] : undefined;
    return { ...t, ...(limit ? { trainLimit: limit } : {}), testLimit: 100 };
  });
  return {
    name,
    ...(preset === 'cl5' ? { seeds: 3 } : {}),
    model: 'builtin:sculpt-base',
    tasks,
    methods: [{ method: 'seqft' }, { method: 'adaptive-svd' }],
    training: { epochs: 8, batchSize: 8, lr: 0.0003, maxSeqLen: 64, stepEventInterval: 10 },
    eval: { modes: ['rank'] },
    output: 'runs',
  };
}

export function configText(config: ExperimentConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}

/** A task's size from the builtin catalog or its data files (relative to `dir`); undefined when unreadable. */
function taskSize(t: TaskConfig, dir: string): TaskSize | undefined {
  const s = t.source;
  if ('builtin' in s) return builtinTaskInfo(s.builtin);
  if (!('train' in s)) return undefined;
  try {
    const abs = (p: string) => (path.isAbsolute(p) ? p : path.resolve(dir, p));
    const train = readJsonl(abs(s.train));
    const test = readJsonl(abs(s.test));
    const chars = train.reduce((n, e) => n + (e.instruction?.length ?? 0) + e.input.length, 0);
    return { train: train.length, test: test.length, inputChars: train.length ? chars / train.length : 0 };
  } catch {
    return undefined;
  }
}

/** The rough duration of `config` (written in `dir`) with `jobs` trainers at once, and how to say it. */
export function estimateConfig(config: ExperimentConfig, dir: string, jobs: number): Estimate & { text: string } {
  const model = config.model.startsWith('builtin:')
    ? builtinModelInfo(config.model.slice('builtin:'.length))
    : modelFolderInfo(path.isAbsolute(config.model) ? config.model : path.resolve(dir, config.model));
  const e = estimateDuration({
    config,
    sizes: config.tasks.map((t) => taskSize(t, dir)),
    parameters: model?.parameters,
    baseParameters: builtinModelInfo('sculpt-base')?.parameters,
    jobs,
  });
  const atOnce = Math.min(jobs, e.runs);
  return {
    ...e,
    text: `rough estimate: ${describeDuration(e.seconds)} (${e.grid}, ${atOnce} at a time, on the wasm engine of a 2-core machine)`,
  };
}
