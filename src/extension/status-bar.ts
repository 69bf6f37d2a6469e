/**
 * While runs are live: a status bar item ("Sculpt: task 2/5 · 43% · loss 0.61", click for the dashboard) and a
 * progress notification per run whose Cancel stops that run.
 */
import * as vscode from 'vscode';
import { isLive, isSettled } from '../runs/status';
import { overallFraction, progressText } from './live-progress';
import type { RunManager, RunRecord } from './run-manager';

interface Notice {
  report: (v: { message?: string; increment?: number }) => void;
  done: () => void;
  shown: number;
}

export class RunStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('sculpt.run', vscode.StatusBarAlignment.Left, 50);
  private readonly notices = new Map<string, Notice>();
  private readonly subs: { dispose(): void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly manager: RunManager,
    private readonly labelFor: (dir: string) => string,
  ) {
    this.item.name = 'Sculpt run';
    this.subs.push(
      manager.onState((r) => {
        if (isLive(r.state) && !this.notices.has(r.dir)) this.notify(r);
        if (isSettled(r.state)) this.endNotice(r.dir);
        this.update();
      }),
      manager.onEvent(() => this.soon()),
    );
    for (const r of manager.live()) this.notify(r);
    this.update();
  }

  private soon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.update();
    }, 500);
  }

  private update(): void {
    const live = this.manager.live();
    const queued = this.manager.queued().length;
    for (const r of live) this.reportProgress(r);
    if (live.length === 0 && queued === 0) {
      this.item.hide();
      return;
    }
    // The run started last is the one the user most likely watches.
    const focus = [...live].sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0))[0];
    const more = live.length - 1 + queued;
    if (focus) {
      const icon = focus.state === 'stopping' ? '$(loading~spin)' : '$(sync~spin)';
      this.item.text = `${icon} Sculpt: ${focus.state === 'stopping' ? 'stopping…' : progressText(focus.progress)}${more > 0 ? ` (+${more})` : ''}`;
      this.item.tooltip = `${this.labelFor(focus.dir)}: ${focus.state}${queued ? `\n${queued} queued` : ''}\nClick to open the dashboard.`;
      this.item.command = { command: 'sculpt.openDashboard', title: 'Open Dashboard', arguments: [focus.dir] };
    } else {
      this.item.text = `$(clock) Sculpt: ${queued} queued`;
      this.item.tooltip = 'Runs wait for a free slot (setting sculpt.maxConcurrentRuns).';
      this.item.command = undefined;
    }
    this.item.show();
  }

  private notify(r: RunRecord): void {
    const dir = r.dir;
    let notice: Notice | undefined;
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Sculpt: ${this.labelFor(dir)}`, cancellable: true },
      (progress, token) =>
        new Promise<void>((resolve) => {
          notice = { report: (v) => progress.report(v), done: resolve, shown: 0 };
          this.notices.set(dir, notice);
          token.onCancellationRequested(() => this.manager.stop(dir));
          this.reportProgress(this.manager.get(dir) ?? r);
        }),
    );
  }

  private reportProgress(r: RunRecord): void {
    const n = this.notices.get(r.dir);
    if (!n) return;
    const pct = Math.floor(overallFraction(r.progress) * 100);
    n.report({
      message:
        r.state === 'stopping' ? 'stopping: finishing the step and writing a checkpoint…' : progressText(r.progress),
      increment: Math.max(0, pct - n.shown),
    });
    n.shown = Math.max(n.shown, pct);
  }

  private endNotice(dir: string): void {
    this.notices.get(dir)?.done();
    this.notices.delete(dir);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.subs) s.dispose();
    for (const n of this.notices.values()) n.done();
    this.item.dispose();
  }
}
