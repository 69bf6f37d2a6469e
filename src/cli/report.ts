/** `sculpt report <runDir...> [--csv | --html] [--out file]`: Markdown (default), CSV or a self-contained HTML page. */
import { writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { readRunDir } from '../runs/run-dir';
import { csvReport, markdownReport, summarize } from '../runs/report';
import { htmlReport } from '../runs/report-html';

export function reportCommand(dirs: string[], opts: { csv: boolean; html?: boolean; out?: string }): number {
  if (dirs.length === 0) {
    console.error('sculpt report: give one or more run folders');
    return 2;
  }
  const runs = [];
  for (const d of dirs) {
    try {
      runs.push(summarize(basename(resolve(d)), readRunDir(d).log));
    } catch (e) {
      console.error(`sculpt report: ${(e as Error).message}`);
      return 2;
    }
  }
  const text = opts.html ? htmlReport(runs) : opts.csv ? csvReport(runs) : markdownReport(runs);
  if (opts.out) writeFileSync(opts.out, text);
  else process.stdout.write(text);
  return 0;
}
