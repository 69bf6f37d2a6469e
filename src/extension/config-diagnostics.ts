/**
 * Publishes the problems of open `*.sculpt.json` documents (config-problems.ts) to the Problems panel, with the
 * exact range of the offending value, every problem at once; and offers the "did you mean" ones as quick fixes.
 * Syntax errors and the schema's other errors are VS Code's JSON support's.
 */
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { CONFIG_SELECTOR } from './config-completion';
import { configProblems, type ConfigProblem } from './config-problems';

const isConfig = (doc: vscode.TextDocument) => doc.uri.scheme === 'file' && doc.uri.path.endsWith('.sculpt.json');

/**
 * Quick fixes for the diagnostics VS Code hands back. vscode.Diagnostic carries no data of ours, so the fixes
 * are found in `published` (the problems last published for the document) by range and message.
 */
export function quickFixes(
  doc: vscode.TextDocument,
  diagnostics: readonly vscode.Diagnostic[],
  published: readonly ConfigProblem[],
): vscode.CodeAction[] {
  const actions: vscode.CodeAction[] = [];
  for (const d of diagnostics) {
    if (d.source !== 'sculpt') continue;
    const start = doc.offsetAt(d.range.start);
    const end = doc.offsetAt(d.range.end);
    const p = published.find((q) => q.fix && q.start === start && q.end === end && q.message === d.message);
    if (!p?.fix) continue;
    const action = new vscode.CodeAction(p.fix.title, vscode.CodeActionKind.QuickFix);
    action.edit = new vscode.WorkspaceEdit();
    action.edit.replace(doc.uri, d.range, p.fix.text);
    action.diagnostics = [d];
    action.isPreferred = true;
    actions.push(action);
  }
  return actions;
}

export function registerConfigDiagnostics(): vscode.Disposable {
  const collection = vscode.languages.createDiagnosticCollection('sculpt');
  const timers = new Map<string, NodeJS.Timeout>();
  /** The problems last published, by document URI (what the quick fixes apply). */
  const published = new Map<string, ConfigProblem[]>();

  const check = (doc: vscode.TextDocument) => {
    if (!isConfig(doc)) return;
    const problems = configProblems(doc.getText(), doc.uri.fsPath, existsSync);
    published.set(doc.uri.toString(), problems);
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
  const fixes: vscode.CodeActionProvider = {
    provideCodeActions: (doc, _range, context) =>
      isConfig(doc) ? quickFixes(doc, context.diagnostics, published.get(doc.uri.toString()) ?? []) : [],
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
    vscode.languages.registerCodeActionsProvider(CONFIG_SELECTOR, fixes, {
      providedCodeActionKinds: [vscode.CodeActionKind.QuickFix],
    }),
    vscode.workspace.onDidOpenTextDocument(check),
    vscode.workspace.onDidChangeTextDocument((e) => soon(e.document)),
    vscode.workspace.onDidCloseTextDocument((doc) => {
      collection.delete(doc.uri);
      published.delete(doc.uri.toString());
    }),
    { dispose: () => timers.forEach((t) => clearTimeout(t)) },
  );
}
