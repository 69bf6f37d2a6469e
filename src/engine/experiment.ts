/**
 * Loading what a run needs from a resolved config: the tasks (in the run's order, the validation split held out,
 * limits applied, label sets fixed) and the model with its tokenizer. Errors name the config path of the task or
 * model at fault.
 */
import type { ResolvedConfig, ResolvedTask } from '../protocol/config-resolved';
import { ConfigError } from '../protocol/errors';
import { labelSet, readJsonl, readOLoraFolder, readTraceFolder, type Example } from '../data/examples';
import { Rng, hashString } from '../data/rng';
import { balancedSubset } from './data/batches';
import { exampleKey, holdOut, inputGroups, validationSize, type ValidationSplit } from './data/validation-split';
import { builtinModelDir, builtinTask } from '../runs/builtin';

export interface RunTask {
  /** Position in this run's order. */
  index: number;
  /** Index in config.tasks (for JSON paths). */
  configIndex: number;
  name: string;
  train: Example[];
  test: Example[];
  /** The validation split (`eval.validation`), held out of the training data; empty when the split is off. */
  validation: Example[];
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

/**
 * A warning about a task's data: the run goes on, the `warning` event (or `sculpt validate`) says it. `path` is
 * the config path of the task it is about (`tasks[2]`), for an editor to underline.
 */
export type DataWarn = (message: string, code: string, path?: string) => void;

/**
 * Test examples whose input (with its instruction) is also a training input: their accuracy measures what
 * was memorised, not what was learned. Reported, not removed: the data is the user's.
 */
function overlapWarning(t: ResolvedTask, train: Example[], test: Example[], warn: DataWarn, path: string): void {
  const s = t.source;
  if ('train' in s && s.train === s.test) {
    warn(
      `task '${t.name}': train and test are the same file (${s.train}); every test example is a training example, so its accuracy measures memorisation. Give the task a separate test file.`,
      'data-overlap',
      path,
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
    path,
  );
}

/**
 * The validation split of a task's training data (`eval.validation`, see ./data/validation-split.ts). It has its
 * own stream, from the seed and the task name, so that the limits below draw as they did before the split existed
 * and a split of 0 gives the same data as then. A split that leaves nothing to train on is a ConfigError.
 */
function validationSplit(config: ResolvedConfig, t: ResolvedTask, examples: Example[], path: string): ValidationSplit {
  const setting = config.eval.validation;
  if (!(setting > 0)) return { train: examples, validation: [] };
  const inputs = inputGroups(examples).length;
  const n = validationSize(setting, inputs);
  if (n >= inputs) {
    const what =
      inputs === examples.length
        ? `${inputs} training examples`
        : `${inputs} distinct training inputs (${examples.length} examples)`;
    throw new ConfigError([
      {
        path: 'eval.validation',
        message:
          n > inputs
            ? `asks for ${n} validation examples of task '${t.name}' (${path}), which has only ${what}`
            : `holds out all ${what} of task '${t.name}' (${path}), leaving none to train on`,
        expected: `fewer than ${inputs} validation examples for task '${t.name}' (a smaller count or fraction, or 0 for no split)`,
        actual: setting,
      },
    ]);
  }
  return holdOut(examples, n, new Rng(config.seed ^ hashString(`validation/${t.name}`)));
}

/**
 * The tasks of one order, loaded and checked. Problems with the data that do not stop a run (train/test
 * overlap) go to `warn`. The validation split is held out of a task's training data first; `trainLimit` then
 * applies to the rest, and `testLimit` to the test data.
 */
export function loadTasks(config: ResolvedConfig, order: number, warn?: DataWarn): RunTask[] {
  // Every task is loaded before an error is raised, so that one error names the problems of every task.
  const issues: ConfigError['issues'] = [];
  const tasks = taskOrder(config, order).flatMap((ci, index) => {
    try {
      return [loadTask(config, ci, index, warn)];
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      issues.push(...e.issues);
      return [];
    }
  });
  if (issues.length) throw new ConfigError(issues);
  return tasks;
}

function loadTask(config: ResolvedConfig, ci: number, index: number, warn?: DataWarn): RunTask {
  const t = config.tasks[ci];
  const path = `tasks[${ci}]`;
  const split = loadSplit(t, path);
  const held = validationSplit(config, t, split.train, path);
  // Limits draw from a seed of the experiment and the task name, so every method sees the same subset.
  const rng = new Rng(config.seed ^ hashString(t.name));
  const train = balancedSubset(held.train, t.trainLimit, rng);
  const test = balancedSubset(split.test, t.testLimit, rng);
  const validation = held.validation;
  // The label set of all the training data, the held-out part included, as without a split.
  const labels = labelSet([...train, ...validation], t.labels ?? split.labels);
  if (train.length === 0 || test.length === 0) {
    throw new ConfigError([
      {
        path: `${path}.source`,
        message: `task '${t.name}' has ${train.length} training and ${test.length} test examples; both must be non-empty`,
        expected: 'examples',
      },
    ]);
  }
  // Without `labels` the set is the training data's distinct outputs: a message about the set then says so,
  // since what is missing from it is missing from the training data (or from what trainLimit kept of it).
  const derived = !t.labels && !split.labels;
  const limited = t.trainLimit !== undefined ? ` after trainLimit (${t.trainLimit})` : '';
  const outputsBeyond = (examples: Example[]) =>
    [...new Set(examples.map((e) => e.output))].filter((o) => !labels.includes(o));
  const remedy = (missing: string[]) =>
    `declare the label set with \`labels\`${labels.length + missing.length <= 20 ? ` (${JSON.stringify([...labels, ...missing])})` : ''}${t.trainLimit !== undefined ? ', raise trainLimit,' : ''} or add training examples of ${missing.length === 1 ? 'that output' : 'those outputs'}`;
  const rank = config.eval.modes.includes('rank');
  if (labels.length < 2 && rank) {
    const others = outputsBeyond(test);
    const has = labels.length ? `only one distinct output ('${labels[0]}')` : 'no outputs';
    throw new ConfigError([
      {
        path: `${path}.labels`,
        message: !derived
          ? `task '${t.name}' has fewer than two labels; rank evaluation needs a label set`
          : others.length
            ? `the training data of task '${t.name}' has ${has}${limited}, while its test data also has ${others.map((o) => `'${o}'`).join(', ')}; without \`labels\` the label set rank evaluation scores against is the training data's distinct outputs: ${remedy(others)}`
            : `the training data of task '${t.name}' has ${has}${limited}, and so does its test data; rank evaluation needs two labels or more to choose between (\`labels\` declares the set)`,
        expected: '>= 2 labels',
      },
    ]);
  }
  for (const [part, examples] of [
    ['test', test],
    ['validation', validation],
  ] as const) {
    const stray = rank ? outputsBeyond(examples) : [];
    if (stray.length) {
      const set = `(${labels.join(', ')})`;
      throw new ConfigError([
        {
          path: `${path}.labels`,
          message: derived
            ? `${part} output '${stray[0]}' of task '${t.name}' is not in the label set ${set}, the training data's distinct outputs${limited}; ${remedy(stray)}`
            : `${part} output '${stray[0]}' of task '${t.name}' is not in the label set ${set}`,
          expected: `every ${part} output in the label set`,
          actual: stray[0],
        },
      ]);
    }
  }
  // Validation examples come from the training data: a test input among them is a test input trained on or
  // selected on, which the warning names alike.
  if (warn) overlapWarning(t, [...train, ...validation], test, warn, path);
  return { index, configIndex: ci, name: t.name, train, test, validation, labels, template: t.template };
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
