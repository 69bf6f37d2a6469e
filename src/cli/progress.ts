/**
 * Human progress for `sculpt run`: on a TTY one redrawn line per run (bar, task, loss, ETA); otherwise plain
 * lines at task boundaries and now and then, so logs of CI jobs stay readable.
 */
import type { Writable } from 'node:stream';
import type { RunStartedEvent, SculptEvent } from '../protocol/events';
import { engineText } from '../runs/run-engine';
import { emptySummary, foldEvent, type RunSummary } from '../runs/fold';

interface RunLine {
  summary: RunSummary;
  /** When this process saw the run start, for the ETA. */
  started?: number;
}

export class Progress {
  private readonly lines: RunLine[];
  private readonly tty: boolean;
  private drawn = 0;
  private lastPlain = 0;

  constructor(
    private readonly out: Writable & { isTTY?: boolean; columns?: number },
    names: string[],
  ) {
    this.tty = Boolean(out.isTTY);
    this.lines = names.map((name) => ({ summary: emptySummary(name) }));
  }

  update(i: number, e: SculptEvent): void {
    const l = this.lines[i];
    const s = foldEvent(l.summary, e);
    const name = s.name;
    switch (e.type) {
      case 'run-started': {
        l.started ??= Date.now();
        const resumed = resumedText(e);
        this.plain(
          `${name}: started on ${startedOn(s, e.backend.name)} (${e.backend.device}${e.backend.matmul?.startsWith('blas:') ? `, products on ${e.backend.matmul.slice(5)}` : ''}), ${e.tasks.length} tasks${resumed ? `; ${resumed}` : ''}`,
        );
        // A terminal shows only the redrawn bars, which cannot say where a run picked up: a line above them does.
        if (this.tty && resumed) this.note(`${name}: ${resumed}`);
        break;
      }
      case 'task-started':
        this.plain(`${name}: task ${e.task + 1}/${taskCount(s)} ${e.name} (${e.steps} steps)`);
        break;
      case 'step':
        if (!this.tty && Date.now() - this.lastPlain > 10000)
          this.plain(
            `${name}: task ${e.task + 1}/${taskCount(s)} ${(100 * e.progress).toFixed(0)}% loss ${e.loss.toFixed(4)}`,
          );
        break;
      case 'task-finished': {
        // Validation figures are marked as such, after the test figures they must not be mistaken for.
        const v = e.validationMetrics;
        this.plain(
          `${name}: after ${e.name}: [${e.row.map((x) => x.toFixed(1)).join(', ')}] AA ${e.metrics.AA.toFixed(1)}${e.metrics.BWT != null ? ` BWT ${e.metrics.BWT.toFixed(1)}` : ''}${v ? `; validation AA ${v.AA.toFixed(1)}` : ''}`,
        );
        break;
      }
    }
    this.draw();
  }

  note(text: string): void {
    this.clear();
    this.out.write(text + '\n');
    this.draw();
  }

  done(): void {
    this.draw();
    this.drawn = 0;
  }

  private plain(text: string): void {
    if (this.tty) return;
    this.lastPlain = Date.now();
    this.out.write(text + '\n');
  }

  private clear(): void {
    if (!this.tty || this.drawn === 0) return;
    this.out.write(`\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.tty) return;
    this.clear();
    const width = Math.max(10, Math.min(30, (this.out.columns ?? 80) - 60));
    for (const l of this.lines) {
      const s = l.summary;
      const tasks = taskCount(s);
      const task = Math.max(0, s.task);
      const overall = (task + s.taskProgress) / tasks;
      const filled = Math.round(overall * width);
      const eta =
        l.started && overall > 0.01 && overall < 1
          ? ` ETA ${formatSeconds(((Date.now() - l.started) / 1000) * (1 / overall - 1))}`
          : '';
      const loss = s.loss != null ? ` loss ${s.loss.toFixed(3)}` : '';
      this.out.write(
        `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${s.name.slice(0, 32)} task ${task + 1}/${tasks}${loss}${eta} ${statusText(s)}\n`,
      );
    }
    this.drawn = this.lines.length;
  }
}

/**
 * Where a resumed run picks up, so that `sculpt resume` says what it continues: "resumed from task 2/3
 * (sentiment), step 40": the task it continues with, counted from 1 as the task lines count them, and the steps
 * of that task done before. A resume with nothing trained to go back to starts over, which is said instead.
 * Empty for a run that is not resumed.
 */
function resumedText(e: RunStartedEvent): string {
  const from = e.resumedFrom;
  if (!from) return '';
  if (from.task === 0 && from.step === 0) return 'resumed from the start (nothing trained to keep)';
  const task = e.tasks[from.task];
  return `resumed from task ${from.task + 1}/${e.tasks.length}${task ? ` (${task})` : ''}, step ${from.step}`;
}

/** Tasks of the run, at least one (before run-started the count is not known yet). */
const taskCount = (s: RunSummary) => Math.max(1, s.tasks.length);

/** The word at the end of a run's line. */
function statusText(s: RunSummary): string {
  if (s.status === 'new') return 'waiting';
  if (s.status === 'running') return s.backend ? `running on ${startedOn(s, s.backend, false)}` : 'running';
  return s.status;
}

/** "wasm", or for the torch engine "torch 2.13.0 ×2 (fsdp2, bf16)" (the redrawn line leaves the version out). */
function startedOn(s: RunSummary, backend: string, version = true): string {
  return s.engine && s.engine.name !== 'tfjs' ? engineText(s.engine, { version }) : backend;
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
