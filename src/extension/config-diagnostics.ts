/**
 * Publishes the problems of open `*.sculpt.json` documents to the Problems panel, with the exact range of the
 * offending value, every problem at once, while the user types: first what config-problems.ts finds in the
 * extension host (semantics, files, builtin names, the schema's misspellings); then, once those are settled,
 * the rest of what `sculpt validate` checks (the model's files, every task's data read as a run reads it, the
 * tokenizer's coverage of it, with its warnings), by running the CLI's `validate --json --stdin` on the
 * document's text, since those checks need the engine, which the extension host never loads. "Did you mean"
 * problems come with a quick fix. Syntax errors and the schema's other errors are VS Code's JSON support's.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { builtinModels, builtinTasks } from '../runs/builtin';
import type { BuiltinCatalog } from '../runs/builtin/names';
import { CONFIG_SELECTOR } from './config-completion';
import {
  configProblems,
  configSettled,
  findingProblems,
  type ConfigProblem,
  type ValidateFinding,
} from './config-problems';
import { resolveRuntime } from './node-runtime';
import { readSettings } from './settings';

/**
 * The engine's checks of a config's text (`file` anchors its relative paths); undefined when they could not
 * run (no Node.js, a crash), which leaves the quick checks' verdict standing.
 */
export type DeepValidator = (text: string, file: string, signal: AbortSignal) => Promise<ValidateFinding[] | undefined>;

/** The checks after an edit wait this long for the next keystroke; the engine's checks wait longer. */
const QUICK_DELAY_MS = 300;
const DEEP_DELAY_MS = 700;
const DEEP_TIMEOUT_MS = 60_000;

/** `sculpt validate --json --stdin <file>` through the CLI bundle beside the extension's; undefined without one. */
export function cliValidator(cliScript: string): DeepValidator | undefined {
  if (!existsSync(cliScript)) return undefined;
  return (text, file, signal) =>
    new Promise((resolve) => {
      let command: string;
      let env: NodeJS.ProcessEnv;
      try {
        // validate loads no backend: VS Code's own runtime will do when no Node.js is found.
        ({ command, env } = resolveRuntime({
          nodePath: readSettings(vscode.Uri.file(file)).nodePath,
          backend: 'cpu',
          execPath: process.execPath,
          env: process.env,
        }));
      } catch {
        resolve(undefined);
        return;
      }
      const child = spawn(command, [cliScript, 'validate', '--json', '--stdin', file], {
        env,
        cwd: path.dirname(file),
        signal,
        timeout: DEEP_TIMEOUT_MS,
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.on('error', () => resolve(undefined));
      child.on('close', () => {
        try {
          const report = JSON.parse(out.trim().split('\n').pop() ?? '') as { findings?: ValidateFinding[] };
          resolve(Array.isArray(report.findings) ? report.findings : undefined);
        } catch {
          resolve(undefined);
        }
      });
      child.stdin.on('error', () => {});
      child.stdin.end(text);
    });
}

function safe(list: () => string[]): string[] {
  try {
    return list();
  } catch {
    return [];
  }
}

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

export function registerConfigDiagnostics(
  deep: DeepValidator | undefined = cliValidator(path.join(__dirname, 'cli.js')),
): vscode.Disposable {
  const collection = vscode.languages.createDiagnosticCollection('sculpt');
  const timers = new Map<string, NodeJS.Timeout>();
  const deepTimers = new Map<string, NodeJS.Timeout>();
  const inFlight = new Map<string, AbortController>();
  /** The problems last published, by document URI (what the quick fixes apply). */
  const published = new Map<string, ConfigProblem[]>();
  /** The engine's last findings, by document URI: shown again (by JSON path) until the next ones arrive. */
  const lastFindings = new Map<string, ValidateFinding[]>();
  let catalog: BuiltinCatalog | undefined;
  const builtins = () => (catalog ??= { models: safe(builtinModels), tasks: safe(builtinTasks) });

  const publish = (doc: vscode.TextDocument, problems: ConfigProblem[]) => {
    published.set(doc.uri.toString(), problems);
    collection.set(
      doc.uri,
      problems.map((p) => {
        const d = new vscode.Diagnostic(
          new vscode.Range(doc.positionAt(p.start), doc.positionAt(p.end)),
          p.message,
          p.severity === 'warning' ? vscode.DiagnosticSeverity.Warning : vscode.DiagnosticSeverity.Error,
        );
        d.source = 'sculpt';
        d.code = p.path || undefined;
        return d;
      }),
    );
  };
  const cancelDeep = (key: string) => {
    clearTimeout(deepTimers.get(key));
    deepTimers.delete(key);
    inFlight.get(key)?.abort();
    inFlight.delete(key);
  };
  const runDeep = async (doc: vscode.TextDocument, text: string, quick: ConfigProblem[]) => {
    const key = doc.uri.toString();
    const controller = new AbortController();
    inFlight.set(key, controller);
    const findings = await deep!(text, doc.uri.fsPath, controller.signal).catch(() => undefined);
    if (controller.signal.aborted || inFlight.get(key) !== controller) return;
    inFlight.delete(key);
    // The document may have changed meanwhile: ranges hold only for the text checked.
    if (!findings || doc.getText() !== text) return;
    lastFindings.set(key, findings);
    publish(doc, [...quick, ...findingProblems(text, findings)]);
  };
  const check = (doc: vscode.TextDocument) => {
    if (!isConfig(doc)) return;
    const key = doc.uri.toString();
    cancelDeep(key);
    const text = doc.getText();
    const quick = configProblems(text, doc.uri.fsPath, existsSync, builtins());
    // The engine's checks read data and model files: only for a config the quick checks pass, and only in a
    // trusted workspace (the Node.js that runs them comes from the workspace's settings).
    const settled =
      !!deep && !quick.some((p) => p.severity === 'error') && vscode.workspace.isTrusted && configSettled(text);
    if (!settled) lastFindings.delete(key);
    // Until the engine answers for this text, its previous findings stay where their paths now are (no flicker).
    publish(doc, [...quick, ...findingProblems(text, lastFindings.get(key) ?? [])]);
    if (!settled) return;
    deepTimers.set(
      key,
      setTimeout(() => {
        deepTimers.delete(key);
        void runDeep(doc, text, quick);
      }, DEEP_DELAY_MS),
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
      }, QUICK_DELAY_MS),
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
      cancelDeep(doc.uri.toString());
      lastFindings.delete(doc.uri.toString());
      collection.delete(doc.uri);
      published.delete(doc.uri.toString());
    }),
    {
      dispose: () => {
        timers.forEach((t) => clearTimeout(t));
        [...deepTimers.keys(), ...inFlight.keys()].forEach(cancelDeep);
      },
    },
  );
}
