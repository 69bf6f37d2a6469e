/**
 * Multi-task learning, the upper bound: every task's training examples at once. At the first task the
 * training set is the union of all tasks' training sets (the runner shuffles it each epoch, so batches mix
 * tasks); later tasks train nothing (0 steps), so each later row of the accuracy matrix re-evaluates the
 * same jointly trained model. Every parameter trains, as in SeqFT; there are no options.
 */
import type { tf } from '../tf';
import type { Example } from '../../data/examples';
import type { Method, MethodContext, MethodState } from './method';

export class Mtl implements Method {
  readonly name = 'mtl';

  setup(): void {}

  trainable(ctx: MethodContext): Map<string, tf.Variable> {
    return ctx.model.params;
  }

  trainingSet(ctx: MethodContext): Example[] {
    // Each example keeps its task index, so it is prompted with its own task's template.
    return ctx.task === 0 ? ctx.tasks.flatMap((t) => t.train.map((ex) => ({ ...ex, task: t.index }))) : [];
  }

  state(): MethodState {
    return { tensors: new Map(), json: null };
  }

  restore(): void {}

  dispose(): void {}
}
