/**
 * The dashboard's host API, for the rest of the extension:
 *   const dashboard = registerDashboard(context);
 *   dashboard.open([runDir]);                     // one run, in a panel beside the active editor
 *   dashboard.open([dirA, dirB]);                 // compare mode
 *   dashboard.openExperiment(experimentDir);      // every cell of an experiment folder, one panel per experiment
 *   dashboard.notify(runDir, event);              // every live trainer event
 *   dashboard.setLive(runDir, false, exitCode);   // a trainer exited (shows crashes without a final event)
 *   dashboard.updateMeta(runDir);                 // the run was renamed, or its notes or tags edited
 * Panels restore after a window reload through a serializer that re-reads the runs' events.jsonl files.
 */
import * as vscode from 'vscode';
import type { SculptEvent } from '../../protocol/events';
import { DASHBOARD_VIEW_TYPE, isPersistedState, type ExperimentInfo } from '../../protocol/webview';
import { DashboardPanel, experimentTitle, panelTitle, themeKind, webviewOptions } from './panel';
import { isFinalEvent } from '../../runs/fold';
import { isExperimentFolder } from '../../runs/experiment-dir';
import { RecentEvents, readExperimentInfo, runKey } from './run-files';

export interface BoundarySelection {
  runDir: string;
  beforeTask: number;
}

export class DashboardManager implements vscode.Disposable {
  private readonly panels = new Set<DashboardPanel>();
  /** Runs with a trainer attached: set by live events and setLive, cleared by a final event or setLive. */
  private readonly live = new Set<string>();
  /** Live events kept for panels opened (or reloaded) before the trainer's writes reach the disk. */
  private readonly recent = new RecentEvents();
  private readonly selectBoundary = new vscode.EventEmitter<BoundarySelection>();
  private readonly subscriptions: vscode.Disposable[] = [];

  /** The user picked a task boundary in a dashboard's subspace view (e.g. to reveal it in a ranks tree). */
  readonly onDidSelectBoundary = this.selectBoundary.event;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log?: (message: string) => void,
  ) {
    this.subscriptions.push(
      this.selectBoundary,
      vscode.window.onDidChangeActiveColorTheme((t) => {
        for (const p of this.panels) p.setTheme(themeKind(t.kind));
      }),
    );
  }

  /**
   * Shows the runs (one, or several compared) in a panel, beside the active editor unless told otherwise. A panel
   * already showing exactly these runs is revealed instead of opening a second one.
   */
  open(runDirs: string[], opts: { viewColumn?: vscode.ViewColumn } = {}): void {
    const keys = [...new Set(runDirs.map(runKey))];
    if (!keys.length) return;
    const column = opts.viewColumn ?? vscode.ViewColumn.Beside;
    const existing = [...this.panels].find((p) => p.shows(keys));
    if (existing) {
      existing.reveal(opts.viewColumn);
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      DASHBOARD_VIEW_TYPE,
      panelTitle(keys),
      { viewColumn: column, preserveFocus: true },
      webviewOptions(this.extensionUri),
    );
    this.adopt(panel, keys);
  }

  /**
   * Shows every cell of an experiment folder in one panel titled with the experiment's name; the panel of an
   * experiment already open is revealed (and catches up with cells added since) instead of opening a second.
   * Cells that have not started show as queued and fill in as their trainers report. Throws an
   * ExperimentDirError when the folder holds no readable experiment.json.
   */
  openExperiment(experimentDir: string, opts: { viewColumn?: vscode.ViewColumn } = {}): void {
    const dir = runKey(experimentDir);
    const existing = [...this.panels].find((p) => p.showsExperiment(dir));
    if (existing) {
      existing.refreshExperiment();
      existing.reveal(opts.viewColumn);
      return;
    }
    const info = readExperimentInfo(dir);
    const panel = vscode.window.createWebviewPanel(
      DASHBOARD_VIEW_TYPE,
      experimentTitle(info.name),
      { viewColumn: opts.viewColumn ?? vscode.ViewColumn.Beside, preserveFocus: true },
      webviewOptions(this.extensionUri),
    );
    this.adopt(panel, [], info);
  }

  /** A live event from a trainer; panels showing that run get it (batched), others ignore it. */
  notify(runDir: string, event: SculptEvent): void {
    const key = runKey(runDir);
    if (isFinalEvent(event)) this.live.delete(key);
    else this.live.add(key);
    this.recent.add(key, event);
    for (const p of this.panels) p.notify(key, event);
  }

  /** A trainer attached (true) or exited (false, with its exit code when known). */
  setLive(runDir: string, live: boolean, exitCode?: number | null): void {
    const key = runKey(runDir);
    if (live) this.live.add(key);
    else this.live.delete(key);
    for (const p of this.panels) p.setLive(key, live, exitCode);
  }

  /** Re-reads a run folder's job.json and notes.json for the panels that show it (its label, notes and tags). */
  updateMeta(runDir: string): void {
    const key = runKey(runDir);
    for (const p of this.panels) p.updateMeta(key);
  }

  /** Panels open now, by the runs they show (for tests and commands). */
  openPanels(): string[][] {
    return [...this.panels].map((p) => [...p.keys]);
  }

  /** The experiment folders shown in panels now. */
  openExperiments(): string[] {
    return [...this.panels].flatMap((p) => (p.experimentDir ? [p.experimentDir] : []));
  }

  /** Restores a panel VS Code kept across a reload; its webview state names the runs. */
  restore(panel: vscode.WebviewPanel, state: unknown): void {
    if (isPersistedState(state) && state.experimentDir && isExperimentFolder(state.experimentDir)) {
      try {
        const info = readExperimentInfo(state.experimentDir);
        // One panel per experiment, even when a reload restores two.
        if (this.openExperiments().includes(info.dir)) panel.dispose();
        else this.adopt(panel, state.runKeys, info);
        return;
      } catch (e) {
        this.log?.(`dashboard: ${(e as Error).message}`);
      }
    }
    if (!isPersistedState(state) || state.runKeys.length === 0) {
      // Nothing to show: a blank dashboard would only confuse.
      panel.dispose();
      return;
    }
    this.adopt(panel, state.runKeys);
  }

  private adopt(panel: vscode.WebviewPanel, keys: string[], experiment?: ExperimentInfo): DashboardPanel {
    const p = new DashboardPanel(
      panel,
      this.extensionUri,
      keys,
      {
        log: this.log,
        isLive: (k) => this.live.has(k),
        recent: (k) => this.recent.get(k),
        onSelectBoundary: (k, beforeTask) => this.selectBoundary.fire({ runDir: k, beforeTask }),
        onDispose: (x) => this.panels.delete(x),
      },
      experiment ? { experiment } : {},
    );
    this.panels.add(p);
    return p;
  }

  private disposed = false;

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of [...this.panels]) p.dispose();
    this.panels.clear();
    for (const s of this.subscriptions) s.dispose();
  }
}

/**
 * Creates the dashboard manager and registers the panel serializer (package.json needs the activation event
 * `onWebviewPanel:sculpt.dashboard` for restored panels to activate the extension).
 */
export function registerDashboard(context: vscode.ExtensionContext, log?: (message: string) => void): DashboardManager {
  const manager = new DashboardManager(context.extensionUri, log);
  context.subscriptions.push(
    manager,
    vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, state) => manager.restore(panel, state),
    }),
  );
  return manager;
}
