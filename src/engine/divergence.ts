/**
 * Divergence of a task's training, judged from the loss of each step (values the step events read back anyway,
 * so the checks add no work on the device and change no numbers):
 *
 * - non-finite: a NaN or infinite loss (always checked);
 * - spike: a loss above `lossFactor` times the task's start value. The start value is the loss of the task's
 *   first step, computed before the task changed any weight, so a blow-up in the first steps cannot raise it
 *   (a first window's mean would include them); it is at least ln(vocabulary size), the loss of a uniform
 *   guess, so that a task starting near zero loss does not turn ordinary batch noise into a 10x "spike". The
 *   first step itself is held to ln(vocabulary size): a task that starts far above a uniform guess inherited
 *   a diverged model from the task before;
 * - collapse: a loss within COLLAPSE_TOLERANCE of ln(vocabulary size) or ln(number of labels) for
 *   `collapseWindow` consecutive steps (a plateau at ln(vocabulary size) may span the start of the next task),
 *   after the loss was clearly below that value before (anywhere in the run for the vocabulary;
 *   in the same task, at most LEARNED_BELOW of it, for the labels): the model predicts a uniform distribution
 *   whatever the input. A task whose loss starts at a uniform
 *   guess and never drops (a randomly initialised model) is not a collapse.
 */
import type { DivergenceConfig } from '../protocol/config';

/** Relative distance from ln(n) within which a loss counts as sitting at ln(n). */
export const COLLAPSE_TOLERANCE = 1e-3;
/** Relative distance below ln(vocabulary size) an earlier loss must have reached for a plateau there to count. */
export const CLEARLY_LOWER = 5e-3;
/**
 * How far below ln(number of labels) the task's own loss must have been for a plateau there to count. A model
 * that has not yet learned a task sits at a uniform guess over its labels as a matter of course (the start of a
 * binary task is often a stretch at ln 2), and one lucky batch dips below it; only a task that was learned
 * (its loss at most half of a uniform guess) and then returned to exactly that guess has collapsed.
 */
export const LEARNED_BELOW = 0.5;
/** Losses quoted in a message, up to the step at fault. */
const QUOTED = 6;

export interface LossWatchOptions extends Required<DivergenceConfig> {
  /** The model's vocabulary (its logits' width). */
  vocabSize: number;
  /** The task's label count (0 or 1 when it has no label set). */
  labelCount: number;
}

export type Divergence =
  | { kind: 'non-finite'; step: number; value: number }
  | {
      kind: 'spike';
      step: number;
      value: number;
      factor: number;
      reference: number;
      /** The loss of the task's first step; the reference is ln(vocabulary size) where that is more. */
      first: number;
      /** This is the first step (held to ln(vocabulary size) alone). */
      atStart: boolean;
      vocabSize: number;
      recent: Recent;
    }
  | {
      kind: 'collapse';
      /** The step that completed the window (of the current task). */
      step: number;
      value: number;
      /** Where the plateau began: a step of this task, or of an earlier one (`task` names it then). */
      from: { task: string | null; step: number };
      /** What the value is: `ln(68)`. */
      plateau: string;
      /** Why that value means a collapse: `a uniform guess over the vocabulary`. */
      meaning: string;
      steps: number;
      lowest: number;
    };

/** Consecutive losses from step `from` on. */
export interface Recent {
  from: number;
  values: number[];
}

interface Plateau {
  value: number;
  name: string;
  meaning: string;
  /** First step (and its task) of the current run of losses at the plateau, its length, the lowest loss before. */
  start: number;
  startTask: string;
  count: number;
  lowestBefore: number;
  /** 'run': the lowest loss of the whole run counts (vocabulary); 'task': only the current task's (labels). */
  scope: 'run' | 'task';
  /** The fraction of the plateau's value that the lowest loss before must be under. */
  below: number;
}

/**
 * Watches the losses of a run's steps, in order; `push` returns the first divergence found. The spike reference
 * and the label plateau are per task (`nextTask`); the lowest loss and a plateau at ln(vocabulary size) carry
 * over from task to task, since a model that collapsed stays collapsed when the next task starts.
 */
export class LossWatch {
  private first: number | null = null;
  private lowest = Infinity;
  private taskLowest = Infinity;
  private recent: number[] = [];
  private plateaus: Plateau[];
  private task = '';

  private readonly opts: LossWatchOptions;

  constructor(opts: LossWatchOptions) {
    this.opts = { ...opts };
    this.plateaus = [
      this.plateau(opts.vocabSize, 'a uniform guess over the vocabulary', 'run', 1 - CLEARLY_LOWER),
      ...this.labelPlateau(),
    ];
  }

  /** The steps pushed from now on are those of task `task` (numbered from 1 again), with `labelCount` labels. */
  nextTask(task: string, labelCount: number): void {
    this.task = task;
    this.first = null;
    this.taskLowest = Infinity;
    this.recent = [];
    this.opts.labelCount = labelCount;
    this.plateaus = [this.plateaus[0], ...this.labelPlateau()];
  }

  private labelPlateau(): Plateau[] {
    const n = this.opts.labelCount;
    return n >= 2 && n !== this.opts.vocabSize
      ? [this.plateau(n, `a uniform guess over the task's ${n} labels`, 'task', LEARNED_BELOW)]
      : [];
  }

  private plateau(n: number, meaning: string, scope: Plateau['scope'], below: number): Plateau {
    const value = Math.log(n);
    return {
      value,
      name: `ln(${n})`,
      meaning,
      start: 0,
      startTask: '',
      count: 0,
      lowestBefore: Infinity,
      scope,
      below,
    };
  }

  /** The loss of step `step` (1-based in the task); null while nothing is wrong. */
  push(step: number, value: number): Divergence | null {
    if (!Number.isFinite(value)) return { kind: 'non-finite', step, value };
    this.recent.push(value);
    if (this.recent.length > QUOTED) this.recent.shift();
    const { enabled, lossFactor, collapseWindow, vocabSize } = this.opts;
    if (!enabled) return null;
    const uniform = Math.log(vocabSize);
    const atStart = this.first === null;
    const reference = Math.max(this.first ?? uniform, uniform);
    this.first ??= value;
    if (value > lossFactor * reference) {
      return {
        kind: 'spike',
        step,
        value,
        factor: lossFactor,
        reference,
        first: this.first,
        atStart,
        vocabSize,
        recent: { from: step - this.recent.length + 1, values: [...this.recent] },
      };
    }
    for (const p of this.plateaus) {
      if (Math.abs(value - p.value) <= COLLAPSE_TOLERANCE * p.value) {
        if (p.count === 0) {
          p.start = step;
          p.startTask = this.task;
          p.lowestBefore = p.scope === 'run' ? this.lowest : this.taskLowest;
        }
        p.count++;
        if (p.count >= collapseWindow && p.lowestBefore < p.value * p.below) {
          return {
            kind: 'collapse',
            step,
            value,
            from: { task: p.startTask === this.task ? null : p.startTask, step: p.start },
            plateau: p.name,
            meaning: p.meaning,
            steps: p.count,
            lowest: p.lowestBefore,
          };
        }
      } else {
        p.count = 0;
      }
    }
    this.lowest = Math.min(this.lowest, value);
    this.taskLowest = Math.min(this.taskLowest, value);
    return null;
  }
}

/** The first divergence in a task's step losses (`losses[i]` is step `firstStep + i`), or null. */
export function findDivergence(losses: readonly number[], opts: LossWatchOptions, firstStep = 1): Divergence | null {
  const watch = new LossWatch(opts);
  for (let i = 0; i < losses.length; i++) {
    const found = watch.push(firstStep + i, losses[i]);
    if (found) return found;
  }
  return null;
}

/** A loss for a message: 4 significant digits. */
export function formatLoss(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1e5 ? v.toExponential(3).replace(/\.?0+e/, 'e') : String(Number(v.toPrecision(4)));
}

/** What happened, for an error message: `<what> at step <n> of task '<task>'<details>`. */
export function describeDivergence(d: Divergence, task: string): string {
  const at = `at step ${d.step} of task '${task}'`;
  switch (d.kind) {
    case 'non-finite':
      return `training diverged: the loss became ${d.value} ${at}`;
    case 'spike': {
      const last = d.recent.from + d.recent.values.length - 1;
      const steps = d.recent.from === last ? `step ${last}` : `steps ${d.recent.from}-${last}`;
      const uniform = `ln(${d.vocabSize}) = ${formatLoss(d.reference)}, the loss of a uniform guess`;
      const reference = d.atStart
        ? uniform
        : d.first >= d.reference
          ? `its value at the start of the task (${formatLoss(d.first)})`
          : `${uniform} (the task started at ${formatLoss(d.first)})`;
      return (
        `training diverged: the loss rose to ${formatLoss(d.value)} ${at}, over ${d.factor}x ${reference}; ` +
        `losses of ${steps}: ${d.recent.values.map(formatLoss).join(', ')}`
      );
    }
    case 'collapse':
      return (
        `training collapsed: the loss sat at ${formatLoss(d.value)} = ${d.plateau}, ${d.meaning}, for ${d.steps} ` +
        `steps up to step ${d.step} of task '${task}' (from step ${d.from.step}` +
        `${d.from.task === null ? '' : ` of task '${d.from.task}'`}), after having been as low as ` +
        `${formatLoss(d.lowest)}: the model predicts the same distribution whatever the input`
      );
  }
}
