/**
 * Per-example predictions (`eval.predictions`): the files the trainer writes into a run folder and what the
 * dashboard is sent of them. The engine writes, src/runs/predictions.ts reads; both follow these types.
 *
 *   predictions/<point>/index.json                      PredictionManifest
 *   predictions/<point>/<split>/<n>-<task>.<mode>.jsonl  one PredictionRecord a line, in the split's order
 *
 * `<point>` is `zero-shot` or `after-task-<n>` (1-based, as `ranks/before-task-<n>`), `<split>` is `test` or
 * `validation`, `<n>` the task's 1-based position in the run's order. A point's folder is written whole under a
 * temporary name and renamed into place, so a folder that exists is complete; a resumed run replaces the points
 * it evaluates again.
 */

export const PREDICTIONS_FORMAT = 1;

export type PredictionSplit = 'test' | 'validation';
export type PredictionMode = 'rank' | 'generate';

/** One evaluated example. */
export interface PredictionRecord {
  /** Position in the task's split (test set or validation split), as loaded. */
  index: number;
  /** The example's input, cut at 500 characters (then `inputTruncated` is true). */
  input: string;
  inputTruncated?: boolean;
  expected: string;
  /** rank: the best-scoring label; generate: the greedy continuation up to EOS, trimmed. */
  predicted: string;
  /** What the accuracy counts: the same label (rank) or the same text after trimming (generate). */
  correct: boolean;
  /**
   * rank only: each label's log-probability given the prompt (summed over its tokens, and EOS where scored), to 6
   * significant digits; null where it was not finite.
   */
  scores?: Record<string, number | null>;
}

/** One file of a point: a task's split evaluated in one mode. */
export interface PredictionFileEntry {
  /** Relative to the point's folder, e.g. `test/1-sentiment.rank.jsonl`. */
  file: string;
  split: PredictionSplit;
  /** 0-based position in the run's order. */
  task: number;
  name: string;
  mode: PredictionMode;
  /** The task's label set, in the order `scores` were computed. */
  labels: string[];
  examples: number;
  correct: number;
  /** Percent, as in the `eval` event of the same task, split and mode. */
  accuracy: number;
}

/** `predictions/<point>/index.json`. */
export interface PredictionManifest {
  format: number;
  /** -1: zero-shot; i: after training the task at position i. */
  afterTask: number;
  /** The run's task names, in order. */
  tasks: string[];
  files: PredictionFileEntry[];
}

/** A file of a run's predictions as listed for a viewer: its entry and the point it belongs to. */
export interface PredictionSetInfo extends PredictionFileEntry {
  /** The point's folder name. */
  point: string;
  afterTask: number;
}

/** Which set a viewer wants; anything left out (or not found) falls back to the default: see choosePredictionSet. */
export interface PredictionPick {
  point?: string;
  split?: PredictionSplit;
  task?: number;
  mode?: PredictionMode;
}

/**
 * Counts of (expected, predicted) pairs: rows are expected labels, columns predicted labels, in the same order.
 * `other[i]` counts predictions of row i that are no label (generated text); null when every prediction is one.
 */
export interface ConfusionMatrix {
  labels: string[];
  counts: number[][];
  other: number[] | null;
  total: number;
  correct: number;
}

export interface LabelScore {
  label: string;
  /** Log-probability. */
  logprob: number;
  /** The label's share of the probability over the label set (softmax of the log-probabilities). */
  share: number;
}

/** A misclassified example as shown: the record with its best-scoring labels. */
export interface MisclassifiedRow {
  index: number;
  input: string;
  inputTruncated?: boolean;
  expected: string;
  predicted: string;
  /** rank only: the best labels first, at most 3. */
  top: LabelScore[];
}

/** One set's confusion matrix and misclassified examples, computed by the host for the dashboard. */
export interface PredictionsView {
  set: PredictionSetInfo;
  /** null when the label set is too large to draw (see `confusionNote`). */
  confusion: ConfusionMatrix | null;
  confusionNote?: string;
  /** The first misclassified examples, in split order. */
  misclassified: MisclassifiedRow[];
  /** All misclassified examples of the set (more than `misclassified` holds when it was cut). */
  misclassifiedTotal: number;
  /** Lines of the file that could not be read (a damaged file); the rest are shown. */
  badLines: number;
}

// ---- dashboard messages (declared with the others in ./webview.ts) ----

/** webview -> host: the predictions of run `key`; answered by a `predictions` message with the same requestId. */
export interface PredictionsRequestMessage {
  type: 'predictions-request';
  requestId: number;
  key: string;
  pick: PredictionPick;
}

/** host -> webview: every set the run folder has, and the one `pick` chose (null when there is none). */
export interface PredictionsMessage {
  type: 'predictions';
  requestId: number;
  key: string;
  sets: PredictionSetInfo[];
  view: PredictionsView | null;
  /** Why the folder's predictions could not be read (the sets found are still listed). */
  error?: string;
}

const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

export function isPredictionPick(x: unknown): x is PredictionPick {
  return (
    isObj(x) &&
    (x.point === undefined || typeof x.point === 'string') &&
    (x.split === undefined || x.split === 'test' || x.split === 'validation') &&
    (x.task === undefined || Number.isInteger(x.task)) &&
    (x.mode === undefined || x.mode === 'rank' || x.mode === 'generate')
  );
}

export function isPredictionsRequest(x: Record<string, unknown>): boolean {
  return Number.isInteger(x.requestId) && typeof x.key === 'string' && isPredictionPick(x.pick);
}

export function isPredictionsMessage(x: Record<string, unknown>): boolean {
  return (
    Number.isInteger(x.requestId) &&
    typeof x.key === 'string' &&
    Array.isArray(x.sets) &&
    (x.view === null || (isObj(x.view) && isObj(x.view.set) && Array.isArray(x.view.misclassified))) &&
    (x.error === undefined || typeof x.error === 'string')
  );
}
