/**
 * The validation split of a task (`eval.validation`): training examples held out before training, never trained
 * on, so that anything chosen by accuracy (a rank policy, a learning rate) is chosen without looking at the test
 * set. The unit of the split is a distinct input: copies of an input (the same instruction and input, repeated in
 * the data) are held out together, so that no validation input is also a training input.
 *
 * The draw is stratified by label: with U distinct inputs of which c_l have label l (the output of an input's
 * first copy), label l gets floor(n c_l / U) of the n held-out inputs, and the remaining ones go one each to the
 * labels with the largest remainders n c_l mod U (ties in a seeded order), first to labels that keep a training
 * input afterwards. The split's label mix is then the data's (the test set's, for the usual benchmark), so its
 * accuracy estimates the test accuracy rather than a rebalanced one, and no label loses its last training input
 * while another can give one.
 */
import type { Example } from '../../data/examples';
import type { Rng } from '../../data/rng';

/** The text an example is recognised by: instruction and input, not the output. */
export const exampleKey = (e: Example): string => `${e.instruction ?? ''}\u0000${e.input}`;

/** The distinct inputs of `examples`, each as the indices of its copies, in order of first appearance. */
export function inputGroups(examples: readonly Example[]): number[][] {
  const groups = new Map<string, number[]>();
  examples.forEach((e, i) => {
    const key = exampleKey(e);
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  });
  return [...groups.values()];
}

/**
 * How many of U distinct inputs a setting of `eval.validation` holds out: 0 for 0, n = max(1, round(f U)) for a
 * fraction f in (0, 1), the setting itself for an integer >= 1. It may reach or exceed U; the caller refuses that.
 */
export function validationSize(setting: number, inputs: number): number {
  if (!(setting > 0)) return 0;
  return setting < 1 ? Math.max(1, Math.round(setting * inputs)) : setting;
}

export interface ValidationSplit {
  /** What is left to train on, in the data's order. */
  train: Example[];
  /** The held-out examples, in the data's order. */
  validation: Example[];
}

/**
 * Holds out `n` distinct inputs of `examples` with all their copies, stratified by label (see the module's
 * comment), drawn with `rng`. Needs 0 <= n < the number of distinct inputs, so that training keeps at least one.
 */
export function holdOut(examples: readonly Example[], n: number, rng: Rng): ValidationSplit {
  const groups = inputGroups(examples);
  const U = groups.length;
  if (!Number.isInteger(n) || n < 0 || n >= U)
    throw new RangeError(`cannot hold out ${n} of ${U} distinct inputs and keep one to train on`);
  if (n === 0) return { train: [...examples], validation: [] };
  const byLabel = new Map<string, number[]>();
  groups.forEach((g, gi) => {
    const label = examples[g[0]].output;
    const list = byLabel.get(label);
    if (list) list.push(gi);
    else byLabel.set(label, [gi]);
  });
  const pools = [...byLabel.values()];
  // take_l = floor(n c_l / U) <= c_l - 1, since n < U; integer arithmetic keeps the remainders exact.
  const take = pools.map((p) => Math.floor((n * p.length) / U));
  const remainder = pools.map((p) => (n * p.length) % U);
  let left = n - take.reduce((a, b) => a + b, 0);
  const ranked = rng.shuffle(pools.map((_, l) => l)).sort((a, b) => remainder[b] - remainder[a]);
  // First to labels that keep a training input afterwards, then (only when those run out) to any label.
  for (const spare of [1, 0]) {
    for (const l of ranked) {
      if (left === 0) break;
      if (take[l] < pools[l].length - spare) {
        take[l]++;
        left--;
      }
    }
  }
  const held = new Set<number>();
  pools.forEach((p, l) => {
    for (const gi of rng.shuffle([...p]).slice(0, take[l])) for (const i of groups[gi]) held.add(i);
  });
  const train: Example[] = [];
  const validation: Example[] = [];
  examples.forEach((e, i) => (held.has(i) ? validation : train).push(e));
  return { train, validation };
}
