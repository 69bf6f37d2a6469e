/**
 * SeqFT: plain full fine-tuning, task after task. Every parameter trains with the task loss alone; nothing
 * protects earlier tasks. The lower bound every continual-learning method is measured against.
 */
import type { tf } from '../tf';
import type { Method, MethodContext, MethodState } from './method';

export class SeqFt implements Method {
  readonly name = 'seqft';

  setup(): void {}

  trainable(ctx: MethodContext): Map<string, tf.Variable> {
    return ctx.model.params;
  }

  state(): MethodState {
    return { tensors: new Map(), json: null };
  }

  restore(): void {}

  dispose(): void {}
}
