/**
 * Online EWC (Kirkpatrick et al. 2017; the online form of Schwarz et al. 2018, "Progress & Compress").
 *
 * After each task the diagonal empirical Fisher of every parameter is estimated on `fisherSamples` of the
 * task's training examples, one example at a time:
 *   F = (1/N) Σ_n (∂ log p(y_n | x_n) / ∂θ)²        log p(y | x) = Σ over the answer tokens (labels) of log p
 * and accumulated, F_acc <- γ F_acc + F; the weights at that moment become the anchor θ*. Later tasks train
 * every parameter (as SeqFT) with the penalty
 *   L_task + Σ_j (λ/2) F_acc,j (θ_j - θ*_j)²
 * reported as the `ewc` term. Defaults: λ 1000, γ 1 (plain sum over tasks), fisherSamples 128 (fewer when
 * the task has fewer training examples). The Fisher uses the sum over answer tokens, the example's log
 * likelihood, not the per-token mean the training loss averages: an answer of n tokens weighs n² more.
 */
import { addMany, tf } from '../tf';
import type { EwcConfig } from '../../protocol/config';
import type { ResolvedMethod } from '../../protocol/config-resolved';
import type { CausalLM } from '../models/types';
import { namedGrads } from '../models/grads';
import type { Batch } from '../data/batches';
import type { BatchTensors, ExtraLoss, Method, MethodContext, MethodState } from './method';
import { copyWeights, disposeUntaken, disposeValues, stateTensor } from './support';

export class Ewc implements Method {
  readonly name = 'ewc';
  readonly lambda: number;
  readonly gamma: number;
  readonly fisherSamples: number;
  /** F_acc by parameter name. */
  private readonly fisher = new Map<string, tf.Tensor>();
  /** θ* by parameter name. */
  private readonly anchor = new Map<string, tf.Tensor>();
  private boundaries = 0;
  private model: CausalLM | null = null;

  constructor(cfg: ResolvedMethod<EwcConfig>) {
    this.lambda = cfg.lambda;
    this.gamma = cfg.gamma;
    this.fisherSamples = cfg.fisherSamples;
  }

  setup(ctx: MethodContext): void {
    this.model = ctx.model;
  }

  trainable(ctx: MethodContext): Map<string, tf.Variable> {
    return ctx.model.params;
  }

  extraLoss(): ExtraLoss | null {
    if (this.fisher.size === 0 || this.lambda === 0 || !this.model) return null;
    const params = this.model.params;
    const parts = [...this.fisher].map(([name, F]) =>
      F.mul(params.get(name)!.sub(this.anchor.get(name)!).square()).sum(),
    );
    const ewc = addMany(parts).mul(this.lambda / 2) as tf.Scalar;
    return { total: ewc, terms: { ewc } };
  }

  afterTask(ctx: MethodContext): void {
    const batches = ctx.batchesOf(ctx.task, this.fisherSamples, 1);
    const F = diagonalFisher(ctx.model, batches, (b) => ctx.tensorsOf(b));
    for (const [name, f] of F) {
      const old = this.fisher.get(name);
      this.fisher.set(name, old ? tf.tidy(() => old.mul(this.gamma).add(f)) : f);
      if (old) {
        old.dispose();
        f.dispose();
      }
    }
    disposeValues(this.anchor);
    for (const [name, t] of copyWeights(ctx.model.params)) this.anchor.set(name, t);
    this.boundaries++;
  }

  /** The accumulated Fisher and the anchor, by parameter name (owned by the method). */
  get penalty(): { fisher: ReadonlyMap<string, tf.Tensor>; anchor: ReadonlyMap<string, tf.Tensor> } {
    return { fisher: this.fisher, anchor: this.anchor };
  }

  state(): MethodState {
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, t] of this.fisher) tensors.set(`F/${name}`, t);
    for (const [name, t] of this.anchor) tensors.set(`theta/${name}`, t);
    return { tensors, json: { boundaries: this.boundaries, params: [...this.fisher.keys()] } };
  }

  /** Takes ownership of the state's tensors. */
  restore(state: MethodState): void {
    this.release();
    const j = state.json as { boundaries: number; params: string[] };
    this.boundaries = j.boundaries;
    const taken = new Set<tf.Tensor>();
    for (const name of j.params) {
      const F = stateTensor(state, `F/${name}`, 'ewc');
      const theta = stateTensor(state, `theta/${name}`, 'ewc');
      this.fisher.set(name, F);
      this.anchor.set(name, theta);
      taken.add(F).add(theta);
    }
    disposeUntaken(state, taken);
  }

  private release(): void {
    disposeValues(this.fisher);
    disposeValues(this.anchor);
  }

  dispose(): void {
    this.release();
  }
}

/**
 * Diagonal empirical Fisher over the given batches, each batch one example: the mean of the squared
 * gradients of log p(answer | prompt). Returns a new tensor per parameter (the caller disposes).
 */
export function diagonalFisher(
  model: CausalLM,
  batches: readonly Batch[],
  upload: (b: Batch) => BatchTensors,
): Map<string, tf.Tensor> {
  const sums = new Map<string, tf.Tensor>();
  let n = 0;
  for (const b of batches) {
    if (b.B !== 1) throw new Error(`diagonalFisher needs one example per batch (per-example gradients), got ${b.B}`);
    const t = upload(b);
    // The loss is the mean over the answer tokens; times their count it is -log p(answer | prompt).
    const { value, grads } = namedGrads(
      model,
      () => model.loss(t.inputIds, t.labels, t.mask).mul(b.labelled) as tf.Scalar,
    );
    for (const [name, g] of grads) {
      if (!g) continue;
      const old = sums.get(name);
      sums.set(
        name,
        tf.tidy(() => (old ? old.add(g.square()) : g.square())),
      );
      old?.dispose();
      g.dispose();
    }
    tf.dispose([value, t.inputIds, t.labels, t.mask]);
    n++;
  }
  if (n === 0) throw new Error('diagonalFisher: no examples to estimate the Fisher from');
  const out = new Map<string, tf.Tensor>();
  for (const [name, s] of sums) {
    out.set(
      name,
      tf.tidy(() => s.div(n)),
    );
    s.dispose();
  }
  // A parameter the loss does not reach (none in these models) gets a zero Fisher: no penalty.
  for (const [name, v] of model.params) if (!out.has(name)) out.set(name, tf.zerosLike(v));
  return out;
}
