/**
 * `sculpt report <runDir...> [--csv | --html | --json] [--baseline <method>] [--out file]`: Markdown (default),
 * CSV, a self-contained HTML page, or JSON `{ runs, aggregate }` (for scripts: the runs' summaries, one reading
 * of the logs, the same as every view's, and their aggregate over seeds and orders). `--baseline` names the
 * method the others are compared with (default: the config's `compare.baseline`, else seqft when it ran, else the
 * first method). The Markdown report ends with the confusions of the runs' final predictions (`eval.predictions`);
 * the HTML page shows a confusion matrix per task and the misclassified examples; with `--csv --out report.csv`
 * every per-example prediction goes to `report.predictions.csv` beside it. The folders above `--out` are created
 * when missing.
 */
import { basename, resolve } from 'node:path';
import { aggregateRuns, methodsOf } from '../runs/aggregate';
import { closest } from '../protocol/schema-check';
import { OutputFileError, folderProblem, writeOutputFile } from './folders';
import type { ExperimentAggregate } from '../runs/aggregate-types';
import { foldRun, type RunSummary } from '../runs/fold';
import { readRunDir, withFolderJob } from '../runs/run-dir';
import { livePid } from '../supervisor/run-files';
import { csvReport, markdownReport, predictionsCsv, predictionsCsvPath } from '../runs/report';
import { htmlReport } from '../runs/report-html';
import { predictionsMarkdown } from '../runs/predictions';

export function reportCommand(
  dirs: string[],
  opts: { csv: boolean; html?: boolean; json?: boolean; out?: string; baseline?: string },
): number {
  if (dirs.length === 0) {
    console.error('sculpt report: give one or more run folders');
    return 2;
  }
  const runs: RunSummary[] = [];
  // The runs' `compare.baseline`, used when --baseline is not given and the runs agree on one that ran.
  const configured = new Set<string>();
  for (const d of dirs) {
    const problem = folderProblem(d);
    if (problem) {
      console.error(`sculpt report: ${problem}`);
      return 2;
    }
    try {
      const { log, config, job } = readRunDir(d);
      // Lines that are not events of the schema are left out of the report, and said to be.
      const skipped = [...log.badLines, ...log.invalid].sort((x, y) => x - y);
      if (skipped.length) {
        const lines = skipped.slice(0, 10).join(', ') + (skipped.length > 10 ? ', ...' : '');
        console.error(
          `sculpt report: ${d}: skipped ${skipped.length} line(s) of events.jsonl that are not valid events (lines ${lines})`,
        );
      }
      const summary = withFolderJob(foldRun(basename(resolve(d)), log.events), config, job);
      // A log left 'running' with no trainer behind it (kill -9, a restart) is reported as interrupted.
      runs.push(summary.status === 'running' && !livePid(resolve(d)) ? { ...summary, interrupted: true } : summary);
      if (typeof config.compare?.baseline === 'string') configured.add(config.compare.baseline);
    } catch (e) {
      console.error(`sculpt report: ${(e as Error).message}`);
      return 2;
    }
  }
  let aggregate: ExperimentAggregate;
  try {
    // Only an unknown --baseline throws: a usage error, whose message names the methods that ran.
    const fromConfig = configured.size === 1 ? [...configured][0] : undefined;
    const ran = fromConfig !== undefined && runs.some((r) => r.method === fromConfig);
    aggregate = aggregateRuns(runs, { baseline: opts.baseline ?? (ran ? fromConfig : null) });
  } catch (e) {
    // The same "did you mean" a misspelt `compare.baseline` gets in a config.
    const near = opts.baseline === undefined ? undefined : closest(opts.baseline, methodsOf(runs));
    console.error(`sculpt report: ${(e as Error).message}${near ? ` (did you mean '${near}'?)` : ''}`);
    return 2;
  }
  const folders = dirs.map((dir, i) => ({ name: runs[i].name, dir }));
  const text = opts.json
    ? JSON.stringify({ runs, aggregate }, null, 2) + '\n'
    : opts.html
      ? htmlReport(runs, aggregate, { predictions: folders })
      : opts.csv
        ? csvReport(runs, aggregate)
        : markdownReport(runs, aggregate) + predictionsSection(dirs, runs);
  try {
    if (opts.out) writeOutputFile(opts.out, text);
    else process.stdout.write(text);
    // The per-example predictions do not fit the report's one-row-per-run CSV: with --out they go beside it.
    if (opts.csv && opts.out) writePredictionsCsv(runs, dirs, opts.out);
  } catch (e) {
    if (!(e instanceof OutputFileError)) throw e;
    console.error(`sculpt report: ${e.message}`);
    return 2;
  }
  return 0;
}

/** `report.csv` -> `report.predictions.csv`, when the runs wrote any predictions; unreadable files are named. */
function writePredictionsCsv(runs: RunSummary[], dirs: string[], out: string): void {
  const { csv, rows, problems } = predictionsCsv(runs.map((summary, i) => ({ summary, dir: dirs[i] })));
  for (const p of problems) console.error(`sculpt report: predictions: ${p}`);
  if (rows === 0) return;
  const path = predictionsCsvPath(out);
  writeOutputFile(path, csv);
  console.error(`sculpt report: ${rows} per-example predictions written to ${path}`);
}

/** The Markdown report's per-task confusion summary of the runs' final predictions, when they have any. */
function predictionsSection(dirs: string[], runs: RunSummary[]): string {
  const lines = predictionsMarkdown(dirs.map((dir, i) => ({ name: runs[i].name, dir })));
  return lines.length ? '\n' + lines.join('\n') + '\n' : '';
}
