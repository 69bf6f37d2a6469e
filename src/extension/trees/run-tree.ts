/**
 * The Runs view's tree: one row per experiment folder (one launch of a config, src/runs/experiment-dir.ts) with
 * its cells beneath, so that the seeds of one launch are told apart and two launches of a config do not mix;
 * run folders of their own (older layouts, Open Run..., a broken experiment.json) stay top-level rows. Newest
 * first throughout the top level.
 */
import { basename } from 'node:path';
import type { ExperimentRecord } from '../../runs/experiment-dir';
import type { RunStatus } from '../../runs/status';
import type { TreeNode } from './node';
import { defaultTimeFormat, runNode, runStatus, type RunEntry } from './run-items';

/** The experiment record of an experiment folder, or undefined when it cannot be read. */
export type ExperimentLookup = (dir: string) => ExperimentRecord | undefined;

/** Statuses counted together in an experiment's progress, in the order they are named. */
const PROGRESS_GROUPS: [string, ReadonlySet<RunStatus>][] = [
  ['running', new Set<RunStatus>(['starting', 'running', 'stopping'])],
  ['queued', new Set<RunStatus>(['queued'])],
  ['stopped', new Set<RunStatus>(['stopped', 'cancelled'])],
  ['interrupted', new Set<RunStatus>(['interrupted'])],
  ['failed', new Set<RunStatus>(['failed', 'crashed', 'killed'])],
];

const LIVE = new Set<RunStatus>(['starting', 'running', 'stopping', 'queued']);
const FAILED = PROGRESS_GROUPS[4][1];

/**
 * How far a grid got: `finished` once every cell has, else `<finished>/<cells> finished` and the count of each
 * other state that needs attention (cells not started yet are what the fraction leaves out).
 */
export function experimentProgress(statuses: readonly RunStatus[], cells: number): string {
  const total = Math.max(cells, statuses.length);
  const finished = statuses.filter((s) => s === 'finished').length;
  if (total > 0 && finished === total) return 'finished';
  const parts = [`${finished}/${total} finished`];
  for (const [name, group] of PROGRESS_GROUPS) {
    const n = statuses.filter((s) => group.has(s)).length;
    if (n) parts.push(`${n} ${name}`);
  }
  return parts.join(' · ');
}

/**
 * The experiment row's `viewItem`: `sculptExperimentFolder.live` while any cell runs or waits (Stop Experiment),
 * `.finished` when every cell has, else `.resumable` (Resume Experiment); Delete is offered when not live.
 */
export function experimentContextValue(statuses: readonly RunStatus[], cells: number): string {
  if (statuses.some((s) => LIVE.has(s))) return 'sculptExperimentFolder.live';
  const finished = statuses.filter((s) => s === 'finished').length;
  return finished >= Math.max(cells, statuses.length) && finished > 0
    ? 'sculptExperimentFolder.finished'
    : 'sculptExperimentFolder.resumable';
}

function experimentIcon(statuses: readonly RunStatus[], cells: number): [string, string?] {
  const has = (...ss: RunStatus[]) => statuses.some((s) => ss.includes(s));
  if (has('starting', 'running', 'stopping')) return ['sync~spin', 'charts.blue'];
  if (has('queued')) return ['clock'];
  if (experimentContextValue(statuses, cells).endsWith('.finished')) return ['pass', 'testing.iconPassed'];
  if (statuses.some((s) => FAILED.has(s))) return ['error', 'testing.iconFailed'];
  if (has('stopped', 'interrupted')) return ['debug-pause', 'charts.yellow'];
  return ['circle-outline'];
}

/** When the grid was launched: its record's time, else its earliest run's. */
function launchTime(record: ExperimentRecord, entries: RunEntry[]): number {
  const t = typeof record.created === 'string' ? Date.parse(record.created) : NaN;
  return Number.isFinite(t) ? t : Math.min(...entries.map((e) => e.info.started));
}

function experimentTooltip(
  dir: string,
  record: ExperimentRecord,
  progress: string,
  launched: string,
  cells: number,
): string {
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const methods = list(record.methods).map(String);
  const orders = list(record.orders).map((o) => list(o).map(String).join(' → '));
  const seeds = list(record.seeds).map(String);
  const lines = [
    `${typeof record.name === 'string' && record.name ? record.name : basename(dir)}: ${progress}`,
    `Folder: ${dir}`,
    `Config: ${record.configFile ?? 'not recorded'}`,
    `Launched: ${launched}`,
    `Methods: ${methods.join(', ') || '–'}${record.baseline ? ` (baseline ${record.baseline})` : ''}`,
  ];
  if (orders.length <= 1) lines.push(`Order: ${orders[0] || '–'}`);
  else lines.push('Orders:', ...orders.map((o, i) => `  o${i + 1}: ${o}`));
  lines.push(`Seeds: ${seeds.join(', ') || '–'}`);
  lines.push(
    `Runs: ${cells} (${methods.length} method${methods.length === 1 ? '' : 's'} × ${Math.max(orders.length, 1)} order${orders.length > 1 ? 's' : ''} × ${seeds.length} seed${seeds.length === 1 ? '' : 's'})`,
  );
  return lines.join('\n');
}

/** An experiment folder's row, its cells beneath in the order the grid runs them. */
export function experimentFolderNode(
  dir: string,
  record: ExperimentRecord,
  entries: RunEntry[],
  formatTime: (ms: number) => string = defaultTimeFormat,
  expanded = false,
): TreeNode {
  const rank = new Map(record.cells.map((c, i) => [c.dir, i]));
  const place = (e: RunEntry) => rank.get(basename(e.info.dir)) ?? Infinity;
  // Folders the record does not name (made by hand) come last, by name.
  const sorted = [...entries].sort((a, b) => place(a) - place(b) || a.info.id.localeCompare(b.info.id));
  const statuses = sorted.map(runStatus);
  const cells = record.cells.length;
  const progress = experimentProgress(statuses, cells);
  const launched = formatTime(launchTime(record, entries));
  const [icon, iconColor] = experimentIcon(statuses, cells);
  return {
    id: `experiment-folder:${dir}`,
    label: typeof record.name === 'string' && record.name ? record.name : basename(dir),
    description: `${progress} · ${launched}`,
    tooltip: experimentTooltip(dir, record, progress, launched, cells),
    icon,
    iconColor,
    contextValue: experimentContextValue(statuses, cells),
    experimentDir: dir,
    expanded,
    children: sorted.map((e) => runNode(e, formatTime, { nested: true })),
  };
}

/**
 * The view's top level: a row per experiment folder holding listed runs, and a row per run of its own, newest
 * first (an experiment by its launch). The newest experiment and any with a cell running or queued start
 * expanded, so that what was just launched shows without a click.
 */
export function runTreeNodes(
  entries: RunEntry[],
  experimentOf: ExperimentLookup,
  formatTime: (ms: number) => string = defaultTimeFormat,
): TreeNode[] {
  const groups = new Map<string, { record: ExperimentRecord; entries: RunEntry[] }>();
  const loose: RunEntry[] = [];
  for (const e of entries) {
    const dir = e.info.experimentDir;
    const record = dir ? (groups.get(dir)?.record ?? experimentOf(dir)) : undefined;
    if (!dir || !record) {
      loose.push(e);
      continue;
    }
    const g = groups.get(dir) ?? { record, entries: [] };
    g.entries.push(e);
    groups.set(dir, g);
  }
  type Top = { time: number; key: string; make: (newest: boolean) => TreeNode; experiment: boolean };
  const tops: Top[] = [
    ...[...groups].map(([dir, g]) => ({
      time: launchTime(g.record, g.entries),
      key: basename(dir),
      experiment: true,
      make: (newest: boolean) =>
        experimentFolderNode(
          dir,
          g.record,
          g.entries,
          formatTime,
          newest || g.entries.some((e) => LIVE.has(runStatus(e))),
        ),
    })),
    ...loose.map((e) => ({
      time: e.info.started,
      key: e.info.id,
      experiment: false,
      make: () => runNode(e, formatTime),
    })),
  ];
  tops.sort((a, b) => b.time - a.time || a.key.localeCompare(b.key));
  const newest = tops.find((t) => t.experiment);
  return tops.map((t) => t.make(t === newest));
}
