/**
 * While runs are live: one status bar item ("Sculpt: task 2/5 · 43% · loss 0.61 (+2)", click for the dashboard)
 * whose tooltip lists every live and queued run with its progress. Progress lives here and in the dashboard's
 * header, not in a notification that stays open for the whole run; how a run ended is a brief message
 * (run-notices.ts), and stopping is Stop Run (the Runs view, the palette).
 */
import * as vscode from 'vscode';
import { overallFraction, progressText } from './live-progress';
import type { RunManager, RunRecord } from './run-manager';

/** "43%": the part of the whole run done (tasks weigh the same). */
function percentDone(r: RunRecord): string {
  return `${Math.floor(overallFraction(r.progress) * 100)}%`;
}

export class RunStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('sculpt.run', vscode.StatusBarAlignment.Left, 50);
  private readonly subs: { dispose(): void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly manager: RunManager,
    private readonly labelFor: (dir: string) => string,
  ) {
    this.item.name = 'Sculpt run';
    this.subs.push(
      manager.onState(() => this.update()),
      manager.onEvent(() => this.soon()),
    );
    this.update();
  }

  private soon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.update();
    }, 500);
  }

  /** The tooltip: each live run with where it is, then the queue. */
  private tooltip(live: RunRecord[], queued: RunRecord[]): string {
    const lines = live.map(
      (r) =>
        `${this.labelFor(r.dir)}: ${r.state === 'stopping' ? 'stopping (finishing the step, writing a checkpoint)' : `${progressText(r.progress)} · ${percentDone(r)} of the run`}`,
    );
    if (queued.length) {
      lines.push(`${queued.length} queued: ${queued.map((r) => this.labelFor(r.dir)).join(', ')}`);
      if (!live.length) lines.push('Runs wait for a free slot (setting sculpt.maxConcurrentRuns).');
    }
    lines.push(live.length ? 'Click to open the dashboard.' : '');
    return lines.filter(Boolean).join('\n');
  }

  private update(): void {
    const live = this.manager.live();
    const queued = this.manager.queued();
    if (live.length === 0 && queued.length === 0) {
      this.item.hide();
      return;
    }
    // The run started last is the one the user most likely watches.
    const focus = [...live].sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0))[0];
    const more = live.length - 1 + queued.length;
    if (focus) {
      const icon = focus.state === 'stopping' ? '$(loading~spin)' : '$(sync~spin)';
      this.item.text = `${icon} Sculpt: ${focus.state === 'stopping' ? 'stopping…' : progressText(focus.progress)}${more > 0 ? ` (+${more})` : ''}`;
      this.item.command = { command: 'sculpt.openDashboard', title: 'Open Dashboard', arguments: [focus.dir] };
    } else {
      this.item.text = `$(clock) Sculpt: ${queued.length} queued`;
      this.item.command = undefined;
    }
    this.item.tooltip = this.tooltip(live, queued);
    this.item.show();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.subs) s.dispose();
    this.item.dispose();
  }
}
