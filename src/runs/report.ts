/**
 * Reports from run folders: a summary per run (method, matrix, metrics, time, status) derived from its event
 * log alone, rendered as Markdown (for people) and CSV (for analysis). No tfjs here: the extension uses it too.
 */
import type { Metrics, ParsedLog, SculptEvent } from '../protocol/events';
import { metricsAfter } from './metrics';

export interface RunSummary {
  name: string;
  method: string;
  tasks: string[];
  status: 'running' | 'finished' | 'stopped' | 'failed';
  /** Rows present so far (row i after task i). */
  matrix: number[][];
  zeroShot: (number | null)[] | null;
  metrics: Metrics | null;
  seconds: number | null;
  backend: string | null;
  error?: string;
}

/** Applies resume supersession: events written after a checkpoint by an interrupted process are dropped. */
export function effectiveEvents(events: SculptEvent[]): SculptEvent[] {
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

export function summarize(name: string, log: ParsedLog): RunSummary {
  const events = effectiveEvents(log.events);
  const s: RunSummary = { name, method: '?', tasks: [], status: 'running', matrix: [], zeroShot: null, metrics: null, seconds: null, backend: null };
  const zero = new Map<number, number>();
  for (const e of events) {
    switch (e.type) {
      case 'run-started':
        s.method = e.method;
        s.tasks = e.tasks;
        s.backend = e.backend.name;
        s.status = 'running';
        break;
      case 'eval':
        if (e.afterTask === -1 && !zero.has(e.task)) zero.set(e.task, e.accuracy);
        break;
      case 'task-finished':
        s.matrix[e.task] = e.row;
        s.metrics = e.metrics;
        break;
      case 'stopped':
        s.status = 'stopped';
        break;
      case 'error':
        s.status = 'failed';
        s.error = e.message;
        break;
      case 'run-finished':
        s.status = 'finished';
        s.matrix = e.matrix;
        s.zeroShot = e.zeroShot;
        s.metrics = e.metrics;
        s.seconds = e.seconds;
        break;
    }
  }
  s.matrix = s.matrix.filter((r) => r);
  if (!s.zeroShot && zero.size) s.zeroShot = s.tasks.map((_, j) => zero.get(j) ?? null);
  if (!s.metrics && s.matrix.length) s.metrics = metricsAfter(s.matrix, s.zeroShot);
  return s;
}

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
