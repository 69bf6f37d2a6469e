/**
 * The PyTorch worker's input, `<runDir>/prepared/` (docs/torch-engine.md): every token it trains on and scores,
 * the batch order and the learning rate of every step, computed here by the TypeScript engine's own functions
 * (task loading, input checks, the codec, the method's training set, the epoch order, the lr schedule, the
 * calibration draw), so that both engines train on identical batches. No weight is loaded: the model is known
 * by its inventory (config.json checked against the weight files' headers).
 *
 * Deterministic: a resume writes the same bytes. Written to `prepared.tmp-<pid>/` and renamed into place, so the
 * worker finds the whole folder or none.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ResolvedConfig, ResolvedMethodConfig } from '../../protocol/config-resolved';
import type { EncodedExample } from '../../engine/data/batches';
import { codecOfKind, type Codec } from '../../engine/data/codec';
import { rankInputsOf } from '../../engine/evaluate';
import { loadTasks, modelDir, type RunTask } from '../../engine/experiment';
import { checkModelFolder } from '../../engine/io/checkpoint';
import { finalModelStaging } from '../../engine/io/final-model';
import type { Tokenizer } from '../../engine/io/tokenizer';
import { calibrationOrder } from '../../engine/method-context';
import { createMethod } from '../../engine/methods';
import type { MethodContext } from '../../engine/methods/method';
import { architectureFor } from '../../engine/models/registry';
import { learningRate } from '../../engine/optim';
import { hasValidation } from '../../engine/run-evaluation';
import { checkRunInputs, modelVocabulary } from '../../engine/run-inputs';
import { taskEpochOrder, taskSteps, trainingSet } from '../../engine/task-trainer';
import { WriteFailedError } from '../../engine/io/write-failure';
import { Rng } from '../../data/rng';

export const PREPARED_DIR = 'prepared';
export const MANIFEST_FORMAT = 1;

export type ModelKind = 'causal' | 'seq2seq';
export type EvalSplit = 'test' | 'validation';

/** What the worker scores for one split of one task in one mode (docs/torch-engine.md). */
export type Evaluation =
  | { split: EvalSplit; file: string; examples: number; mode: 'next'; candidates: number[] }
  | { split: EvalSplit; file: string; examples: number; mode: 'cont'; continuations: number[][] }
  | { split: EvalSplit; file: string; examples: number; mode: 'generate'; maxNewTokens: number };

export interface ManifestTask {
  index: number;
  name: string;
  labels: string[];
  train: { file: string; examples: number };
  /** epochs[e][b]: indices into the train file. */
  epochs: number[][][];
  /** The lr of optimizer step s (1-based) is lr[s-1]. */
  lr: number[];
  steps: number;
  calibration: string;
  evaluations: Evaluation[];
}

export interface Manifest {
  format: number;
  runDir: string;
  model: { dir: string; arch: string; kind: ModelKind; vocabSize: number };
  tokens: { pad: number; bos: number | null; eos: number | null };
  seed: number;
  methodIndex: number;
  method: ResolvedMethodConfig;
  training: ResolvedConfig['training'];
  checkpoint: ResolvedConfig['checkpoint'];
  torch: ResolvedConfig['torch'];
  eval: { zeroShot: boolean; batchSize: number; maxNewTokens: number };
  tasks: ManifestTask[];
  /**
   * `checkpoint.final`: the staging folder (absolute) the worker writes the fine-tuned model's model.safetensors
   * into after the last task's evaluation, before `done`; the trainer then completes it (final-model.ts). Null:
   * no final model.
   */
  finalModel: string | null;
}

export interface PreparedRun {
  /** `<runDir>/prepared`. */
  dir: string;
  manifest: Manifest;
  /** The run's tasks in its order, as the TypeScript engine loads them (accuracies are counted against them). */
  tasks: RunTask[];
  tok: Tokenizer;
  /** The data warnings a tfjs run reports after its run-started (data-overlap, truncated-inputs, ...). */
  warnings: { message: string; code?: string }[];
}

export interface PrepareSpec {
  config: ResolvedConfig;
  methodIndex: number;
  order: number;
  runDir: string;
}

/** Loads and checks the run's inputs and writes `<runDir>/prepared/`. Input errors are thrown as the tfjs run throws them. */
export async function prepareRun(spec: PrepareSpec): Promise<PreparedRun> {
  const { config, runDir } = spec;
  const warnings: PreparedRun['warnings'] = [];
  const warn = (message: string, code?: string) => void warnings.push({ message, ...(code ? { code } : {}) });
  const tasks = loadTasks(config, spec.order, warn);
  const dir = modelDir(config);
  const folder = checkModelFolder(dir);
  const tok = checkRunInputs(config, tasks, folder.inventory, warn);
  // As checkRunInputs tells them apart: only encoder-decoder models have cross-attention.
  const kind: ModelKind = folder.inventory.params.some((p) => p.group === 'cross-attention') ? 'seq2seq' : 'causal';
  const codec = codecOfKind(kind, tok, config.training.maxSeqLen);
  const methodCfg = config.methods[spec.methodIndex];
  const sets = await trainingSets(methodCfg, `methods[${spec.methodIndex}]`, config, tasks, codec, warn);

  const files = new Map<string, string[]>();
  const line = (o: unknown) => JSON.stringify(o);
  const example =
    kind === 'seq2seq'
      ? (e: EncodedExample) => line({ input: e.prompt, target: e.answer })
      : (e: EncodedExample) => line({ prompt: e.prompt, answer: e.answer });
  const tr = config.training;
  const lrPeak = methodCfg.lr ?? tr.lr;
  const splits: EvalSplit[] = hasValidation(tasks) ? ['test', 'validation'] : ['test'];

  const manifestTasks = tasks.map((t, i): ManifestTask => {
    const encoded = sets[i];
    const steps = taskSteps(encoded.length, tr);
    const trainFile = `train-${i}.jsonl`;
    files.set(trainFile, encoded.map(example));
    const calibration = `calibration-${i}.jsonl`;
    files.set(
      calibration,
      calibrationOrder(config.seed, t).map((ex) => example(codec.example(ex, t.template))),
    );
    const evaluations = evaluationsOf(t, splits, config, codec, tok, files);
    return {
      index: i,
      name: t.name,
      labels: t.labels,
      train: { file: trainFile, examples: encoded.length },
      epochs: Array.from({ length: tr.epochs }, (_, e) =>
        taskEpochOrder(config.seed, t.name, i, e, encoded.length, tr.batchSize),
      ),
      lr: Array.from({ length: steps }, (_, s) => learningRate(lrPeak, s + 1, steps, tr.warmupSteps, tr.schedule)),
      steps,
      calibration,
      evaluations,
    };
  });

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    runDir,
    model: {
      dir,
      arch: architectureFor({ model_type: folder.modelType }).name,
      kind,
      vocabSize: modelVocabulary(folder.inventory),
    },
    tokens: { pad: tok.padId, bos: tok.bosId, eos: tok.eosId },
    seed: config.seed,
    methodIndex: spec.methodIndex,
    method: methodCfg,
    training: config.training,
    checkpoint: config.checkpoint,
    torch: config.torch,
    eval: { zeroShot: config.eval.zeroShot, batchSize: tr.evalBatchSize, maxNewTokens: config.eval.maxNewTokens },
    tasks: manifestTasks,
    finalModel: config.checkpoint.final ? resolve(finalModelStaging(runDir)) : null,
  };
  files.set('manifest.json', [JSON.stringify(manifest, null, 1)]);
  const out = writePrepared(runDir, files);
  return { dir: out, manifest, tasks, tok, warnings };
}

/**
 * What is scored of task `t` after each task, one entry per split and mode, its prompts written to `files`: as
 * the tfjs evaluators make them (rankInputs: a `next` or `cont` rank evaluation; generateEvaluate's prompts).
 * Each mode cuts its prompts to its own room, so each has its own file.
 */
function evaluationsOf(
  t: RunTask,
  splits: EvalSplit[],
  config: ResolvedConfig,
  codec: Codec,
  tok: Tokenizer,
  files: Map<string, string[]>,
): Evaluation[] {
  const line = (prompt: number[]) => JSON.stringify({ prompt });
  const evaluations: Evaluation[] = [];
  for (const split of splits) {
    const examples = split === 'test' ? t.test : t.validation;
    const target = { labels: t.labels, template: t.template, test: examples };
    for (const mode of config.eval.modes) {
      const file = (kind: string) => `eval-${t.index}-${split}-${kind}.jsonl`;
      if (mode === 'generate') {
        files.set(
          file('generate'),
          examples.map((ex) => line(codec.prompt(ex, t.template, config.eval.maxNewTokens))),
        );
        const maxNewTokens = config.eval.maxNewTokens;
        evaluations.push({ split, file: file('generate'), examples: examples.length, mode: 'generate', maxNewTokens });
        continue;
      }
      // Every model the engine implements scores the next token alone (nextTokenLogProbs).
      const inputs = rankInputsOf(codec, tok, target, true);
      if (inputs.mode === 'next') {
        files.set(file('next'), inputs.prompts.map(line));
        const candidates = inputs.candidates;
        evaluations.push({ split, file: file('next'), examples: examples.length, mode: 'next', candidates });
      } else {
        // rankInputs pairs each prompt with every label (example-major): one prompt per example here.
        const L = t.labels.length;
        files.set(
          file('cont'),
          examples.map((_, k) => line(inputs.prompts[k * L])),
        );
        const continuations = inputs.continuations.slice(0, L);
        evaluations.push({ split, file: file('cont'), examples: examples.length, mode: 'cont', continuations });
      }
    }
  }
  return evaluations;
}

/**
 * Each task's training set, encoded, as the tfjs runner's TaskTrainer.plan takes it: a method that chooses its
 * own (replay's buffer, MTL's union) is walked through the run's task boundaries (setup, then trainingSet and
 * afterTask per task) with a context that has the tasks and the seed but no model.
 */
async function trainingSets(
  methodCfg: ResolvedMethodConfig,
  path: string,
  config: ResolvedConfig,
  tasks: RunTask[],
  codec: Codec,
  warn: (message: string, code?: string) => void,
): Promise<EncodedExample[][]> {
  const method = createMethod(methodCfg, path);
  try {
    const unavailable = (what: string) => (): never => {
      throw new Error(
        `method '${method.name}' asked for ${what} while the PyTorch engine's data was prepared; the trainer process loads no model for it`,
      );
    };
    const ctx = {
      get model(): never {
        return unavailable('the model')();
      },
      tasks,
      task: 0,
      rng: new Rng(config.seed),
      seed: config.seed,
      batchesOf: unavailable('calibration batches'),
      tensorsOf: unavailable('tensors'),
      reportRanks: unavailable('to report ranks'),
      warn,
    } satisfies MethodContext;
    if (!method.trainingSet) return tasks.map((_, i) => trainingSet({}, ctx, tasks, codec, i));
    await method.setup(ctx);
    const out: EncodedExample[][] = [];
    for (let i = 0; i < tasks.length; i++) {
      ctx.task = i;
      out.push(trainingSet(method, ctx, tasks, codec, i));
      await method.afterTask?.(ctx);
    }
    return out;
  } finally {
    method.dispose();
  }
}

/** Writes the files into `prepared.tmp-<pid>/`, then renames it over `prepared/`. Returns the final folder. */
function writePrepared(runDir: string, files: Map<string, string[]>): string {
  const final = join(runDir, PREPARED_DIR);
  // Leftovers of a start that was killed while writing: never read.
  for (const name of readdirSync(runDir))
    if (name.startsWith(`${PREPARED_DIR}.tmp-`)) rmSync(join(runDir, name), { recursive: true, force: true });
  const tmp = join(runDir, `${PREPARED_DIR}.tmp-${process.pid}`);
  let current = tmp;
  try {
    mkdirSync(tmp);
    // manifest.json last: it is what the worker reads first.
    const names = [...files.keys()].filter((n) => n !== 'manifest.json');
    for (const name of [...names, 'manifest.json']) {
      current = join(tmp, name);
      writeLines(current, files.get(name)!);
    }
    current = final;
    if (existsSync(final)) rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw new WriteFailedError(current, 'write the PyTorch engine’s prepared data to', e);
  }
  return final;
}

/** One line per entry, each ended by a newline; written in pieces so that a large training set is never one string. */
function writeLines(file: string, lines: string[]): void {
  const fd = openSync(file, 'w');
  try {
    for (let i = 0; i < lines.length; i += 1024) writeSync(fd, lines.slice(i, i + 1024).join('\n') + '\n');
  } finally {
    closeSync(fd);
  }
}
