/**
 * Reports from run folders, rendered as Markdown (for people) and CSV (for analysis) from their summaries
 * (`foldRun`, ./fold.ts). No tfjs here: the extension uses it too.
 */
import type { RunSummary } from './fold';

/** @deprecated Import `effectiveEvents` from ./fold; this re-export goes once no caller uses it. */
export { effectiveEvents } from './fold';

const fmt = (v: number | null | undefined, digits = 1) => (v == null ? '–' : v.toFixed(digits));

export function markdownReport(runs: RunSummary[]): string {
  const lines: string[] = ['# Sculpt report', ''];
  lines.push('| run | method | status | AA | BWT | forgetting | FWT | time (s) |', '|---|---|---|---|---|---|---|---|');
  for (const r of runs) {
    const m = r.metrics;
    lines.push(`| ${r.name} | ${r.method} | ${r.status} | ${fmt(m?.AA)} | ${fmt(m?.BWT)} | ${fmt(m?.forgetting)} | ${fmt(m?.FWT)} | ${fmt(r.seconds, 0)} |`);
  }
  lines.push('', 'Accuracies in percent. AA: average accuracy after the last task; BWT: backward transfer; forgetting: Chaudhry et al.; FWT: GEM forward transfer against the zero-shot row.');
  for (const r of runs) {
    lines.push('', `## ${r.name} (${r.method})`, '');
    lines.push(`| after \\ on | ${r.tasks.join(' | ')} |`, `|---|${r.tasks.map(() => '---').join('|')}|`);
    if (r.zeroShot) lines.push(`| zero-shot | ${r.zeroShot.map((v) => fmt(v)).join(' | ')} |`);
    r.matrix.forEach((row, i) => lines.push(`| ${r.tasks[i]} | ${row.map((v) => fmt(v)).join(' | ')} |`));
    if (r.error) lines.push('', `Failed: ${r.error}`);
  }
  return lines.join('\n') + '\n';
}

function csvCell(v: string | number | null): string {
  if (v == null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Long format: one row per (run, after_task, task) accuracy, then one row per run metric. */
export function csvReport(runs: RunSummary[]): string {
  const rows: (string | number | null)[][] = [['run', 'method', 'kind', 'after_task', 'task', 'value']];
  for (const r of runs) {
    r.zeroShot?.forEach((v, j) => rows.push([r.name, r.method, 'accuracy', 'zero-shot', r.tasks[j], v]));
    r.matrix.forEach((row, i) => row.forEach((v, j) => rows.push([r.name, r.method, 'accuracy', r.tasks[i], r.tasks[j], v])));
    if (r.metrics) for (const [k, v] of Object.entries(r.metrics)) rows.push([r.name, r.method, k, '', '', v]);
    if (r.seconds != null) rows.push([r.name, r.method, 'seconds', '', '', r.seconds]);
  }
  return rows.map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}
