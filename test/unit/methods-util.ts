// Shared by the methods-* tests: the builtin tiny model on the tiny tasks, and the runner's training loop in
// small pieces (so a test can stop mid-task, checkpoint the state, and continue elsewhere).
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { loadTokenizer } from '../../src/engine/io/tokenizer';
import { builtinModelDir } from '../../src/runs/builtin';
import { tinyTask } from '../../src/runs/builtin/tiny-tasks';
import {
  DEFAULT_TEMPLATE,
  encodeExample,
  epochOrder,
  makeBatch,
  type TextTokenizer,
} from '../../src/engine/data/batches';
import { Rng, hashString } from '../../src/data/rng';
import { labelSet } from '../../src/data/examples';
import type { RunTask } from '../../src/engine/experiment';
import { RunContext } from '../../src/engine/method-context';
import type { Method } from '../../src/engine/methods/method';
import type { CausalLM } from '../../src/engine/models/types';
import { Optimizer } from '../../src/engine/optim';
import { trainStep } from '../../src/engine/train-step';
import type { EventBody } from '../../src/protocol/events';

export const SEED = 7;
export const BATCH = 8;
export const LR = 0.01;

export interface Tiny {
  model: CausalLM;
  tok: TextTokenizer;
  tasks: RunTask[];
  ctx: RunContext;
  events: EventBody[];
}

export async function cpu(): Promise<void> {
  await selectBackend('cpu');
}

/** The builtin tiny LLaMA with its tokenizer, on tiny tasks (each cut to `trainLimit` training examples). */
export function tiny(ids: string[] = ['tiny/sentiment', 'tiny/topic'], trainLimit = 32): Tiny {
  const dir = builtinModelDir('builtin:tiny-llama');
  const model = loadPretrained(dir);
  const tok = loadTokenizer(dir);
  const tasks: RunTask[] = ids.map((id, index) => {
    const split = tinyTask(id)!;
    const train = split.train.slice(0, trainLimit);
    return {
      index,
      configIndex: index,
      name: id.replace('tiny/', ''),
      train,
      test: split.test.slice(0, 8),
      validation: [],
      labels: labelSet(train),
      template: DEFAULT_TEMPLATE,
    };
  });
  const events: EventBody[] = [];
  const ctx = new RunContext(
    model,
    tok,
    tasks,
    { seed: SEED, training: { evalBatchSize: 8, maxSeqLen: 16 } as never },
    { emit: (e) => void events.push(e) },
  );
  return { model, tok, tasks, ctx, events };
}

/** The runner's batches of task `task` for one epoch (training set from the method, order from the seed). */
function batchesOf(t: Tiny, method: Method, task: number, epoch: number) {
  t.ctx.task = task;
  const set = method.trainingSet?.(t.ctx) ?? t.tasks[task].train;
  const enc = set.map((ex) => encodeExample(t.tok, t.tasks[task].template, ex, 16));
  return epochOrder(enc.length, BATCH, new Rng(SEED ^ hashString(`${t.tasks[task].name}/${task}/${epoch}`))).map(
    (idx) =>
      makeBatch(
        idx.map((i) => enc[i]),
        t.tok.padId,
      ),
  );
}

/** Steps [from, to) of task `task` (one epoch's batches, repeated if needed); returns the losses. */
export function steps(
  t: Tiny,
  method: Method,
  optimizer: Optimizer,
  task: number,
  from: number,
  to: number,
  onStep?: (s: number) => void,
): number[] {
  const batches = batchesOf(t, method, task, 0);
  const trainable = method.trainable(t.ctx);
  const losses: number[] = [];
  // An empty training set (MTL after its first task) is 0 steps, as in the runner.
  if (batches.length === 0) return losses;
  for (let s = from; s < to; s++) {
    const tensors = t.ctx.tensorsOf(batches[s % batches.length]);
    const { loss, terms } = trainStep(t.model, method, t.ctx, tensors, trainable, optimizer, LR, 1);
    losses.push(loss.dataSync()[0]);
    tf.dispose([loss, tensors.inputIds, tensors.labels, tensors.mask, ...Object.values(terms)]);
    onStep?.(s);
  }
  return losses;
}

/** A whole task as the runner runs it: optimizer reset, beforeTask, `n` steps, afterTask. */
export async function task(t: Tiny, method: Method, optimizer: Optimizer, index: number, n: number): Promise<number[]> {
  t.ctx.task = index;
  optimizer.reset();
  await method.beforeTask?.(t.ctx);
  const losses = steps(t, method, optimizer, index, 0, n);
  await method.afterTask?.(t.ctx);
  return losses;
}

export function weights(model: CausalLM): Map<string, Float32Array> {
  return new Map([...model.params].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export interface Checkpoint {
  weights: Map<string, tf.Tensor>;
  optimizer: { name: Optimizer['name']; step: number; slots: Map<string, tf.Tensor> };
  method: { tensors: Map<string, tf.Tensor>; json: unknown };
}

/** What the runner writes to a checkpoint, as copies (JSON through a round trip, as on disk). */
export function checkpoint(model: CausalLM, optimizer: Optimizer, method: Method): Checkpoint {
  const copy = (m: ReadonlyMap<string, tf.Tensor>) => new Map([...m].map(([k, v]) => [k, tf.clone(v)]));
  const os = optimizer.state();
  const ms = method.state();
  return {
    weights: copy(model.params),
    optimizer: { name: os.name, step: os.step, slots: copy(os.slots) },
    method: { tensors: copy(ms.tensors), json: JSON.parse(JSON.stringify(ms.json ?? null)) },
  };
}

/** What the runner does on resume: weights, optimizer, then the method's state (which takes its tensors). */
export function restoreInto(cp: Checkpoint, t: Tiny, optimizer: Optimizer, method: Method): void {
  for (const [n, v] of t.model.params) v.assign(cp.weights.get(n)!);
  tf.dispose([...cp.weights.values()]);
  optimizer.load(cp.optimizer);
  tf.dispose([...cp.optimizer.slots.values()]);
  method.restore(cp.method, t.ctx);
}

export { Optimizer };
