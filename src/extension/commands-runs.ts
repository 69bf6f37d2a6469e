/**
 * Commands on recorded runs: Open Dashboard, Open Run..., Compare Runs, Export Report, Show Trainer Log,
 * Reveal Run Folder, Delete Run, and the views' refresh and selection.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { csvReport, markdownReport } from '../runs/report';
import { isLive } from '../runs/status';
import { pickRuns, runDirsFromArgs } from './pickers';
import { LOG_FILE, eventsFile, listRunFolders } from './run-folder';
import type { Sculpt } from './sculpt';

export function registerRunFolderCommands(s: Sculpt): vscode.Disposable[] {
  const reg = (id: string, fn: (...args: unknown[]) => unknown) => vscode.commands.registerCommand(id, fn);
  return [
    reg('sculpt.openDashboard', (...args) => openDashboard(s, args)),
    reg('sculpt.openRun', () => openRun(s)),
    reg('sculpt.compareRuns', (...args) => compareRuns(s, args)),
    reg('sculpt.exportReport', (...args) => exportReport(s, args)),
    reg('sculpt.showTrainerLog', (...args) => showTrainerLog(s, args)),
    reg('sculpt.revealRun', (...args) => revealRun(args)),
    reg('sculpt.deleteRun', (...args) => deleteRun(s, args)),
    reg('sculpt.refreshRuns', () => s.runsTree.refresh(0)),
    reg('sculpt.refreshExperiments', () => s.experimentsTree.scan()),
    reg('sculpt.ranks.showRatios', () => s.ranksTree.setMode('ratios')),
    reg('sculpt.ranks.showRanks', () => s.ranksTree.setMode('ranks')),
  ];
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
  let dirs = runDirsFromArgs(args);
  if (dirs.length === 0)
    dirs = await pickRuns(s.runsTree.entries(), {
      title: 'Export a report of which runs?',
      many: true,
      preselect: defaultRuns(s),
    });
  if (dirs.length === 0) return;
  const format = await vscode.window.showQuickPick(
    [
      { label: 'Markdown', description: 'summary table and accuracy matrices', ext: 'md' },
      { label: 'CSV', description: 'long format: one accuracy or metric per row', ext: 'csv' },
    ],
    { title: 'Report format' },
  );
  if (!format) return;
  const base =
    dirs.length === 1 ? dirs[0] : (vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(dirs[0]));
  const target = await vscode.window.showSaveDialog({
    defaultUri: vscode.Uri.file(
      path.join(base, dirs.length === 1 ? `report.${format.ext}` : `sculpt-report.${format.ext}`),
    ),
    filters: { [format.label]: [format.ext] },
  });
  if (!target) return;
  const summaries = dirs.flatMap((d) => {
    const info = s.catalog.info(d);
    return info ? [info.summary] : [];
  });
  writeFileSync(target.fsPath, format.ext === 'md' ? markdownReport(summaries) : csvReport(summaries));
  const pick = await vscode.window.showInformationMessage(
    `Sculpt: report of ${summaries.length} run(s) saved to ${target.fsPath}.`,
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
