/**
 * Tells the user how each run ended: a crash or failure with the reason and a Show Log action (the trainer's
 * output tail also goes to the Sculpt output channel), a finish with its headline metrics.
 */
import * as vscode from 'vscode';
import { LOG_FILE } from './run-folder';
import { join } from 'node:path';
import type { RunManager, RunRecord } from './run-manager';

const num = (v: number | null | undefined) => (v == null ? '–' : v.toFixed(1));

export function registerRunNotices(
  manager: RunManager,
  labelFor: (dir: string) => string,
  log: vscode.LogOutputChannel,
): vscode.Disposable {
  const sub = manager.onState((r) => void notice(r, labelFor(r.dir), log));
  return { dispose: () => sub.dispose() };
}

async function notice(r: RunRecord, label: string, log: vscode.LogOutputChannel): Promise<void> {
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
