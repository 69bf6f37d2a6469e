/**
 * A small stand-in for the `vscode` module, enough to activate the extension in plain Node and drive its
 * commands, views and providers. Importing this file installs it: `require('vscode')` then returns `vscode`
 * below (import it before anything that imports vscode). `ui` holds what the extension did (messages, status
 * bar, tree views, diagnostics, webview panels) and the answers the next dialogs give.
 */
import Module from 'node:module';
import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

type Fn = (...a: any[]) => any;

export class Disposable {
  constructor(private readonly fn: () => void = () => {}) {}
  static from(...ds: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => ds.forEach((d) => d.dispose()));
  }
  dispose(): void {
    this.fn();
  }
}

export class EventEmitter<T> {
  private readonly listeners = new Set<(e: T) => void>();
  readonly event = (fn: (e: T) => void) => {
    this.listeners.add(fn);
    return new Disposable(() => this.listeners.delete(fn));
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners.clear();
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly fsPath: string,
  ) {}
  get path(): string {
    return this.fsPath.split(path.sep).join('/');
  }
  static file(p: string): Uri {
    return new Uri('file', path.resolve(p));
  }
  static joinPath(u: Uri, ...parts: string[]): Uri {
    return Uri.file(path.join(u.fsPath, ...parts));
  }
  toString(): string {
    return `file://${this.path}`;
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}
export class Range {
  constructor(
    readonly start: Position,
    readonly end: Position,
  ) {}
}
export class ThemeIcon {
  constructor(
    readonly id: string,
    readonly color?: ThemeColor,
  ) {}
}
export class ThemeColor {
  constructor(readonly id: string) {}
}
export class MarkdownString {
  constructor(readonly value = '') {}
}
export class SnippetString {
  constructor(readonly value = '') {}
}
export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: string;
  contextValue?: string;
  iconPath?: ThemeIcon;
  resourceUri?: Uri;
  command?: unknown;
  constructor(
    readonly label: string,
    readonly collapsibleState = 0,
  ) {}
}
export class CompletionItem {
  insertText?: string | SnippetString;
  filterText?: string;
  range?: Range;
  detail?: string;
  documentation?: MarkdownString;
  sortText?: string;
  constructor(
    readonly label: string,
    readonly kind?: number,
  ) {}
}
export class Diagnostic {
  source?: string;
  code?: string;
  constructor(
    readonly range: Range,
    readonly message: string,
    readonly severity?: number,
  ) {}
}

/** The edits of a WorkspaceEdit, in order. */
export class WorkspaceEdit {
  readonly edits: { uri: Uri; range: Range; newText: string }[] = [];
  replace(uri: Uri, range: Range, newText: string): void {
    this.edits.push({ uri, range, newText });
  }
}
export class CodeAction {
  edit?: WorkspaceEdit;
  diagnostics?: Diagnostic[];
  isPreferred?: boolean;
  constructor(
    readonly title: string,
    readonly kind?: string,
  ) {}
}

const enums = {
  CodeActionKind: { QuickFix: 'quickfix' },
  TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
  StatusBarAlignment: { Left: 1, Right: 2 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
  CompletionItemKind: { Value: 12, File: 16, Folder: 18, Property: 9, Reference: 17 },
  ViewColumn: { Active: -1, Beside: -2, One: 1, Two: 2 },
  ColorThemeKind: { Light: 1, Dark: 2, HighContrast: 3, HighContrastLight: 4 },
};

/** What the extension did, and what the next dialogs answer. */
export const ui = {
  workspace: '',
  trusted: true,
  settings: {} as Record<string, unknown>,
  commands: new Map<string, Fn>(),
  executed: [] as { id: string; args: unknown[] }[],
  context: new Map<string, unknown>(),
  messages: [] as { level: 'info' | 'warning' | 'error'; text: string }[],
  statusBar: [] as { text: string; tooltip?: string; command?: unknown; visible: boolean }[],
  treeViews: new Map<string, { provider: any; view: any }>(),
  completion: [] as { selector: unknown; provider: any }[],
  codeActions: [] as { selector: unknown; provider: any; metadata: unknown }[],
  diagnostics: new Map<string, Diagnostic[]>(),
  panels: [] as { viewType: string; title: string; webview: { html: string; posted: unknown[] } }[],
  progress: [] as { title?: string; reports: unknown[] }[],
  /** Answers for the next quick picks / input boxes / dialogs, in order. */
  answers: [] as unknown[],
};

/** Workspace events the tests fire. */
export const events = {
  openDocument: new EventEmitter<unknown>(),
  changeDocument: new EventEmitter<unknown>(),
  closeDocument: new EventEmitter<unknown>(),
};

const answer = async () => ui.answers.shift();
const noEvent = () => new Disposable();

/** `**` globs over the workspace: enough for the patterns the extension uses. */
function globToRegex(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (glob.startsWith('**/', i)) {
      re += '(?:.*/)?';
      i += 2;
    } else if (c === '*') re += '[^/]*';
    else if (c === '{') {
      const end = glob.indexOf('}', i);
      re += `(?:${glob
        .slice(i + 1, end)
        .split(',')
        .map((s) => s.replace(/[.]/g, '\\.').replace(/\*/g, '[^/]*'))
        .join('|')})`;
      i = end;
    } else re += c.replace(/[.+^$()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

export const vscode = {
  ...enums,
  Disposable,
  EventEmitter,
  Uri,
  Position,
  Range,
  ThemeIcon,
  ThemeColor,
  MarkdownString,
  SnippetString,
  TreeItem,
  CompletionItem,
  Diagnostic,
  WorkspaceEdit,
  CodeAction,
  window: {
    createOutputChannel: () => ({
      info() {},
      warn() {},
      error() {},
      debug() {},
      trace() {},
      appendLine() {},
      show() {},
      dispose() {},
    }),
    createTreeView(id: string, opts: { treeDataProvider: any }) {
      const selectionChanged = new EventEmitter<unknown>();
      const view = {
        selection: [] as unknown[],
        description: undefined,
        message: undefined,
        onDidChangeSelection: selectionChanged.event,
        reveal: async () => {},
        dispose() {},
        select(nodes: unknown[]) {
          view.selection = nodes;
          selectionChanged.fire({ selection: nodes });
        },
      };
      ui.treeViews.set(id, { provider: opts.treeDataProvider, view });
      return view;
    },
    createStatusBarItem() {
      const item = {
        text: '',
        tooltip: undefined,
        command: undefined,
        name: '',
        visible: false,
        show() {
          item.visible = true;
        },
        hide() {
          item.visible = false;
        },
        dispose() {},
      };
      ui.statusBar.push(item);
      return item;
    },
    withProgress(opts: { title?: string }, task: Fn) {
      const rec = { title: opts.title, reports: [] as unknown[] };
      ui.progress.push(rec);
      return task(
        { report: (v: unknown) => rec.reports.push(v) },
        { onCancellationRequested: noEvent, isCancellationRequested: false },
      );
    },
    showInformationMessage: async (text: string) => void ui.messages.push({ level: 'info', text }),
    // A modal warning is a dialog that waits for a choice: it takes the next answer, as the pickers do.
    showWarningMessage: async (text: string, ...rest: unknown[]) => {
      ui.messages.push({ level: 'warning', text });
      const opts = rest[0];
      return opts && typeof opts === 'object' && (opts as { modal?: boolean }).modal ? answer() : undefined;
    },
    showErrorMessage: async (text: string) => void ui.messages.push({ level: 'error', text }),
    showQuickPick: answer,
    showInputBox: answer,
    showOpenDialog: answer,
    showSaveDialog: answer,
    showTextDocument: async () => undefined,
    activeTextEditor: undefined,
    activeColorTheme: { kind: 2 },
    onDidChangeActiveColorTheme: noEvent,
    createWebviewPanel(viewType: string, title: string) {
      const posted: unknown[] = [];
      const webview = {
        html: '',
        options: {},
        cspSource: 'vscode-resource:',
        posted,
        asWebviewUri: (u: Uri) => u,
        postMessage: async (m: unknown) => posted.push(m),
        onDidReceiveMessage: noEvent,
      };
      const panel = {
        viewType,
        title,
        webview,
        onDidDispose: noEvent,
        onDidChangeViewState: noEvent,
        reveal() {},
        dispose() {},
      };
      ui.panels.push(panel);
      return panel;
    },
    registerWebviewPanelSerializer: () => new Disposable(),
  },
  workspace: {
    get isTrusted() {
      return ui.trusted;
    },
    get workspaceFolders() {
      return ui.workspace ? [{ uri: Uri.file(ui.workspace), name: 'ws', index: 0 }] : [];
    },
    getWorkspaceFolder: (u: Uri) =>
      ui.workspace && u.fsPath.startsWith(ui.workspace) ? vscode.workspace.workspaceFolders[0] : undefined,
    getConfiguration: (section: string) => ({
      get: (key: string, def?: unknown) =>
        `${section}.${key}` in ui.settings ? ui.settings[`${section}.${key}`] : def,
    }),
    async findFiles(glob: string, exclude?: string, max = Infinity) {
      const inc = globToRegex(glob);
      const exc = exclude ? globToRegex(exclude) : undefined;
      return walk(ui.workspace)
        .map((f) => path.relative(ui.workspace, f).split(path.sep).join('/'))
        .filter((r) => inc.test(r) && !exc?.test(r))
        .slice(0, max)
        .map((r) => Uri.file(path.join(ui.workspace, r)));
    },
    asRelativePath: (u: Uri | string) =>
      path
        .relative(ui.workspace, typeof u === 'string' ? u : u.fsPath)
        .split(path.sep)
        .join('/'),
    createFileSystemWatcher: () => ({ onDidCreate: noEvent, onDidChange: noEvent, onDidDelete: noEvent, dispose() {} }),
    onDidChangeConfiguration: noEvent,
    onDidOpenTextDocument: events.openDocument.event,
    onDidChangeTextDocument: events.changeDocument.event,
    onDidCloseTextDocument: events.closeDocument.event,
    textDocuments: [] as unknown[],
    fs: {},
  },
  languages: {
    registerCompletionItemProvider(selector: unknown, provider: unknown) {
      ui.completion.push({ selector, provider });
      return new Disposable();
    },
    registerCodeActionsProvider(selector: unknown, provider: unknown, metadata: unknown) {
      ui.codeActions.push({ selector, provider, metadata });
      return new Disposable();
    },
    createDiagnosticCollection: () => ({
      set: (u: Uri, d: Diagnostic[]) => ui.diagnostics.set(u.fsPath, d),
      delete: (u: Uri) => ui.diagnostics.delete(u.fsPath),
      dispose() {},
    }),
  },
  commands: {
    registerCommand(id: string, fn: Fn) {
      if (ui.commands.has(id)) throw new Error(`command ${id} registered twice`);
      ui.commands.set(id, fn);
      return new Disposable(() => ui.commands.delete(id));
    },
    async executeCommand(id: string, ...args: unknown[]) {
      ui.executed.push({ id, args });
      if (id === 'setContext') ui.context.set(args[0] as string, args[1]);
      return ui.commands.get(id)?.(...args);
    },
  },
};

/** A text document over a string, as the providers read it. */
export function textDocument(file: string, text: string) {
  const lineStarts = [0, ...[...text.matchAll(/\n/g)].map((m) => m.index! + 1)];
  return {
    uri: Uri.file(file),
    getText: () => text,
    offsetAt: (p: Position) => lineStarts[p.line] + p.character,
    positionAt(offset: number) {
      let line = 0;
      while (line + 1 < lineStarts.length && lineStarts[line + 1] <= offset) line++;
      return new Position(line, offset - lineStarts[line]);
    },
    isDirty: false,
  };
}

const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
const load = loader._load;
loader._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? vscode : load.call(this, request, ...rest);
};
