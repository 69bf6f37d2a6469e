/**
 * The extension's shared state: the run manager, the run catalog, the three views and the dashboard, and
 * where runs live (the runs folders of the workspace and the folders opened with Open Run...).
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { parse } from 'jsonc-parser';
import { excessiveNesting } from '../protocol/json-limits';
import { registerDashboard, type DashboardManager } from './dashboard';
import { runBackend } from './launch';
import { resolveRuntime } from './node-runtime';
import { RunCatalog } from './run-catalog';
import { RunManager, isSettled } from './run-manager';
import { readSettings, runsDirectoryFor } from './settings';
import { ExperimentsTree } from './trees/experiments';
import { RanksTree } from './trees/ranks';
import { qualifiedRunLabel } from './trees/run-items';
import { RunsTree } from './trees/runs';
import type { TreeNode } from './trees/node';

const OPENED_KEY = 'sculpt.openedRuns';
/** Runs waiting for a slot, kept across reloads (a reload would otherwise drop them silently). */
const QUEUE_KEY = 'sculpt.queue';

export class Sculpt implements vscode.Disposable {
  readonly log: vscode.LogOutputChannel;
  readonly manager: RunManager;
  readonly catalog: RunCatalog;
  readonly runsTree: RunsTree;
  readonly ranksTree: RanksTree;
  readonly experimentsTree: ExperimentsTree;
  readonly runsView: vscode.TreeView<TreeNode>;
  readonly dashboard: DashboardManager;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(readonly context: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('Sculpt', { log: true });
    this.manager = new RunManager({
      trainerScript: context.asAbsolutePath(path.join('dist', 'trainer.js')),
      runtime: (dir) => {
        const rt = resolveRuntime({
          nodePath: readSettings(vscode.Uri.file(dir)).nodePath,
          backend: runBackend(dir),
          execPath: process.execPath,
          env: process.env,
        });
        if (rt.embedded)
          this.log.warn(
            `${path.basename(dir)}: Node.js not found; running the trainer in VS Code's runtime (wasm/cpu backends only).`,
          );
        return rt;
      },
      maxConcurrent: () => readSettings().maxConcurrentRuns,
    });
    this.catalog = new RunCatalog(() => this.runsRoots(), this.manager);
    this.experimentsTree = new ExperimentsTree();
    this.runsTree = new RunsTree(this.catalog, this.manager);
    this.ranksTree = new RanksTree(this.manager);
    this.runsView = vscode.window.createTreeView('sculpt.runs', {
      treeDataProvider: this.runsTree,
      canSelectMany: true,
      showCollapseAll: false,
    });
    const ranksView = vscode.window.createTreeView('sculpt.ranks', {
      treeDataProvider: this.ranksTree,
      showCollapseAll: true,
    });
    this.ranksTree.view = ranksView;
    const experimentsView = vscode.window.createTreeView('sculpt.experiments', {
      treeDataProvider: this.experimentsTree,
    });
    this.dashboard = registerDashboard(context, (m) => this.log.info(m));
    this.disposables.push(
      this.log,
      this.runsTree,
      this.ranksTree,
      this.experimentsTree,
      this.runsView,
      ranksView,
      experimentsView,
      this.runsView.onDidChangeSelection((e) => {
        const dir = e.selection.find((n) => n.runDir)?.runDir;
        if (dir) this.ranksTree.select(dir, this.label(dir));
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('sculpt.maxConcurrentRuns')) this.manager.reschedule();
        if (e.affectsConfiguration('sculpt.runsDirectory')) this.runsTree.refresh();
      }),
    );
    const events = this.manager.onEvent((dir, e) => this.dashboard.notify(dir, e));
    const state = this.manager.onState((r) => {
      // The dashboard shows a trainer that exited without a final event as interrupted.
      if (r.state === 'starting' || (r.attached && r.state === 'running')) this.dashboard.setLive(r.dir, true);
      else if (isSettled(r.state) && r.state !== 'cancelled') this.dashboard.setLive(r.dir, false, r.exitCode);
      void vscode.commands.executeCommand(
        'setContext',
        'sculpt.hasLiveRuns',
        this.manager.live().length + this.manager.queued().length > 0,
      );
      void context.workspaceState.update(
        QUEUE_KEY,
        this.manager.queued().map((q) => q.dir),
      );
    });
    this.disposables.push(
      { dispose: () => (events.dispose(), state.dispose()) },
      this.dashboard.onDidSelectBoundary(({ runDir, beforeTask }) =>
        this.ranksTree.reveal(runDir, beforeTask, this.label(runDir)),
      ),
    );
  }

  /** Folders that hold runs: the runs folder setting (else `runs/`) of each workspace folder, each config's `output`, and opened runs. */
  runsRoots(): string[] {
    const roots = new Set<string>();
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      roots.add(runsDirectoryFor(readSettings(folder.uri), folder) || path.join(folder.uri.fsPath, 'runs'));
    }
    for (const { file, text } of this.experimentsTree.experimentFiles()) {
      const c = (excessiveNesting(text) >= 0 ? undefined : parse(text)) as { output?: unknown } | undefined;
      roots.add(path.resolve(path.dirname(file), typeof c?.output === 'string' ? c.output : 'runs'));
    }
    for (const d of this.openedRuns()) roots.add(d);
    return [...roots];
  }

  openedRuns(): string[] {
    return this.context.workspaceState.get<string[]>(OPENED_KEY, []).filter((d) => existsSync(d));
  }

  async rememberOpened(dirs: string[]): Promise<void> {
    await this.context.workspaceState.update(OPENED_KEY, [...new Set([...this.openedRuns(), ...dirs])]);
    this.runsTree.refresh(0);
  }

  async forgetOpened(dir: string): Promise<void> {
    await this.context.workspaceState.update(
      OPENED_KEY,
      this.openedRuns().filter((d) => d !== dir),
    );
  }

  /** A run's name in messages, the status bar and the Subspace Ranks header (a cell names its seed). */
  label(dir: string): string {
    const info = this.catalog.info(dir);
    return info ? qualifiedRunLabel(info) : path.basename(dir);
  }

  /** After a reload: follow the trainers earlier windows started that are still running, and requeue the waiting runs. */
  reattach(): void {
    for (const dir of this.catalog.dirs()) {
      const info = this.catalog.info(dir);
      if (!info?.pid || info.summary.status === 'finished') continue;
      const rec = this.manager.attach(dir);
      if (rec) this.log.info(`${path.basename(dir)}: trainer pid ${rec.pid} still running; following its events.jsonl`);
    }
    const waiting = this.context.workspaceState
      .get<string[]>(QUEUE_KEY, [])
      .filter((d) => existsSync(d) && !this.catalog.info(d)?.hasEvents && !this.manager.get(d));
    if (waiting.length === 0 || !vscode.workspace.isTrusted) return;
    this.log.info(`requeueing ${waiting.length} run(s) that were waiting before the reload`);
    for (const d of waiting) this.manager.start(d);
  }

  /** Follows a run's log live when a trainer of this machine, or one started outside VS Code, still writes it. */
  follow(dir: string): void {
    this.manager.follow(dir);
  }

  dispose(): void {
    // Trainers keep running through a reload; the next window attaches to them.
    this.manager.dispose();
    this.dashboard.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
