/**
 * What a live run is doing, for the status bar and the progress notification: a view over the run's summary
 * (src/runs/fold.ts), which the run manager folds event by event.
 */
import { emptySummary, foldEvent, type RunSummary } from '../runs/fold';
import type { SculptEvent } from '../protocol/events';

/** The summary a live view reads: task, progress within it, loss and phase, besides the run's metrics so far. */
export type LiveProgress = RunSummary;

/** What the progress texts need of it. */
type ProgressView = Pick<RunSummary, 'tasks' | 'task' | 'taskProgress' | 'loss' | 'phase'>;

export function initialProgress(): LiveProgress {
  return emptySummary('');
}

/** Folds one event into `p` (in place) and returns it. */
export function advance(p: LiveProgress, e: SculptEvent): LiveProgress {
  return foldEvent(p, e);
}

/** Fraction of the whole run done, 0..1 (tasks weigh the same). */
export function overallFraction(p: ProgressView): number {
  if (p.tasks.length === 0 || p.task < 0) return 0;
  return Math.min(1, (p.task + p.taskProgress) / p.tasks.length);
}

/** "task 2/5 · 43% · loss 0.61": the status bar text after "Sculpt: ". */
export function progressText(p: ProgressView): string {
  if (p.task < 0 || p.tasks.length === 0) return 'starting…';
  const parts = [`task ${p.task + 1}/${p.tasks.length}`, `${Math.floor(p.taskProgress * 100)}%`];
  if (p.loss != null && Number.isFinite(p.loss)) parts.push(`loss ${p.loss.toFixed(2)}`);
  if (p.phase === 'evaluating') parts.push('evaluating');
  else if (p.phase === 'ranks') parts.push('computing ranks');
  return parts.join(' · ');
}
