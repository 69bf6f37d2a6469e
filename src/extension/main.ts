import * as vscode from 'vscode';
import { SCULPT_VERSION } from '../protocol/version';

/**
 * Extension entry. The extension host never loads tfjs: training runs in a separate trainer process
 * (dist/trainer.js) and the host only reads its events.
 */
export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Sculpt', { log: true });
  context.subscriptions.push(log);
  log.info(`Sculpt ${SCULPT_VERSION} activated`);
}

export function deactivate(): void {
  // Nothing to release yet: runs are separate processes and own their resources.
}
