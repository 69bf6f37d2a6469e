/**
 * What a live run is doing, reduced from its events, for the status bar and the progress notification.
 */
import type { Metrics, SculptEvent } from '../protocol/events';

export interface LiveProgress {
  method?: string;
  tasks: string[];
  /** 0-based task being trained, -1 before the first. */
  task: number;
  /** Fraction of the current task's steps done, 0..1. */
  taskProgress: number;
  loss?: number;
  /** What the trainer does now when it is not stepping. */
  phase: 'starting' | 'training' | 'evaluating' | 'ranks' | 'done';
  metrics?: Metrics;
}

export function initialProgress(): LiveProgress {
  return { tasks: [], task: -1, taskProgress: 0, phase: 'starting' };
}

export function advance(p: LiveProgress, e: SculptEvent): LiveProgress {
  switch (e.type) {
    case 'run-started':
      return { ...p, method: e.method, tasks: e.tasks, phase: p.task >= 0 ? 'training' : 'starting' };
    case 'task-started':
      return { ...p, task: e.task, taskProgress: 0, phase: 'training' };
    case 'step':
      return { ...p, task: e.task, taskProgress: e.progress, loss: e.loss, phase: 'training' };
    case 'eval':
      return { ...p, phase: 'evaluating' };
    case 'ranks':
      return { ...p, phase: 'ranks' };
    case 'task-finished':
      return { ...p, task: e.task, taskProgress: 1, metrics: e.metrics, phase: 'evaluating' };
    case 'run-finished':
      return { ...p, taskProgress: 1, metrics: e.metrics, phase: 'done' };
    case 'stopped':
    case 'error':
      return { ...p, phase: 'done' };
    default:
      return p;
  }
}

/** Fraction of the whole run done, 0..1 (tasks weigh the same). */
export function overallFraction(p: LiveProgress): number {
  if (p.tasks.length === 0 || p.task < 0) return 0;
  return Math.min(1, (p.task + p.taskProgress) / p.tasks.length);
}

/** "task 2/5 · 43% · loss 0.61": the status bar text after "Sculpt: ". */
export function progressText(p: LiveProgress): string {
  if (p.task < 0 || p.tasks.length === 0) return 'starting…';
  const parts = [`task ${p.task + 1}/${p.tasks.length}`, `${Math.floor(p.taskProgress * 100)}%`];
  if (p.loss !== undefined && Number.isFinite(p.loss)) parts.push(`loss ${p.loss.toFixed(2)}`);
  if (p.phase === 'evaluating') parts.push('evaluating');
  else if (p.phase === 'ranks') parts.push('computing ranks');
  return parts.join(' · ');
}
