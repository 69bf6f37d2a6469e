/**
 * The dashboard's message contract: every message between the extension host and the dashboard webview is
 * declared here and imported by both sides. Handshake: the webview posts `ready` once its script runs; the host
 * sends nothing before that (messages posted to a webview that has not loaded yet are lost), then answers with
 * `init`. After a reload (the panel hidden and shown, or the window reloaded) the webview posts `ready` again and
 * gets a fresh `init`, so the host is always the source of the runs' events and the webview only keeps its UI
 * choices (tab, toggles) in `setState`.
 *
 * Runs are identified by `key`, the run folder's path as the host knows it: stable across reloads and unique
 * even when two folders hold runs with the same runId (a copied folder). A panel opened on an experiment folder
 * also names the experiment (`experiment` in `init`; an `experiment` message with the `runs` message that adds
 * cells), so the webview knows each cell's method, order and seed before its log does.
 */
import type { SculptEvent } from './events';
import {
  isPredictionsMessage,
  isPredictionsRequest,
  type PredictionsMessage,
  type PredictionsRequestMessage,
} from './predictions';

/** Bump when a message changes meaning; the webview shows an error rather than misreading a newer host. */
export const WEBVIEW_PROTOCOL = 1;

/** The webview panel type, used for the panel and its serializer (package.json: `onWebviewPanel:<type>`). */
export const DASHBOARD_VIEW_TYPE = 'sculpt.dashboard';

export type ThemeKind = 'light' | 'dark' | 'high-contrast' | 'high-contrast-light';

export interface RunInfo {
  /** The run folder path; the identity of the run in every message. */
  key: string;
  /** The folder's base name (the run id): file names of exports, tooltips. */
  name: string;
  /** True while the host has a trainer attached whose events will follow. */
  live: boolean;
  /** What the run folder says besides its log; absent in a `runs` message, the webview keeps what it had. */
  meta?: RunMeta;
}

/**
 * What a run folder says besides its log: the cell job.json names (known before the first event) and the user's
 * notes.json. The webview labels runs from it ("adaptive-svd · o2 · s1", or the user's title).
 */
export interface RunMeta {
  method?: string;
  /** 0-based task order of the config. */
  order?: number | null;
  seed?: number | null;
  /** The config's name. */
  experiment?: string;
  /** job.json exists and the log has no event yet: the run waits for a trainer. */
  queued?: boolean;
  /** The user's name for the run, empty for none. */
  title?: string;
  notes?: string;
  tags?: string[];
}

/** A run with the events read from its events.jsonl (effective or not: the webview applies supersession). */
export interface RunSnapshot extends RunInfo {
  events: SculptEvent[];
  /** The log ended in a partial line (a crash while writing); the events before it are shown. */
  truncatedTail: boolean;
  /** Lines that were not valid JSON (not counting a truncated last line). */
  badLines: number;
  /** Set when the folder could not be read at all; the run is listed with this message. */
  readError?: string;
}

/** One cell of an experiment's grid (src/runs/experiment-dir.ts), by the key of its run folder. */
export interface ExperimentCellInfo {
  key: string;
  /** The method's label, as in reports. */
  method: string;
  methodIndex: number;
  /** 0-based index into `orders`. */
  order: number;
  seed: number;
}

/**
 * The experiment a panel shows (its experiment.json): which run is which cell, so that cells that have not
 * started yet are shown with their method, and the baseline and task order the aggregate uses.
 */
export interface ExperimentInfo {
  /** The experiment folder. */
  dir: string;
  name: string;
  methods: string[];
  /** Task names of each order, the config's `tasks` first. */
  orders: string[][];
  seeds: number[];
  baseline: string | null;
  /** In run order; the panel's runs are these cells' folders. */
  cells: ExperimentCellInfo[];
}

// ---- host -> webview ----

/** The complete picture after `ready`: replaces whatever the webview had. */
export interface InitMessage {
  type: 'init';
  protocol: number;
  runs: RunSnapshot[];
  theme: ThemeKind;
  /** Set when the panel shows the cells of an experiment folder. */
  experiment?: ExperimentInfo | null;
}

/** Events appended to one run (live from a trainer, or read from a growing log). Duplicates by seq are ignored. */
export interface EventsMessage {
  type: 'events';
  key: string;
  events: SculptEvent[];
}

/**
 * The set of runs shown changed (compare mode: runs added or removed). Runs listed with `events` are (re)loaded
 * from those events; runs listed without keep what the webview has; runs not listed are dropped.
 */
export interface RunsMessage {
  type: 'runs';
  runs: (RunInfo & Partial<Omit<RunSnapshot, keyof RunInfo>>)[];
}

/** A run's trainer attached or exited (an exit without a final event shows the run as interrupted). */
export interface LiveMessage {
  type: 'live';
  key: string;
  live: boolean;
  /** The trainer's exit code when it exited. */
  exitCode?: number | null;
}

export interface ThemeMessage {
  type: 'theme';
  theme: ThemeKind;
}

/** The outcome of an export request: saved (with the path), cancelled by the user, or failed. */
export interface ExportResultMessage {
  type: 'export-result';
  requestId: number;
  outcome: 'saved' | 'cancelled' | 'failed';
  /** The file written, or the folder of an `export-files` request. */
  path?: string;
  /** Files written by an `export-files` request. */
  count?: number;
  error?: string;
}

/** The experiment's record changed (cells added): sent with the `runs` message that adds their runs. */
export interface ExperimentMessage {
  type: 'experiment';
  experiment: ExperimentInfo | null;
}

/** A run's folder metadata changed (renamed, notes or tags edited). */
export interface RunMetaMessage {
  type: 'run-meta';
  key: string;
  meta: RunMeta;
}

export type HostMessage =
  | InitMessage
  | EventsMessage
  | RunsMessage
  | LiveMessage
  | ThemeMessage
  | ExportResultMessage
  | ExperimentMessage
  | RunMetaMessage
  | PredictionsMessage;

// ---- webview -> host ----

export interface ReadyMessage {
  type: 'ready';
  protocol: number;
}

export type ExportFormat = 'png' | 'svg' | 'csv' | 'json';

/**
 * Save a file beside the run (`key`) or the experiment shown. `data` is the file's text for svg/csv/json and a
 * `data:image/png;base64,` URL for png (a canvas cannot hand over bytes any other way through postMessage without
 * copying twice).
 */
export interface ExportMessage {
  type: 'export';
  requestId: number;
  format: ExportFormat;
  /** A file name without folder, e.g. "tiny-seqft-accuracy-matrix.csv". */
  suggestedName: string;
  /** The run whose folder the dialog starts in. */
  key?: string;
  data: string;
}

/** One file of an `export-files` request. */
export interface ExportFile {
  format: ExportFormat;
  /** A file name without folder. */
  name: string;
  data: string;
}

/** "Export all charts": every file into one new folder beside the experiment (or the first run) shown. */
export interface ExportFilesMessage {
  type: 'export-files';
  requestId: number;
  /** The folder's name, without parent (e.g. "charts-accuracy"); the host makes it unique. */
  folder: string;
  files: ExportFile[];
}

export interface OpenRunFolderMessage {
  type: 'open-run-folder';
  key: string;
}

/** The user picked a task boundary in the subspace view; the host may reveal it elsewhere (e.g. a ranks tree). */
export interface SelectBoundaryMessage {
  type: 'select-boundary';
  key: string;
  beforeTask: number;
}

/** Something went wrong inside the webview; the host writes it to its log. */
export interface WebviewErrorMessage {
  type: 'webview-error';
  message: string;
}

export type WebviewMessage =
  | ReadyMessage
  | ExportMessage
  | ExportFilesMessage
  | OpenRunFolderMessage
  | SelectBoundaryMessage
  | WebviewErrorMessage
  | PredictionsRequestMessage;

/** What the webview stores with setState: enough for the serializer to reopen the same runs after a reload. */
export interface DashboardPersistedState {
  protocol: number;
  runKeys: string[];
  /** The experiment folder of a panel opened on an experiment: restored as one, picking up its current cells. */
  experimentDir?: string;
  ui?: unknown;
}

// ---- validation: each side checks what it receives, since a message is only JSON from the other side ----

const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
const isStr = (x: unknown): x is string => typeof x === 'string';
const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);
const isFormat = (x: unknown): x is ExportFormat => x === 'png' || x === 'svg' || x === 'csv' || x === 'json';

export function isWebviewMessage(x: unknown): x is WebviewMessage {
  if (!isObj(x)) return false;
  switch (x.type) {
    case 'ready':
      return isInt(x.protocol);
    case 'export':
      return (
        isInt(x.requestId) &&
        isFormat(x.format) &&
        isStr(x.suggestedName) &&
        isStr(x.data) &&
        (x.key === undefined || isStr(x.key))
      );
    case 'export-files':
      return (
        isInt(x.requestId) &&
        isStr(x.folder) &&
        Array.isArray(x.files) &&
        x.files.every((f) => isObj(f) && isFormat(f.format) && isStr(f.name) && isStr(f.data))
      );
    case 'open-run-folder':
      return isStr(x.key);
    case 'select-boundary':
      return isStr(x.key) && isInt(x.beforeTask);
    case 'predictions-request':
      return isPredictionsRequest(x);
    case 'webview-error':
      return isStr(x.message);
    default:
      return false;
  }
}

export function isHostMessage(x: unknown): x is HostMessage {
  if (!isObj(x)) return false;
  switch (x.type) {
    case 'init':
      return (
        isInt(x.protocol) &&
        Array.isArray(x.runs) &&
        isStr(x.theme) &&
        (x.experiment === undefined || x.experiment === null || isExperimentInfo(x.experiment))
      );
    case 'events':
      return isStr(x.key) && Array.isArray(x.events);
    case 'runs':
      return Array.isArray(x.runs);
    case 'live':
      return isStr(x.key) && typeof x.live === 'boolean';
    case 'theme':
      return isStr(x.theme);
    case 'export-result':
      return isInt(x.requestId) && isStr(x.outcome);
    case 'experiment':
      return x.experiment === null || isExperimentInfo(x.experiment);
    case 'predictions':
      return isPredictionsMessage(x);
    case 'run-meta':
      return isStr(x.key) && isObj(x.meta);
    default:
      return false;
  }
}

export function isExperimentInfo(x: unknown): x is ExperimentInfo {
  return (
    isObj(x) &&
    isStr(x.dir) &&
    isStr(x.name) &&
    Array.isArray(x.methods) &&
    x.methods.every(isStr) &&
    Array.isArray(x.orders) &&
    x.orders.every((o) => Array.isArray(o) && o.every(isStr)) &&
    Array.isArray(x.seeds) &&
    x.seeds.every(isInt) &&
    (x.baseline === null || isStr(x.baseline)) &&
    Array.isArray(x.cells) &&
    x.cells.every(
      (c) => isObj(c) && isStr(c.key) && isStr(c.method) && isInt(c.methodIndex) && isInt(c.order) && isInt(c.seed),
    )
  );
}

export function isPersistedState(x: unknown): x is DashboardPersistedState {
  return (
    isObj(x) &&
    isInt(x.protocol) &&
    Array.isArray(x.runKeys) &&
    x.runKeys.every(isStr) &&
    (x.experimentDir === undefined || isStr(x.experimentDir))
  );
}

/** A safe file name from run and chart names (which come from user configs). */
export function exportFileName(...parts: string[]): string {
  const base = parts
    .filter(Boolean)
    .join('-')
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/^[._]+/, '');
  return base.slice(0, 120) || 'sculpt-export';
}
