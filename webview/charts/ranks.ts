/**
 * Subspace ranks (adaptive SVD and any method that reports them): the retained ratio k/min(m,n) as a layer x
 * boundary heatmap, and per matrix at one boundary (with the retained spectral energy beside it).
 */
import type { ChartConfiguration } from 'chart.js';
import type { RanksEvent } from '../../src/protocol/events';
import type { RunState } from '../state';
import { matrixLabel, rankHeatmap } from '../derive';
import { fmt, fmtCount, toCsv } from '../format';
import { rgbCss, seriesColor, type Palette } from '../theme';
import { tableCsv, type ChartSpec, type TableData } from './spec';
import type { HeatCell } from './heatmap';
import { heatmapConfig } from './heatmap-config';
import { runTitle } from '../labels';

const pct = (v: number | null | undefined) => (v == null ? fmt(null) : `${fmt(v * 100, 0)}%`);

export function ranksHeatmapSpec(run: RunState): ChartSpec {
  const h = rankHeatmap(run);
  const cols = h.cols.map((c) => c.label);
  const rows = h.rows.map((r) => r.label);
  const cells: HeatCell[] = [];
  h.cells.forEach((row, y) =>
    row.forEach((v, x) =>
      cells.push({
        x,
        y,
        v: v == null ? null : v * 100,
        text: v == null ? '' : pct(v),
        state: v == null ? 'missing' : 'value',
      }),
    ),
  );
  const table = (): TableData => ({
    caption: 'Mean retained ratio k / min(m, n) of each layer\u2019s constrained matrices, per task boundary',
    corner: 'layer',
    columns: cols,
    rows: h.rows.map((r, y) => ({ header: r.label, cells: h.cells[y].map((v) => ({ text: pct(v), value: v })) })),
  });
  return {
    id: `ranks-heatmap:${run.key}`,
    title: 'Retained subspace by layer',
    titleTooltip: runTitle(run),
    subtitle: 'mean k / min(m, n) per layer at each task boundary',
    empty: run.ranks.length
      ? null
      : 'No ranks reported: this method does not constrain subspaces, or the first boundary is not reached yet.',
    height: Math.min(560, 140 + 30 * Math.max(rows.length, 2)),
    fileBase: `${run.name}-ranks-by-layer`,
    runKey: run.key,
    describe: `Heatmap of retained subspace ratio, ${rows.length} layers by ${cols.length} boundaries`,
    table,
    csv: () => tableCsv(table()),
    config: (p: Palette): ChartConfiguration =>
      heatmapConfig(p, {
        cells,
        cols,
        rows,
        xTitle: 'task boundary',
        yTitle: 'layer',
        hitRadius: 20,
        title: (c) => `${rows[c.y]}, ${cols[c.x]}`,
        label: (c) => `retained ${pct(c.v == null ? null : c.v / 100)} of min(m, n)`,
        high: p.rankHigh,
        diagonal: null,
        scale: { low: '0%', high: '100%', text: 'k / min(m, n)' },
      }),
  };
}

export function ranksBarsSpec(run: RunState, r: RanksEvent | null): ChartSpec {
  const ms = r?.matrices ?? [];
  const labels = ms.map(matrixLabel);
  const boundary = r ? `before ${run.tasks[r.beforeTask] ?? `task ${r.beforeTask + 1}`}` : '';
  const table = (): TableData => ({
    caption: `Subspace per matrix ${boundary}`,
    corner: 'matrix',
    columns: ['shape', 'k', 'min(m, n)', 'k / min', 'retained energy', 'effective rank', 'importance'],
    rows: ms.map((m) => ({
      header: m.name,
      cells: [
        { text: `${m.shape[0]}\u00d7${m.shape[1]}`, value: null },
        { text: fmtCount(m.k), value: m.k },
        { text: fmtCount(m.minDim), value: m.minDim },
        { text: pct(m.ratio), value: m.ratio },
        { text: pct(m.retainedEnergy), value: m.retainedEnergy },
        { text: fmt(m.effectiveRank, 1), value: m.effectiveRank },
        { text: m.importance == null ? fmt(null) : m.importance.toPrecision(3), value: m.importance ?? null },
      ],
    })),
  });
  return {
    id: `ranks-bars:${run.key}`,
    title: `Per-matrix subspace ${boundary}`.trim(),
    titleTooltip: runTitle(run),
    subtitle: r ? `policy ${r.policy} · ${ms.length} matrices` : undefined,
    figure: r ? { label: 'SVD time', value: `${fmt(r.seconds, 2)} s` } : undefined,
    empty: ms.length ? null : 'No ranks at this boundary.',
    height: 300,
    fileBase: `${run.name}-ranks-${r ? `before-${r.beforeTask}` : 'none'}`,
    runKey: run.key,
    describe: `Bar chart of retained ratio and energy for ${ms.length} matrices ${boundary}`,
    table,
    csv: () =>
      toCsv([
        [
          'matrix',
          'layer',
          'role',
          'rows',
          'cols',
          'k',
          'min_dim',
          'ratio',
          'retained_energy',
          'effective_rank',
          'importance',
          'sigma_max',
          'sigma_min',
          'sigma_mean',
        ],
        ...ms.map((m) => [
          m.name,
          m.layer,
          m.role,
          m.shape[0],
          m.shape[1],
          m.k,
          m.minDim,
          m.ratio,
          m.retainedEnergy,
          m.effectiveRank,
          m.importance ?? null,
          m.sigmaMax,
          m.sigmaMin,
          m.sigmaMean,
        ]),
      ]),
    config: (p: Palette): ChartConfiguration => ({
      type: 'bar',
      data: {
        labels,
        datasets: [
          {
            label: 'k / min(m, n)',
            data: ms.map((m) => m.ratio * 100),
            backgroundColor: rgbCss(p.rankHigh, 1),
            borderColor: p.contrastBorder ?? undefined,
            borderWidth: p.contrastBorder ? 1 : 0,
          },
          {
            label: 'retained energy',
            data: ms.map((m) => m.retainedEnergy * 100),
            backgroundColor: seriesColor(p, 0),
            borderColor: p.contrastBorder ?? undefined,
            borderWidth: p.contrastBorder ? 1 : 0,
          },
        ],
      },
      options: {
        scales: {
          y: { min: 0, max: 100, title: { display: true, text: '%' } },
          x: { ticks: { autoSkip: true, maxRotation: 60 } },
        },
        plugins: {
          legend: { display: true, position: 'bottom' },
          tooltip: {
            callbacks: {
              title: (items) => ms[items[0]?.dataIndex ?? 0]?.name ?? '',
              afterTitle: (items) => {
                const m = ms[items[0]?.dataIndex ?? 0];
                return m
                  ? `${m.shape[0]}\u00d7${m.shape[1]}, k = ${m.k} of ${m.minDim}, effective rank ${fmt(m.effectiveRank)}`
                  : '';
              },
              label: (i) => `${i.dataset.label}: ${fmt(i.parsed.y, 1)} %`,
            },
          },
        },
      },
    }),
  };
}
