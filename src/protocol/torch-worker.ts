/**
 * The PyTorch worker's messages to the trainer process (docs/torch-engine.md): rank 0 prints each as one stdout
 * line, `@sculpt ` then a JSON object; every other line is log output. python/sculpt_torch/protocol.py mirrors
 * these types. The trainer process turns them into events (src/trainer/torch/bridge.ts): it alone writes
 * events.jsonl, so the worker sends what only it knows (device, losses, scores, checkpoints) and the trainer adds
 * what follows from the config and the data (task names, example counts, accuracies, metrics).
 *
 * `isWorkerMessage` / `workerMessageIssue` check a parsed line before it is acted on: the worker is another
 * program, and a wrong field would otherwise surface as a wrong number in a report.
 */
import type { MatrixRank, StepEvent } from './events';
import { eventIssues, type EventBody, type SculptEvent } from './events';

/** The line prefix of a message; any other stdout line of the worker is log output. */
export const WORKER_MESSAGE_PREFIX = '@sculpt ';

/** The worker is up, the model loaded: the trainer emits `run-started`. */
export interface HelloMessage {
  type: 'hello';
  /** torch.__version__. */
  torch: string;
  /** transformers.__version__; null when the installed distribution does not say. */
  transformers: string | null;
  /** The device of rank 0: `cpu`, `cuda:0`. */
  device: string;
  /** What the device is (`NVIDIA H100 80GB HBM3`, the CPU). */
  deviceName: string;
  isGpu: boolean;
  /** Processes over all machines. */
  world: number;
  shard: 'none' | 'ddp' | 'fsdp2';
  precision: 'fp32' | 'bf16';
  /** Parameters of the model (all of them, unsharded). */
  parameters: number;
  layers: number;
  /** The method's target matrices (attention and MLP projections). */
  targets: number;
}

/** Task `task` starts training (not sent when a resume lands inside a task): the trainer emits `task-started`. */
export interface TaskStartedMessage {
  type: 'task-started';
  task: number;
  /** Parameters the optimizer updates during this task (model and method variables). */
  trainableParameters: number;
}

/**
 * The body of a `step` event (src/protocol/events.ts StepEvent), every `training.stepEventInterval` steps and at
 * the task's last step. `losses`, when present, holds the loss of every step since the previous message (the last
 * one at `step`): the trainer runs the divergence checks of the tfjs engine on them.
 */
export type StepMessage = Omit<StepEvent, 'v' | 'runId' | 'seq' | 'time' | 'loss'> & {
  /** The window's mean loss; null when it is not finite (JSON has no NaN), which ends the run as diverged. */
  loss: number | null;
  losses?: (number | null)[];
};

/** The body of a `ranks` event: the trainer emits it and writes the rank_pattern file. */
export interface RanksMessage {
  type: 'ranks';
  beforeTask: number;
  policy: string;
  matrices: MatrixRank[];
  seconds: number;
  warnings?: string[];
}

/**
 * One evaluation of one task's split in one mode, after task `afterTask` (-1: zero-shot), as the manifest's
 * `evaluations` entry (`mode`) describes it. Rank modes (`next`, `cont`): `scores`, one row per example of each
 * label's score in the task's label order. `generate`: `outputs`, the generated ids per example.
 */
export interface ScoresMessage {
  type: 'scores';
  afterTask: number;
  task: number;
  split: 'test' | 'validation';
  mode: 'next' | 'cont' | 'generate';
  /** A non-finite score is null (JSON has no NaN or infinity). */
  scores?: (number | null)[][];
  outputs?: number[][];
}

/** A checkpoint folder is complete: the trainer emits `checkpoint`, which commits it. */
export interface CheckpointMessage {
  type: 'checkpoint';
  /** `checkpoints/torch-<globalStep>-<reason>`, relative to the run folder (or absolute, inside it). */
  path: string;
  task: number;
  step: number;
  reason: 'task' | 'epoch' | 'steps' | 'stop';
}

export interface WarningMessage {
  type: 'warning';
  message: string;
  code?: string;
}

/** Stopped on request after its checkpoint (already sent); the worker exits 0 next. */
export interface StoppedMessage {
  type: 'stopped';
  task: number;
  step: number;
  /** The checkpoint's path, relative to the run folder. */
  checkpoint?: string;
}

/** Every task trained and evaluated: the trainer emits `run-finished`. */
export interface DoneMessage {
  type: 'done';
}

/** The worker failed; it exits non-zero next. */
export interface ErrorMessage {
  type: 'error';
  message: string;
  where?: string;
  hint?: string;
}

export type WorkerMessage =
  | HelloMessage
  | TaskStartedMessage
  | StepMessage
  | RanksMessage
  | ScoresMessage
  | CheckpointMessage
  | WarningMessage
  | StoppedMessage
  | DoneMessage
  | ErrorMessage;

export type WorkerMessageType = WorkerMessage['type'];

export const WORKER_MESSAGE_TYPES: readonly WorkerMessageType[] = [
  'hello',
  'task-started',
  'step',
  'ranks',
  'scores',
  'checkpoint',
  'warning',
  'stopped',
  'done',
  'error',
];

type Check = (v: unknown) => boolean;
const isInt: Check = (v) => typeof v === 'number' && Number.isInteger(v);
const isCount: Check = (v) => isInt(v) && (v as number) >= 0;
const isString: Check = (v) => typeof v === 'string';
const isBool: Check = (v) => typeof v === 'boolean';
const oneOf =
  (...xs: string[]): Check =>
  (v) =>
    typeof v === 'string' && xs.includes(v);
/** JSON has no NaN or Infinity; a worker writes them as null (Python's json writes NaN, which JSON.parse refuses). */
const isScore: Check = (v) => v === null || typeof v === 'number';
const rowsOf =
  (item: Check): Check =>
  (v) =>
    Array.isArray(v) && v.every((row) => Array.isArray(row) && row.every(item));

/** Required (and optional, `?`-suffixed) fields of each type whose body is not an event body. */
const FIELDS: Partial<Record<WorkerMessageType, Record<string, Check>>> = {
  hello: {
    torch: isString,
    transformers: (v) => v === null || isString(v),
    device: isString,
    deviceName: isString,
    isGpu: isBool,
    world: (v) => isInt(v) && (v as number) >= 1,
    shard: oneOf('none', 'ddp', 'fsdp2'),
    precision: oneOf('fp32', 'bf16'),
    parameters: isCount,
    layers: isCount,
    targets: isCount,
  },
  'task-started': { task: isCount, trainableParameters: isCount },
  scores: {
    afterTask: (v) => isInt(v) && (v as number) >= -1,
    task: isCount,
    split: oneOf('test', 'validation'),
    mode: oneOf('next', 'cont', 'generate'),
    'scores?': rowsOf(isScore),
    'outputs?': rowsOf(isCount),
  },
  checkpoint: { path: isString, task: isCount, step: isCount, reason: oneOf('task', 'epoch', 'steps', 'stop') },
  warning: { message: isString, 'code?': isString },
  stopped: { task: isCount, step: isCount, 'checkpoint?': isString },
  done: {},
  error: { message: isString, 'where?': isString, 'hint?': isString },
};

/** What is wrong with a parsed message line (its first problem), or null when it is a well-formed message. */
export function workerMessageIssue(m: unknown): string | null {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return 'not a JSON object';
  const o = m as Record<string, unknown>;
  if (typeof o.type !== 'string' || !(WORKER_MESSAGE_TYPES as readonly string[]).includes(o.type))
    return `unknown type ${JSON.stringify(o.type)} (expected one of ${WORKER_MESSAGE_TYPES.join(', ')})`;
  const type = o.type as WorkerMessageType;
  if (type === 'step' || type === 'ranks') {
    // The body of an event: checked against the event schema itself, so the two cannot drift apart.
    const { losses, ...body } = o;
    if (type === 'step') {
      if (losses !== undefined && !rowsOf(isScore)([losses])) return 'step: losses must be an array of numbers';
      // A non-finite loss is null: the divergence checks end the run on it, so it is never an event's.
      if (body.loss === null) body.loss = 0;
    }
    const issues = eventIssues({ v: 1, runId: '', seq: 0, time: 0, ...body } as unknown as SculptEvent);
    return issues.length ? issues[0] : null;
  }
  for (const [key, check] of Object.entries(FIELDS[type]!)) {
    const optional = key.endsWith('?');
    const name = optional ? key.slice(0, -1) : key;
    const v = o[name];
    if (v === undefined) {
      if (!optional) return `${type}: field '${name}' is missing`;
    } else if (!check(v)) {
      return `${type}: field '${name}' has a wrong value ${JSON.stringify(v)?.slice(0, 80)}`;
    }
  }
  if (type === 'scores' && (o.scores === undefined) === (o.outputs === undefined))
    return 'scores: exactly one of `scores` (rank modes) and `outputs` (generate) must be present';
  return null;
}

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return workerMessageIssue(m) === null;
}

/** The event body of a `step` message whose loss is finite (what the worker adds beyond it, removed). */
export function stepEventOf(m: StepMessage): EventBody {
  const { losses: _losses, loss, ...body } = m;
  return { ...body, loss: loss ?? NaN };
}
