/** Accuracy charts: the matrix R as a heatmap, average accuracy OP_t after each task, forgetting per task. */
import type { ChartConfiguration } from 'chart.js';
import type { RunState } from '../state';
import { averageAccuracyPerTask, forgettingPerTask } from '../derive';
import { fmt, fmtSigned, toCsv } from '../format';
import { seriesColor, type Palette } from '../theme';
import { tableCsv, type ChartSpec, type TableData } from './spec';
import type { HeatCell } from './heatmap';
import { heatmapConfig } from './heatmap-config';
import { alignTasks, sequenceNote } from '../align';
import { runTitle } from '../labels';

const taskName = (run: RunState, j: number) => run.tasks[j] ?? `task ${j + 1}`;

export function matrixSpec(run: RunState, titleSuffix = ''): ChartSpec {
  const T = Math.max(run.tasks.length, run.matrix.length);
  const tasks = Array.from({ length: T }, (_, j) => taskName(run, j));
  const cells: HeatCell[] = [];
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < T; j++) {
      const v = run.matrix[i]?.[j] ?? null;
      cells.push({
        x: j,
        y: i,
        v,
        text: v == null ? '' : fmt(v),
        state: v == null ? 'missing' : j > i ? 'unseen' : 'value',
      });
    }
  }
  const hasZero = run.zeroShot.some((v) => v != null);
  const table = (): TableData => ({
    caption: `Accuracy (%) on each task (columns) after training each task (rows)${titleSuffix}`,
    corner: 'after \\ on',
    columns: tasks,
    rows: [
      ...(hasZero
        ? [
            {
              header: 'zero-shot',
              cells: tasks.map((_, j) => ({ text: fmt(run.zeroShot[j]), value: run.zeroShot[j] ?? null })),
            },
          ]
        : []),
      ...tasks.map((name, i) => ({
        header: name,
        cells: tasks.map((_, j) => {
          const v = run.matrix[i]?.[j] ?? null;
          return v == null
            ? { text: fmt(null), value: null, kind: 'missing' as const, title: 'not measured yet' }
            : {
                text: fmt(v),
                value: v,
                ...(j > i ? { kind: 'unseen' as const, title: 'task not trained yet at this row' } : {}),
              };
        }),
      })),
    ],
    note: 'Cells right of the diagonal are tasks not trained yet at that row (hatched in the chart).',
  });
  return {
    id: `matrix:${run.key}`,
    title: `Accuracy matrix${titleSuffix}`,
    titleTooltip: runTitle(run),
    subtitle: hasZero
      ? `R[i][j], %. Zero-shot: ${tasks.map((_, j) => fmt(run.zeroShot[j])).join(' · ')}`
      : 'R[i][j], %',
    empty: T === 0 ? 'Waiting for the run to start.' : null,
    height: Math.min(460, 120 + 56 * Math.max(T, 2)),
    fileBase: `${run.name}-accuracy-matrix`,
    runKey: run.key,
    describe: `Heatmap of accuracy after each task on each task, ${T} by ${T}`,
    table,
    csv: () => tableCsv(table()),
    config: (p: Palette): ChartConfiguration =>
      heatmapConfig(p, {
        cells,
        cols: tasks,
        rows: tasks,
        xTitle: 'evaluated on',
        yTitle: 'after training',
        hitRadius: 24,
        title: (c) => `after ${tasks[c.y]}, on ${tasks[c.x]}`,
        label: (c) =>
          c.v == null ? 'not measured yet' : `${fmt(c.v, 2)} %${c.state === 'unseen' ? ' (not trained yet)' : ''}`,
        high: p.heatHigh,
        diagonal: p.contrastBorder ?? p.foreground,
        scale: { low: '0', high: '100 %', text: 'accuracy' },
      }),
  };
}

/** `compare`: several runs are open (even if only one is shown), so columns and legends name runs. */
export function averageAccuracySpec(
  runs: RunState[],
  colorOf: (r: RunState) => number,
  compare = runs.length > 1,
): ChartSpec {
  // OP_t is after the t-th task of a run's own sequence: by position, named when the sequences agree.
  const align = alignTasks(runs);
  const T = Math.max(0, ...runs.map((r) => r.tasks.length));
  const tasks = align.same && align.tasks.length ? align.tasks : Array.from({ length: T }, (_, i) => `task ${i + 1}`);
  const per = runs.map((r) => averageAccuracyPerTask(r));
  const single = !compare && runs.length === 1;
  const diag = single ? tasks.map((_, t) => runs[0].matrix[t]?.[t] ?? null) : [];
  const note = sequenceNote(align);
  const table = (): TableData => ({
    caption: 'Average accuracy OP_t (%) over the tasks seen, after each task',
    corner: 'after',
    columns: single ? ['OP_t', 'R[t][t] (task just trained)'] : runs.map((r) => r.label),
    columnTitles: single ? undefined : runs.map(runTitle),
    rows: tasks.map((name, t) => ({
      header: name,
      cells: single
        ? [
            { text: fmt(per[0][t]?.value), value: per[0][t]?.value ?? null },
            { text: fmt(diag[t]), value: diag[t] },
          ]
        : per.map((p, k) => ({
            text: fmt(p[t]?.value),
            value: p[t]?.value ?? null,
            ...(align.same ? {} : { title: `after ${runs[k].tasks[t] ?? `task ${t + 1}`}` }),
          })),
    })),
    ...(note ? { note: 'Each run after the t-th task of its own sequence.' } : {}),
  });
  return {
    id: 'average-accuracy',
    title: 'Average accuracy after each task',
    subtitle: 'OP_t: mean of R[t][0..t], %',
    empty: per.every((p) => p.length === 0) ? 'Appears when the first task finishes.' : null,
    height: 260,
    fileBase: single ? `${runs[0].name}-average-accuracy` : 'compare-average-accuracy',
    runKey: single ? runs[0]?.key : undefined,
    describe: 'Line chart of average accuracy after each task',
    table,
    csv: () => tableCsv(table()),
    footer: note ? [{ text: note, kind: 'note', data: { note: 'sequences' } }] : undefined,
    config: (p: Palette): ChartConfiguration => ({
      type: 'line',
      data: {
        labels: tasks,
        datasets: [
          ...runs.map((r, k) => ({
            label: single ? 'OP_t' : r.label,
            data: tasks.map((_, t) => per[k][t]?.value ?? null),
            borderColor: seriesColor(p, colorOf(r)),
            backgroundColor: seriesColor(p, colorOf(r)),
            pointRadius: 4,
            borderWidth: 2,
          })),
          ...(single
            ? [
                {
                  label: 'R[t][t]',
                  data: diag,
                  borderColor: p.muted,
                  backgroundColor: p.muted,
                  borderDash: [5, 4],
                  pointRadius: 3,
                  borderWidth: 1.5,
                },
              ]
            : []),
        ],
      },
      options: {
        scales: {
          y: { suggestedMin: 0, suggestedMax: 100, title: { display: true, text: '%' } },
          x: { title: { display: true, text: 'after training' } },
        },
        plugins: {
          legend: { display: true, position: 'bottom' },
          tooltip: {
            callbacks: {
              label: (i) =>
                `${i.dataset.label}: ${fmt(i.parsed.y, 2)} %${align.same || single ? '' : ` (after ${runs[i.datasetIndex]?.tasks[i.dataIndex] ?? '?'})`}`,
            },
          },
        },
      },
    }),
  };
}

export function forgettingSpec(
  runs: RunState[],
  colorOf: (r: RunState) => number,
  compare = runs.length > 1,
): ChartSpec {
  const views = runs.map((r) => forgettingPerTask(r));
  // By task name: runs of different sequences forget different tasks at each position.
  const align = alignTasks(runs);
  const at = (k: number, name: string) => views[k].perTask.find((p) => p.name === name)?.value ?? null;
  const tasks = align.tasks.filter((name) => views.some((_, k) => at(k, name) != null));
  const single = !compare && runs.length === 1;
  const note = sequenceNote(align);
  const table = (): TableData => ({
    caption: 'Forgetting per task (%): best earlier accuracy minus accuracy after the last finished task',
    corner: 'task',
    columns: runs.map((r) => r.label),
    columnTitles: runs.map(runTitle),
    rows: [
      ...tasks.map((name) => ({
        header: name,
        cells: views.map((_, k) => ({ text: fmt(at(k, name)), value: at(k, name) })),
      })),
      { header: 'mean forgetting', cells: views.map((v) => ({ text: fmt(v.forgetting), value: v.forgetting })) },
      { header: 'BWT', cells: views.map((v) => ({ text: fmtSigned(v.bwt), value: v.bwt })) },
    ],
  });
  const bwtText = single
    ? fmtSigned(views[0]?.bwt)
    : runs.map((r, k) => `${r.label} ${fmtSigned(views[k].bwt)}`).join(' · ');
  return {
    id: 'forgetting',
    title: 'Forgetting per task',
    subtitle: single
      ? views[0].after == null
        ? 'best earlier accuracy minus the latest, per task'
        : `after ${runs[0].tasks[views[0].after] ?? `task ${views[0].after + 1}`}; negative BWT = forgetting`
      : `BWT: ${bwtText}`,
    figure:
      single && views[0].bwt != null
        ? { label: 'BWT', value: bwtText, title: 'Backward transfer: mean of R[t][j] - R[j][j] over earlier tasks' }
        : undefined,
    empty: tasks.length === 0 ? 'Appears when a second task finishes.' : null,
    height: 260,
    fileBase: single ? `${runs[0].name}-forgetting` : 'compare-forgetting',
    runKey: single ? runs[0]?.key : undefined,
    describe: 'Bar chart of forgetting per earlier task',
    table,
    footer: note ? [{ text: note, kind: 'note', data: { note: 'sequences' } }] : undefined,
    csv: () =>
      toCsv([
        ['run', 'run_id', 'task', 'forgetting', 'BWT', 'mean_forgetting'],
        ...runs.flatMap((r, k) =>
          views[k].perTask.map((pt) => [r.label, r.name, pt.name, pt.value, views[k].bwt, views[k].forgetting]),
        ),
      ]),
    config: (p: Palette): ChartConfiguration => ({
      type: 'bar',
      data: {
        labels: tasks,
        datasets: runs.map((r, k) => ({
          label: r.label,
          data: tasks.map((name) => at(k, name)),
          backgroundColor: seriesColor(p, colorOf(r)),
          borderColor: p.contrastBorder ?? seriesColor(p, colorOf(r)),
          borderWidth: p.contrastBorder ? 1 : 0,
          maxBarThickness: 48,
        })),
      },
      options: {
        scales: {
          y: { beginAtZero: true, title: { display: true, text: 'percentage points' } },
          x: { title: { display: true, text: 'task' } },
        },
        plugins: {
          legend: { display: !single, position: 'bottom' },
          tooltip: { callbacks: { label: (i) => `${i.dataset.label}: ${fmt(i.parsed.y, 2)} pp` } },
        },
      },
    }),
  };
}
