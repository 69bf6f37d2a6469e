/**
 * Per-task fine-tuning, the reference for forward transfer: each task starts from a fresh copy of the base
 * model (the weights at setup) and trains every parameter on that task alone, so R[t][t] is the accuracy of
 * an independent fine-tune on task t. Earlier tasks are not protected at all (R[T][j] for j < T measures how
 * a model tuned on another task does on task j). There are no options.
 *
 * The state holds nothing: setup copies the weights the run loaded from the base checkpoint, which a resumed
 * run loads again before its checkpoint's weights are restored, so the copy is the same.
 */
import type { tf } from '../tf';
import type { Method, MethodContext, MethodState } from './method';
import { assignWeights, copyWeights, disposeValues } from './support';

export class PerTask implements Method {
  readonly name = 'per-task';
  private start = new Map<string, tf.Tensor>();

  setup(ctx: MethodContext): void {
    disposeValues(this.start);
    this.start = copyWeights(ctx.model.params);
  }

  beforeTask(ctx: MethodContext): void {
    assignWeights(ctx.model.params, this.start);
  }

  trainable(ctx: MethodContext): Map<string, tf.Variable> {
    return ctx.model.params;
  }

  state(): MethodState {
    return { tensors: new Map(), json: null };
  }

  restore(): void {}

  dispose(): void {
    disposeValues(this.start);
  }
}
