/**
 * The Runs view's run rows: one per run folder, with what a researcher scans for (experiment, method, status,
 * AA/BWT, start time) in the row and the rest in the tooltip. How they are grouped by experiment folder is
 * run-tree.ts.
 */
import type { Metrics } from '../../protocol/events';
import { engineText } from '../../runs/run-engine';
import { RESUMABLE, hasEnded, isSettled, settledStatus, type RunStatus } from '../../runs/status';
import { progressText } from '../live-progress';
import type { RunRecord } from '../run-manager';
import type { RunFolderInfo } from '../run-folder';
import type { TreeNode } from './node';

export interface RunEntry {
  info: RunFolderInfo;
  /** What this window's run manager knows, if it ran or watches the folder. */
  record?: RunRecord;
  /** Whether the folder's trainer (per its pid file) is alive, for folders no manager watches. */
  pidAlive?: boolean;
  /**
   * Milliseconds since the log was last written, for folders without a known trainer: a log that grows
   * without a pid file is a trainer started outside VS Code (the CLI), watched but not controlled.
   */
  quietFor?: number;
}

/** A log without an end and no known trainer counts as running elsewhere while it was written this recently. */
export const EXTERNAL_QUIET_MS = 5 * 60_000;

const isExternal = (e: RunEntry) =>
  !e.record && !e.pidAlive && e.quietFor !== undefined && e.quietFor < EXTERNAL_QUIET_MS;

/**
 * What the row shows: the manager's state while it holds the run, else how the log ended, else the manager's
 * verdict on a session that ended without a final event (crashed, killed...), else what the folder alone can tell.
 */
export function runStatus(e: RunEntry): RunStatus {
  const rec = e.record;
  const log = e.info.summary.status;
  if (rec && !isSettled(rec.state)) return rec.state;
  if (hasEnded(log)) return log;
  if (rec) return rec.state;
  return settledStatus(log, Boolean(e.pidAlive) || isExternal(e));
}

const ICONS: Record<RunStatus, [string, string?]> = {
  queued: ['clock'],
  starting: ['loading~spin'],
  running: ['sync~spin', 'charts.blue'],
  stopping: ['loading~spin', 'charts.yellow'],
  finished: ['pass', 'testing.iconPassed'],
  stopped: ['debug-pause', 'charts.yellow'],
  failed: ['error', 'testing.iconFailed'],
  crashed: ['warning', 'testing.iconFailed'],
  killed: ['close', 'testing.iconFailed'],
  cancelled: ['circle-slash'],
  interrupted: ['debug-disconnect', 'charts.orange'],
  new: ['circle-outline'],
};

/**
 * The row's `viewItem`: `sculptRun.<state>` for the menus (live, queued, external, resumable, finished), with
 * `.cell` appended for a cell of an experiment folder (which offers Open Experiment View).
 */
export function contextValueFor(status: RunStatus, e?: RunEntry): string {
  return runContext(status, e) + (e?.info.experimentDir ? '.cell' : '');
}

function runContext(status: RunStatus, e?: RunEntry): string {
  if (status === 'queued') return 'sculptRun.queued';
  if (status === 'running' && e && isExternal(e)) return 'sculptRun.external';
  if (status === 'starting' || status === 'running' || status === 'stopping') return 'sculptRun.live';
  if (RESUMABLE.has(status)) return 'sculptRun.resumable';
  return 'sculptRun.finished';
}

const num = (v: number | null | undefined, digits = 1) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(digits));

function metricsText(m: Metrics): string {
  return `AA ${num(m.AA)} · BWT ${num(m.BWT)}`;
}

export function defaultTimeFormat(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function runLabel(info: RunFolderInfo): string {
  return `${info.experiment} · ${info.method}${info.order > 0 ? ` · order ${info.order + 1}` : ''}`;
}

/**
 * A cell's place in its grid, `<method> · o<order> · s<seed>` (order 1-based, as in its folder name): under its
 * experiment's row, the method alone would read the same for every seed.
 */
export function cellLabel(info: RunFolderInfo): string {
  return `${info.method} · o${info.order + 1}${info.seed != null ? ` · s${info.seed}` : ''}`;
}

/** A run's place among all runs: a cell names its experiment and its place in the grid, a run of its own keeps `<experiment> · <method>`. */
export function gridRunLabel(info: RunFolderInfo): string {
  return info.experimentDir ? `${info.experiment} · ${cellLabel(info)}` : runLabel(info);
}

/**
 * A run's name where it stands alone (pickers, messages, the status bar, the Subspace Ranks header): the name the
 * user gave it (Rename Run...), else its place among all runs (gridRunLabel).
 */
export function qualifiedRunLabel(info: RunFolderInfo): string {
  return info.notes?.title || gridRunLabel(info);
}

/** `#tag #other`, or '' without tags. */
export function tagsText(info: RunFolderInfo): string {
  return (info.notes?.tags ?? []).map((t) => `#${t}`).join(' ');
}

/**
 * A run's row. `nested` is for a cell shown under its experiment's row, which already names the experiment.
 */
export function runNode(
  e: RunEntry,
  formatTime: (ms: number) => string = defaultTimeFormat,
  opts: { nested?: boolean } = {},
): TreeNode {
  const { info, record } = e;
  const status = runStatus(e);
  const s = info.summary;
  const live = status === 'running' || status === 'stopping';
  const parts: string[] = [status];
  if (live && record) parts.push(progressText(record.progress));
  // What a trainer with no event yet says it is doing (e.g. loading a large model): why "starting" lasts.
  if (status === 'starting' && record?.phase) parts.push(record.phase);
  if (status === 'finished' && s.metrics) parts.push(metricsText(s.metrics));
  // tfjs is the default engine: only another one (and its world size) earns room in the row.
  if (s.engine && s.engine.name !== 'tfjs') parts.push(engineText(s.engine));
  parts.push(formatTime(info.started));
  const tags = tagsText(info);
  if (tags) parts.push(tags);
  const [icon, iconColor] = ICONS[status];
  return {
    id: `run:${info.dir}`,
    label: info.notes?.title || (opts.nested ? cellLabel(info) : gridRunLabel(info)),
    description: parts.join(' · '),
    tooltip: runTooltip(e, status, formatTime),
    icon,
    iconColor,
    contextValue: contextValueFor(status, e),
    runDir: info.dir,
  };
}

function runTooltip(e: RunEntry, status: RunStatus, formatTime: (ms: number) => string): string {
  const { info, record } = e;
  const s = info.summary;
  const lines = [`${qualifiedRunLabel(info)}: ${status}`];
  if (info.notes?.title) lines.push(`Run: ${gridRunLabel(info)} (${info.id})`);
  lines.push(`Folder: ${info.dir}`);
  if (info.notes?.tags.length) lines.push(`Tags: ${tagsText(info)}`);
  if (info.notes?.notes) lines.push(`Notes: ${info.notes.notes}`);
  if (s.tasks.length) lines.push(`Tasks: ${s.tasks.join(' → ')}`);
  if (s.engine) lines.push(`Engine: ${engineText(s.engine, { version: true })}`);
  // The torch engine names itself as the backend too: one line says it.
  if (s.backend && s.backend !== s.engine?.name)
    lines.push(`Backend: ${s.backend}${record?.embedded ? " (in VS Code's runtime)" : ''}`);
  if (s.metrics) {
    const m = s.metrics;
    lines.push(
      `${status === 'finished' ? 'Final' : 'So far'}: AA ${num(m.AA)} · BWT ${num(m.BWT)} · forgetting ${num(m.forgetting)} · FWT ${num(m.FWT)}`,
    );
  }
  lines.push(`Started: ${formatTime(info.started)}${s.seconds != null ? ` · took ${s.seconds.toFixed(1)} s` : ''}`);
  if (record?.attached) lines.push('Started by an earlier window; followed through its events.jsonl.');
  if (status === 'running' && isExternal(e))
    lines.push(
      `Run by a trainer outside VS Code (the log was written ${Math.round((e.quietFor ?? 0) / 1000)} s ago); stop it where it was started.`,
    );
  const problem = record?.problem ?? s.error;
  if (problem && status !== 'finished' && status !== 'stopped') lines.push(`Problem: ${problem}`);
  if (status === 'interrupted')
    lines.push(
      'The log ends without run-finished or stopped and no trainer runs it: Resume continues from the last checkpoint.',
    );
  return lines.join('\n');
}

/** Newest first, ties by folder name so that the order is stable. */
const byNewest = (a: RunEntry, b: RunEntry): number =>
  b.info.started - a.info.started || a.info.id.localeCompare(b.info.id);

/** A flat row for every run, newest first, each naming its experiment (for pickers; the view groups them). */
export function runNodes(entries: RunEntry[], formatTime?: (ms: number) => string): TreeNode[] {
  return [...entries].sort(byNewest).map((e) => runNode(e, formatTime));
}
