/**
 * Per-example prediction files of a run folder (layout and types: src/protocol/predictions.ts): written by the
 * trainer after the evaluations `eval.predictions` asks for, read by the dashboard and `sculpt report`. No tfjs:
 * the engine hands over plain predictions, and the extension reads them back.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  PREDICTIONS_FORMAT,
  type PredictionFileEntry,
  type PredictionManifest,
  type PredictionMode,
  type PredictionPick,
  type PredictionRecord,
  type PredictionSetInfo,
  type PredictionSplit,
} from '../protocol/predictions';
import { safeName } from './run-dir';
import { confusionMatrix, frequentConfusions } from './confusion';

export const PREDICTIONS_DIR = 'predictions';
export const MANIFEST_FILE = 'index.json';
/** Inputs are cut here: enough to recognise an example, not a copy of the data set. */
export const MAX_INPUT_CHARS = 500;

/** `eval.predictions`: whether the evaluation after `afterTask` (-1: zero-shot) of a run of `tasks` tasks writes. */
export function writesPredictions(when: 'final' | 'all' | 'none', afterTask: number, tasks: number): boolean {
  return when === 'all' || (when === 'final' && afterTask === tasks - 1);
}

/** The folder name of an evaluation point: `zero-shot` or `after-task-<n>` (1-based). */
export function pointName(afterTask: number): string {
  return afterTask < 0 ? 'zero-shot' : `after-task-${afterTask + 1}`;
}

/** The evaluation point a folder name stands for, or undefined for any other name. */
export function pointOf(name: string): number | undefined {
  if (name === 'zero-shot') return -1;
  const m = /^after-task-([1-9]\d*)$/.exec(name);
  return m ? Number(m[1]) - 1 : undefined;
}

/** A file's path within its point's folder. */
export function predictionFile(split: PredictionSplit, task: number, name: string, mode: PredictionMode): string {
  return `${split}/${task + 1}-${safeName(name)}.${mode}.jsonl`;
}

/** A record of one example; the input cut at MAX_INPUT_CHARS (never inside a surrogate pair). */
export function predictionRecord(
  index: number,
  input: string,
  expected: string,
  predicted: string,
  correct: boolean,
  scores?: { labels: readonly string[]; values: readonly number[] },
): PredictionRecord {
  let cut = input;
  if (input.length > MAX_INPUT_CHARS) {
    const end = /[\uD800-\uDBFF]/.test(input[MAX_INPUT_CHARS - 1]) ? MAX_INPUT_CHARS - 1 : MAX_INPUT_CHARS;
    cut = input.slice(0, end);
  }
  return {
    index,
    input: cut,
    ...(cut !== input ? { inputTruncated: true } : {}),
    expected,
    predicted,
    correct,
    // fromEntries makes every label an own property, `__proto__` included; 6 digits say which label won.
    ...(scores
      ? {
          scores: Object.fromEntries(
            scores.labels.map((l, i) => {
              const v = scores.values[i];
              return [l, Number.isFinite(v) ? Number(v.toPrecision(6)) : null];
            }),
          ),
        }
      : {}),
  };
}

/** What the engine hands over for one file. */
export interface PredictionSetData {
  split: PredictionSplit;
  task: number;
  name: string;
  mode: PredictionMode;
  labels: string[];
  accuracy: number;
  records: PredictionRecord[];
}

/**
 * Writes one evaluation point: every file into a temporary folder, the manifest last, then the folder renamed
 * over the point's, so a reader finds the whole point or none of it (an earlier write of the same point is
 * replaced). Returns the point's folder. On failure nothing of this write stays.
 */
export function writePredictionPoint(
  runDir: string,
  afterTask: number,
  tasks: readonly string[],
  sets: readonly PredictionSetData[],
): string {
  const root = join(runDir, PREDICTIONS_DIR);
  const point = pointName(afterTask);
  const final = join(root, point);
  const tmp = join(root, `.${point}.${process.pid}.tmp`);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const files: PredictionFileEntry[] = [];
    for (const s of sets) {
      const file = predictionFile(s.split, s.task, s.name, s.mode);
      mkdirSync(join(tmp, s.split), { recursive: true });
      writeFileSync(join(tmp, file), s.records.map((r) => JSON.stringify(r) + '\n').join(''));
      files.push({
        file,
        split: s.split,
        task: s.task,
        name: s.name,
        mode: s.mode,
        labels: s.labels,
        examples: s.records.length,
        correct: s.records.filter((r) => r.correct).length,
        accuracy: s.accuracy,
      });
    }
    const manifest: PredictionManifest = { format: PREDICTIONS_FORMAT, afterTask, tasks: [...tasks], files };
    writeFileSync(join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return final;
}

/**
 * Removes the points from `fromAfterTask` on (-1: all of them) and any temporary folder a crash left: a run
 * that starts over, or resumes before those points, evaluates them again, and until it does the files of the
 * session it supersedes must not pass for its own.
 */
export function clearPredictionsFrom(runDir: string, fromAfterTask: number): void {
  const root = join(runDir, PREDICTIONS_DIR);
  if (!existsSync(root)) return;
  for (const name of readdirSync(root)) {
    const at = pointOf(name);
    if (name.startsWith('.') || (at !== undefined && at >= fromAfterTask))
      rmSync(join(root, name), { recursive: true, force: true });
  }
}

const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

function isEntry(x: unknown): x is PredictionFileEntry {
  return (
    isObj(x) &&
    typeof x.file === 'string' &&
    (x.split === 'test' || x.split === 'validation') &&
    Number.isInteger(x.task) &&
    typeof x.name === 'string' &&
    (x.mode === 'rank' || x.mode === 'generate') &&
    Array.isArray(x.labels) &&
    x.labels.every((l) => typeof l === 'string') &&
    Number.isInteger(x.examples) &&
    Number.isInteger(x.correct) &&
    typeof x.accuracy === 'number'
  );
}

export interface PredictionListing {
  /** By point (zero-shot first), then split (test first), task and mode. */
  sets: PredictionSetInfo[];
  /** Points whose index.json could not be read, with why. */
  problems: string[];
}

/** Every prediction file of a run folder, from the points' manifests; no folder means none. */
export function listPredictionSets(runDir: string): PredictionListing {
  const root = join(runDir, PREDICTIONS_DIR);
  const out: PredictionListing = { sets: [], problems: [] };
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return out;
  }
  for (const point of names) {
    const at = pointOf(point);
    if (at === undefined) continue;
    const path = join(root, point, MANIFEST_FILE);
    let m: unknown;
    try {
      m = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      out.problems.push(`${path}: ${(e as Error).message}`);
      continue;
    }
    if (!isObj(m) || m.format !== PREDICTIONS_FORMAT || m.afterTask !== at || !Array.isArray(m.files)) {
      out.problems.push(`${path}: not a format ${PREDICTIONS_FORMAT} manifest of ${point}`);
      continue;
    }
    for (const f of m.files) if (isEntry(f)) out.sets.push({ ...f, point, afterTask: at });
  }
  const splitRank = (s: PredictionSplit) => (s === 'test' ? 0 : 1);
  out.sets.sort(
    (a, b) =>
      a.afterTask - b.afterTask ||
      splitRank(a.split) - splitRank(b.split) ||
      a.task - b.task ||
      a.mode.localeCompare(b.mode),
  );
  return out;
}

function isRecord(x: unknown): x is PredictionRecord {
  return (
    isObj(x) &&
    Number.isInteger(x.index) &&
    typeof x.input === 'string' &&
    typeof x.expected === 'string' &&
    typeof x.predicted === 'string' &&
    typeof x.correct === 'boolean' &&
    (x.scores === undefined || isObj(x.scores))
  );
}

/** A set's records; lines that are not records are counted, not thrown on. */
export function readPredictionRecords(
  runDir: string,
  set: Pick<PredictionSetInfo, 'point' | 'file'>,
): { records: PredictionRecord[]; badLines: number } {
  if (set.file.split('/').some((p) => p === '..' || p === '') || pointOf(set.point) === undefined)
    throw new Error(`not a prediction file of the run folder: ${set.point}/${set.file}`);
  const text = readFileSync(join(runDir, PREDICTIONS_DIR, set.point, set.file), 'utf8');
  const records: PredictionRecord[] = [];
  let badLines = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r: unknown = JSON.parse(line);
      if (isRecord(r)) records.push(r);
      else badLines++;
    } catch {
      badLines++;
    }
  }
  return { records, badLines };
}

/**
 * The set a viewer shows for `pick`: each part of the pick that names an existing set is kept, in the order
 * point, split, task, mode; the rest falls back to the last point, the test split, the first task and mode.
 */
export function choosePredictionSet(
  sets: readonly PredictionSetInfo[],
  pick: PredictionPick = {},
): PredictionSetInfo | undefined {
  if (!sets.length) return undefined;
  const narrow = <K extends keyof PredictionPick>(
    from: readonly PredictionSetInfo[],
    key: K,
    fallback: (xs: readonly PredictionSetInfo[]) => PredictionSetInfo[K],
  ) => {
    const wanted = pick[key] !== undefined && from.some((s) => s[key] === pick[key]) ? pick[key] : fallback(from);
    return from.filter((s) => s[key] === wanted);
  };
  let c = narrow(sets, 'point', (xs) => xs.reduce((a, b) => (b.afterTask > a.afterTask ? b : a)).point);
  c = narrow(c, 'split', (xs) => (xs.some((s) => s.split === 'test') ? 'test' : xs[0].split));
  c = narrow(c, 'task', (xs) => xs[0].task);
  c = narrow(c, 'mode', (xs) => xs[0].mode);
  return c[0];
}

const md = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

/**
 * The Markdown report's predictions section: per run, the test sets of its latest evaluation with predictions
 * (after the last task for a finished run), each task's most frequent confusions. Empty when no run has any.
 */
export function predictionsMarkdown(runs: readonly { name: string; dir: string }[]): string[] {
  const lines: string[] = [];
  for (const run of runs) {
    const sets = listPredictionSets(run.dir).sets.filter((s) => s.split === 'test');
    if (!sets.length) continue;
    const last = sets.reduce((a, b) => (b.afterTask > a.afterTask ? b : a)).point;
    lines.push('', `### ${md(run.name)}: ${last.replace(/-/g, ' ')}`, '');
    lines.push('| task | mode | examples | accuracy | most frequent confusions (expected → predicted: count) |');
    lines.push('|---|---|---|---|---|');
    for (const s of sets.filter((x) => x.point === last)) {
      let cell: string;
      try {
        const { records } = readPredictionRecords(run.dir, s);
        const top = frequentConfusions(confusionMatrix(records, s.labels));
        cell = top.length ? top.map((c) => `${md(c.expected)} → ${md(c.predicted)}: ${c.count}`).join('; ') : 'none';
      } catch (e) {
        cell = `unreadable (${md((e as Error).message)})`;
      }
      lines.push(`| ${md(s.name)} | ${s.mode} | ${s.examples} | ${s.accuracy.toFixed(1)} | ${cell} |`);
    }
  }
  return lines.length
    ? [
        '## Predictions',
        '',
        'Per-example predictions in the run folders (`eval.predictions`), on the test sets.',
        ...lines,
      ]
    : [];
}
