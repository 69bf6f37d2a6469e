/**
 * The dashboard's model: each run's state is a fold over its events, so a live run and a replay of its
 * events.jsonl end in the same state (and the same picture). Folding is incremental (a live run appends a few
 * events at a time) except when a resumed run supersedes events: then the run is rebuilt from its effective
 * events, which is rare and cheap next to training. Unknown event types and repeated sequence numbers are ignored,
 * so readers keep working with newer trainers and with a host that delivers an event twice (live and from disk).
 *
 * The run's summary (status, method, metrics; src/runs/fold.ts) is the same fold every other view uses; what is
 * kept here besides is what only the charts need: step columns, task spans, matrix cells as evals arrive, ranks.
 */
import {
  isEvent,
  type CheckpointEvent,
  type ErrorEvent,
  type Metrics,
  type ModelSummary,
  type RanksEvent,
  type RunFinishedEvent,
  type RunStartedEvent,
  type SculptEvent,
  type StoppedEvent,
  type WarningEvent,
} from '../src/protocol/events';
import type { ExperimentInfo, HostMessage, RunInfo, RunMeta, RunSnapshot, ThemeKind } from '../src/protocol/webview';
import { WEBVIEW_PROTOCOL } from '../src/protocol/webview';
import { effectiveEvents, emptySummary, foldEvent, type RunSummary } from '../src/runs/fold';
import { hasEnded, settledStatus, type RunStatus } from '../src/runs/status';
import { Column } from './series';
import { baseLabel, relabel } from './labels';

export interface TaskSpan {
  task: number;
  name: string;
  steps: number;
  /** Global steps done before this task (from its first step event); null until a step arrives. */
  offset: number | null;
}

export interface StepColumns {
  globalStep: Column;
  task: Column;
  loss: Column;
  lr: Column;
  tokensPerSecond: Column;
  time: Column;
}

export interface CurrentTask {
  task: number;
  name: string;
  step: number;
  steps: number;
  progress: number;
  loss: number | null;
  tokensPerSecond: number | null;
}

export interface LogHealth {
  truncatedTail: boolean;
  badLines: number;
  readError?: string;
}

export interface RunState {
  key: string;
  /** The folder's base name (the run id). */
  name: string;
  /** What legends, titles and tables call the run: the user's title or `<method> · o<order> · s<seed>` (labels.ts). */
  label: string;
  /** What the folder says besides the log: its cell (job.json) and the user's notes. */
  meta: RunMeta;
  live: boolean;
  exitCode?: number | null;
  runId: string | null;
  method: string | null;
  experiment: string | null;
  tasks: string[];
  backend: RunStartedEvent['backend'] | null;
  model: ModelSummary | null;
  resumes: number;
  /** The shared fold of the effective events (its status says how the log's last session ended, if it did). */
  summary: RunSummary;
  current: CurrentTask | null;
  spans: TaskSpan[];
  steps: StepColumns;
  /** R[i][j] in percent; null where not measured (yet). Rows fill in as eval events arrive. */
  matrix: (number | null)[][];
  zeroShot: (number | null)[];
  /** The trainer's metrics after each task (task-finished). */
  taskMetrics: (Metrics | null)[];
  taskSeconds: (number | null)[];
  finished: RunFinishedEvent | null;
  /** One entry per boundary, ordered by beforeTask. */
  ranks: RanksEvent[];
  warnings: WarningEvent[];
  error: ErrorEvent | null;
  stopped: StoppedEvent | null;
  checkpoints: CheckpointEvent[];
  firstTime: number | null;
  lastTime: number | null;
  lastSeq: number;
  /** The effective events in order (what the run's JSON export holds). */
  events: SculptEvent[];
  /** Events skipped: unknown types, malformed objects, repeated sequence numbers. */
  ignored: number;
  log: LogHealth;
  /** Bumped on every change, so views can cache what they derive from a run. */
  version: number;
}

function emptyColumns(): StepColumns {
  return {
    globalStep: new Column(),
    task: new Column(),
    loss: new Column(),
    lr: new Column(),
    tokensPerSecond: new Column(),
    time: new Column(),
  };
}

export function emptyRun(
  info: Pick<RunInfo, 'key' | 'name'> & Partial<RunInfo>,
  log: LogHealth = { truncatedTail: false, badLines: 0 },
): RunState {
  return {
    key: info.key,
    name: info.name,
    label: info.name,
    meta: info.meta ?? {},
    live: info.live ?? false,
    runId: null,
    method: null,
    experiment: null,
    tasks: [],
    backend: null,
    model: null,
    resumes: 0,
    summary: emptySummary(info.name),
    current: null,
    spans: [],
    steps: emptyColumns(),
    matrix: [],
    zeroShot: [],
    taskMetrics: [],
    taskSeconds: [],
    finished: null,
    ranks: [],
    warnings: [],
    error: null,
    stopped: null,
    checkpoints: [],
    firstTime: null,
    lastTime: null,
    lastSeq: -Infinity,
    events: [],
    ignored: 0,
    log,
    version: 0,
  };
}

function matrixRow(run: RunState, i: number): (number | null)[] {
  while (run.matrix.length <= i) run.matrix.push(run.tasks.map(() => null));
  return run.matrix[i];
}

function experimentName(config: unknown): string | null {
  if (config && typeof config === 'object' && typeof (config as { name?: unknown }).name === 'string')
    return (config as { name: string }).name;
  return null;
}

/** Folds one (valid, new) event into the run. */
function fold(run: RunState, e: SculptEvent): void {
  foldEvent(run.summary, e);
  run.events.push(e);
  run.lastSeq = e.seq;
  if (typeof e.time === 'number') {
    run.firstTime ??= e.time;
    run.lastTime = e.time;
  }
  switch (e.type) {
    case 'run-started':
      run.runId = e.runId;
      run.method = e.method;
      run.experiment = experimentName(e.config);
      run.tasks = Array.isArray(e.tasks) ? e.tasks.map(String) : [];
      run.backend = e.backend ?? null;
      run.model = e.model ?? null;
      run.stopped = null;
      run.error = null;
      if (e.resumedFrom) run.resumes++;
      break;
    case 'task-started':
      run.spans = run.spans.filter((s) => s.task !== e.task);
      run.spans.push({ task: e.task, name: e.name, steps: e.steps, offset: null });
      run.current = {
        task: e.task,
        name: e.name,
        step: 0,
        steps: e.steps,
        progress: 0,
        loss: null,
        tokensPerSecond: null,
      };
      break;
    case 'step': {
      const s = run.steps;
      s.globalStep.push(e.globalStep);
      s.task.push(e.task);
      s.loss.push(typeof e.loss === 'number' ? e.loss : NaN);
      s.lr.push(e.lr);
      s.tokensPerSecond.push(e.tokensPerSecond);
      s.time.push(e.time);
      const span = run.spans.find((x) => x.task === e.task);
      if (span && span.offset === null) span.offset = e.globalStep - e.step;
      const name = span?.name ?? run.tasks[e.task] ?? `task ${e.task}`;
      const steps = span?.steps ?? run.current?.steps ?? 0;
      run.current = {
        task: e.task,
        name,
        step: e.step,
        steps,
        progress: e.progress,
        loss: e.loss,
        tokensPerSecond: e.tokensPerSecond,
      };
      break;
    }
    case 'eval':
      // The matrix here is the test matrix; validation accuracies reach the view through the fold.
      if (e.split === 'validation') break;
      if (e.afterTask === -1) {
        if (run.zeroShot[e.task] == null) run.zeroShot[e.task] = e.accuracy;
      } else if (e.afterTask >= 0) {
        matrixRow(run, e.afterTask)[e.task] = e.accuracy;
      }
      break;
    case 'ranks':
      run.ranks = run.ranks.filter((r) => r.beforeTask !== e.beforeTask);
      run.ranks.push(e);
      run.ranks.sort((a, b) => a.beforeTask - b.beforeTask);
      break;
    case 'task-finished':
      run.matrix[e.task] = [...e.row];
      matrixRow(run, e.task);
      run.taskMetrics[e.task] = e.metrics;
      run.taskSeconds[e.task] = e.seconds;
      if (run.current && run.current.task === e.task)
        run.current = { ...run.current, progress: 1, step: run.current.steps };
      break;
    case 'checkpoint':
      run.checkpoints.push(e);
      break;
    case 'warning':
      run.warnings.push(e);
      break;
    case 'error':
      run.error = e;
      break;
    case 'stopped':
      run.stopped = e;
      break;
    case 'run-finished':
      run.finished = e;
      run.matrix = e.matrix.map((row) => [...row]);
      if (e.zeroShot) run.zeroShot = [...e.zeroShot];
      run.current = null;
      break;
  }
}

/** Rebuilds a run from scratch (after a resume superseded part of it), keeping its identity and log health. */
function rebuild(run: RunState, events: SculptEvent[]): void {
  const fresh = emptyRun(run, run.log);
  fresh.live = run.live;
  fresh.exitCode = run.exitCode;
  fresh.ignored = run.ignored;
  fresh.label = run.label;
  for (const e of events) fold(fresh, e);
  Object.assign(run, fresh, { version: run.version });
}

/** Applies events in order; returns how many were taken (the rest were unknown, malformed or repeated). */
export function applyEvents(run: RunState, events: readonly unknown[]): number {
  let taken = 0;
  for (const e of events) {
    if (!isEvent(e) || e.seq <= run.lastSeq) {
      run.ignored++;
      continue;
    }
    if (e.type === 'run-started' && e.resumedFrom && run.events.some((x) => x.seq >= e.resumedFrom!.supersededFrom)) {
      rebuild(run, effectiveEvents([...run.events, e]));
    } else {
      fold(run, e);
    }
    taken++;
  }
  if (taken) {
    run.version++;
    // The run's own label; reduceHost then tells apart runs that would read the same.
    run.label = baseLabel(run);
  }
  return taken;
}

export function runFromEvents(
  info: Pick<RunInfo, 'key' | 'name'> & Partial<RunInfo>,
  events: readonly unknown[],
  log?: LogHealth,
): RunState {
  const run = emptyRun(info, log);
  applyEvents(run, events);
  return run;
}

/**
 * How the log ended, else what the host says (live) and what the log's health tells: a log cut mid-line or a
 * trainer that exited with an error code crashed; a log that merely stops was interrupted (or runs elsewhere).
 */
export function runStatus(run: RunState): RunStatus {
  const log = run.summary.status;
  if (hasEnded(log)) return log;
  if (run.live) return 'running';
  if (log === 'new') return run.log.readError ? 'crashed' : run.meta.queued ? 'queued' : 'new';
  if (run.log.truncatedTail || (run.exitCode != null && run.exitCode !== 0)) return 'crashed';
  return settledStatus(log, false);
}

// ---- the dashboard: the runs shown, in order, and the theme ----

export interface DashboardState {
  runs: RunState[];
  /** The experiment whose cells the runs are, when the panel shows an experiment folder. */
  experiment: ExperimentInfo | null;
  theme: ThemeKind;
  /** Set when the host speaks a newer protocol than this webview. */
  protocolError: string | null;
  /** Outcome of the last export, shown briefly. */
  notice: { text: string; kind: 'info' | 'error' } | null;
  /** Bumped when the set of runs changes (layouts are rebuilt then, not on every event). */
  layout: number;
}

export function emptyDashboard(theme: ThemeKind = 'dark'): DashboardState {
  return { runs: [], experiment: null, theme, protocolError: null, notice: null, layout: 0 };
}

function snapshotRun(s: RunSnapshot | (RunInfo & Partial<RunSnapshot>)): RunState {
  const log: LogHealth = { truncatedTail: s.truncatedTail ?? false, badLines: s.badLines ?? 0 };
  if (s.readError) log.readError = s.readError;
  const run = runFromEvents(s, s.events ?? [], log);
  run.live = s.live;
  return run;
}

/**
 * Applies a host message. Runs are updated in place (a live run's columns grow without copying); the returned
 * state is the same object, with `layout` bumped when runs were added or removed.
 */
export function reduceHost(state: DashboardState, msg: HostMessage): DashboardState {
  switch (msg.type) {
    case 'init':
      if (msg.protocol > WEBVIEW_PROTOCOL) {
        state.protocolError = `This dashboard speaks protocol ${WEBVIEW_PROTOCOL} but the extension sent ${msg.protocol}: reload the window after updating Sculpt.`;
      }
      state.runs = msg.runs.map(snapshotRun);
      state.experiment = msg.experiment ?? null;
      state.theme = msg.theme;
      state.layout++;
      break;
    case 'experiment':
      state.experiment = msg.experiment;
      state.layout++;
      break;
    case 'runs': {
      const old = new Map(state.runs.map((r) => [r.key, r]));
      state.runs = msg.runs.map((info) => {
        const prev = old.get(info.key);
        if (prev && !info.events) {
          prev.live = info.live;
          prev.name = info.name;
          prev.summary.name = info.name;
          if (info.meta) prev.meta = info.meta;
          return prev;
        }
        return snapshotRun(info);
      });
      state.layout++;
      break;
    }
    case 'events': {
      const run = state.runs.find((r) => r.key === msg.key);
      if (run) applyEvents(run, msg.events);
      break;
    }
    case 'live': {
      const run = state.runs.find((r) => r.key === msg.key);
      if (run) {
        run.live = msg.live;
        if (msg.exitCode !== undefined) run.exitCode = msg.exitCode;
        run.version++;
      }
      break;
    }
    case 'run-meta': {
      const run = state.runs.find((r) => r.key === msg.key);
      if (run) {
        run.meta = msg.meta;
        run.version++;
      }
      break;
    }
    case 'theme':
      state.theme = msg.theme;
      break;
    case 'export-result':
      state.notice =
        msg.outcome === 'saved'
          ? {
              text:
                msg.count != null
                  ? `Saved ${msg.count} file${msg.count === 1 ? '' : 's'} in ${msg.path ?? ''}`
                  : `Saved ${msg.path ?? ''}`.trim(),
              kind: 'info',
            }
          : msg.outcome === 'failed'
            ? { text: `Export failed: ${msg.error ?? 'unknown error'}`, kind: 'error' }
            : null;
      break;
  }
  relabel(state.runs);
  return state;
}
