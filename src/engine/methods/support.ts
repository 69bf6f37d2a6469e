/**
 * Pieces the peer methods share: a per-method seed, copies of the model's weights, and reading a
 * checkpointed state back.
 */
import { tf } from '../tf';
import { hashString, type Rng } from '../../data/rng';
import type { MethodState } from './method';

/**
 * A 32-bit seed for `purpose`, a function of the run's generator as it stands at setup (the run's seed, since
 * the runner calls setup before anything draws from it). Drawn from a copy, so the generator itself does not
 * move: a method may call this again, and other users of the generator see the same stream either way.
 */
export function methodSeed(rng: Rng, purpose: string): number {
  const copy = Object.assign(Object.create(Object.getPrototypeOf(rng) as object) as Rng, rng);
  return copy.fork(hashString(purpose)).int(0x100000000);
}

/** Independent copies of the given weights (the caller disposes them). */
export function copyWeights(params: ReadonlyMap<string, tf.Tensor>): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, v] of params) out.set(name, tf.clone(v));
  return out;
}

/** Overwrites each named variable with the tensor of the same name. */
export function assignWeights(params: ReadonlyMap<string, tf.Variable>, values: ReadonlyMap<string, tf.Tensor>): void {
  for (const [name, t] of values) {
    const v = params.get(name);
    if (!v) throw new Error(`the model has no parameter '${name}' to restore`);
    v.assign(t);
  }
}

export function disposeValues(map: Map<string, tf.Tensor>): void {
  tf.dispose([...map.values()]);
  map.clear();
}

/**
 * Takes the tensor `key` out of a checkpointed state (the method owns it from then on). A missing tensor
 * means the checkpoint was written by a different method or version.
 */
export function stateTensor(state: MethodState, key: string, method: string): tf.Tensor {
  const t = state.tensors.get(key);
  if (!t) throw new Error(`${method} checkpoint lacks tensor '${key}'; was it written by another method or model?`);
  return t;
}

/** Disposes the state tensors a restore did not take (so a restore never leaks what it was handed). */
export function disposeUntaken(state: MethodState, taken: ReadonlySet<tf.Tensor>): void {
  for (const t of state.tensors.values()) if (!taken.has(t)) t.dispose();
}
