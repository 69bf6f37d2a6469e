/**
 * A tree row as plain data. The tree models build these without vscode (so they are tested directly); the
 * view adapters turn them into TreeItems (see tree-item.ts).
 */
export interface TreeNode {
  /** Stable across refreshes, so expansion and selection survive them. */
  id: string;
  label: string;
  description?: string;
  /** Plain text, several lines. */
  tooltip?: string;
  /** A codicon id, e.g. `pass` or `sync~spin`. */
  icon?: string;
  /** A theme color id for the icon, e.g. `testing.iconPassed`. */
  iconColor?: string;
  /** Drives the `viewItem` when-clauses of the context menus. */
  contextValue?: string;
  /** Children shown under this row; absent for a leaf. */
  children?: TreeNode[];
  expanded?: boolean;
  /** The run folder a run row stands for. */
  runDir?: string;
  /**
   * The experiment folder an experiment row stands for (never set on its cells' rows, so that commands on a
   * selection of runs do not take a cell for its whole experiment).
   */
  experimentDir?: string;
  /** The file a row stands for (opened on click). */
  file?: string;
}
