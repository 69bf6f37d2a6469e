/**
 * Trainer events: what a run reports, over IPC to the extension and appended to runs/<id>/events.jsonl.
 * Every event is `{v, runId, seq, time, type, ...}`; `seq` increases by one per event of a run (a resumed run
 * continues the numbering). Readers ignore types they do not know and tolerate a truncated last line, so old
 * readers keep working and a crash never makes a log unreadable. Bump EVENTS_VERSION only for changes that
 * alter the meaning of existing fields.
 */
import { EVENTS_VERSION } from './version';
import { SchemaChecker, type JsonSchema } from './schema-check';
import eventsSchema from '../../schemas/events.schema.json';

export { EVENTS_VERSION };

export interface EventBase {
  v: number;
  runId: string;
  seq: number;
  /** Milliseconds since the epoch. */
  time: number;
}

export interface ModelSummary {
  arch: string;
  source: string;
  parameters: number;
  trainable: number;
  layers: number;
  targets: number;
}

/** What trains a run: the embedded TensorFlow.js engine, or the PyTorch worker and how it was launched. */
export interface EngineSummary {
  name: 'tfjs' | 'torch';
  /** The engine library's version (torch's `__version__`). */
  version?: string;
  /** Worker processes over all machines (torch). */
  world?: number;
  /** How the model is spread over them: `none`, `ddp` or `fsdp2` (torch). */
  shard?: string;
  /** `fp32`, or `bf16` autocast (torch). */
  precision?: string;
}

export interface RunStartedEvent extends EventBase {
  type: 'run-started';
  /** The resolved config (defaults filled in, absolute paths). */
  config: unknown;
  method: string;
  /** Task names in the order of this run. */
  tasks: string[];
  order: number;
  backend: {
    name: string;
    device: string;
    isGpu: boolean;
    fallbacks: string[];
    /** On the wasm backend, what the matrix products run on: `blas:openblas`, `blas:accelerate`, ... or `wasm`. */
    matmul?: string;
  };
  model: ModelSummary;
  /** The engine that trains (`engine` in the config); absent in logs written before the PyTorch engine. */
  engine?: EngineSummary;
  /**
   * Set when the run continues from a checkpoint: events with seq in [supersededFrom, this event's seq) were
   * written after that checkpoint by the interrupted process and are replaced by what follows.
   */
  resumedFrom?: { task: number; step: number; supersededFrom: number };
}

export interface TaskStartedEvent extends EventBase {
  type: 'task-started';
  /** 0-based position in the run's order. */
  task: number;
  name: string;
  /**
   * Examples this task trains on: its training data less its validation split (`eval.validation`), within
   * `trainLimit`, with what the method adds (replay's buffer examples).
   */
  trainExamples: number;
  steps: number;
  /** Parameters the optimizer updates during this task (model and method variables). */
  trainableParameters?: number;
}

export interface StepEvent extends EventBase {
  type: 'step';
  task: number;
  /** Optimizer steps within this task, 1-based. */
  step: number;
  /** Steps done over the whole run. */
  globalStep: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
  /** Fraction of this task's steps done, 0..1. */
  progress: number;
  /** Live tensor memory of the trainer, bytes. */
  memoryBytes?: number;
  /** Extra terms (e.g. the orthogonality or EWC penalty). */
  terms?: Record<string, number>;
}

export interface EvalEvent extends EventBase {
  type: 'eval';
  /** The task just trained (-1: the base model before any training). */
  afterTask: number;
  /** The task evaluated. */
  task: number;
  name: string;
  mode: 'rank' | 'generate';
  /**
   * Which examples: the task's test set, or its validation split (`eval.validation`, held out of the training
   * data). Absent in logs written before validation splits: the test set.
   */
  split?: 'test' | 'validation';
  accuracy: number;
  examples: number;
}

/** Per-matrix subspace statistics at a task boundary (adaptive SVD and any method reporting ranks). */
export interface MatrixRank {
  name: string;
  layer: number;
  role: string;
  shape: [number, number];
  k: number;
  minDim: number;
  importance?: number;
  ratio: number;
  sigmaMax: number;
  sigmaMin: number;
  sigmaMean: number;
  /** exp(entropy of σ/Σσ). */
  effectiveRank: number;
  /** Σ_{i<=k} σ_i² / Σ σ_i². */
  retainedEnergy: number;
  /**
   * True when the rank policy's formula put k outside [1, min_dim] and k is the clamped value (1 or min_dim).
   * Absent when it did not, and in logs written before the flag existed.
   */
  clamped?: boolean;
}

export interface RanksEvent extends EventBase {
  type: 'ranks';
  /** The boundary before this task (0-based) is being prepared. */
  beforeTask: number;
  policy: string;
  matrices: MatrixRank[];
  seconds: number;
  /** The rank policy's warnings at this boundary (clamped ranks, a degenerate normalisation); absent when none. */
  warnings?: string[];
}

export interface Metrics {
  /** Average accuracy over the tasks seen so far (OP_t). */
  AA: number;
  BWT: number | null;
  forgetting: number | null;
  FWT: number | null;
}

export interface TaskFinishedEvent extends EventBase {
  type: 'task-finished';
  task: number;
  name: string;
  /** R[task][j] for every task j of the run, in percent. */
  row: number[];
  metrics: Metrics;
  /** The same row on the validation splits, V[task][j]; absent when the run has none. */
  validationRow?: number[];
  /** The metrics of the validation matrix V so far (its zero-shot row for FWT); absent when the run has none. */
  validationMetrics?: Metrics;
  seconds: number;
}

export interface CheckpointEvent extends EventBase {
  type: 'checkpoint';
  path: string;
  task: number;
  step: number;
  reason: 'task' | 'epoch' | 'steps' | 'stop';
}

export interface WarningEvent extends EventBase {
  type: 'warning';
  message: string;
  /**
   * What the warning is about, for grouping: about the task data `data-overlap`, `unknown-tokens`,
   * `truncated-inputs`, `label-imbalance` and `label-unseen` (said at the run's start, as `sculpt validate`
   * says them); about a resume `checkpoint-skipped`, `checkpoint-unverified` and `config-unchecked`; from a
   * method `rank-policy`, `rank-pattern-export` and `o-lora-capacity`; `predictions-export` when
   * the per-example predictions (`eval.predictions`) could not be written.
   */
  code?: string;
}

export interface ErrorEvent extends EventBase {
  type: 'error';
  message: string;
  /** Where it happened, e.g. "task 2 (agnews), step 140". */
  where?: string;
  hint?: string;
}

export interface StoppedEvent extends EventBase {
  type: 'stopped';
  task: number;
  step: number;
  checkpoint?: string;
}

export interface RunFinishedEvent extends EventBase {
  type: 'run-finished';
  /** R[i][j] in percent, T x T. */
  matrix: number[][];
  /** Accuracy of the base model on each task (null when not measured). */
  zeroShot: (number | null)[] | null;
  metrics: Metrics;
  /**
   * V[i][j] in percent, T x T: accuracy on task j's validation split after training task i. Absent when the run
   * has no validation splits (`eval.validation` 0, or a log written before them), as are the two fields below.
   */
  validationMatrix?: number[][];
  /** The base model's accuracy on each validation split (null when not measured). */
  validationZeroShot?: (number | null)[] | null;
  /** AA, BWT, forgetting and FWT of the validation matrix, with the formulas of `metrics`. */
  validationMetrics?: Metrics;
  seconds: number;
}

export type SculptEvent =
  | RunStartedEvent
  | TaskStartedEvent
  | StepEvent
  | EvalEvent
  | RanksEvent
  | TaskFinishedEvent
  | CheckpointEvent
  | WarningEvent
  | ErrorEvent
  | StoppedEvent
  | RunFinishedEvent;

export type EventType = SculptEvent['type'];

export const EVENT_TYPES: readonly EventType[] = [
  'run-started',
  'task-started',
  'step',
  'eval',
  'ranks',
  'task-finished',
  'checkpoint',
  'warning',
  'error',
  'stopped',
  'run-finished',
];

/** An event before the writer stamps it. */
export type EventBody = SculptEvent extends infer E
  ? E extends SculptEvent
    ? Omit<E, keyof EventBase>
    : never
  : never;

export interface ParsedLog {
  events: SculptEvent[];
  /** Lines that were not valid JSON (a truncated last line after a crash is expected and not counted). */
  badLines: number[];
  truncatedTail: boolean;
  /** Events of types this reader does not know, skipped. */
  unknown: number;
  /** Lines holding an event of a known type that does not fit its schema (a wrong field type, garbage), skipped. */
  invalid: number[];
}

/**
 * Parses events.jsonl text: skips unknown types and events that do not fit the schema (counted), tolerates a
 * truncated last line. What it returns is safe to fold and render.
 */
export function parseEventLog(text: string): ParsedLog {
  const lines = text.split('\n');
  const out: ParsedLog = { events: [], badLines: [], truncatedTail: false, unknown: 0, invalid: [] };
  const last = lines.length - 1;
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      if (i === last) out.truncatedTail = true;
      else out.badLines.push(i + 1);
      return;
    }
    if (!isEvent(obj)) out.unknown++;
    else if (eventIssues(obj).length) out.invalid.push(i + 1);
    else out.events.push(obj);
  });
  return out;
}

export function isEvent(obj: unknown): obj is SculptEvent {
  if (obj === null || typeof obj !== 'object') return false;
  const e = obj as Record<string, unknown>;
  return (
    typeof e.type === 'string' &&
    (EVENT_TYPES as readonly string[]).includes(e.type) &&
    typeof e.seq === 'number' &&
    typeof e.runId === 'string'
  );
}

let checker: SchemaChecker | undefined;

/**
 * Where an event of a known type breaks schemas/events.schema.json (JSON paths with messages); empty when it fits.
 * Fields the schema does not know are allowed (the reader is tolerant where the writer is strict), so that a newer
 * trainer's additions do not hide its events.
 */
export function eventIssues(e: SculptEvent): string[] {
  if (!checker) {
    const schema = structuredClone(eventsSchema) as JsonSchema;
    for (const def of Object.values(schema.definitions ?? {})) delete def.additionalProperties;
    checker = new SchemaChecker(schema);
  }
  // One definition per type: `run-started` is RunStartedEvent.
  const def = e.type.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase()) + 'Event';
  // The checker writes defaults into what it checks: check a copy.
  return checker
    .check(structuredClone(e), { $ref: `#/definitions/${def}` })
    .map((i) => `${i.path || '(event)'}: ${i.message}`);
}
