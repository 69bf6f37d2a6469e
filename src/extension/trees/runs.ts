/**
 * The Runs view: past and live runs grouped by experiment folder, newest first (see run-tree.ts). Refreshes on
 * run state changes, on new or growing event logs and new run folders in the workspace (runs started from a
 * terminal, a grid just created), and every few seconds while a run streams. A click opens what a row stands
 * for: a run's dashboard, an experiment's view.
 */
import * as vscode from 'vscode';
import type { RunCatalog } from '../run-catalog';
import type { RunManager } from '../run-manager';
import type { RunEntry } from './run-items';
import { runTreeNodes } from './run-tree';
import type { TreeNode } from './node';
import { NodeTreeProvider } from './tree-item';

export class RunsTree extends NodeTreeProvider {
  private readonly subs: vscode.Disposable[] = [];
  private lastEntries: RunEntry[] = [];

  constructor(
    private readonly catalog: RunCatalog,
    manager: RunManager,
  ) {
    super();
    this.subs.push(manager.onState(() => this.refresh()));
    // Progress in the row of a live run: at most every 2 s, not at every step event.
    this.subs.push(manager.onEvent(() => this.refresh(2000)));
    // notes.json: a run renamed or tagged elsewhere (another window, by hand).
    const watcher = vscode.workspace.createFileSystemWatcher('**/{events.jsonl,job.json,experiment.json,notes.json}');
    const onFile = () => this.refresh(500);
    this.subs.push(watcher, watcher.onDidCreate(onFile), watcher.onDidChange(onFile), watcher.onDidDelete(onFile));
  }

  protected roots(): TreeNode[] {
    this.lastEntries = this.catalog.entries();
    return runTreeNodes(this.lastEntries, (dir) => this.catalog.experiment(dir));
  }

  protected override clickCommand(n: TreeNode): vscode.Command | undefined {
    if (n.experimentDir)
      return { command: 'sculpt.openExperiment', title: 'Open Experiment View', arguments: [n.experimentDir] };
    if (n.runDir) return { command: 'sculpt.openDashboard', title: 'Open Dashboard', arguments: [n.runDir] };
    return undefined;
  }

  /** The entries as of the last refresh (for pickers that should list what the view shows). */
  entries(): RunEntry[] {
    return this.lastEntries.length ? this.lastEntries : this.catalog.entries();
  }

  override dispose(): void {
    for (const s of this.subs) s.dispose();
    super.dispose();
  }
}
