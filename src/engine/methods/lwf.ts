/**
 * Learning without Forgetting (Li & Hoiem 2016), for a language model.
 *
 * Before each task t >= 1 the current weights are copied as a frozen teacher. While task t trains, every
 * parameter trains (as SeqFT) with the distillation term
 *   α T² · mean over answer positions of KL( softmax(z_old / T) ‖ softmax(z_new / T) )
 * where z are next-token logits over the whole vocabulary at the positions that predict the new task's answer
 * tokens (position p predicts token p + 1, as the loss), z_old from the teacher, z_new from the model being
 * trained; T² keeps the gradient scale independent of T (Hinton et al. 2015). Reported as `distillation`.
 * Defaults: T 1, α 0.3 (chosen on validation splits, docs/peers.md). Costs a second forward of the student
 * (the task loss does not hand out its logits) and one of the teacher per step, and a copy of the weights.
 */
import { tf } from '../tf';
import type { LwfConfig } from '../../protocol/config';
import type { ResolvedMethod } from '../../protocol/config-resolved';
import type { CausalLM } from '../models/types';
import { isSeq2Seq } from '../models/types';
import { IGNORE_INDEX } from '../data/batches';
import type { BatchTensors, ExtraLoss, Method, MethodContext, MethodState } from './method';
import { copyWeights, disposeUntaken, disposeValues, stateTensor } from './support';

export class Lwf implements Method {
  readonly name = 'lwf';
  readonly temperature: number;
  readonly alpha: number;
  private readonly teacher = new Map<string, tf.Tensor>();

  constructor(cfg: ResolvedMethod<LwfConfig>) {
    this.temperature = cfg.temperature;
    this.alpha = cfg.alpha;
  }

  setup(): void {}

  beforeTask(ctx: MethodContext): void {
    disposeValues(this.teacher);
    if (ctx.task === 0) return;
    for (const [name, t] of copyWeights(ctx.model.params)) this.teacher.set(name, t);
  }

  trainable(ctx: MethodContext): Map<string, tf.Variable> {
    return ctx.model.params;
  }

  extraLoss(batch: BatchTensors, ctx: MethodContext): ExtraLoss | null {
    if (this.teacher.size === 0 || this.alpha === 0) return null;
    const distillation = distillationTerm(ctx.model, this.teacher, batch, this.temperature).mul(
      this.alpha,
    ) as tf.Scalar;
    return { total: distillation, terms: { distillation } };
  }

  /** True while a teacher is held (tasks after the first). */
  get hasTeacher(): boolean {
    return this.teacher.size > 0;
  }

  state(): MethodState {
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, t] of this.teacher) tensors.set(`teacher/${name}`, t);
    return { tensors, json: { teacher: [...this.teacher.keys()] } };
  }

  /** Takes ownership of the state's tensors. */
  restore(state: MethodState): void {
    disposeValues(this.teacher);
    const j = state.json as { teacher: string[] };
    const taken = new Set<tf.Tensor>();
    for (const name of j.teacher) {
      const t = stateTensor(state, `teacher/${name}`, 'lwf');
      this.teacher.set(name, t);
      taken.add(t);
    }
    disposeUntaken(state, taken);
  }

  dispose(): void {
    disposeValues(this.teacher);
  }
}

/** T² · mean KL(p_old ‖ p_new) over the answer positions of the batch (without α). */
export function distillationTerm(
  model: CausalLM,
  teacher: Map<string, tf.Tensor>,
  batch: BatchTensors,
  temperature: number,
): tf.Scalar {
  return tf.tidy(() => {
    // An encoder-decoder model's logits are per decoder position, each predicting labels[p] itself.
    const logits = (): tf.Tensor3D =>
      isSeq2Seq(model)
        ? model.labelLogits(batch.inputIds, batch.labels, batch.mask)
        : model.logits(batch.inputIds, batch.mask);
    const zNew = logits();
    // The teacher's tensors are constants, so nothing of this forward reaches the gradients.
    const zOld = model.withWeights(teacher, logits);
    const positions = isSeq2Seq(model)
      ? (batch.labels.notEqual(tf.scalar(IGNORE_INDEX, 'int32')).toFloat() as tf.Tensor2D)
      : answerPositions(batch.labels);
    return distillationLoss(zOld, zNew, positions, temperature);
  });
}

/** [B, T] float mask of the positions whose next token is an answer token (labels[p + 1] != -100). */
export function answerPositions(labels: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, T] = labels.shape;
    const next = labels
      .slice([0, 1], [B, T - 1])
      .notEqual(tf.scalar(IGNORE_INDEX, 'int32'))
      .toFloat();
    return tf.concat([next, tf.zeros([B, 1])], 1) as tf.Tensor2D;
  });
}

/**
 * T² · Σ_p m_p KL(softmax(z_old,p / T) ‖ softmax(z_new,p / T)) / Σ_p m_p for logits [B, T, V] and a [B, T]
 * position mask; 0 when the mask is empty.
 */
export function distillationLoss(
  zOld: tf.Tensor3D,
  zNew: tf.Tensor3D,
  mask: tf.Tensor2D,
  temperature: number,
): tf.Scalar {
  return tf.tidy(() => {
    const logOld = tf.logSoftmax(zOld.div(temperature));
    const logNew = tf.logSoftmax(zNew.div(temperature));
    const kl = logOld.exp().mul(logOld.sub(logNew)).sum(-1);
    return kl
      .mul(mask)
      .sum()
      .div(mask.sum().maximum(1))
      .mul(temperature * temperature) as tf.Scalar;
  });
}
