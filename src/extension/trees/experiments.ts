/**
 * The Experiments view: the workspace's `*.sculpt.json` files, each with a run action.
 */
import { readConfigText } from '../../data/read-bounded';
import * as vscode from 'vscode';
import { experimentNodes, type ExperimentFile } from './experiment-items';
import type { TreeNode } from './node';
import { NodeTreeProvider } from './tree-item';

export const CONFIG_GLOB = '**/*.sculpt.json';
export const EXCLUDE_GLOB = '**/{node_modules,.git,dist,out}/**';

export class ExperimentsTree extends NodeTreeProvider {
  private files: ExperimentFile[] = [];
  private readonly subs: vscode.Disposable[] = [];
  /** Settles when the first scan of the workspace is done. */
  readonly ready: Promise<void>;

  constructor() {
    super();
    const watcher = vscode.workspace.createFileSystemWatcher(CONFIG_GLOB);
    const onFile = () => void this.scan();
    this.subs.push(watcher, watcher.onDidCreate(onFile), watcher.onDidChange(onFile), watcher.onDidDelete(onFile));
    this.ready = this.scan();
  }

  /** The config files found by the last scan. */
  configFiles(): string[] {
    return this.files.map((f) => f.file);
  }

  /** The config files with their text as of the last scan. */
  experimentFiles(): readonly ExperimentFile[] {
    return this.files;
  }

  async scan(): Promise<void> {
    // A FIFO or a device named *.sculpt.json is skipped (readConfigText refuses it), never waited on.
    const uris = await vscode.workspace.findFiles(CONFIG_GLOB, EXCLUDE_GLOB, 500);
    this.files = uris.flatMap((u) => {
      try {
        return [{ file: u.fsPath, relative: vscode.workspace.asRelativePath(u, true), text: readConfigText(u.fsPath) }];
      } catch {
        return [];
      }
    });
    this.refresh(0);
  }

  protected roots(): TreeNode[] {
    return experimentNodes(this.files);
  }

  protected override clickCommand(n: TreeNode): vscode.Command | undefined {
    return n.file ? { command: 'vscode.open', title: 'Open', arguments: [vscode.Uri.file(n.file)] } : undefined;
  }

  override dispose(): void {
    for (const s of this.subs) s.dispose();
    super.dispose();
  }
}
