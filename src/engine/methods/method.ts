/**
 * The continual-learning method interface: lifecycle hooks the runner calls, Avalanche-style. The runner knows
 * no method by name; everything a method changes about training goes through these hooks:
 *
 *   setup ─┬─> beforeTask ──> [ trainable ─> (forward with weightOverrides, + extraLoss) ─> transformGradients
 *          │                    ─> optimizer step ─> afterStep ]* ──> afterTask ──> (evaluation) ─┐
 *          └──────────────────────────────────────────────────────────────────────────────────────┘
 *
 * Tensors handed to hooks belong to the caller unless a hook's comment says otherwise.
 */
import type { tf } from '../tf';
import type { CausalLM } from '../models/types';
import type { ProjectionTerm } from '../models/params';
import type { Batch } from '../data/batches';
import type { Example } from '../../data/examples';
import type { Rng } from '../../data/rng';
import type { MatrixRank } from '../../protocol/events';

/** A task as methods see it. */
export interface TaskView {
  index: number;
  name: string;
  train: Example[];
}

/** Batch tensors, created by the runner for one step. */
export interface BatchTensors {
  inputIds: tf.Tensor2D;
  labels: tf.Tensor2D;
  mask: tf.Tensor2D;
}

export interface MethodContext {
  readonly model: CausalLM;
  /** The run's tasks in training order. */
  readonly tasks: readonly TaskView[];
  /** Index of the current (or about to start) task. */
  readonly task: number;
  readonly rng: Rng;
  /** The experiment's seed, for methods that derive their own random streams. */
  readonly seed: number;
  /** Tokenized batches of `examples` examples drawn (seeded) from task `task`'s training set. */
  batchesOf(task: number, examples: number, batchSize?: number): Batch[];
  /** Uploads a batch (the caller disposes the tensors). */
  tensorsOf(batch: Batch): BatchTensors;
  /**
   * Per-matrix statistics at a task boundary (a `ranks` event, with the rank policy's warnings), and the chosen
   * ranks as a PEFT rank_pattern file in the run folder.
   */
  reportRanks(policy: string, matrices: MatrixRank[], seconds: number, warnings?: string[]): void;
  warn(message: string, code?: string): void;
}

export interface ExtraLoss {
  total: tf.Scalar;
  /** Named parts for the step event (e.g. `orthogonality`). */
  terms: Record<string, tf.Scalar>;
}

/** A method's checkpointable state: tensors go into the checkpoint's safetensors file, the rest into JSON. */
export interface MethodState {
  tensors: Map<string, tf.Tensor>;
  json: unknown;
}

export interface Method {
  /** The method id as in the config (`adaptive-svd`, `seqft`, ...). */
  readonly name: string;

  /** Once, before anything trains: check options against the model (errors name the option's JSON path). */
  setup(ctx: MethodContext): void | Promise<void>;

  /** Before training task `ctx.task` (e.g. compute the protected subspaces from the current weights). */
  beforeTask?(ctx: MethodContext): void | Promise<void>;

  /**
   * Variables the optimizer updates during this task, by name: model parameters (HF keys) and the method's
   * own (e.g. `olora.3.model.layers.0.self_attn.q_proj.A`).
   */
  trainable(ctx: MethodContext): Map<string, tf.Variable>;

  /**
   * Tensors to use in place of model parameters in the forward, e.g. W + Σ B_i A_i. Called inside the
   * gradient tape, so gradients reach whatever they are computed from.
   */
  weightOverrides?(): Map<string, tf.Tensor> | null;

  /**
   * Terms added to projections' outputs while training (ParamStore.project), in place of weightOverrides (which
   * evaluation and saving keep using): O-LoRA with dropout, whose pairs act on a dropped-out copy of each
   * projection's input and so cannot be merged into the weights. Called inside the gradient tape; null: train
   * with weightOverrides.
   */
  trainingTerms?(): Map<string, ProjectionTerm> | null;

  /** An extra loss term for the batch, computed inside the gradient tape. */
  extraLoss?(batch: BatchTensors, ctx: MethodContext): ExtraLoss | null;

  /**
   * Replaces the gradients before the optimizer step (e.g. projection). Returns a map that may pass some of
   * the given tensors through; the caller disposes the tensors of both maps.
   */
  transformGradients?(grads: Map<string, tf.Tensor>): Map<string, tf.Tensor>;

  /**
   * Names of variables whose values before each optimizer step `afterStep` needs (e.g. to re-project the
   * weight change of an adaptive optimizer).
   */
  preStepSnapshot?(): readonly string[];

  /** After each optimizer step; `before` holds the snapshot requested by preStepSnapshot (caller disposes). */
  afterStep?(before: Map<string, tf.Tensor> | null, ctx: MethodContext): void;

  /** Examples to train on for this task; default: the task's own (replay mixes in a buffer, MTL takes all). */
  trainingSet?(ctx: MethodContext): Example[];

  /** After training task `ctx.task`, before its evaluation (e.g. merge adapters, estimate the Fisher). */
  afterTask?(ctx: MethodContext): void | Promise<void>;

  state(): MethodState;
  restore(state: MethodState, ctx: MethodContext): void;
  dispose(): void;
}
