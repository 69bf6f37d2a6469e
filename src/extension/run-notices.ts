/**
 * Tells the user how each run ended: a crash or failure with the reason and a Show Log action (the trainer's
 * output tail also goes to the Sculpt output channel), a finish with its headline metrics. The finished cells of
 * an experiment grid say nothing one by one (a grid of 60 would stack 60 messages over the dashboard): the grid
 * says once that it is done, when its last cell managed here settles.
 */
import * as vscode from 'vscode';
import { LOG_FILE } from './run-folder';
import { basename, join } from 'node:path';
import { experimentCells, experimentOf } from '../runs/experiment-dir';
import { isLive, type RunManager, type RunRecord } from './run-manager';

const num = (v: number | null | undefined) => (v == null ? '–' : v.toFixed(1));

export function registerRunNotices(
  manager: RunManager,
  labelFor: (dir: string) => string,
  log: vscode.LogOutputChannel,
): vscode.Disposable {
  const sub = manager.onState((r) => void notice(manager, r, labelFor(r.dir), log));
  return { dispose: () => sub.dispose() };
}

/** The experiment folder of a cell of a grid with more than one cell; undefined for a single run. */
function gridOf(dir: string): { experiment: string; cells: string[] } | undefined {
  const experiment = experimentOf(dir);
  if (!experiment) return undefined;
  try {
    const cells = experimentCells(experiment);
    return cells.length > 1 ? { experiment, cells } : undefined;
  } catch {
    return undefined;
  }
}

/** One message for a grid whose cells managed here have all settled: how many finished, and where to look. */
async function gridNotice(manager: RunManager, experiment: string, cells: string[]): Promise<void> {
  const records = cells.map((c) => manager.get(c));
  if (records.some((r) => r && (isLive(r.state) || r.state === 'queued'))) return;
  const finished = records.filter((r) => r?.state === 'finished').length;
  const name = basename(experiment).replace(/-\d{8}-\d{6}$/, '');
  const pick = await vscode.window.showInformationMessage(
    `Sculpt: ${name} done · ${finished} of ${cells.length} runs finished.`,
    'Open Experiment',
    'Export Report',
  );
  if (pick === 'Open Experiment') await vscode.commands.executeCommand('sculpt.openExperiment', experiment);
  else if (pick === 'Export Report') await vscode.commands.executeCommand('sculpt.exportReport', cells);
}

async function notice(manager: RunManager, r: RunRecord, label: string, log: vscode.LogOutputChannel): Promise<void> {
  log.info(`${label}: ${r.state}${r.pid ? ` (pid ${r.pid})` : ''}`);
  if (r.state === 'crashed' || r.state === 'failed' || r.state === 'killed') {
    log.error(
      `${label}: ${r.problem ?? r.state}${r.logTail ? `\n--- end of ${join(r.dir, LOG_FILE)} ---\n${r.logTail}` : ''}`,
    );
    const lastLine = r.logTail
      ?.split('\n')
      .filter((l) => l.trim())
      .pop();
    const detail =
      r.state === 'crashed' && lastLine && !r.problem?.includes(lastLine) ? ` Last output: ${lastLine}` : '';
    const pick = await vscode.window.showErrorMessage(
      `Sculpt: ${label} ${r.state}. ${r.problem ?? ''}${detail}`,
      'Show Log',
      'Open Dashboard',
    );
    if (pick === 'Show Log') await vscode.commands.executeCommand('sculpt.showTrainerLog', r.dir);
    else if (pick === 'Open Dashboard') await vscode.commands.executeCommand('sculpt.openDashboard', r.dir);
  } else if (r.state === 'finished') {
    const grid = gridOf(r.dir);
    if (grid) return gridNotice(manager, grid.experiment, grid.cells);
    const m = r.progress.metrics;
    const pick = await vscode.window.showInformationMessage(
      `Sculpt: ${label} finished${m ? ` · AA ${num(m.AA)} · BWT ${num(m.BWT)}` : ''}.`,
      'Open Dashboard',
      'Export Report',
    );
    if (pick === 'Open Dashboard') await vscode.commands.executeCommand('sculpt.openDashboard', r.dir);
    else if (pick === 'Export Report') await vscode.commands.executeCommand('sculpt.exportReport', r.dir);
  } else if (r.state === 'stopped') {
    const pick = await vscode.window.showInformationMessage(
      `Sculpt: ${label} stopped after writing a checkpoint.`,
      'Resume',
    );
    if (pick === 'Resume') await vscode.commands.executeCommand('sculpt.resumeRun', r.dir);
  }
}
