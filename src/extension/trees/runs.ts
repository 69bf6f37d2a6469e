/**
 * The Runs view: past and live runs, newest first. Refreshes on run state changes, on new or growing event
 * logs in the workspace (runs started from a terminal), and every few seconds while a run streams.
 */
import * as vscode from 'vscode';
import type { RunCatalog } from '../run-catalog';
import type { RunManager } from '../run-manager';
import { runNodes, type RunEntry } from './run-items';
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
    const watcher = vscode.workspace.createFileSystemWatcher('**/{events.jsonl,job.json}');
    const onFile = () => this.refresh(500);
    this.subs.push(watcher, watcher.onDidCreate(onFile), watcher.onDidChange(onFile), watcher.onDidDelete(onFile));
  }

  protected roots(): TreeNode[] {
    this.lastEntries = this.catalog.entries();
    return runNodes(this.lastEntries);
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
