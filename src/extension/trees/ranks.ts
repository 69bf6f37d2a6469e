/**
 * The Subspace Ranks view for the selected run: refreshed when that run reports new ranks (at each task
 * boundary), switchable between ranks first and ratios first.
 */
import { statSync } from 'node:fs';
import * as vscode from 'vscode';
import type { SculptEvent } from '../../protocol/events';
import { eventsFile, readEvents } from '../run-folder';
import type { RunManager } from '../run-manager';
import { rankNodes, type RankMode } from './rank-items';
import type { TreeNode } from './node';
import { NodeTreeProvider } from './tree-item';

export const RANKS_MODE_CONTEXT = 'sculpt.ranksShowRatios';

export class RanksTree extends NodeTreeProvider {
  private dir: string | undefined;
  private mode: RankMode = 'ranks';
  private cached: { dir: string; stamp: string; events: SculptEvent[] } | undefined;
  private readonly sub: { dispose(): void };
  view: vscode.TreeView<TreeNode> | undefined;

  constructor(manager: RunManager) {
    super();
    this.sub = manager.onEvent((dir, e) => {
      if (dir === this.dir && e.type === 'ranks') this.refresh(300);
    });
  }

  get selected(): string | undefined {
    return this.dir;
  }

  select(dir: string | undefined, label?: string): void {
    if (dir === this.dir) return;
    this.dir = dir;
    if (this.view) this.view.description = label;
    this.refresh(0);
  }

  /** Shows a run's boundary (picked in its dashboard): selects the run and reveals that boundary's row. */
  reveal(dir: string, beforeTask: number, label?: string): void {
    this.select(dir, label);
    const id = `ranks:${dir}/before-${beforeTask}`;
    const node = rankNodes(dir, this.events(dir), this.mode).find((n) => n.id === id);
    if (node && this.view) void this.view.reveal(node, { select: true, focus: false, expand: true });
  }

  setMode(mode: RankMode): void {
    this.mode = mode;
    void vscode.commands.executeCommand('setContext', RANKS_MODE_CONTEXT, mode === 'ratios');
    this.refresh(0);
  }

  private events(dir: string): SculptEvent[] {
    let stamp = '';
    try {
      const s = statSync(eventsFile(dir));
      stamp = `${s.size}:${s.mtimeMs}`;
    } catch {
      return [];
    }
    if (this.cached?.dir !== dir || this.cached.stamp !== stamp) this.cached = { dir, stamp, events: readEvents(dir) };
    return this.cached.events;
  }

  protected roots(): TreeNode[] {
    if (!this.dir) {
      this.setMessage('Select a run in the Runs view to see the subspace ranks it protected at each task boundary.');
      return [];
    }
    const nodes = rankNodes(this.dir, this.events(this.dir), this.mode);
    this.setMessage(
      nodes.length ? undefined : 'This run has no rank reports yet: adaptive SVD reports them at each task boundary.',
    );
    return nodes;
  }

  private setMessage(m: string | undefined): void {
    if (this.view) this.view.message = m;
  }

  override dispose(): void {
    this.sub.dispose();
    super.dispose();
  }
}
