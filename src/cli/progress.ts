/**
 * Human progress for `sculpt run`: on a TTY one redrawn line per run (bar, task, loss, ETA); otherwise plain
 * lines at task boundaries and now and then, so logs of CI jobs stay readable.
 */
import type { Writable } from 'node:stream';
import type { SculptEvent } from '../protocol/events';

interface RunLine {
  name: string;
  tasks: number;
  task: number;
  progress: number;
  loss?: number;
  started?: number;
  status: string;
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
    this.lines = names.map((name) => ({ name, tasks: 1, task: 0, progress: 0, status: 'waiting' }));
  }

  update(i: number, e: SculptEvent): void {
    const l = this.lines[i];
    switch (e.type) {
      case 'run-started':
        l.tasks = e.tasks.length;
        l.started ??= Date.now();
        l.status = `running on ${e.backend.name}`;
        this.plain(`${l.name}: started on ${e.backend.name} (${e.backend.device}), ${e.tasks.length} tasks`);
        break;
      case 'task-started':
        l.task = e.task;
        l.progress = 0;
        this.plain(`${l.name}: task ${e.task + 1}/${l.tasks} ${e.name} (${e.steps} steps)`);
        break;
      case 'step':
        l.progress = e.progress;
        l.loss = e.loss;
        if (!this.tty && Date.now() - this.lastPlain > 10000) this.plain(`${l.name}: task ${l.task + 1}/${l.tasks} ${(100 * e.progress).toFixed(0)}% loss ${e.loss.toFixed(4)}`);
        break;
      case 'task-finished':
        this.plain(`${l.name}: after ${e.name}: [${e.row.map((v) => v.toFixed(1)).join(', ')}] AA ${e.metrics.AA.toFixed(1)}${e.metrics.BWT != null ? ` BWT ${e.metrics.BWT.toFixed(1)}` : ''}`);
        break;
      case 'run-finished':
        l.status = 'finished';
        l.progress = 1;
        l.task = l.tasks - 1;
        break;
      case 'stopped':
        l.status = 'stopped';
        break;
      case 'error':
        l.status = 'failed';
        break;
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
      const overall = (l.task + l.progress) / l.tasks;
      const filled = Math.round(overall * width);
      const eta = l.started && overall > 0.01 && overall < 1 ? ` ETA ${formatSeconds(((Date.now() - l.started) / 1000) * (1 / overall - 1))}` : '';
      const loss = l.loss !== undefined ? ` loss ${l.loss.toFixed(3)}` : '';
      this.out.write(`${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${l.name.slice(0, 32)} task ${l.task + 1}/${l.tasks}${loss}${eta} ${l.status}\n`);
    }
    this.drawn = this.lines.length;
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
