/**
 * Loading what a run needs from a resolved config: the tasks (in the run's order, limits applied, label sets
 * fixed) and the model with its tokenizer. Errors name the config path of the task or model at fault.
 */
import type { ResolvedConfig, ResolvedTask } from '../protocol/config-resolved';
import { ConfigError } from '../protocol/errors';
import { labelSet, readJsonl, readOLoraFolder, readTraceFolder, type Example } from '../data/examples';
import { Rng, hashString } from '../data/rng';
import { balancedSubset } from './data/batches';
import { builtinModelDir, builtinTask } from '../runs/builtin';

export interface RunTask {
  /** Position in this run's order. */
  index: number;
  /** Index in config.tasks (for JSON paths). */
  configIndex: number;
  name: string;
  train: Example[];
  test: Example[];
  labels: string[];
  template: string;
}

/** Task indices (into config.tasks) for order `order` (0 = the tasks as listed, i >= 1 = orders[i-1]). */
export function taskOrder(config: ResolvedConfig, order: number): number[] {
  if (order === 0) return config.tasks.map((_, i) => i);
  const names = config.orders?.[order - 1];
  if (!names)
    throw new ConfigError([
      {
        path: 'orders',
        message: `has no order ${order} (orders are 1..${(config.orders?.length ?? 0) + 1})`,
        expected: 'an existing order',
      },
    ]);
  return names.map((n) => config.tasks.findIndex((t) => t.name === n));
}

function loadSplit(t: ResolvedTask, path: string): { train: Example[]; test: Example[]; labels?: string[] } {
  const s = t.source;
  try {
    if ('builtin' in s) return builtinTask(s.builtin);
    if ('train' in s) return { train: readJsonl(s.train), test: readJsonl(s.test) };
    return s.format === 'olora' ? readOLoraFolder(s.folder) : readTraceFolder(s.folder);
  } catch (e) {
    throw new ConfigError([{ path: `${path}.source`, message: (e as Error).message, expected: 'readable task data' }]);
  }
}

/** A warning about a task's data: the run goes on, the `warning` event (or `sculpt validate`) says it. */
export type DataWarn = (message: string, code: string) => void;

/** The text an example is recognised by: instruction and input, not the output. */
const exampleKey = (e: Example) => `${e.instruction ?? ''}\u0000${e.input}`;

/**
 * Test examples whose input (with its instruction) is also a training input: their accuracy measures what
 * was memorised, not what was learned. Reported, not removed: the data is the user's.
 */
function overlapWarning(t: ResolvedTask, train: Example[], test: Example[], warn: DataWarn): void {
  const s = t.source;
  if ('train' in s && s.train === s.test) {
    warn(
      `task '${t.name}': train and test are the same file (${s.train}); every test example is a training example, so its accuracy measures memorisation. Give the task a separate test file.`,
      'data-overlap',
    );
    return;
  }
  const seen = new Set(train.map(exampleKey));
  const shared = test.filter((e) => seen.has(exampleKey(e))).length;
  if (shared === 0) return;
  const all = shared === test.length && test.length === train.length;
  warn(
    all
      ? `task '${t.name}': the train and test data hold the same ${test.length} examples, so test accuracy measures memorisation. Give the task a separate test set.`
      : `task '${t.name}': ${shared} of ${test.length} test examples have an input that is also in the training data; their accuracy measures memorisation. Remove them from one of the two sets.`,
    'data-overlap',
  );
}

/**
 * The tasks of one order, loaded and checked. Problems with the data that do not stop a run (train/test
 * overlap) go to `warn`.
 */
export function loadTasks(config: ResolvedConfig, order: number, warn?: DataWarn): RunTask[] {
  return taskOrder(config, order).map((ci, index) => {
    const t = config.tasks[ci];
    const path = `tasks[${ci}]`;
    const split = loadSplit(t, path);
    // Limits draw from a seed of the experiment and the task name, so every method sees the same subset.
    const rng = new Rng(config.seed ^ hashString(t.name));
    const train = balancedSubset(split.train, t.trainLimit, rng);
    const test = balancedSubset(split.test, t.testLimit, rng);
    const labels = labelSet(train, t.labels ?? split.labels);
    if (train.length === 0 || test.length === 0) {
      throw new ConfigError([
        {
          path: `${path}.source`,
          message: `task '${t.name}' has ${train.length} training and ${test.length} test examples; both must be non-empty`,
          expected: 'examples',
        },
      ]);
    }
    if (labels.length < 2 && config.eval.modes.includes('rank')) {
      throw new ConfigError([
        {
          path: `${path}.labels`,
          message: `task '${t.name}' has fewer than two labels; rank evaluation needs a label set`,
          expected: '>= 2 labels',
        },
      ]);
    }
    const stray = test.find((e) => config.eval.modes.includes('rank') && !labels.includes(e.output));
    if (stray) {
      throw new ConfigError([
        {
          path: `${path}.labels`,
          message: `test output '${stray.output}' of task '${t.name}' is not in the label set (${labels.join(', ')})`,
          expected: 'every test output in the label set',
          actual: stray.output,
        },
      ]);
    }
    if (warn) overlapWarning(t, train, test, warn);
    return { index, configIndex: ci, name: t.name, train, test, labels, template: t.template };
  });
}

/** The checkpoint folder of the config's model (a builtin name or a path resolved against the config). */
export function modelDir(config: ResolvedConfig): string {
  if (config.model.startsWith('builtin:')) {
    try {
      return builtinModelDir(config.model);
    } catch (e) {
      throw new ConfigError([
        { path: 'model', message: (e as Error).message, expected: 'a builtin model', actual: config.model },
      ]);
    }
  }
  return config.model;
}
