/**
 * Step events of one task. Losses stay tensors until a flush reads a window of them back at once: webgpu has no
 * synchronous readback in Node, and elsewhere a read per step would stall the device. An event carries the
 * window's mean loss, the method's extra loss terms averaged over the same steps, throughput and progress.
 * Every step's loss read back goes through the task's divergence checks (divergence.ts) before its event.
 */
import { addMany, readTidy, tf } from './tf';
import type { EventBody } from '../protocol/events';
import type { RunPosition } from './run-checkpoint';
import type { StepResult } from './train-step';
import { describeDivergence, LossWatch, type Divergence } from './divergence';

/** The training of a task diverged (divergence.ts): `step` is the step at fault, `hint` the likely cause. */
export class DivergenceError extends Error {
  readonly step: number;
  readonly value: number;

  constructor(
    readonly task: string,
    readonly found: Divergence,
    readonly hint: string,
  ) {
    super(describeDivergence(found, task));
    this.name = 'DivergenceError';
    this.step = found.step;
    this.value = found.value;
  }
}

/** How the reporter checks losses: the task's watch, and the likely cause of a divergence it finds. */
export interface DivergenceCheck {
  watch: LossWatch;
  hint(found: Divergence): string;
}

export class StepReporter {
  private losses: tf.Scalar[] = [];
  private terms: Record<string, tf.Scalar>[] = [];
  private tokens = 0;
  private windowStart = performance.now();

  constructor(
    private readonly emit: (body: EventBody) => void,
    private readonly taskName: string,
    /** Optimizer steps of the whole task, for progress. */
    private readonly totalSteps: number,
    /** The learning rate of a step of this task (1-based). */
    private readonly lrAt: (step: number) => number,
    private readonly check: DivergenceCheck,
  ) {}

  /** Holds a step's loss and terms (now the reporter's to dispose) until the next flush. */
  add(step: StepResult, tokens: number): void {
    this.losses.push(step.loss);
    this.terms.push(step.terms);
    this.tokens += tokens;
  }

  /** Emits one step event for the steps held since the last flush, at position `pos` (their last step). */
  async flush(pos: RunPosition): Promise<void> {
    if (this.losses.length === 0) return;
    const stacked = tf.stack(this.losses);
    const values = Array.from(await stacked.data());
    tf.dispose([stacked, ...this.losses]);
    this.losses = [];
    // The method's extra loss terms, averaged over the same steps (one read-back for all of them).
    const pending = this.terms;
    const termNames = [...new Set(pending.flatMap((t) => Object.keys(t)))];
    let terms: Record<string, number> | undefined;
    if (termNames.length) {
      const sums = await readTidy(() =>
        tf.stack(termNames.map((n) => addMany(pending.map((t) => t[n] ?? tf.scalar(0))).div(pending.length))),
      );
      terms = Object.fromEntries(termNames.map((n, i) => [n, sums[i]]));
    }
    tf.dispose(pending.flatMap((t) => Object.values(t)));
    this.terms = [];
    const firstStep = pos.taskStep - values.length + 1;
    values.forEach((v, i) => {
      const found = this.check.watch.push(firstStep + i, v);
      if (found) throw new DivergenceError(this.taskName, found, this.check.hint(found));
    });
    const seconds = (performance.now() - this.windowStart) / 1000;
    this.emit({
      type: 'step',
      task: pos.task,
      step: pos.taskStep,
      globalStep: pos.globalStep,
      loss: values.reduce((a, b) => a + b, 0) / values.length,
      lr: this.lrAt(pos.taskStep),
      tokensPerSecond: this.tokens / Math.max(seconds, 1e-9),
      progress: pos.taskStep / this.totalSteps,
      memoryBytes: tf.memory().numBytes,
      ...(terms ? { terms } : {}),
    });
    this.tokens = 0;
    this.windowStart = performance.now();
  }
}
