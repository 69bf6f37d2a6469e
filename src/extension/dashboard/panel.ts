/**
 * One dashboard panel: a webview showing one run, several compared, or the cells of an experiment folder. The
 * host sends nothing until the webview says `ready` (messages to a webview that has not loaded are lost), then
 * the runs read from disk; after that it forwards live events in small batches. A webview reloaded (hidden and
 * shown again, or the window reloaded) says `ready` again and gets a fresh picture, so the panel needs no retained
 * context.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import type { SculptEvent } from '../../protocol/events';
import {
  exportFileName,
  isWebviewMessage,
  WEBVIEW_PROTOCOL,
  type ExperimentInfo,
  type ExportFilesMessage,
  type ExportFormat,
  type ExportMessage,
  type HostMessage,
  type ThemeKind,
  type WebviewMessage,
} from '../../protocol/webview';
import { dashboardHtml } from './html';
import { isFinalEvent } from '../../runs/fold';
import { readExperimentInfo, readPredictions, readRunSnapshot, runKey } from './run-files';
import { readRunMeta } from './run-meta';
import { EVENTS_FILE } from '../../runs/run-dir';

/** Live events are forwarded at most this often: a step event every few milliseconds would flood the webview. */
const BATCH_MS = 50;

export interface PanelHooks {
  log?: (message: string) => void;
  /** Whether a trainer is attached to the run now (asked when the webview loads). */
  isLive: (key: string) => boolean;
  /** Live events of the run that may not be in its events.jsonl yet. */
  recent: (key: string) => readonly SculptEvent[];
  onSelectBoundary: (key: string, beforeTask: number) => void;
  onDispose: (panel: DashboardPanel) => void;
}

export function themeKind(kind: vscode.ColorThemeKind): ThemeKind {
  switch (kind) {
    case vscode.ColorThemeKind.Light:
      return 'light';
    case vscode.ColorThemeKind.HighContrast:
      return 'high-contrast';
    case vscode.ColorThemeKind.HighContrastLight:
      return 'high-contrast-light';
    default:
      return 'dark';
  }
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    // Only the bundle and the stylesheet: the webview can read nothing else of the disk.
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
    retainContextWhenHidden: false,
  };
}

export function panelTitle(keys: readonly string[]): string {
  return keys.length === 1 ? `Sculpt: ${basename(keys[0])}` : `Sculpt: ${keys.length} runs`;
}

/** The title of an experiment's panel: the experiment's name. */
export function experimentTitle(name: string): string {
  return `Sculpt: ${name}`;
}

export class DashboardPanel {
  /** The runs shown (for an experiment, its cells' folders in run order); grows when an experiment adds cells. */
  keys: string[];
  /** The experiment folder, for a panel opened on an experiment. */
  readonly experimentDir: string | undefined;
  private experiment: ExperimentInfo | null = null;
  private ready = false;
  private readonly pending = new Map<string, SculptEvent[]>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  private disposed = false;

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    runDirs: readonly string[],
    private readonly hooks: PanelHooks,
    opts: { experiment?: ExperimentInfo } = {},
  ) {
    this.keys = [...new Set(runDirs.map(runKey))];
    if (opts.experiment) {
      this.experimentDir = opts.experiment.dir;
      this.adoptExperiment(opts.experiment);
    }
    panel.title = this.experiment ? experimentTitle(this.experiment.name) : panelTitle(this.keys);
    panel.webview.options = webviewOptions(extensionUri);
    this.subscriptions.push(
      panel.webview.onDidReceiveMessage((m: unknown) => void this.receive(m)),
      panel.onDidDispose(() => this.dispose()),
    );
    this.load();
  }

  /** (Re)loads the page; the webview answers with `ready`. */
  load(): void {
    this.ready = false;
    const webview = this.panel.webview;
    webview.html = dashboardHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'media', 'dashboard.css')).toString(),
    });
  }

  /** Same set of runs, in any order. */
  shows(keys: readonly string[]): boolean {
    const set = new Set(keys.map(runKey));
    return set.size === this.keys.length && this.keys.every((k) => set.has(k));
  }

  has(key: string): boolean {
    return this.keys.includes(key);
  }

  /** Whether this panel shows the experiment folder `dir`. */
  showsExperiment(dir: string): boolean {
    return this.experimentDir !== undefined && this.experimentDir === runKey(dir);
  }

  /** Whether `key` is a run folder of this panel's experiment folder (a cell it may not list yet). */
  private inExperiment(key: string): boolean {
    return this.experimentDir !== undefined && dirname(resolve(key)) === this.experimentDir;
  }

  /** Takes the experiment's cells as the panel's runs: the recorded cells first, then any the panel held. */
  private adoptExperiment(info: ExperimentInfo): void {
    this.experiment = info;
    this.keys = [...new Set([...info.cells.map((c) => c.key), ...this.keys])];
  }

  /**
   * Re-reads experiment.json and shows cells added since (their runs read from disk), so that a panel opened
   * early picks up every cell. Returns whether anything changed; a record that cannot be read changes nothing.
   */
  refreshExperiment(): boolean {
    if (!this.experimentDir) return false;
    let info: ExperimentInfo;
    try {
      info = readExperimentInfo(this.experimentDir);
    } catch (e) {
      this.hooks.log?.(`dashboard: ${(e as Error).message}`);
      return false;
    }
    const before = new Set(this.keys);
    const same = JSON.stringify(info) === JSON.stringify(this.experiment);
    this.adoptExperiment(info);
    this.panel.title = experimentTitle(info.name);
    const added = this.keys.filter((k) => !before.has(k));
    if (same && !added.length) return false;
    if (!this.ready) return true;
    this.flush();
    this.post({
      type: 'runs',
      runs: this.keys.map((k) =>
        before.has(k)
          ? { key: k, name: basename(k), live: this.hooks.isLive(k) }
          : readRunSnapshot(k, this.hooks.isLive(k), this.hooks.recent(k)),
      ),
    });
    this.post({ type: 'experiment', experiment: info });
    return true;
  }

  notify(key: string, e: SculptEvent): void {
    // A cell the panel does not list yet (experiment.json grew): take it in, with what its log holds so far.
    if (!this.has(key) && this.inExperiment(key)) this.refreshExperiment();
    if (!this.has(key) || !this.ready) return;
    const list = this.pending.get(key) ?? [];
    list.push(e);
    this.pending.set(key, list);
    if (isFinalEvent(e)) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  setLive(key: string, live: boolean, exitCode?: number | null): void {
    if (!this.has(key)) return;
    this.flush();
    this.post({ type: 'live', key, live, ...(exitCode !== undefined ? { exitCode } : {}) });
  }

  setTheme(theme: ThemeKind): void {
    this.post({ type: 'theme', theme });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const [key, events] of this.pending) this.post({ type: 'events', key, events });
    this.pending.clear();
  }

  private post(msg: HostMessage): void {
    if (!this.ready || this.disposed) return;
    void this.panel.webview.postMessage(msg);
  }

  private sendInit(): void {
    this.pending.clear();
    if (this.experimentDir) {
      try {
        this.adoptExperiment(readExperimentInfo(this.experimentDir));
      } catch (e) {
        // The record went away or broke since: show the cells known, and say why in the log.
        this.hooks.log?.(`dashboard: ${(e as Error).message}`);
      }
    }
    const runs = this.keys.map((k) => readRunSnapshot(k, this.hooks.isLive(k), this.hooks.recent(k)));
    this.post({
      type: 'init',
      protocol: WEBVIEW_PROTOCOL,
      runs,
      theme: themeKind(vscode.window.activeColorTheme.kind),
      ...(this.experiment ? { experiment: this.experiment } : {}),
    });
  }

  private async receive(raw: unknown): Promise<void> {
    if (!isWebviewMessage(raw)) {
      this.hooks.log?.(`dashboard: ignored a malformed message from the webview`);
      return;
    }
    const m: WebviewMessage = raw;
    switch (m.type) {
      case 'ready':
        if (m.protocol !== WEBVIEW_PROTOCOL)
          this.hooks.log?.(`dashboard: webview protocol ${m.protocol}, host ${WEBVIEW_PROTOCOL}`);
        this.ready = true;
        this.sendInit();
        break;
      case 'export':
        await this.export(m);
        break;
      case 'export-files':
        await this.exportFiles(m);
        break;
      case 'open-run-folder':
        // Only the panel's own runs: the webview must not be able to open arbitrary paths.
        if (this.has(m.key)) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(m.key));
        break;
      case 'select-boundary':
        if (this.has(m.key)) this.hooks.onSelectBoundary(m.key, m.beforeTask);
        break;
      case 'predictions-request':
        // Only the panel's own runs: the webview must not be able to read arbitrary folders.
        if (this.has(m.key)) this.post(readPredictions(m.key, m.pick, m.requestId));
        break;
      case 'webview-error':
        this.hooks.log?.(`dashboard webview: ${m.message}`);
        break;
    }
  }

  /**
   * Where exports go unless the user says otherwise: the run's folder for a chart of one run, else the
   * experiment's folder, else the folder the runs shown share, else the workspace.
   */
  exportFolder(key?: string): string | undefined {
    if (key && this.has(key)) return key;
    if (this.experimentDir) return this.experimentDir;
    const parents = [...new Set(this.keys.map((k) => dirname(k)))];
    if (parents.length === 1) return parents[0];
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? parents[0];
  }

  private async export(m: ExportMessage): Promise<void> {
    try {
      const folder = this.exportFolder(m.key);
      if (!folder) throw new Error('there is no folder to save into: open a workspace folder');
      const file = freePath(folder, safeExportName(m.suggestedName, m.format));
      await writeFile(file, exportBytes(m.format, m.data));
      this.post({ type: 'export-result', requestId: m.requestId, outcome: 'saved', path: file });
      offerReveal(`Sculpt: saved ${file}`, file);
    } catch (e) {
      this.hooks.log?.(`dashboard export failed: ${(e as Error).message}`);
      this.post({ type: 'export-result', requestId: m.requestId, outcome: 'failed', error: (e as Error).message });
      void vscode.window.showErrorMessage(`Sculpt: export failed: ${(e as Error).message}`);
    }
  }

  /** "Export all charts": a new folder beside the experiment (or the runs) with every file the webview sent. */
  private async exportFiles(m: ExportFilesMessage): Promise<void> {
    try {
      const parent = this.exportFolder();
      if (!parent) throw new Error('there is no folder to save into: open a workspace folder');
      const folder = freePath(parent, exportFileName(basename(m.folder)) || 'charts');
      await mkdir(folder);
      const used = new Set<string>();
      for (const f of m.files) {
        let name = safeExportName(f.name, f.format);
        for (let i = 2; used.has(name); i++) name = suffixed(safeExportName(f.name, f.format), i);
        used.add(name);
        await writeFile(join(folder, name), exportBytes(f.format, f.data));
      }
      this.post({ type: 'export-result', requestId: m.requestId, outcome: 'saved', path: folder, count: used.size });
      offerReveal(`Sculpt: ${used.size} file${used.size === 1 ? '' : 's'} exported to ${folder}`, folder);
    } catch (e) {
      this.hooks.log?.(`dashboard export failed: ${(e as Error).message}`);
      this.post({ type: 'export-result', requestId: m.requestId, outcome: 'failed', error: (e as Error).message });
      void vscode.window.showErrorMessage(`Sculpt: export failed: ${(e as Error).message}`);
    }
  }

  /** Sends a run's folder metadata again (after Rename Run..., Edit Notes..., Edit Tags...). */
  updateMeta(key: string): void {
    if (!this.has(key)) return;
    let hasEvents = false;
    try {
      hasEvents = statSync(join(key, EVENTS_FILE)).size > 0;
    } catch {
      // no log yet
    }
    this.post({ type: 'run-meta', key, meta: readRunMeta(key, hasEvents) });
  }

  reveal(viewColumn?: vscode.ViewColumn): void {
    this.panel.reveal(viewColumn, true);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.subscriptions) s.dispose();
    this.hooks.onDispose(this);
    this.panel.dispose();
  }
}

/** A file name from the webview: no folder, only safe characters, and the extension of its format. */
export function safeExportName(name: string, format: ExportFormat): string {
  const base = exportFileName(basename(name).replace(/\.[A-Za-z0-9]+$/, '')) || 'sculpt-export';
  return `${base}.${format}`;
}

function suffixed(name: string, i: number): string {
  const ext = extname(name);
  return `${name.slice(0, name.length - ext.length)}-${i}${ext}`;
}

/** `dir/name`, or `dir/name-2`, `-3`, ... when taken: an export never overwrites a file. */
export function freePath(dir: string, name: string): string {
  let p = join(dir, name);
  for (let i = 2; existsSync(p); i++) p = join(dir, suffixed(name, i));
  return p;
}

function exportBytes(format: ExportFormat, data: string): Buffer {
  if (format === 'png') return pngBytes(data);
  if (format === 'svg' && !/^\s*(<\?xml[^>]*>\s*)?<svg[\s>]/.test(data))
    throw new Error('the chart is not an SVG document');
  return Buffer.from(data, 'utf8');
}

/** A non-blocking message with a Reveal button (the Explorer for a workspace file, else the OS's file manager). */
function offerReveal(message: string, path: string): void {
  void Promise.resolve(vscode.window.showInformationMessage(message, 'Reveal')).then(async (pick) => {
    if (pick !== 'Reveal') return;
    const uri = vscode.Uri.file(path);
    const inWorkspace = vscode.workspace.getWorkspaceFolder?.(uri);
    await vscode.commands.executeCommand(inWorkspace ? 'revealInExplorer' : 'revealFileInOS', uri);
  });
}

/** The bytes of a `data:image/png;base64,...` URL; anything else is refused rather than written as a broken file. */
export function pngBytes(dataUrl: string): Buffer {
  const m = /^data:image\/png;base64,([A-Za-z0-9+/=]+)$/.exec(dataUrl);
  if (!m) throw new Error('the chart image is not a PNG data URL');
  return Buffer.from(m[1], 'base64');
}
