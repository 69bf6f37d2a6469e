/**
 * Just enough of the `vscode` API for the dashboard host to run under node:test: webview panels that record what
 * they are sent, a save dialog answered by the test, and a serializer registry. Installed by intercepting
 * `require('vscode')` (the bundles keep it external), before the host code is first imported.
 */
import Module from 'node:module';
import { join } from 'node:path';

type Listener<T> = (e: T) => unknown;

export class EventEmitter<T> {
  private listeners: Listener<T>[] = [];
  event = (fn: Listener<T>) => {
    this.listeners.push(fn);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== fn)) };
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly fsPath: string,
  ) {}
  static file(p: string): Uri {
    return new Uri('file', p);
  }
  static joinPath(u: Uri, ...parts: string[]): Uri {
    return new Uri(u.scheme, join(u.fsPath, ...parts));
  }
  toString(): string {
    return `${this.scheme}://${this.fsPath}`;
  }
}

export class FakePanel {
  readonly sent: unknown[] = [];
  readonly reveals: unknown[] = [];
  disposed = false;
  title = '';
  private readonly received = new EventEmitter<unknown>();
  private readonly disposedEmitter = new EventEmitter<void>();
  readonly webview = {
    options: {} as Record<string, unknown>,
    html: '',
    cspSource: 'https://fake.vscode-cdn.net',
    asWebviewUri: (u: Uri) => ({ toString: () => `https://fake.vscode-cdn.net${u.fsPath}` }),
    postMessage: async (m: unknown) => {
      this.sent.push(JSON.parse(JSON.stringify(m)));
      return true;
    },
    onDidReceiveMessage: this.received.event,
  };
  constructor(
    readonly viewType: string,
    readonly showOptions: unknown,
    options: Record<string, unknown> = {},
  ) {
    this.webview.options = options;
  }
  onDidDispose = this.disposedEmitter.event;
  reveal(column?: unknown, preserveFocus?: boolean): void {
    this.reveals.push([column, preserveFocus]);
  }
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.disposedEmitter.fire();
  }
  /** A message from the webview script. */
  fromWebview(m: unknown): void {
    this.received.fire(m);
  }
}

export const fake = {
  panels: [] as FakePanel[],
  serializers: new Map<string, { deserializeWebviewPanel(p: FakePanel, state: unknown): Promise<void> }>(),
  commands: [] as unknown[][],
  saveAnswer: undefined as Uri | undefined,
  saveDialogs: [] as unknown[],
  /** Information and error messages shown, with their buttons; `messageAnswer` is the button the next one gets. */
  messages: [] as { level: 'info' | 'error'; text: string; items: string[] }[],
  messageAnswer: undefined as string | undefined,
  themeChanged: new EventEmitter<{ kind: number }>(),
};

export const vscodeFake = {
  Uri,
  EventEmitter,
  ViewColumn: { Active: -1, Beside: -2, One: 1, Two: 2 },
  ColorThemeKind: { Light: 1, Dark: 2, HighContrast: 3, HighContrastLight: 4 },
  window: {
    activeColorTheme: { kind: 2 },
    onDidChangeActiveColorTheme: fake.themeChanged.event,
    createWebviewPanel: (viewType: string, title: string, show: unknown, options: Record<string, unknown>) => {
      const p = new FakePanel(viewType, show, options);
      p.title = title;
      fake.panels.push(p);
      return p;
    },
    registerWebviewPanelSerializer: (
      viewType: string,
      s: { deserializeWebviewPanel(p: FakePanel, state: unknown): Promise<void> },
    ) => {
      fake.serializers.set(viewType, s);
      return { dispose: () => fake.serializers.delete(viewType) };
    },
    showSaveDialog: async (opts: unknown) => {
      fake.saveDialogs.push(opts);
      return fake.saveAnswer;
    },
    showInformationMessage: async (text: string, ...items: string[]) => {
      fake.messages.push({ level: 'info', text, items });
      const answer = fake.messageAnswer;
      fake.messageAnswer = undefined;
      return answer;
    },
    showErrorMessage: async (text: string, ...items: string[]) => {
      fake.messages.push({ level: 'error', text, items });
      return undefined;
    },
  },
  workspace: {
    fs: { writeFile: async () => undefined },
    workspaceFolders: undefined as { uri: Uri }[] | undefined,
    getWorkspaceFolder: () => undefined,
  },
  commands: {
    executeCommand: async (...args: unknown[]) => {
      fake.commands.push(args);
    },
  },
};

const loader = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
const original = loader._load;
loader._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? vscodeFake : original.call(this, request, ...rest);
};
