/**
 * Step charts: training loss (live, decimated, task boundaries marked) and throughput. Tables summarise each
 * task (a table of thousands of steps helps nobody); the CSV export holds every step at full precision.
 */
import type { ChartConfiguration } from 'chart.js';
import type { RunState } from '../state';
import { decimateMinMax, type Point } from '../series';
import { fmt, fmtCount, fmtSeconds, toCsv } from '../format';
import { seriesColor, type Palette } from '../theme';
import type { ChartSpec, TableData, TableRow } from './spec';
import type { BoundaryMark } from './boundaries';
import { runTitle } from '../labels';

/** Points per run and chart: enough for a sharp line at any panel width, few enough to redraw live. */
export const MAX_POINTS = 2000;

interface TaskStats {
  run: RunState;
  task: number;
  name: string;
  count: number;
  first: number;
  last: number;
  min: number;
  mean: number;
  max: number;
}

/** Per (run, task) statistics of one step column, finite values only. */
function taskStats(runs: RunState[], column: 'loss' | 'tokensPerSecond'): TaskStats[] {
  const out: TaskStats[] = [];
  for (const run of runs) {
    const byTask = new Map<number, TaskStats>();
    const s = run.steps;
    for (let i = 0; i < s.globalStep.length; i++) {
      const v = s[column].get(i);
      if (!Number.isFinite(v)) continue;
      const task = s.task.get(i);
      let st = byTask.get(task);
      if (!st) {
        st = {
          run,
          task,
          name: run.tasks[task] ?? `task ${task + 1}`,
          count: 0,
          first: v,
          last: v,
          min: v,
          mean: 0,
          max: v,
        };
        byTask.set(task, st);
      }
      st.count++;
      st.last = v;
      st.min = Math.min(st.min, v);
      st.max = Math.max(st.max, v);
      st.mean += (v - st.mean) / st.count;
    }
    out.push(...[...byTask.values()].sort((a, b) => a.task - b.task));
  }
  return out;
}

export function boundaryMarks(run: RunState | undefined): BoundaryMark[] {
  if (!run) return [];
  return run.spans.filter((s) => s.offset != null).map((s) => ({ x: s.offset as number, label: s.name }));
}

function series(run: RunState, column: 'loss' | 'tokensPerSecond'): Point[] {
  return decimateMinMax(run.steps.globalStep.view(), run.steps[column].view(), MAX_POINTS);
}

function stepsCsv(runs: RunState[]): string {
  const rows: (string | number | null)[][] = [
    ['run', 'run_id', 'task', 'global_step', 'loss', 'lr', 'tokens_per_second', 'time_ms'],
  ];
  for (const r of runs) {
    const s = r.steps;
    for (let i = 0; i < s.globalStep.length; i++) {
      rows.push([
        r.label,
        r.name,
        r.tasks[s.task.get(i)] ?? s.task.get(i),
        s.globalStep.get(i),
        s.loss.get(i),
        s.lr.get(i),
        s.tokensPerSecond.get(i),
        s.time.get(i),
      ]);
    }
  }
  return toCsv(rows);
}

const rowHeader = (st: TaskStats, multi: boolean) => (multi ? `${st.run.label} / ${st.name}` : st.name);
const rowTitle = (st: TaskStats, multi: boolean) => (multi ? runTitle(st.run) : undefined);

function stepLineConfig(
  runs: RunState[],
  colorOf: (r: RunState) => number,
  column: 'loss' | 'tokensPerSecond',
  yTitle: string,
  log: boolean,
  legend: boolean,
) {
  return (p: Palette): ChartConfiguration => ({
    type: 'line',
    data: {
      datasets: runs.map((r) => ({
        label: r.label,
        data: series(r, column),
        borderColor: seriesColor(p, colorOf(r)),
        backgroundColor: seriesColor(p, colorOf(r)),
        borderWidth: 1.25,
        pointRadius: 0,
        pointHitRadius: 6,
        spanGaps: false,
        normalized: true,
      })),
    },
    options: {
      parsing: false,
      interaction: { mode: 'nearest', axis: 'x', intersect: false },
      scales: {
        x: { type: 'linear', min: 0, title: { display: true, text: 'global step' } },
        y: { type: log ? 'logarithmic' : 'linear', title: { display: true, text: yTitle } },
      },
      plugins: {
        legend: { display: legend, position: 'bottom' },
        tooltip: {
          callbacks: {
            title: (items) => `step ${items[0]?.parsed.x ?? ''}`,
            label: (i) => `${i.dataset.label}: ${column === 'loss' ? fmt(i.parsed.y, 4) : fmtCount(i.parsed.y)}`,
          },
        },
        sculptBoundaries: { marks: boundaryMarks(runs[0]), color: p.unseen, textColor: p.muted },
      },
    },
  });
}

/** `compare`: several runs are open (even if only one is shown), so legends and tables name runs. */
export function lossSpec(
  runs: RunState[],
  colorOf: (r: RunState) => number,
  opts: { log: boolean; compare?: boolean },
): ChartSpec {
  const multi = opts.compare ?? runs.length > 1;
  const n = runs.reduce((s, r) => s + r.steps.globalStep.length, 0);
  const positive = runs.every((r) => r.steps.loss.view().every((v) => !(v <= 0)));
  const latest = !multi ? runs[0]?.current?.loss : null;
  const table = (): TableData => ({
    caption: 'Training loss per task',
    corner: multi ? 'run / task' : 'task',
    columns: ['steps reported', 'first', 'last', 'min', 'mean'],
    rows: taskStats(runs, 'loss').map((st): TableRow => ({
      header: rowHeader(st, multi),
      title: rowTitle(st, multi),
      cells: [
        { text: String(st.count), value: st.count },
        { text: fmt(st.first, 4), value: st.first },
        { text: fmt(st.last, 4), value: st.last },
        { text: fmt(st.min, 4), value: st.min },
        { text: fmt(st.mean, 4), value: st.mean },
      ],
    })),
    note: 'The CSV export holds every reported step.',
  });
  return {
    id: 'loss',
    title: 'Training loss',
    subtitle:
      n > MAX_POINTS ? `${fmtCount(n)} steps reported, drawn as min/max per bucket` : `${fmtCount(n)} steps reported`,
    figure: latest != null ? { label: 'latest', value: fmt(latest, 4) } : undefined,
    empty: n === 0 ? 'Appears with the first training steps.' : null,
    height: 320,
    fileBase: multi ? 'compare-loss' : `${runs[0]?.name ?? 'run'}-loss`,
    runKey: multi ? undefined : runs[0]?.key,
    describe: 'Line chart of training loss per global step, with task boundaries',
    table,
    csv: () => stepsCsv(runs),
    config: stepLineConfig(
      runs,
      colorOf,
      'loss',
      opts.log && positive ? 'loss (log)' : 'loss',
      opts.log && positive,
      multi,
    ),
  };
}

export function throughputSpec(
  runs: RunState[],
  colorOf: (r: RunState) => number,
  compare = runs.length > 1,
): ChartSpec {
  const multi = compare;
  const n = runs.reduce((s, r) => s + r.steps.globalStep.length, 0);
  const latest = !multi ? runs[0]?.current?.tokensPerSecond : null;
  const table = (): TableData => ({
    caption: 'Throughput per task (tokens per second)',
    corner: multi ? 'run / task' : 'task',
    columns: ['mean tokens/s', 'max tokens/s', 'task time'],
    rows: taskStats(runs, 'tokensPerSecond').map((st): TableRow => ({
      header: rowHeader(st, multi),
      title: rowTitle(st, multi),
      cells: [
        { text: fmtCount(st.mean), value: st.mean },
        { text: fmtCount(st.max), value: st.max },
        { text: fmtSeconds(st.run.taskSeconds[st.task]), value: st.run.taskSeconds[st.task] ?? null },
      ],
    })),
  });
  return {
    id: 'throughput',
    title: 'Throughput',
    subtitle: !multi && runs[0]?.backend ? `${runs[0].backend.name} · ${runs[0].backend.device}` : 'tokens per second',
    figure: latest != null ? { label: 'tokens/s', value: fmtCount(latest) } : undefined,
    empty: n === 0 ? 'Appears with the first training steps.' : null,
    height: 240,
    fileBase: multi ? 'compare-throughput' : `${runs[0]?.name ?? 'run'}-throughput`,
    runKey: multi ? undefined : runs[0]?.key,
    describe: 'Line chart of tokens per second per global step',
    table,
    csv: () => stepsCsv(runs),
    config: stepLineConfig(runs, colorOf, 'tokensPerSecond', 'tokens / s', false, multi),
  };
}
