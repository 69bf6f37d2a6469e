/**
 * Commands on recorded runs: Open Dashboard, Open Experiment View, Open Run..., Compare Runs, Export Report,
 * Show Trainer Log, Reveal Run Folder, Delete Run, Delete Experiment, the views' refresh and selection, and
 * (commands-notes.ts) Rename Run..., Edit Notes..., Edit Tags....
 */
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readConfigText } from '../data/read-bounded';
import { experimentCells, experimentOf, isExperimentFolder } from '../runs/experiment-dir';
import { csvReport, markdownReport } from '../runs/report';
import { isLive, type RunStatus } from '../runs/status';
import { pickRuns, runDirsFromArgs, runDirsWithExperiments } from './pickers';
import { LOG_FILE, eventsFile, listRunFolders } from './run-folder';
import type { Sculpt } from './sculpt';
import { experimentsOfConfig, findExperimentFolders } from './trees/experiment-items';
import type { TreeNode } from './trees/node';
import { runStatus } from './trees/run-items';
import { registerRunNotesCommands } from './commands-notes';
import type { RunFolderInfo } from './run-folder';
import type { RunSummary } from '../runs/fold';
import { finalModelPath } from '../runs/run-dir';

export function registerRunFolderCommands(s: Sculpt): vscode.Disposable[] {
  const reg = (id: string, fn: (...args: unknown[]) => unknown) => vscode.commands.registerCommand(id, fn);
  return [
    reg('sculpt.openDashboard', (...args) => openDashboard(s, args)),
    reg('sculpt.openExperiment', (...args) => openExperiment(s, args)),
    followNewCells(s),
    reg('sculpt.openRun', () => openRun(s)),
    reg('sculpt.compareRuns', (...args) => compareRuns(s, args)),
    reg('sculpt.exportReport', (...args) => exportReport(s, args)),
    reg('sculpt.showTrainerLog', (...args) => showTrainerLog(s, args)),
    reg('sculpt.revealRun', (...args) => revealRun(args)),
    reg('sculpt.revealModel', (...args) => revealModel(args)),
    reg('sculpt.deleteRun', (...args) => deleteRun(s, args)),
    reg('sculpt.deleteExperiment', (...args) => deleteExperiment(s, args)),
    reg('sculpt.refreshRuns', () => s.runsTree.refresh(0)),
    reg('sculpt.refreshExperiments', () => s.experimentsTree.scan()),
    reg('sculpt.ranks.showRatios', () => s.ranksTree.setMode('ratios')),
    reg('sculpt.ranks.showRanks', () => s.ranksTree.setMode('ranks')),
    ...registerRunNotesCommands(s),
  ];
}

/** A run's summary for a report, named as the user renamed it (with its folder's name, which stays unique). */
function reportSummary(info: RunFolderInfo): RunSummary {
  const title = info.notes?.title;
  return title ? { ...info.summary, name: `${title} (${info.id})` } : info.summary;
}

/** The runs a command acts on by default: those selected in the Runs view, else the live ones. */
function defaultRuns(s: Sculpt): string[] {
  const selected = s.runsView.selection.map((n) => n.runDir).filter((d): d is string => !!d);
  return selected.length ? selected : s.manager.live().map((r) => r.dir);
}

async function openDashboard(s: Sculpt, args: unknown[]): Promise<void> {
  let dirs = runDirsFromArgs(args);
  if (dirs.length === 0) dirs = defaultRuns(s);
  if (dirs.length === 0)
    dirs = await pickRuns(s.runsTree.entries(), { title: 'Open the dashboard of which run?', many: false });
  for (const d of dirs) s.follow(d);
  if (dirs.length) s.dashboard.open(dirs);
}

const CONFIG_SUFFIX = '.sculpt.json';

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The newest experiment folder launched from a config file, after telling the user when there is none. */
async function newestExperimentOf(s: Sculpt, file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = readConfigText(file);
  } catch (e) {
    void vscode.window.showErrorMessage(`Sculpt: cannot read ${file}: ${(e as Error).message}`);
    return undefined;
  }
  const found = experimentsOfConfig(file, text, s.runsRoots())[0];
  if (found) return found.dir;
  const pick = await vscode.window.showInformationMessage(
    `Sculpt: ${vscode.workspace.asRelativePath(file)} has not been run yet: its experiment folder appears in its output folder when it runs.`,
    'Run Experiment',
  );
  if (pick) await vscode.commands.executeCommand('sculpt.runExperiment', vscode.Uri.file(file));
  return undefined;
}

/**
 * The experiment folder a command argument stands for: an experiment row of the Runs view or an experiment
 * folder, a run row or run folder (the experiment it is a cell of), or a config row or file (its newest launch).
 * Null when the argument names no experiment (the user was told why); undefined when there is no argument.
 */
export async function experimentFromArgs(s: Sculpt, args: unknown[]): Promise<string | null | undefined> {
  const arg = args[0];
  if (arg === undefined || arg === null) return undefined;
  const node = typeof arg === 'object' && !(arg instanceof vscode.Uri) ? (arg as TreeNode) : undefined;
  if (typeof node?.experimentDir === 'string') return node.experimentDir;
  if (node?.file) return (await newestExperimentOf(s, node.file)) ?? null;
  const p = runDirsFromArgs([arg])[0];
  if (!p) return undefined;
  if (p.endsWith(CONFIG_SUFFIX) && !isDirectory(p)) return (await newestExperimentOf(s, p)) ?? null;
  const dir = isExperimentFolder(p) ? p : experimentOf(p);
  if (dir) return dir;
  void vscode.window.showInformationMessage(
    `Sculpt: ${path.basename(p)} is not a cell of an experiment folder (one with experiment.json): open its dashboard instead.`,
  );
  return null;
}

export async function pickExperiment(s: Sculpt): Promise<string | undefined> {
  const found = findExperimentFolders(s.runsRoots());
  if (found.length === 0) {
    void vscode.window.showInformationMessage('Sculpt: no experiment folder yet: run an experiment first.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    found.map(({ dir, record }) => ({
      label: record.name,
      description: `${record.cells.length} run${record.cells.length === 1 ? '' : 's'} · ${record.created ?? ''}`,
      detail: dir,
      dir,
    })),
    { title: 'Open which experiment?', matchOnDescription: true, matchOnDetail: true },
  );
  return picked?.dir;
}

/** Every cell of an experiment in one dashboard: the argument's experiment, else the selected run's, else a pick. */
async function openExperiment(s: Sculpt, args: unknown[]): Promise<void> {
  let dir = await experimentFromArgs(s, args);
  if (dir === null) return;
  dir ??= defaultRuns(s)
    .map((d) => experimentOf(d))
    .find((d): d is string => !!d);
  dir ??= await pickExperiment(s);
  if (!dir) return;
  try {
    // Cells run by a terminal's `sculpt run` are followed through their logs, as Open Dashboard does.
    for (const d of experimentCells(dir)) if (existsSync(eventsFile(d))) s.follow(d);
    s.dashboard.openExperiment(dir);
  } catch (e) {
    void vscode.window.showErrorMessage(`Sculpt: ${(e as Error).message}`);
  }
}

/**
 * Follows a cell whose log appears while its experiment is shown (a terminal's `sculpt run` starting the next
 * cell), so the experiment view updates live whoever runs the grid.
 */
function followNewCells(s: Sculpt): vscode.Disposable {
  const watcher = vscode.workspace.createFileSystemWatcher('**/events.jsonl', false, true, true);
  const sub = watcher.onDidCreate((uri) => {
    const dir = path.dirname(uri.fsPath);
    const exp = experimentOf(dir);
    if (exp && s.dashboard.openExperiments().includes(exp)) s.follow(dir);
  });
  return {
    dispose: () => {
      sub.dispose();
      watcher.dispose();
    },
  };
}

async function openRun(s: Sculpt): Promise<void> {
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: true,
    openLabel: 'Open Run',
    title: 'Open a run folder (one with events.jsonl), or a folder of runs',
  });
  if (!picked?.length) return;
  const dirs: string[] = [];
  for (const u of picked) {
    const found = listRunFolders([u.fsPath]).filter((d) => existsSync(eventsFile(d)));
    if (found.length === 0) {
      void vscode.window.showErrorMessage(
        `Sculpt: ${u.fsPath} has no events.jsonl and no run folders inside: a run folder holds the events.jsonl its trainer wrote (runs/<experiment>-<method>-<time>/).`,
      );
      continue;
    }
    dirs.push(...found);
  }
  if (dirs.length === 0) return;
  await s.rememberOpened(dirs);
  // A run another window or a terminal started keeps being followed live.
  for (const d of dirs) s.follow(d);
  s.dashboard.open(dirs);
}

async function compareRuns(s: Sculpt, args: unknown[]): Promise<void> {
  let dirs = runDirsFromArgs(args);
  if (dirs.length < 2 && defaultRuns(s).length >= 2) dirs = defaultRuns(s);
  if (dirs.length < 2) {
    dirs = await pickRuns(s.runsTree.entries(), {
      title: 'Compare which runs? (pick two or more)',
      many: true,
      preselect: dirs,
    });
  }
  if (dirs.length) s.dashboard.open(dirs);
}

async function exportReport(s: Sculpt, args: unknown[]): Promise<void> {
  let dirs = runDirsWithExperiments(args);
  if (dirs.length === 0)
    dirs = await pickRuns(s.runsTree.entries(), {
      title: 'Export a report of which runs?',
      many: true,
      preselect: defaultRuns(s),
    });
  if (dirs.length === 0) return;
  const format = await vscode.window.showQuickPick(
    [
      { label: 'Markdown', description: "means with 95% intervals, paired differences, each run's matrix", ext: 'md' },
      { label: 'CSV', description: 'long format: one accuracy or metric per row', ext: 'csv' },
    ],
    { title: 'Report format' },
  );
  if (!format) return;
  // Beside the run, or the experiment all the runs belong to; else in the workspace.
  const experiments = new Set(dirs.map((d) => experimentOf(d)));
  const experiment = experiments.size === 1 ? [...experiments][0] : undefined;
  const base =
    dirs.length === 1
      ? dirs[0]
      : (experiment ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(dirs[0]));
  const target = await vscode.window.showSaveDialog({
    defaultUri: vscode.Uri.file(
      path.join(base, dirs.length === 1 || experiment ? `report.${format.ext}` : `sculpt-report.${format.ext}`),
    ),
    filters: { [format.label]: [format.ext] },
  });
  if (!target) return;
  const summaries = dirs.flatMap((d) => {
    const info = s.catalog.info(d);
    return info ? [reportSummary(info)] : [];
  });
  writeFileSync(target.fsPath, format.ext === 'md' ? markdownReport(summaries) : csvReport(summaries));
  const pick = await vscode.window.showInformationMessage(
    `Sculpt: report of ${summaries.length} run${summaries.length === 1 ? '' : 's'} saved to ${target.fsPath}.`,
    'Open',
  );
  if (pick) await vscode.window.showTextDocument(target);
}

async function showTrainerLog(s: Sculpt, args: unknown[]): Promise<void> {
  let dirs = runDirsFromArgs(args);
  if (dirs.length === 0) dirs = defaultRuns(s).slice(0, 1);
  if (dirs.length === 0)
    dirs = await pickRuns(s.runsTree.entries(), { title: 'Show the trainer log of which run?', many: false });
  const dir = dirs[0];
  if (!dir) return;
  const file = path.join(dir, LOG_FILE);
  if (!existsSync(file)) {
    void vscode.window.showInformationMessage(
      `Sculpt: ${dir} has no ${LOG_FILE}: no trainer was started for it on this machine yet.`,
    );
    return;
  }
  await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: true });
}

async function revealRun(args: unknown[]): Promise<void> {
  const dir = runDirsFromArgs(args)[0];
  if (!dir) return;
  const uri = vscode.Uri.file(dir);
  if (vscode.workspace.getWorkspaceFolder(uri)) await vscode.commands.executeCommand('revealInExplorer', uri);
  else await vscode.commands.executeCommand('revealFileInOS', uri);
}

/** The run's fine-tuned model (`<run>/model/`, checkpoint.final), or why it has none. */
async function revealModel(args: unknown[]): Promise<void> {
  const dir = runDirsFromArgs(args)[0];
  if (!dir) return;
  const model = finalModelPath(dir);
  if (!existsSync(model)) {
    void vscode.window.showInformationMessage(
      `Sculpt: ${dir} has no fine-tuned model folder: the run did not finish, or its config sets checkpoint.final to false.`,
    );
    return;
  }
  const uri = vscode.Uri.file(model);
  if (vscode.workspace.getWorkspaceFolder(uri)) await vscode.commands.executeCommand('revealInExplorer', uri);
  else await vscode.commands.executeCommand('revealFileInOS', uri);
}

async function deleteRun(s: Sculpt, args: unknown[]): Promise<void> {
  const dirs = runDirsFromArgs(args);
  if (dirs.length === 0) return;
  const live = dirs.filter((d) => {
    const r = s.manager.get(d);
    return r && (isLive(r.state) || r.state === 'queued');
  });
  if (live.length) {
    void vscode.window.showWarningMessage(
      `Sculpt: ${live.map((d) => s.label(d)).join(', ')} is still running or queued; stop it before deleting.`,
    );
    return;
  }
  const what = dirs.length === 1 ? `the run folder ${dirs[0]}` : `${dirs.length} run folders`;
  const ok = await vscode.window.showWarningMessage(
    `Delete ${what}? Its events, checkpoints and log are removed from disk.`,
    { modal: true },
    'Delete',
  );
  if (ok !== 'Delete') return;
  for (const d of dirs) {
    try {
      rmSync(d, { recursive: true, force: true });
      s.catalog.forget(d);
      s.manager.forget(d);
      await s.forgetOpened(d);
    } catch (e) {
      void vscode.window.showErrorMessage(`Sculpt: could not delete ${d}: ${(e as Error).message}`);
    }
  }
  if (s.ranksTree.selected && dirs.includes(s.ranksTree.selected)) s.ranksTree.select(undefined);
  s.runsTree.refresh(0);
}

/** A cell in one of these states has a trainer at it, or will have: its folder must stay. */
const BUSY = new Set<RunStatus>(['queued', 'starting', 'running', 'stopping']);

/**
 * Deletes experiment folders (the experiment rows passed, the clicked one and the view's selection) with all
 * their runs, after one modal confirmation that says how many runs go; refused while any of their runs is running
 * or queued, whoever runs it (this window, an earlier one, a terminal).
 */
async function deleteExperiment(s: Sculpt, args: unknown[]): Promise<void> {
  const dirs = new Set<string>();
  const add = (a: unknown) => {
    if (Array.isArray(a)) a.forEach(add);
    else if (a && typeof a === 'object' && typeof (a as TreeNode).experimentDir === 'string')
      dirs.add((a as TreeNode).experimentDir!);
    else if (typeof a === 'string' && isExperimentFolder(a)) dirs.add(path.resolve(a));
  };
  args.forEach(add);
  if (dirs.size === 0) return;
  const entries = s.catalog.entries().filter((e) => e.info.experimentDir && dirs.has(e.info.experimentDir));
  const busy = entries.filter((e) => BUSY.has(runStatus(e)));
  if (busy.length) {
    void vscode.window.showWarningMessage(
      `Sculpt: ${busy.map((e) => s.label(e.info.dir)).join(', ')} ${busy.length === 1 ? 'is' : 'are'} still running or queued; stop the experiment before deleting it.`,
    );
    return;
  }
  const names = [...dirs].map((d) => s.catalog.experiment(d)?.name ?? path.basename(d));
  const runs = entries.length;
  const what =
    dirs.size === 1 ? `the experiment ${names[0]} (${[...dirs][0]})` : `${dirs.size} experiments (${names.join(', ')})`;
  const ok = await vscode.window.showWarningMessage(
    `Delete ${what} and ${dirs.size === 1 ? 'its' : 'their'} ${runs} run${runs === 1 ? '' : 's'}? Their events, checkpoints and logs are removed from disk.`,
    { modal: true },
    'Delete',
  );
  if (ok !== 'Delete') return;
  for (const dir of dirs) {
    const cells = entries.filter((e) => e.info.experimentDir === dir).map((e) => e.info.dir);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      void vscode.window.showErrorMessage(`Sculpt: could not delete ${dir}: ${(e as Error).message}`);
      continue;
    }
    for (const d of [dir, ...cells]) {
      s.catalog.forget(d);
      s.manager.forget(d);
      await s.forgetOpened(d);
    }
    const shown = s.ranksTree.selected;
    if (shown && (cells.includes(shown) || path.dirname(path.resolve(shown)) === dir)) s.ranksTree.select(undefined);
  }
  s.runsTree.refresh(0);
}
