/**
 * Publishes the semantic problems of open `*.sculpt.json` documents (config-problems.ts) to the Problems
 * panel, with the exact range of the offending value. Syntax and schema errors are VS Code's JSON support's.
 */
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { configProblems } from './config-problems';

const isConfig = (doc: vscode.TextDocument) => doc.uri.scheme === 'file' && doc.uri.path.endsWith('.sculpt.json');

export function registerConfigDiagnostics(): vscode.Disposable {
  const collection = vscode.languages.createDiagnosticCollection('sculpt');
  const timers = new Map<string, NodeJS.Timeout>();

  const check = (doc: vscode.TextDocument) => {
    if (!isConfig(doc)) return;
    const problems = configProblems(doc.getText(), doc.uri.fsPath, existsSync);
    collection.set(
      doc.uri,
      problems.map((p) => {
        const d = new vscode.Diagnostic(
          new vscode.Range(doc.positionAt(p.start), doc.positionAt(p.end)),
          p.message,
          vscode.DiagnosticSeverity.Error,
        );
        d.source = 'sculpt';
        d.code = p.path || undefined;
        return d;
      }),
    );
  };
  const soon = (doc: vscode.TextDocument) => {
    if (!isConfig(doc)) return;
    const key = doc.uri.toString();
    clearTimeout(timers.get(key));
    timers.set(
      key,
      setTimeout(() => {
        timers.delete(key);
        check(doc);
      }, 300),
    );
  };

  vscode.workspace.textDocuments.forEach(check);
  // Data files appearing or disappearing change the verdict on configs that name them.
  const watcher = vscode.workspace.createFileSystemWatcher('**/*.{jsonl,json}', false, true, false);
  const recheckAll = () => vscode.workspace.textDocuments.forEach(soon);
  return vscode.Disposable.from(
    collection,
    watcher,
    watcher.onDidCreate(recheckAll),
    watcher.onDidDelete(recheckAll),
    vscode.workspace.onDidOpenTextDocument(check),
    vscode.workspace.onDidChangeTextDocument((e) => soon(e.document)),
    vscode.workspace.onDidCloseTextDocument((doc) => collection.delete(doc.uri)),
    { dispose: () => timers.forEach((t) => clearTimeout(t)) },
  );
}
