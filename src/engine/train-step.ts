/**
 * One optimizer step with the method's hooks in their places:
 *   loss (forward with the method's weight overrides or training terms, + its extra loss) -> gradients of the trainable set
 *   -> global-norm clipping -> method.transformGradients -> optimizer -> method.afterStep.
 * The loss stays a tensor (no read-back); the runner reads losses in groups at its event interval.
 */
import { tf } from './tf';
import type { CausalLM } from './models/types';
import type { BatchTensors, Method, MethodContext } from './methods/method';
import { clipByGlobalNorm, type Optimizer } from './optim';

export interface StepResult {
  /** The batch loss including the method's extra terms (caller disposes). */
  loss: tf.Scalar;
  /** The method's named extra terms (caller disposes). */
  terms: Record<string, tf.Scalar>;
}

export function trainStep(
  model: CausalLM,
  method: Method,
  ctx: MethodContext,
  batch: BatchTensors,
  trainable: Map<string, tf.Variable>,
  optimizer: Optimizer,
  lr: number,
  gradClip: number,
): StepResult {
  const keyOf = new Map<string, string>();
  for (const [key, v] of trainable) keyOf.set(v.name, key);
  let terms: Record<string, tf.Scalar> = {};

  const { value, grads: byVarName } = tf.variableGrads(() => {
    const forward = () => model.loss(batch.inputIds, batch.labels, batch.mask);
    const added = method.trainingTerms?.() ?? null;
    const overrides = added ? null : (method.weightOverrides?.() ?? null);
    let loss = added
      ? model.withTerms(added, forward)
      : overrides && overrides.size
        ? model.withWeights(overrides, forward)
        : forward();
    const extra = method.extraLoss?.(batch, ctx);
    if (extra) {
      loss = loss.add(extra.total);
      terms = Object.fromEntries(Object.entries(extra.terms).map(([k, t]) => [k, tf.keep(t)]));
    }
    return loss;
  }, [...trainable.values()]);

  const raw = new Map<string, tf.Tensor>();
  for (const [varName, g] of Object.entries(byVarName)) raw.set(keyOf.get(varName) ?? varName, g);
  const { grads: clipped, norm } = clipByGlobalNorm(raw, gradClip);
  norm?.dispose();
  if (clipped !== raw) tf.dispose([...raw.values()]);
  const grads = method.transformGradients ? method.transformGradients(clipped) : clipped;
  // A transform may pass some gradients through unchanged: dispose only what it replaced.
  const passed = new Set(grads.values());
  if (grads !== clipped) tf.dispose([...clipped.values()].filter((t) => !passed.has(t)));

  const snapNames = method.preStepSnapshot?.() ?? [];
  const before = snapNames.length ? new Map(snapNames.map((n) => [n, trainable.get(n)!.clone() as tf.Tensor])) : null;
  optimizer.apply(grads, trainable, lr);
  tf.dispose([...grads.values()]);
  if (method.afterStep) method.afterStep(before, ctx);
  if (before) tf.dispose([...before.values()]);
  return { loss: value as tf.Scalar, terms };
}
