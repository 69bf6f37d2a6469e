/**
 * The tokenizer of a run and the task data measured against it (data/coverage.ts), and the methods' options
 * against the model's shapes (methods/model-checks.ts), checked by `sculpt validate`,
 * by `sculpt run` before it creates anything, and by every trainer at its start, all through `checkRunInputs`:
 * validate makes every check a run makes, with the same messages. Nothing here reads a weight, so validate
 * stays cheap: the model is known by its inventory (config.json, checked against the weight files' headers).
 *
 * Errors are ConfigErrors naming the config path to fix: a checkpoint folder without tokenizer.json and no
 * `tokenizer` field, a tokenizer with more tokens than the model has embedding rows (its larger ids would fail
 * deep in the first forward pass), labels the model cannot learn or be scored on, a rank the model's matrices
 * cannot hold. Warnings go to `warn` with a code, as the task loader's do.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedConfig } from '../protocol/config-resolved';
import { ConfigError, type ConfigIssue } from '../protocol/config-validate';
import { loadTokenizerFile, unknownTokenId, type Tokenizer } from './io/tokenizer';
import type { Inventory } from './models/inventory';
import { coverageFindings, taskCoverage, type TaskCoverage } from './data/coverage';
import { modelDir, type DataWarn, type RunTask } from './experiment';
import { readConfig } from './io/checkpoint';
import { architectureFor } from './models/registry';
import { methodModelIssues } from './methods/model-checks';

/** Where the run's tokenizer.json is, and the config field that names it. */
export interface TokenizerSource {
  file: string;
  field: 'tokenizer' | 'model';
}

/**
 * The tokenizer.json a run uses: the `tokenizer` field's (a folder's tokenizer.json, or the file), else the
 * checkpoint folder's. A ConfigError at the field to fix when there is none.
 */
export function tokenizerSource(config: ResolvedConfig): TokenizerSource {
  const given = config.tokenizer;
  if (given !== undefined) {
    const file = existsSync(given) && statSync(given).isDirectory() ? join(given, 'tokenizer.json') : given;
    if (!existsSync(file)) {
      throw new ConfigError([
        {
          path: 'tokenizer',
          message:
            file === given
              ? `tokenizer not found: ${given}`
              : `tokenizer folder ${given} has no tokenizer.json (the Hugging Face "fast" tokenizer file)`,
          expected: 'a tokenizer folder with tokenizer.json, or a tokenizer.json file',
          actual: given,
        },
      ]);
    }
    regularFile(file, 'tokenizer');
    return { file, field: 'tokenizer' };
  }
  const dir = modelDir(config);
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) {
    throw new ConfigError([
      {
        path: 'model',
        message: `checkpoint folder ${dir} has no tokenizer.json; give the model's tokenizer with the \`tokenizer\` field (a tokenizer folder or a tokenizer.json file, relative to the config file)`,
        expected: 'a checkpoint folder with tokenizer.json, or a `tokenizer` field',
        actual: dir,
      },
    ]);
  }
  regularFile(file, 'model');
  return { file, field: 'model' };
}

/** tokenizer.json is read whole: a FIFO or a device would block or never end, so only a regular file is read. */
function regularFile(file: string, field: TokenizerSource['field']): void {
  if (statSync(file).isFile()) return;
  throw new ConfigError([
    {
      path: field,
      message: `${file} is not a regular file; a tokenizer is read from a tokenizer.json file`,
      expected: 'a regular tokenizer.json file',
      actual: file,
    },
  ]);
}

/** The model's vocabulary: the rows of its token embedding (config.json `vocab_size`, checked against the weights). */
export function modelVocabulary(inventory: Inventory): number {
  const embedding = inventory.params.find((p) => p.group === 'embedding');
  if (!embedding) throw new Error('the model inventory has no token embedding');
  return embedding.shape[0];
}

/** The run's tokenizer, checked to fit the model: every id it can produce has an embedding row. */
export function loadRunTokenizer(
  config: ResolvedConfig,
  inventory: Inventory,
  source = tokenizerSource(config),
): Tokenizer {
  const dir = modelDir(config);
  const tok = loadTokenizerFile(source.file, dir);
  const rows = modelVocabulary(inventory);
  if (tok.vocabSize > rows) {
    throw new ConfigError([
      {
        path: source.field,
        message: `the tokenizer ${source.file} has ${tok.vocabSize} tokens, more than the ${rows} of the model (vocab_size in ${join(dir, 'config.json')}, the rows of its embedding): token ids ${rows} to ${tok.vocabSize - 1} have no embedding. Use the tokenizer the model was trained with${source.field === 'model' ? ' (the `tokenizer` field names one)' : ''}`,
        expected: `a tokenizer of at most ${rows} tokens`,
        actual: tok.vocabSize,
      },
    ]);
  }
  return tok;
}

/** A short name for the tokenizer in messages: the builtin model's name, else the file. */
function tokenizerName(config: ResolvedConfig, source: TokenizerSource, tok: Tokenizer): string {
  const what = source.field === 'model' && config.model.startsWith('builtin:') ? config.model : source.file;
  return `${what}, ${tok.vocabSize} tokens`;
}

/**
 * The coverage of each task, and the tokenizer it was measured with. `tasks` are those of one order: the
 * checks depend on a task's data, not on its place in the order.
 */
export function measureTasks(
  config: ResolvedConfig,
  tasks: RunTask[],
  tok: Tokenizer,
  kind: 'causal' | 'seq2seq',
): TaskCoverage[] {
  const opts = {
    kind,
    maxSeqLen: config.training.maxSeqLen,
    unkId: unknownTokenId(tok),
    modes: config.eval.modes,
    maxNewTokens: config.eval.maxNewTokens,
  };
  return tasks.map((t) =>
    taskCoverage(
      tok,
      {
        name: t.name,
        train: t.train,
        validation: t.validation,
        test: t.test,
        labels: t.labels,
        template: t.template,
        trainLimit: config.tasks[t.configIndex].trainLimit,
      },
      opts,
    ),
  );
}

/**
 * Every input check of a run that needs the tokenizer or the model's shapes: checks the methods' options against
 * the model (methods/model-checks.ts), loads the tokenizer (tokenizerSource, loadRunTokenizer), measures the
 * tasks against it and throws one ConfigError with every error found; warnings go to `warn`. Returns the
 * tokenizer the run then uses.
 */
export function checkRunInputs(
  config: ResolvedConfig,
  tasks: RunTask[],
  inventory: Inventory,
  warn: DataWarn,
): Tokenizer {
  // The methods' options against the model's shapes (a rank above a matrix's dimensions, modules it lacks):
  // otherwise found only when the method is set up on the loaded model, after a run folder exists.
  const dir = modelDir(config);
  const issues: ConfigIssue[] = methodModelIssues(config.methods, {
    inventory,
    // Only O-LoRA's messages name the architecture; config.json is read again only for them.
    get arch() {
      return architectureFor(readConfig(dir)).name;
    },
  });
  let source: TokenizerSource;
  let tok: Tokenizer;
  try {
    source = tokenizerSource(config);
    tok = loadRunTokenizer(config, inventory, source);
  } catch (e) {
    if (e instanceof ConfigError && issues.length) throw new ConfigError([...issues, ...e.issues]);
    throw e;
  }
  // An encoder-decoder model takes the prompt and the answer apart; only such models have cross-attention.
  const kind = inventory.params.some((p) => p.group === 'cross-attention') ? 'seq2seq' : 'causal';
  const name = tokenizerName(config, source, tok);
  measureTasks(config, tasks, tok, kind).forEach((c, i) => {
    const found = coverageFindings(c, `tasks[${tasks[i].configIndex}]`, {
      maxSeqLen: config.training.maxSeqLen,
      tokenizer: name,
      modes: config.eval.modes,
      maxNewTokens: config.eval.maxNewTokens,
    });
    // A setting's problem (eval.maxNewTokens) is found for every task alike: said once.
    for (const issue of found.issues)
      if (!issues.some((x) => x.path === issue.path && x.message === issue.message)) issues.push(issue);
    for (const w of found.warnings) warn(w.message, w.code, `tasks[${tasks[i].configIndex}]`);
  });
  if (issues.length) throw new ConfigError(issues);
  return tok;
}
