/**
 * Runs compared across experiments may have trained different task sequences (other tasks, or the same tasks in
 * another order). Per-task figures are then matched by task name, never by position, and no run is marked best:
 * AA or BWT over different sequences are not the same measurement.
 */
import type { RunState } from './state';

export interface TaskAlignment {
  /** Every run that has started trained the same tasks in the same order. */
  same: boolean;
  /** Every run that has started trained the same set of tasks (perhaps in other orders). */
  sameSet: boolean;
  /** The shared sequence, else every task name in first-seen order (runs in their order). */
  tasks: string[];
  /** Each distinct sequence and the labels of the runs that trained it. */
  sequences: { tasks: string[]; runs: string[] }[];
}

export function alignTasks(runs: readonly Pick<RunState, 'tasks' | 'label'>[]): TaskAlignment {
  const started = runs.filter((r) => r.tasks.length > 0);
  const sequences: TaskAlignment['sequences'] = [];
  for (const r of started) {
    const seq = sequences.find((s) => s.tasks.length === r.tasks.length && s.tasks.every((t, i) => t === r.tasks[i]));
    if (seq) seq.runs.push(r.label);
    else sequences.push({ tasks: [...r.tasks], runs: [r.label] });
  }
  const tasks: string[] = [];
  for (const s of sequences) for (const t of s.tasks) if (!tasks.includes(t)) tasks.push(t);
  const setOf = (ts: string[]) => [...new Set(ts)].sort().join('\n');
  return {
    same: sequences.length <= 1,
    sameSet: new Set(sequences.map((s) => setOf(s.tasks))).size <= 1,
    tasks,
    sequences,
  };
}

/** What the dashboard says when the sequences differ; null when they do not. */
export function sequenceNote(a: TaskAlignment): string | null {
  if (a.same) return null;
  const list = a.sequences.map((s) => `${s.runs.join(', ')}: ${s.tasks.join(' \u2192 ')}`).join('; ');
  return `The runs trained different task sequences (${list}). Per-task figures are matched by task name; no best value is marked.`;
}
