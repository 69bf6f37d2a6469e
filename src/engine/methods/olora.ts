/**
 * O-LoRA (Wang et al. 2023, "Orthogonal Subspace Learning for Language Model Continual Learning").
 *
 * Task t gets a new LoRA pair (A_t: r x d_in, B_t: d_out x r) on each configured attention projection; the
 * base model and the pairs of earlier tasks are frozen, and the forward uses
 *   W_eff = W + (alpha / r) Σ_{i<=t} B_i A_i                  (nn.Linear layout [out, in]; Conv1D: the transpose)
 * The loss of task t is
 *   L_task + λ1 Σ_{modules} Σ_{i<t} ‖A_i A_tᵀ‖²_F + λ2 (‖A_t‖² + ‖B_t‖²)
 * The orthogonality term is the paper's (eq. 5: the sum of the squared entries of O_{i,t} = A_iᵀ A_t, the paper's
 * A being d_in x r, our A its transpose, so the r x r product is the same). The authors' code sums absolute
 * entries instead; the paper's form is used here because the absolute form's gradient, λ1 sign(·), keeps its
 * full size however close to orthogonal A_t gets, and a fresh random A_t starts far from it: on the CL-5 demo
 * (q and v, λ1 0.5) that term was 16.5 and 23.0 ten steps into the fourth and fifth tasks, four times the task
 * loss beside it. The squared form fades as the products shrink (1.6 and 2.2 at the same points with the
 * default modules, under half the task loss). The L2 term is the squared norm: the reference code's unsquared
 * norm has no gradient at B_t = 0, where every pair starts.
 * Defaults: r 8, alpha 32, λ1 0.5, λ2 0 as the paper; adapters on every attention and MLP projection and their
 * own lr 1e-3 (config.ts says why: the paper's q and v at a full fine-tuning lr learned nothing on sculpt-base).
 * A_t is Kaiming-uniform as PEFT (U(±1/√d_in)), B_t zero, so each task starts from the previous task's function.
 *
 * `modules` may name `mlp`: every projection of the MLP blocks (LLaMA gate, up, down; GPT-2 c_fc, c_proj), each
 * whole, with its own pair per task as an attention projection has.
 *
 * GPT-2 fuses q, k and v into one Conv1D `c_attn` [d, 3d]: q, k and v then name its column blocks
 * [0, d), [d, 2d), [2d, 3d), each with its own pair (as the LoRA paper's GPT-2 experiments); `o` is `c_proj`.
 * A role selects every projection with that role, so on an encoder-decoder model q and v include the
 * cross-attention ones, as PEFT's target_modules ["q", "v"] on T5 (the O-LoRA setup) does.
 *
 * Nothing is merged into the model's variables during a run: they keep the base weights and the adapters
 * are applied through `weightOverrides`; `merged()` gives W_eff for saving a plain checkpoint.
 *
 * `dropout` (PEFT's lora_dropout; the authors' code sets 0.1, the default here is 0, chosen on validation): while
 * training, the pairs act on a masked copy of each projection's input, so they cannot be merged: `trainingTerms`
 * then adds scale · Σ_i dropout(x) A_iᵀ B_iᵀ to each adapted projection's output (ParamStore.project), every
 * task's pairs on the same mask as in the authors' code.
 */
import { addMany, tf } from '../tf';
import { matMul } from '../kernels/matmul';
import type { OLoraConfig } from '../../protocol/config';
import type { ResolvedMethod } from '../../protocol/config-resolved';
import { ConfigError } from '../../protocol/config-validate';
import type { CausalLM } from '../models/types';
import type { ProjectionTerm } from '../models/params';
import { Rng, hashString } from '../../data/rng';
import type { ExtraLoss, Method, MethodContext, MethodState } from './method';
import { methodSeed, stateTensor } from './support';
import { oLoraRankIssues, resolveSlots, type AdapterSlot } from './olora-slots';

export { resolveSlots, type AdapterSlot } from './olora-slots';

interface Pair {
  A: tf.Variable;
  B: tf.Variable;
}

export class OLora implements Method {
  readonly name = 'o-lora';
  readonly r: number;
  readonly scale: number;
  private readonly lambda1: number;
  private readonly lambda2: number;
  private readonly dropout: number;
  /** Optimizer steps taken so far in the run (the dropout masks' seeds; kept in checkpoints). */
  private steps = 0;
  private slots: AdapterSlot[] = [];
  /** adapters[t][s]: the pair of task t on slot s; the last task's pairs are the ones that train. */
  private adapters: Pair[][] = [];
  /** Σ over frozen tasks of scale B_i A_i, per adapted weight, in the weight's layout. */
  private readonly frozenDelta = new Map<string, tf.Tensor>();
  /** Per slot, the frozen tasks' A_i stacked [(t r) x d_in], for the orthogonality term. */
  private frozenA: (tf.Tensor2D | null)[] = [];
  private model: CausalLM | null = null;
  private seed = 0;

  constructor(
    private readonly cfg: ResolvedMethod<OLoraConfig>,
    private readonly path: string,
  ) {
    this.r = cfg.r;
    this.scale = cfg.alpha / this.r;
    this.lambda1 = cfg.lambda1;
    this.lambda2 = cfg.lambda2;
    this.dropout = cfg.dropout;
  }

  setup(ctx: MethodContext): void {
    this.model = ctx.model;
    // The checks every run's inputs get before a weight is read (olora-slots.ts), made again on the model.
    this.slots = resolveSlots(ctx.model, this.cfg.modules, `${this.path}.modules`);
    const issues = oLoraRankIssues(this.r, this.slots, this.path);
    if (issues.length) throw new ConfigError(issues);
    const dIn = Math.min(...this.slots.map((s) => s.dIn));
    if (ctx.tasks.length * this.r > dIn) {
      ctx.warn(
        `o-lora: ${ctx.tasks.length} tasks x rank ${this.r} exceed the input width ${dIn}, so later adapters cannot be orthogonal to all earlier ones; the orthogonality loss cannot reach zero`,
        'o-lora-capacity',
      );
    }
    this.seed = methodSeed(ctx.rng, 'o-lora');
  }

  beforeTask(ctx: MethodContext): void {
    if (this.adapters.length !== ctx.task) {
      throw new Error(
        `o-lora: asked to start task ${ctx.task} with adapters for ${this.adapters.length} tasks; the checkpoint and the run disagree`,
      );
    }
    this.adapters.push(this.slots.map((s) => this.newPair(s, ctx.task)));
    this.rebuildFrozen();
  }

  /** PEFT's init: A Kaiming-uniform with a = √5, i.e. U(-1/√d_in, 1/√d_in); B zero. Seeded per task and slot. */
  private newPair(s: AdapterSlot, task: number): Pair {
    const rng = new Rng(this.seed ^ hashString(`${task}/${s.key}`));
    const bound = 1 / Math.sqrt(s.dIn);
    const a = new Float32Array(this.r * s.dIn);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
    const A0 = tf.tensor2d(a, [this.r, s.dIn]);
    const B0 = tf.zeros([s.dOut, this.r]);
    // A variable shares its initial tensor's data; the initial tensors themselves are not needed.
    const pair = { A: tf.variable(A0, true), B: tf.variable(B0, true) };
    tf.dispose([A0, B0]);
    return pair;
  }

  trainable(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    const t = this.adapters.length - 1;
    if (t < 0) throw new Error('o-lora: trainable() before beforeTask(): no adapter exists yet');
    this.slots.forEach((s, i) => {
      out.set(pairKey(t, s, 'A'), this.adapters[t][i].A);
      out.set(pairKey(t, s, 'B'), this.adapters[t][i].B);
    });
    return out;
  }

  /** scale B A of one pair, placed in its weight's layout (and block). */
  private delta(s: AdapterSlot, p: Pair | { A: tf.Tensor; B: tf.Tensor }): tf.Tensor2D {
    const before = s.offset;
    const after = s.width - s.offset - s.dOut;
    if (s.orientation === 'out_in') {
      const d = matMul(p.B as tf.Tensor2D, p.A as tf.Tensor2D).mul(this.scale) as tf.Tensor2D;
      return before || after
        ? tf.pad(d, [
            [before, after],
            [0, 0],
          ])
        : d;
    }
    // Conv1D stores [in, out] and computes y = x W, so its update is (B A)ᵀ = Aᵀ Bᵀ.
    const d = matMul(p.A as tf.Tensor2D, p.B as tf.Tensor2D, true, true).mul(this.scale) as tf.Tensor2D;
    return before || after
      ? tf.pad(d, [
          [0, 0],
          [before, after],
        ])
      : d;
  }

  /** Recomputes the frozen sum and stacked A's from every task's pairs but the last. */
  private rebuildFrozen(): void {
    this.releaseFrozen();
    const frozen = this.adapters.slice(0, -1);
    if (frozen.length === 0) {
      this.frozenA = this.slots.map(() => null);
      return;
    }
    const sums = tf.tidy(() => {
      const acc: Record<string, tf.Tensor> = {};
      this.slots.forEach((s, i) => {
        for (const pairs of frozen) {
          const d = this.delta(s, pairs[i]);
          acc[s.weight] = acc[s.weight] ? acc[s.weight].add(d) : d;
        }
      });
      return acc;
    });
    for (const [w, t] of Object.entries(sums)) this.frozenDelta.set(w, t);
    this.frozenA = this.slots.map(
      (_, i) =>
        tf.concat(
          frozen.map((pairs) => pairs[i].A),
          0,
        ) as tf.Tensor2D,
    );
  }

  /** W + Σ_i scale B_i A_i for every adapted weight (inside the tape: gradients reach the current pair). */
  weightOverrides(): Map<string, tf.Tensor> | null {
    const t = this.adapters.length - 1;
    if (t < 0 || !this.model) return null;
    const params = this.model.params;
    const merged = tf.tidy(() => {
      const acc: Record<string, tf.Tensor> = {};
      this.slots.forEach((s, i) => {
        const d = this.delta(s, this.adapters[t][i]);
        acc[s.weight] = acc[s.weight] ? acc[s.weight].add(d) : params.get(s.weight)!.add(d);
      });
      for (const [w, f] of this.frozenDelta) acc[w] = acc[w].add(f);
      return acc;
    });
    return new Map(Object.entries(merged));
  }

  /**
   * With dropout, the training forward as the authors' code runs it: the base weights untouched and, on each
   * adapted projection, every task's pairs (the frozen ones and the training one) on one dropped-out copy of its
   * input, scale · Σ_{i<=t} dropout(x) A_iᵀ B_iᵀ, placed in its block of a fused weight. Without dropout null:
   * training merges every pair into the weights (weightOverrides).
   */
  trainingTerms(): Map<string, ProjectionTerm> | null {
    const t = this.adapters.length - 1;
    if (this.dropout === 0 || t < 0) return null;
    const bySlot = new Map<string, number[]>();
    this.slots.forEach((s, i) => bySlot.set(s.weight, [...(bySlot.get(s.weight) ?? []), i]));
    const terms = new Map<string, ProjectionTerm>();
    for (const [weight, slots] of bySlot)
      terms.set(weight, (x) => {
        // One mask per projection, as PEFT's lora_dropout module: the blocks of a fused weight share it.
        const kept = x.mul(this.dropoutMask(x.shape, weight)) as tf.Tensor2D;
        const parts = slots.flatMap((i) => {
          const s = this.slots[i];
          const after = s.width - s.offset - s.dOut;
          return this.adapters.map((pairs) => {
            const { A, B } = pairs[i];
            const d = matMul(matMul(kept, A, false, true), B, false, true).mul(this.scale) as tf.Tensor2D;
            return s.offset || after
              ? (tf.pad(d, [
                  [0, 0],
                  [s.offset, after],
                ]) as tf.Tensor2D)
              : d;
          });
        });
        return parts.length === 1 ? parts[0] : (addMany(parts) as tf.Tensor2D);
      });
    return terms;
  }

  /**
   * Inverted dropout's multiplier for one projection's input this step: 0 with probability `dropout`, else
   * 1 / (1 - dropout). Seeded by the run's method seed, the step and the weight, so a resumed run draws the same
   * masks.
   */
  private dropoutMask(shape: number[], weight: string): tf.Tensor {
    const rng = new Rng(this.seed ^ hashString(`dropout/${this.steps}/${weight}`));
    const keep = 1 / (1 - this.dropout);
    const m = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < m.length; i++) m[i] = rng.next() < this.dropout ? 0 : keep;
    return tf.tensor(m, shape);
  }

  /** Counts steps for the dropout masks. */
  afterStep(): void {
    this.steps++;
  }

  /** The adapted weights with every task's pairs merged, for saving a plain checkpoint (caller disposes). */
  merged(): Map<string, tf.Tensor> {
    return this.weightOverrides() ?? new Map();
  }

  extraLoss(): ExtraLoss | null {
    const t = this.adapters.length - 1;
    const terms: Record<string, tf.Scalar> = {};
    if (t >= 1 && this.lambda1 > 0) {
      const parts = this.slots.map((_, i) =>
        matMul(this.frozenA[i]!, this.adapters[t][i].A, false, true).square().sum(),
      );
      terms.orthogonality = addMany(parts).mul(this.lambda1) as tf.Scalar;
    }
    if (t >= 0 && this.lambda2 > 0) {
      const parts = this.adapters[t].flatMap((p) => [p.A.square().sum(), p.B.square().sum()]);
      terms.l2 = addMany(parts).mul(this.lambda2) as tf.Scalar;
    }
    const values = Object.values(terms);
    if (values.length === 0) return null;
    return { total: values.length === 1 ? values[0] : (addMany(values) as tf.Scalar), terms };
  }

  state(): MethodState {
    const tensors = new Map<string, tf.Tensor>();
    this.adapters.forEach((pairs, t) =>
      this.slots.forEach((s, i) => {
        tensors.set(pairKey(t, s, 'A'), pairs[i].A);
        tensors.set(pairKey(t, s, 'B'), pairs[i].B);
      }),
    );
    return {
      tensors,
      json: { tasks: this.adapters.length, r: this.r, slots: this.slots.map((s) => s.key), steps: this.steps },
    };
  }

  /** Takes ownership of the state's tensors. */
  restore(state: MethodState): void {
    this.releaseAdapters();
    const j = state.json as { tasks: number; r: number; slots: string[]; steps?: number };
    const mine = this.slots.map((s) => s.key);
    if (j.r !== this.r || j.slots.join('\n') !== mine.join('\n')) {
      throw new Error(
        `o-lora checkpoint has rank ${j.r} adapters on ${j.slots.length} projections, the config asks for rank ${this.r} on ${mine.length}; resume with the config the run started with`,
      );
    }
    const variable = (key: string) => {
      const t = stateTensor(state, key, 'o-lora');
      const v = tf.variable(t, true);
      t.dispose();
      return v;
    };
    this.steps = j.steps ?? 0;
    for (let t = 0; t < j.tasks; t++)
      this.adapters.push(this.slots.map((s) => ({ A: variable(pairKey(t, s, 'A')), B: variable(pairKey(t, s, 'B')) })));
    if (this.adapters.length > 0) this.rebuildFrozen();
  }

  /** Number of tasks with adapters (the last one trains). */
  get tasks(): number {
    return this.adapters.length;
  }

  /** The slots adapters act on, in a fixed order. */
  get adapterSlots(): readonly AdapterSlot[] {
    return this.slots;
  }

  private releaseFrozen(): void {
    tf.dispose([...this.frozenDelta.values()]);
    this.frozenDelta.clear();
    this.frozenA.forEach((a) => a?.dispose());
    this.frozenA = [];
  }

  private releaseAdapters(): void {
    this.releaseFrozen();
    for (const pairs of this.adapters) for (const p of pairs) tf.dispose([p.A, p.B]);
    this.adapters = [];
  }

  dispose(): void {
    this.releaseAdapters();
  }
}

export function pairKey(task: number, s: AdapterSlot, part: 'A' | 'B'): string {
  return `olora.${task}.${s.key}.${part}`;
}
