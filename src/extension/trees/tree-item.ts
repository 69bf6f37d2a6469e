/**
 * TreeNode -> vscode.TreeItem, shared by the three views.
 */
import * as vscode from 'vscode';
import type { TreeNode } from './node';

export function toTreeItem(n: TreeNode, clickCommand?: vscode.Command): vscode.TreeItem {
  const state = n.children
    ? n.expanded
      ? vscode.TreeItemCollapsibleState.Expanded
      : vscode.TreeItemCollapsibleState.Collapsed
    : vscode.TreeItemCollapsibleState.None;
  const item = new vscode.TreeItem(n.label, state);
  item.id = n.id;
  item.description = n.description;
  item.tooltip = n.tooltip;
  item.contextValue = n.contextValue;
  if (n.icon)
    item.iconPath = new vscode.ThemeIcon(n.icon, n.iconColor ? new vscode.ThemeColor(n.iconColor) : undefined);
  if (n.file) item.resourceUri = vscode.Uri.file(n.file);
  if (clickCommand) item.command = clickCommand;
  return item;
}

/** A tree data provider over TreeNodes whose roots come from a function; children are the nodes' own. */
export abstract class NodeTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private timer: NodeJS.Timeout | undefined;
  private parents = new Map<string, TreeNode>();
  /** The roots of the last refresh. */
  protected current: TreeNode[] = [];

  protected abstract roots(): TreeNode[];

  protected clickCommand(_n: TreeNode): vscode.Command | undefined {
    return undefined;
  }

  getTreeItem(n: TreeNode): vscode.TreeItem {
    return toTreeItem(n, this.clickCommand(n));
  }

  getChildren(n?: TreeNode): TreeNode[] {
    if (n) return n.children ?? [];
    this.current = this.roots();
    this.parents = new Map();
    const walk = (p: TreeNode) => p.children?.forEach((c) => (this.parents.set(c.id, p), walk(c)));
    this.current.forEach(walk);
    return this.current;
  }

  /** Needed by TreeView.reveal. */
  getParent(n: TreeNode): TreeNode | undefined {
    return this.parents.get(n.id);
  }

  /** Refreshes soon, folding bursts (file watchers, step events) into one refresh. */
  refresh(delayMs = 150): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.changed.fire(undefined);
    }, delayMs);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.changed.dispose();
  }
}
