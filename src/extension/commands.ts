/**
 * Run control: Run Experiment, Stop Run, Resume Run, and Stop / Resume Experiment for a whole grid. Running and
 * resuming execute the trainer on the workspace's configs and data, so they need a trusted workspace.
 */
import * as vscode from 'vscode';
import { formatIssues } from '../protocol/config-validate';
import { RESUMABLE } from '../runs/status';
import { applyBackendToRunFolder, prepareRunsConfirmed } from './launch';
import { configFromArgs, pickRuns, runDirsFromArgs } from './pickers';
import { isLive } from './run-manager';
import type { Sculpt } from './sculpt';
import { readSettings, runSettingsFor } from './settings';
import { runStatus } from './trees/run-items';
import { experimentFromArgs, pickExperiment } from './commands-runs';
import { experimentCells } from '../runs/experiment-dir';
import { foldRun } from '../runs/fold';
import { readEvents } from './run-folder';

/** False (after telling the user why) in an untrusted workspace. */
export async function requireTrust(action: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const pick = await vscode.window.showWarningMessage(
    `Sculpt: ${action} is disabled in an untrusted workspace, because a run executes the trainer on this workspace's configs and data. Trust the workspace to ${action.toLowerCase()}.`,
    'Manage Workspace Trust',
  );
  if (pick) await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}

export function registerRunCommands(s: Sculpt): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand('sculpt.runExperiment', (arg?: unknown) => runExperiment(s, arg)),
    vscode.commands.registerCommand('sculpt.stopRun', (...args: unknown[]) => stopRun(s, args)),
    vscode.commands.registerCommand('sculpt.resumeRun', (...args: unknown[]) => resumeRun(s, args)),
    vscode.commands.registerCommand('sculpt.stopExperiment', (...args: unknown[]) => stopExperiment(s, args)),
    vscode.commands.registerCommand('sculpt.resumeExperiment', (...args: unknown[]) => resumeExperiment(s, args)),
  ];
}

async function runExperiment(s: Sculpt, arg: unknown): Promise<void> {
  if (!(await requireTrust('Running'))) return;
  await s.experimentsTree.ready;
  const file = await configFromArgs(arg, s.experimentsTree.configFiles());
  if (!file) {
    const pick = await vscode.window.showInformationMessage(
      'Sculpt: there is no *.sculpt.json experiment in this workspace yet.',
      'New Experiment',
    );
    if (pick) await vscode.commands.executeCommand('sculpt.newExperiment');
    return;
  }
  const doc = vscode.workspace.textDocuments.find((d) => d.uri.fsPath === file);
  if (doc?.isDirty) await doc.save();
  const prepared = await prepareRunsConfirmed(file, runSettingsFor(file), {
    workspaceFolder: vscode.workspace.getWorkspaceFolder(vscode.Uri.file(file))?.uri.fsPath,
    confirm: async (message) =>
      (await vscode.window.showWarningMessage(`Sculpt: ${message}`, { modal: true }, 'Continue')) === 'Continue',
  });
  if (!prepared.ok && prepared.cancelled) return;
  if (!prepared.ok) {
    s.log.error(formatIssues(prepared.issues, file));
    const first = prepared.issues[0];
    const more = prepared.issues.length > 1 ? ` (and ${prepared.issues.length - 1} more, see the Problems panel)` : '';
    const pick = await vscode.window.showErrorMessage(
      `Sculpt: cannot run ${vscode.workspace.asRelativePath(file)}: ${first.path || '(root)'}: ${first.message}${more}`,
      'Open Config',
    );
    if (pick) await vscode.window.showTextDocument(vscode.Uri.file(file));
    return;
  }
  const { config, dirs } = prepared;
  for (const dir of dirs) s.manager.start(dir);
  s.log.info(`${config.name}: ${dirs.length} run(s) queued on backend ${config.backend}: ${dirs.join(', ')}`);
  // Show the ranks of the first adaptive-SVD run, if any: dirs go order by order, methods in config order.
  const svd = dirs.findIndex((_, i) => config.methods[i % config.methods.length].method === 'adaptive-svd');
  const focus = dirs[Math.max(0, svd)];
  s.ranksTree.select(focus, s.label(focus));
  s.runsTree.refresh(0);
  // The experiment's panel: every cell of the grid, queued ones included, under the experiment's name.
  try {
    s.dashboard.openExperiment(prepared.experimentDir);
  } catch (e) {
    s.log.warn(`${(e as Error).message}; showing the runs without the experiment view`);
    s.dashboard.open(dirs);
  }
}

async function stopRun(s: Sculpt, args: unknown[]): Promise<void> {
  let dirs = runDirsFromArgs(args);
  if (dirs.length === 0) {
    const active = [...s.manager.live(), ...s.manager.queued()].map((r) => r.dir);
    // Trainers started from a terminal or an earlier window can be stopped too.
    const others = s.runsTree
      .entries()
      .filter((e) => !active.includes(e.info.dir) && runStatus(e) === 'running')
      .map((e) => e.info.dir);
    const candidates = [...active, ...others];
    if (candidates.length === 0) {
      void vscode.window.showInformationMessage('Sculpt: no run is running or queued.');
      return;
    }
    dirs =
      candidates.length === 1
        ? candidates
        : await pickRuns(
            s.runsTree.entries().filter((e) => candidates.includes(e.info.dir)),
            { title: 'Stop which runs?', many: true },
          );
  }
  for (const dir of dirs) {
    const rec = s.manager.get(dir);
    if (!rec || !(isLive(rec.state) || rec.state === 'queued')) {
      if (!s.manager.follow(dir)) {
        void vscode.window.showInformationMessage(`Sculpt: ${s.label(dir)} is not running.`);
        continue;
      }
    }
    if (s.manager.get(dir)?.pid === undefined && s.manager.get(dir)?.state !== 'queued') {
      void vscode.window.showInformationMessage(
        `Sculpt: ${s.label(dir)} runs outside VS Code (no trainer.pid): stop it where it was started (Ctrl-C in its terminal).`,
      );
      continue;
    }
    s.manager.stop(dir);
  }
}

/**
 * Queues run folders to continue from their last checkpoint, with this window's backend setting; says which
 * could not be, and returns those queued.
 */
function startResumes(s: Sculpt, dirs: string[]): string[] {
  const backend = readSettings().backend;
  const started: string[] = [];
  for (const dir of dirs) {
    try {
      applyBackendToRunFolder(dir, backend);
      s.manager.start(dir);
      started.push(dir);
    } catch (e) {
      void vscode.window.showErrorMessage(`Sculpt: cannot resume ${s.label(dir)}: ${(e as Error).message}`);
    }
  }
  return started;
}

async function resumeRun(s: Sculpt, args: unknown[]): Promise<void> {
  if (!(await requireTrust('Resuming'))) return;
  let dirs = runDirsFromArgs(args);
  if (dirs.length === 0) {
    dirs = await pickRuns(s.runsTree.entries(), {
      title: 'Resume which runs? (from their last checkpoint)',
      many: true,
      only: RESUMABLE,
    });
    if (dirs.length === 0) {
      void vscode.window.showInformationMessage('Sculpt: no stopped, failed or interrupted run to resume.');
      return;
    }
  }
  const started = startResumes(s, dirs);
  if (started.length) {
    s.runsTree.refresh(0);
    s.dashboard.open(started);
  }
}

/** The experiment folder a command is about: its argument's, else one the user picks. */
async function experimentFor(s: Sculpt, args: unknown[]): Promise<string | undefined> {
  const dir = await experimentFromArgs(s, args);
  return dir === null ? undefined : (dir ?? (await pickExperiment(s)));
}

/** Stops a whole grid: its queued cells are cancelled, its running ones checkpoint and stop. */
async function stopExperiment(s: Sculpt, args: unknown[]): Promise<void> {
  const dir = await experimentFor(s, args);
  if (!dir) return;
  const active = experimentCells(dir).filter((d) => {
    const rec = s.manager.get(d) ?? s.manager.follow(d);
    return rec !== undefined && (isLive(rec.state) || rec.state === 'queued');
  });
  if (active.length === 0) {
    void vscode.window.showInformationMessage('Sculpt: no run of this experiment is running or queued.');
    return;
  }
  await stopRun(s, [active]);
}

/** Resumes a whole grid: every cell that has not finished and is not running continues (or starts). */
async function resumeExperiment(s: Sculpt, args: unknown[]): Promise<void> {
  if (!(await requireTrust('Resuming'))) return;
  const dir = await experimentFor(s, args);
  if (!dir) return;
  const pending = experimentCells(dir).filter((d) => {
    const rec = s.manager.get(d);
    if (rec && (isLive(rec.state) || rec.state === 'queued')) return false;
    return foldRun(d, readEvents(d)).status !== 'finished';
  });
  if (pending.length === 0) {
    void vscode.window.showInformationMessage('Sculpt: every run of this experiment has finished or is running.');
    return;
  }
  startResumes(s, pending);
  s.runsTree.refresh(0);
  s.dashboard.openExperiment(dir);
}
