/**
 * The training of one task: epochs of seeded batch orders, one optimizer step per batch (train-step.ts), step
 * events every `stepEventInterval` steps, checkpoints by steps or epochs, and a stop request honoured between
 * steps. The run position advances in place, so a checkpoint taken anywhere resumes at the next batch. Each step's
 * loss goes through the divergence checks (divergence.ts) when its window is read back.
 */
import { tf } from './tf';
import type { ResolvedConfig } from '../protocol/config-validate';
import type { EventBody } from '../protocol/events';
import { epochOrder, type Batch, type EncodedExample } from './data/batches';
import { Rng, hashString } from '../data/rng';
import type { Method, MethodContext } from './methods/method';
import type { Codec } from './data/codec';
import type { RunTask } from './experiment';
import type { RunContext } from './method-context';
import { learningRate, type Optimizer } from './optim';
import type { CheckpointMeta, RunPosition } from './run-checkpoint';
import { StepReporter, type DivergenceCheck } from './step-reporter';
import { formatLoss, LossWatch, type Divergence } from './divergence';
import { trainStep, type StepResult } from './train-step';

/** Writes a checkpoint of the run as it stands (the runner knows what goes in one); resolves to its path. */
export type Checkpointer = (reason: CheckpointMeta['reason'], name: string) => Promise<string>;

export interface TrainerParts {
  /** The model, the tasks and the codec, as methods see them too. */
  ctx: RunContext;
  method: Method;
  optimizer: Optimizer;
  config: Pick<ResolvedConfig, 'seed' | 'training' | 'checkpoint'>;
  /** The peak learning rate: the method's own, else the training one. */
  lrPeak: number;
  /** The config field `lrPeak` comes from (`training.lr`, `methods[1].lr`), for the hint of a divergence. */
  lrField: string;
  hooks: { emit(body: EventBody): void; shouldStop(): boolean };
  checkpoint: Checkpointer;
}

/** What a task trains on, fixed when its training starts. */
export interface TaskPlan {
  /** The task's examples and those the method mixes in (replay, MTL), encoded. */
  encoded: EncodedExample[];
  trainable: Map<string, tf.Variable>;
  /** Optimizer steps over all epochs: the learning-rate schedule's horizon. */
  totalSteps: number;
}

/**
 * What task `task` trains on, encoded: the method's training set (replay's buffer mixed in, MTL's union), else the
 * task's own examples. Examples mixed in from other tasks keep their own task's prompt template.
 */
export function trainingSet(
  method: Pick<Method, 'trainingSet'>,
  ctx: MethodContext,
  tasks: readonly Pick<RunTask, 'train' | 'template'>[],
  codec: Codec,
  task: number,
): EncodedExample[] {
  const examples = method.trainingSet?.(ctx) ?? tasks[task].train;
  return examples.map((ex) => codec.example(ex, tasks[ex.task ?? task].template));
}

/** Optimizer steps of a task that trains on `examples` examples, over all epochs: the lr schedule's horizon. */
export function taskSteps(
  examples: number,
  training: Pick<ResolvedConfig['training'], 'batchSize' | 'epochs'>,
): number {
  return Math.ceil(examples / training.batchSize) * training.epochs;
}

/**
 * The batches (indices into the task's training set) of one epoch of the task at `index` of the run's order: a
 * function of the seed, the task and the epoch alone, so a resumed run, and either engine, trains the same ones.
 */
export function taskEpochOrder(
  seed: number,
  name: string,
  index: number,
  epoch: number,
  examples: number,
  batchSize: number,
): number[][] {
  return epochOrder(examples, batchSize, new Rng(seed ^ hashString(`${name}/${index}/${epoch}`)));
}

/** What to change after a divergence at `found.step`, whose learning rate was `lr` (of the peak `lrPeak`). */
export function divergenceHint(
  found: Divergence,
  s: { lr: number; lrPeak: number; lrField: string; gradClip: number; method: string },
): string {
  const clip = s.gradClip === 0 ? ' or enable gradient clipping (training.gradClip)' : '';
  const at = s.lr === s.lrPeak ? '' : `, ${formatLoss(s.lr)} at step ${found.step}`;
  const checks =
    found.kind === 'spike'
      ? ' Where such a loss is expected, raise training.divergence.lossFactor.'
      : found.kind === 'collapse'
        ? ' training.divergence.enabled = false turns this check off.'
        : '';
  return (
    `Lower the learning rate${clip}: ${s.lrField} = ${s.lrPeak}${at} is likely too high for ${s.method}. ` +
    `The matrix rows computed so far are kept in this log.${checks}`
  );
}

export class TaskTrainer {
  /** The run's divergence checks, from task to task (divergence.ts). */
  private watch: LossWatch | null = null;

  constructor(private readonly run: TrainerParts) {}

  /** The training set of task `task` as the method chooses it, and the variables it trains. */
  plan(task: number): TaskPlan {
    const { ctx, method, config } = this.run;
    const encoded = trainingSet(method, ctx, ctx.tasks, ctx.codec, task);
    return { encoded, trainable: method.trainable(ctx), totalSteps: taskSteps(encoded.length, config.training) };
  }

  /** Trains task `pos.task` from `pos` on, advancing `pos`; 'stopped' when a stop was requested. */
  async train(pos: RunPosition, plan: TaskPlan): Promise<'done' | 'stopped'> {
    const { ctx, config, hooks, checkpoint } = this.run;
    const tr = config.training;
    const task = ctx.tasks[pos.task];
    const report = new StepReporter(
      (body) => hooks.emit(body),
      task.name,
      plan.totalSteps,
      (step) => this.lr(step, plan),
      this.divergenceCheck(task.name, task.labels.length, plan),
    );

    for (; pos.epoch < tr.epochs; pos.epoch++, pos.batch = 0) {
      const batches = taskEpochOrder(config.seed, task.name, pos.task, pos.epoch, plan.encoded.length, tr.batchSize);
      for (; pos.batch < batches.length;) {
        const batch = ctx.codec.batch(batches[pos.batch].map((i) => plan.encoded[i]));
        report.add(this.step(batch, pos.taskStep + 1, plan), batch.tokens);
        pos.batch++;
        pos.taskStep++;
        pos.globalStep++;
        if (pos.taskStep % tr.stepEventInterval === 0 || pos.taskStep === plan.totalSteps) await report.flush(pos);
        const every = config.checkpoint.every;
        if (typeof every === 'number' && pos.globalStep % every === 0) {
          await report.flush(pos);
          await checkpoint('steps', `step-${pos.globalStep}`);
        }
        // Let IPC messages (a stop request) and signals in between steps.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (hooks.shouldStop()) {
          await report.flush(pos);
          return 'stopped';
        }
      }
      if (config.checkpoint.every === 'epoch' && pos.epoch < tr.epochs - 1) {
        await report.flush(pos);
        await checkpoint('epoch', `epoch-${pos.task}-${pos.epoch + 1}`);
      }
    }
    await report.flush(pos);
    return 'done';
  }

  /** One optimizer step on `batch`, the task's `step`-th (1-based). */
  private step(batch: Batch, step: number, plan: TaskPlan): StepResult {
    const { ctx, method, optimizer, config } = this.run;
    const tensors = ctx.tensorsOf(batch);
    const result = trainStep(
      ctx.model,
      method,
      ctx,
      tensors,
      plan.trainable,
      optimizer,
      this.lr(step, plan),
      config.training.gradClip,
    );
    tf.dispose([tensors.inputIds, tensors.labels, tensors.mask]);
    return result;
  }

  /** The run's watch, now over task `name` (after a resume, from the first step trained), and its hint. */
  private divergenceCheck(name: string, labelCount: number, plan: TaskPlan): DivergenceCheck {
    const { ctx, method, config, lrPeak, lrField } = this.run;
    const tr = config.training;
    const watch = (this.watch ??= new LossWatch({
      ...tr.divergence,
      vocabSize: ctx.model.config.vocabSize,
      labelCount,
    }));
    watch.nextTask(name, labelCount);
    const hint = (found: Divergence): string =>
      divergenceHint(found, {
        lr: this.lr(found.step, plan),
        lrPeak,
        lrField,
        gradClip: tr.gradClip,
        method: method.name,
      });
    return { watch, hint };
  }

  private lr(step: number, plan: TaskPlan): number {
    const tr = this.run.config.training;
    return learningRate(this.run.lrPeak, step, plan.totalSteps, tr.warmupSteps, tr.schedule);
  }
}
