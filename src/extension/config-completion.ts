/**
 * Completion in `*.sculpt.json` beyond the schema's (see completion-items.ts): builtin ids with their sizes,
 * workspace data files and checkpoint folders, task names, and the chosen method's options. The schema itself
 * (generated with VS Code's `defaultSnippets`, scripts/gen-schema.mjs) gives the snippets: every method with
 * its defaults for a new item of `methods`, a builtin, JSON Lines or folder task for a new item of `tasks`.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { builtinModels, builtinTasks } from '../runs/builtin';
import { describeBuiltinModel, describeBuiltinTask } from '../runs/builtin/catalog';
import { configCompletions, type CompletionKind } from './completion-items';
import { isRunFolder } from './run-folder';
import { checkpointFolderCandidates, dataFileCandidates } from './workspace-files';

export const CONFIG_SELECTOR: vscode.DocumentSelector = [
  { language: 'json', pattern: '**/*.sculpt.json' },
  { language: 'jsonc', pattern: '**/*.sculpt.json' },
];

const EXCLUDE = '**/{node_modules,.git,dist,out,checkpoints}/**';

const KINDS: Record<CompletionKind, vscode.CompletionItemKind> = {
  value: vscode.CompletionItemKind.Value,
  file: vscode.CompletionItemKind.File,
  folder: vscode.CompletionItemKind.Folder,
  property: vscode.CompletionItemKind.Property,
  reference: vscode.CompletionItemKind.Reference,
};

/** Builtin ids come from the installed assets; an incomplete install gives no ids rather than an error. */
function safe(list: () => string[]): string[] {
  try {
    return list();
  } catch {
    return [];
  }
}

class WorkspaceFileCache {
  private at = 0;
  private data: Promise<{ data: string[]; configs: string[] }> | undefined;

  /** Absolute paths of JSON(L) files and of config.json files, refreshed at most every few seconds. */
  get(): Promise<{ data: string[]; configs: string[] }> {
    if (!this.data || Date.now() - this.at > 5000) {
      this.at = Date.now();
      this.data = Promise.all([
        vscode.workspace.findFiles('**/*.{jsonl,json}', EXCLUDE, 2000),
        vscode.workspace.findFiles('**/config.json', EXCLUDE, 500),
      ]).then(([d, c]) => ({ data: d.map((u) => u.fsPath), configs: c.map((u) => u.fsPath) }));
    }
    return this.data;
  }
}

export function registerConfigCompletion(): vscode.Disposable {
  const files = new WorkspaceFileCache();
  const provider: vscode.CompletionItemProvider = {
    async provideCompletionItems(doc, pos) {
      const dir = path.dirname(doc.uri.fsPath);
      const found = await files.get();
      const entries = configCompletions(doc.getText(), doc.offsetAt(pos), {
        builtinModels: () => safe(builtinModels),
        builtinTasks: () => safe(builtinTasks),
        dataFiles: () => dataFileCandidates(found.data, dir),
        checkpointFolders: () => checkpointFolderCandidates(found.configs, dir, isRunFolder),
        describeBuiltinTask,
        describeBuiltinModel,
      });
      return entries.map((e) => {
        const item = new vscode.CompletionItem(e.label, KINDS[e.kind]);
        item.insertText = e.snippet ? new vscode.SnippetString(e.insertText) : e.insertText;
        item.filterText = e.filterText;
        item.range = new vscode.Range(doc.positionAt(e.start), doc.positionAt(e.end));
        item.detail = e.detail;
        if (e.documentation) item.documentation = new vscode.MarkdownString(e.documentation);
        if (e.sortText) item.sortText = e.sortText;
        return item;
      });
    },
  };
  return vscode.languages.registerCompletionItemProvider(CONFIG_SELECTOR, provider, '"', ':', '/');
}
