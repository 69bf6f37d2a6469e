/**
 * The one reading of a run's event log: everything the CLI, the extension, the dashboard and reports say about a
 * run (its status, method, accuracy matrix, metrics, where training is now) is folded here, so that no two views
 * can disagree about the same log.
 *
 * Two ways in:
 *   - `foldRun(name, events)` for a whole log: drops the events a resume superseded, folds the rest and adds the
 *     finishing touches (matrix rows without gaps, metrics computed from R when the log carries none).
 *   - `emptySummary(name)` then `foldEvent(summary, event)` per event, for views that follow a live run (progress
 *     lines, the status bar). `finishSummary` gives the finished view of such a summary at any point.
 * No tfjs and no vscode here: the extension host and the dashboard's browser bundle use it too.
 */
import { EVENT_TYPES, type Metrics, type SculptEvent } from '../protocol/events';
import { runEngine, type RunEngine } from './run-engine';
import { metricsAfter } from './metrics';
import type { LogStatus } from './status';

/** What the trainer is doing when it is not stepping (for progress text). */
export type RunPhase = 'starting' | 'training' | 'evaluating' | 'ranks' | 'done';

export interface RunSummary {
  name: string;
  /** The method's label from run-started; '?' before it. */
  method: string;
  /** Task names in the order of this run. */
  tasks: string[];
  /** Which task order of its config this run trains (0-based; 0 is the config's `tasks` order), null before run-started. */
  order: number | null;
  /** The seed the run was trained with (its config's `seed`), null before run-started. */
  seed: number | null;
  /** The backend the trainer runs on (e.g. 'wasm'), null before run-started. */
  backend: string | null;
  /**
   * The engine and how it was launched (torch: world size, sharding, precision); null before run-started and in
   * logs from before the PyTorch engine.
   */
  engine: RunEngine | null;
  /** What the log says: 'new' with no events, else the state its last session left (see ./status.ts). */
  status: LogStatus;
  /**
   * Set by a reader that found no live trainer for a log still 'running' (settledStatus): the run was
   * interrupted (kill -9, a machine restart), and reports say so rather than 'running'.
   */
  interrupted?: true;
  /** Rows present so far, R[i][j] in percent (row i after task i). */
  matrix: number[][];
  /** Accuracy of the base model on each task, null when not measured. */
  zeroShot: (number | null)[] | null;
  /** The trainer's figures after the last finished task (run-finished, else task-finished). */
  metrics: Metrics | null;
  /**
   * Rows present so far of the validation matrix, V[i][j] in percent (accuracy on task j's validation split after
   * training task i); null when the run has no validation splits (`eval.validation` 0, or a log from before them).
   */
  validationMatrix: number[][] | null;
  /** The base model's accuracy on each validation split; null when not measured or without splits. */
  validationZeroShot: (number | null)[] | null;
  /** AA, BWT, forgetting and FWT of the validation matrix (as `metrics` of R); null without validation splits. */
  validationMetrics: Metrics | null;
  /** Wall time of the run, from run-finished. */
  seconds: number | null;
  /** The error of the last session, when it failed; a resumed session starts without one. */
  error: string | null;

  // Live progress: where training is, for progress lines and the status bar.
  /** 0-based task being trained, -1 before the first. */
  task: number;
  /** Fraction of the current task's steps done, 0..1. */
  taskProgress: number;
  /** The loss of the last step. */
  loss: number | null;
  phase: RunPhase;
  /**
   * What its experiment held fixed (model, tokenizer, tasks, orders, training, evaluation) as a fingerprint of its
   * folder's config.json (run-dir.ts's withFolderJob); reports pair runs only within one setting. Absent without
   * a readable config.
   */
  setting?: string;
}

export function emptySummary(name: string): RunSummary {
  return {
    name,
    method: '?',
    tasks: [],
    order: null,
    seed: null,
    backend: null,
    engine: null,
    status: 'new',
    matrix: [],
    zeroShot: null,
    metrics: null,
    validationMatrix: null,
    validationZeroShot: null,
    validationMetrics: null,
    seconds: null,
    error: null,
    task: -1,
    taskProgress: 0,
    loss: null,
    phase: 'starting',
  };
}

/**
 * Applies resume supersession: a `run-started` that resumes from a checkpoint replaces the events its
 * interrupted predecessor wrote after that checkpoint (seq in [supersededFrom, its own seq)).
 */
export function effectiveEvents(events: readonly SculptEvent[]): SculptEvent[] {
  let out: SculptEvent[] = [];
  for (const e of events) {
    if (e.type === 'run-started' && e.resumedFrom) {
      const from = e.resumedFrom.supersededFrom;
      out = out.filter((x) => x.seq < from);
    }
    out.push(e);
  }
  return out;
}

/** Whether an event ends a trainer session (run-finished, stopped, error): only a resume writes after it. */
export function isFinalEvent(e: SculptEvent): boolean {
  return e.type === 'run-finished' || e.type === 'stopped' || e.type === 'error';
}

/** The `seed` of a run-started event's resolved config, when it has one. */
function configSeed(config: unknown): number | null {
  const seed = config && typeof config === 'object' ? (config as { seed?: unknown }).seed : undefined;
  return typeof seed === 'number' ? seed : null;
}

const KNOWN: ReadonlySet<string> = new Set(EVENT_TYPES);

/**
 * Folds one event into `s` (in place) and returns it, so that `events.reduce(foldEvent, emptySummary(n))` works.
 * Events are taken as given: supersession needs the whole log (`effectiveEvents`, `foldRun`). Types this reader
 * does not know (from a newer trainer) change nothing.
 */
export function foldEvent(s: RunSummary, e: SculptEvent): RunSummary {
  if (!KNOWN.has(e.type)) return s;
  // A log with any event in it has started, even one whose run-started was lost.
  if (s.status === 'new') s.status = 'running';
  switch (e.type) {
    case 'run-started':
      // A new session (a start or a resume): what the previous one ended with is history.
      s.method = typeof e.method === 'string' ? e.method : s.method;
      if (Array.isArray(e.tasks)) s.tasks = [...e.tasks];
      if (typeof e.order === 'number') s.order = e.order;
      s.seed = configSeed(e.config) ?? s.seed;
      s.backend = e.backend?.name ?? s.backend;
      s.engine = runEngine(e) ?? s.engine;
      s.status = 'running';
      s.error = null;
      s.phase = s.task >= 0 ? 'training' : 'starting';
      break;
    case 'task-started':
      s.task = e.task;
      s.taskProgress = 0;
      s.phase = 'training';
      break;
    case 'step':
      s.task = e.task;
      s.taskProgress = e.progress;
      s.loss = e.loss;
      s.phase = 'training';
      break;
    case 'eval':
      s.phase = 'evaluating';
      // The base model's accuracy, measured before the first task; the first measurement of a task counts. An
      // event without `split` (a log from before validation splits) is a test measurement.
      if (e.afterTask === -1) {
        const validation = e.split === 'validation';
        const row = validation
          ? (s.validationZeroShot ??= s.tasks.map(() => null))
          : (s.zeroShot ??= s.tasks.map(() => null));
        if (e.task >= 0 && e.task < row.length && row[e.task] == null) row[e.task] = e.accuracy;
      }
      break;
    case 'ranks':
      s.phase = 'ranks';
      break;
    case 'task-finished':
      s.matrix[e.task] = e.row;
      s.metrics = e.metrics;
      if (Array.isArray(e.validationRow)) {
        s.validationMatrix ??= [];
        s.validationMatrix[e.task] = [...e.validationRow];
        s.validationMetrics = e.validationMetrics ?? null;
      }
      s.task = e.task;
      s.taskProgress = 1;
      s.phase = 'evaluating';
      break;
    case 'stopped':
      s.status = 'stopped';
      s.phase = 'done';
      break;
    case 'error':
      s.status = 'failed';
      s.error = e.message;
      s.phase = 'done';
      break;
    case 'run-finished':
      s.status = 'finished';
      s.matrix = e.matrix.map((row) => [...row]);
      // A trainer that did not measure the base model sends null: the eval events' row, if any, stands.
      if (e.zeroShot) s.zeroShot = [...e.zeroShot];
      s.metrics = e.metrics;
      if (Array.isArray(e.validationMatrix)) {
        s.validationMatrix = e.validationMatrix.map((row) => [...row]);
        if (e.validationZeroShot) s.validationZeroShot = [...e.validationZeroShot];
        s.validationMetrics = e.validationMetrics ?? null;
      }
      s.seconds = e.seconds;
      s.task = Math.max(s.task, s.tasks.length - 1);
      s.taskProgress = 1;
      s.phase = 'done';
      break;
  }
  return s;
}

/**
 * The finished view of a summary, as a copy (the fold can go on): matrix rows without gaps, and metrics computed
 * from R (and from V, the validation matrix) when no event carried them.
 */
export function finishSummary(s: RunSummary): RunSummary {
  const matrix = s.matrix.filter((r) => r);
  const metrics = s.metrics ?? (matrix.length ? metricsAfter(matrix, s.zeroShot) : null);
  const validationMatrix = s.validationMatrix && s.validationMatrix.filter((r) => r);
  const validationMetrics =
    s.validationMetrics ?? (validationMatrix?.length ? metricsAfter(validationMatrix, s.validationZeroShot) : null);
  return {
    ...s,
    matrix,
    zeroShot: s.zeroShot && [...s.zeroShot],
    metrics,
    validationMatrix,
    validationZeroShot: s.validationZeroShot && [...s.validationZeroShot],
    validationMetrics,
  };
}

/** The summary of a whole log (events in file order). */
export function foldRun(name: string, events: readonly SculptEvent[]): RunSummary {
  return finishSummary(effectiveEvents(events).reduce(foldEvent, emptySummary(name)));
}
