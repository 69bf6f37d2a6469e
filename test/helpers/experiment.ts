/**
 * The experiment configs the tests run: the builtin tiny Llama on builtin tiny tasks, small enough to train in
 * seconds on the wasm backend. Every test that needs a config starts from `tinyExperiment` and overrides what
 * it is about, so a change to the config format is made here once.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExperimentConfig, TaskConfig, TrainingConfig } from '../../src/protocol/config';

/** The builtin tiny data sets the tiny experiment trains on, in order. */
export const TINY_TASKS = ['sentiment', 'topic'];

/** Builtin task `tiny/<dataset>`, named `name` in the experiment (by default the data set's name). */
export function tinyTask(
  dataset: string,
  name = dataset,
  extra: Omit<Partial<TaskConfig>, 'name' | 'source'> = {},
): TaskConfig {
  return { name, source: { builtin: `tiny/${dataset}` }, ...extra };
}

/** One builtin tiny task per data set, each with `extra` (limits, labels, template). */
export function tinyTasks(
  datasets: string[] = TINY_TASKS,
  extra: Omit<Partial<TaskConfig>, 'name' | 'source'> = {},
): TaskConfig[] {
  return datasets.map((d) => tinyTask(d, d, extra));
}

/** A few large steps per task, a step event after each: enough for the loss to move and the events to show it. */
export function tinyTraining(overrides: TrainingConfig = {}): TrainingConfig {
  return { epochs: 2, batchSize: 16, lr: 0.01, maxSeqLen: 16, stepEventInterval: 1, ...overrides };
}

/**
 * The tiny experiment: `builtin:tiny-llama` on wasm, tasks sentiment then topic, seqft, `tinyTraining()`.
 * `overrides` replace whole top-level fields (`training: tinyTraining({ epochs: 1 })` changes one setting); a
 * field set to `undefined` is removed, so the config's default applies (`backend: undefined` is `auto`).
 */
export function tinyExperiment(overrides: Partial<ExperimentConfig> = {}): ExperimentConfig {
  const config: ExperimentConfig = {
    name: 'tiny',
    model: 'builtin:tiny-llama',
    backend: 'wasm',
    tasks: tinyTasks(),
    methods: [{ method: 'seqft' }],
    training: tinyTraining(),
    ...overrides,
  };
  // The validator treats a present key as given, so an undefined value would not get its default.
  for (const key of Object.keys(config) as (keyof ExperimentConfig)[]) {
    if (config[key] === undefined) delete config[key];
  }
  return config;
}

/** Writes `config` as JSON to `<dir>/<file>` (by default `<name>.sculpt.json`) and returns that path. */
export function writeExperiment(dir: string, config: ExperimentConfig, file = `${config.name}.sculpt.json`): string {
  const path = join(dir, file);
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}
