import * as vscode from 'vscode';
import { SCULPT_VERSION } from '../protocol/version';
import { registerRunFolderCommands } from './commands-runs';
import { registerRunCommands } from './commands';
import { registerConfigCompletion } from './config-completion';
import { registerConfigDiagnostics } from './config-diagnostics';
import { newExperiment } from './new-experiment';
import { registerRunNotices } from './run-notices';
import { Sculpt } from './sculpt';
import { RunStatusBar } from './status-bar';

/**
 * Extension entry. The extension host never loads tfjs: training runs in separate trainer processes
 * (dist/trainer.js) and the host only reads their events. It opens no network port.
 */
export function activate(context: vscode.ExtensionContext): void {
  const s = new Sculpt(context);
  s.log.info(`Sculpt ${SCULPT_VERSION} activated`);
  context.subscriptions.push(
    s,
    new RunStatusBar(s.manager, (dir) => s.label(dir)),
    registerRunNotices(s.manager, (dir) => s.label(dir), s.log),
    registerConfigCompletion(),
    registerConfigDiagnostics(),
    vscode.commands.registerCommand('sculpt.newExperiment', async () => {
      const created = await newExperiment();
      if (created) await s.experimentsTree.scan();
    }),
    ...registerRunCommands(s),
    ...registerRunFolderCommands(s),
  );
  void vscode.commands.executeCommand('setContext', 'sculpt.ranksShowRatios', false);
  // Runs started before a window reload keep going: follow them again once the runs folders are known.
  void s.experimentsTree.ready.then(() => {
    s.reattach();
    s.runsTree.refresh(0);
  });
}

export function deactivate(): void {
  // Everything is in context.subscriptions; trainers are left running on purpose (see Sculpt.dispose).
}
