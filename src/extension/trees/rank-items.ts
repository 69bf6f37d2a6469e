/**
 * The Subspace Ranks view's rows for one run: task boundary -> (the rank policy's warnings) -> layer -> matrix,
 * from its `ranks` events (the latest per boundary, after resume supersession). Each matrix row reads
 * "k/min_dim (ratio%)", or the ratio first when the view shows ratios, with its raw importance and whether the
 * policy clamped k beside it; σ statistics and retained energy are in the tooltips.
 */
import type { MatrixRank, RanksEvent, SculptEvent } from '../../protocol/events';
import { effectiveEvents } from '../../runs/fold';
import type { TreeNode } from './node';

export type RankMode = 'ranks' | 'ratios';

export interface Boundary {
  beforeTask: number;
  taskName?: string;
  event: RanksEvent;
  /** The rank policy's warnings at this boundary. */
  warnings: string[];
}

/** The warning code rank policies report under (adaptive-svd.ts). */
const RANK_POLICY_WARNING = 'rank-policy';

export function rankBoundaries(events: SculptEvent[]): Boundary[] {
  const byTask = new Map<number, Boundary>();
  let tasks: string[] = [];
  // Logs written before ranks events carried warnings have them as warning events just before the ranks event.
  let pending: string[] = [];
  for (const e of effectiveEvents(events)) {
    if (e.type === 'run-started') tasks = e.tasks;
    else if (e.type === 'warning' && e.code === RANK_POLICY_WARNING) pending.push(e.message);
    else if (e.type === 'ranks') {
      const warnings = e.warnings ?? pending;
      byTask.set(e.beforeTask, { beforeTask: e.beforeTask, taskName: tasks[e.beforeTask], event: e, warnings });
      pending = [];
    }
  }
  return [...byTask.values()].sort((a, b) => a.beforeTask - b.beforeTask);
}

export function pct(ratio: number): string {
  const v = ratio * 100;
  return `${Number.isInteger(Math.round(v * 10) / 10) ? Math.round(v) : v.toFixed(1)}%`;
}

const sig = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? '–' : Number(v.toPrecision(3)).toString();

function rankText(k: number, minDim: number, mode: RankMode): string {
  const ratio = minDim > 0 ? k / minDim : 0;
  return mode === 'ranks' ? `${k}/${minDim} (${pct(ratio)})` : `${pct(ratio)} (${k}/${minDim})`;
}

interface Totals {
  k: number;
  minDim: number;
  meanRatio: number;
  meanEnergy: number;
}

function totals(ms: MatrixRank[]): Totals {
  const sum = (f: (m: MatrixRank) => number) => ms.reduce((s, m) => s + f(m), 0);
  const n = Math.max(1, ms.length);
  return {
    k: sum((m) => m.k),
    minDim: sum((m) => m.minDim),
    meanRatio: sum((m) => m.ratio) / n,
    meanEnergy: sum((m) => m.retainedEnergy) / n,
  };
}

function totalsText(t: Totals, count: number): string {
  return `${count} matrices · Σk ${t.k} of Σmin_dim ${t.minDim} · mean ratio ${pct(t.meanRatio)} · mean retained energy ${pct(t.meanEnergy)}`;
}

/** Which bound a clamped k sits at, in words. */
function clampText(m: MatrixRank): string {
  return m.k >= m.minDim ? 'clamped to min_dim' : 'clamped to 1';
}

export function matrixNode(parent: string, m: MatrixRank, mode: RankMode): TreeNode {
  const lines = [
    m.name,
    `shape ${m.shape[0]}×${m.shape[1]} · protected k = ${m.k} of min_dim ${m.minDim} (ratio ${pct(m.ratio)})`,
    `importance ${sig(m.importance)}`,
    `σ max ${sig(m.sigmaMax)} · min ${sig(m.sigmaMin)} · mean ${sig(m.sigmaMean)}`,
    `effective rank ${sig(m.effectiveRank)}`,
    `retained energy ${pct(m.retainedEnergy)}`,
    ...(m.clamped ? [`k ${clampText(m)}: the rank policy's formula asked for a k outside [1, ${m.minDim}]`] : []),
  ];
  const beside = [
    ...(m.importance !== undefined ? [`importance ${sig(m.importance)}`] : []),
    ...(m.clamped ? [clampText(m)] : []),
  ];
  return {
    id: `${parent}/${m.name}`,
    label: `${m.role || m.name}: ${rankText(m.k, m.minDim, mode)}`,
    description: beside.length ? beside.join(' · ') : undefined,
    tooltip: lines.join('\n'),
    icon: 'symbol-array',
    contextValue: 'sculptRankMatrix',
  };
}

function layerName(layer: number): string {
  return Number.isInteger(layer) && layer >= 0 ? `Layer ${layer}` : 'Outside the layers';
}

export function boundaryNode(runId: string, b: Boundary, mode: RankMode): TreeNode {
  const id = `ranks:${runId}/before-${b.beforeTask}`;
  const layers = new Map<number, MatrixRank[]>();
  for (const m of b.event.matrices) layers.set(m.layer, [...(layers.get(m.layer) ?? []), m]);
  const order = [...layers.keys()].sort((x, y) => (x < 0 ? 1 : y < 0 ? -1 : x - y));
  const children = order.map((layer): TreeNode => {
    const ms = layers.get(layer)!;
    const t = totals(ms);
    const lid = `${id}/layer-${layer}`;
    return {
      id: lid,
      label: layerName(layer),
      description: rankText(t.k, t.minDim, mode),
      tooltip: `${layerName(layer)}, before task ${b.beforeTask + 1}\n${totalsText(t, ms.length)}`,
      icon: 'layers',
      contextValue: 'sculptRankLayer',
      children: ms.map((m) => matrixNode(lid, m, mode)),
    };
  });
  const t = totals(b.event.matrices);
  const task = `task ${b.beforeTask + 1}${b.taskName ? ` (${b.taskName})` : ''}`;
  const clamped = b.event.matrices.filter((m) => m.clamped).length;
  const warnings = b.warnings.map((w, i): TreeNode => ({
    id: `${id}/warning-${i}`,
    label: w,
    tooltip: w,
    icon: 'warning',
    contextValue: 'sculptRankWarning',
  }));
  const notes = [
    ...(clamped ? [`${clamped} clamped`] : []),
    ...(b.warnings.length ? [`${b.warnings.length} warning${b.warnings.length === 1 ? '' : 's'}`] : []),
  ];
  return {
    id,
    label: `Before ${task}`,
    description: [`${b.event.policy} · ${rankText(t.k, t.minDim, mode)}`, ...notes].join(' · '),
    tooltip: [
      `Subspace protected before training ${task}`,
      `policy ${b.event.policy} · computed in ${b.event.seconds.toFixed(2)} s`,
      totalsText(t, b.event.matrices.length),
      ...(clamped ? [`${clamped} of ${b.event.matrices.length} matrices have k clamped to 1 or min_dim`] : []),
      ...b.warnings.map((w) => `warning: ${w}`),
    ].join('\n'),
    icon: 'milestone',
    contextValue: 'sculptRankBoundary',
    children: [...warnings, ...children],
  };
}

/** Boundary rows of a run, the latest expanded (it is the one that just changed in a live run). */
export function rankNodes(runId: string, events: SculptEvent[], mode: RankMode): TreeNode[] {
  const bs = rankBoundaries(events);
  return bs.map((b, i) => ({ ...boundaryNode(runId, b, mode), expanded: i === bs.length - 1 }));
}
