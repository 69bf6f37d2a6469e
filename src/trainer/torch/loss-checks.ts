/**
 * The divergence checks of the tfjs engine (src/engine/divergence.ts) on the PyTorch worker's losses: a NaN or
 * infinite loss, a spike, a collapse to a uniform guess end the run with the same `error` event (the task, the
 * step, the losses seen, the same hint). A `step` message's `losses` are every step's loss since the previous
 * message, as the tfjs step reporter checks them; without them the window's mean loss is checked at its step. As
 * in a tfjs run, a resumed session checks from the first step it trains.
 */
import type { ResolvedConfig } from '../../protocol/config-resolved';
import type { StepMessage } from '../../protocol/torch-worker';
import { LossWatch } from '../../engine/divergence';
import type { RunTask } from '../../engine/experiment';
import { DivergenceError } from '../../engine/step-reporter';
import { divergenceHint } from '../../engine/task-trainer';
import type { Manifest } from './prepare';

export class LossChecks {
  private readonly watch: LossWatch;
  private task = -1;

  constructor(
    private readonly config: ResolvedConfig,
    private readonly methodIndex: number,
    private readonly manifest: Manifest,
    private readonly tasks: RunTask[],
  ) {
    this.watch = new LossWatch({
      ...config.training.divergence,
      vocabSize: manifest.model.vocabSize,
      labelCount: tasks[0]?.labels.length ?? 0,
    });
  }

  /** Throws a DivergenceError when the message's losses show one. */
  check(m: StepMessage): void {
    const t = this.tasks[m.task];
    if (!t) return;
    if (m.task !== this.task) {
      this.watch.nextTask(t.name, t.labels.length);
      this.task = m.task;
    }
    // JSON null stands for a NaN or infinite loss.
    const values = (m.losses ?? [m.loss]).map((v) => (v === null ? NaN : v));
    const first = m.step - values.length + 1;
    values.forEach((v, i) => {
      const found = this.watch.push(first + i, v);
      if (!found) return;
      const method = this.config.methods[this.methodIndex];
      const lrPeak = method.lr ?? this.config.training.lr;
      throw new DivergenceError(
        t.name,
        found,
        divergenceHint(found, {
          lr: this.manifest.tasks[m.task].lr[found.step - 1] ?? lrPeak,
          lrPeak,
          lrField: method.lr === undefined ? 'training.lr' : `methods[${this.methodIndex}].lr`,
          gradClip: this.config.training.gradClip,
          method: method.method,
        }),
      );
    });
  }
}
