/**
 * Gradients keyed by HF parameter name. tfjs keys them by variable name, which is unique per process (two
 * loaded copies of a model cannot share names), so the model's own names are mapped back here.
 */
import { tf } from '../tf';
import type { CausalLM } from './types';

export interface NamedGrads {
  value: tf.Scalar;
  grads: Map<string, tf.Tensor>;
}

/**
 * Value and gradients of `f` with respect to the named parameters (default: every trainable one). The caller
 * owns the returned tensors (dispose them, or call this inside tf.tidy).
 */
export function namedGrads(model: CausalLM, f: () => tf.Scalar, names?: readonly string[]): NamedGrads {
  const chosen = names ?? [...model.params].filter(([, v]) => v.trainable).map(([n]) => n);
  const vars = chosen.map((n) => {
    const v = model.params.get(n);
    if (!v) throw new Error(`namedGrads: the model has no parameter '${n}'`);
    return v;
  });
  const { value, grads } = tf.variableGrads(f, vars);
  const out = new Map<string, tf.Tensor>();
  chosen.forEach((n, i) => out.set(n, grads[vars[i].name]));
  return { value, grads: out };
}
