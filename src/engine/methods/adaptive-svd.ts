/**
 * Adaptive SVD ("Sculpting Subspaces", Nayak et al. 2025; OSFT): constrained full fine-tuning.
 *
 * At each task boundary every target matrix W is decomposed, W = U S Vᵀ; its top-k singular directions
 * (U_h, V_h), with k from the rank policy, are what earlier tasks rely on. During the next task:
 *   dense     G <- (I - U_h U_hᵀ) G (I - V_h V_hᵀ) before the optimizer step, and the step's weight change D
 *             is re-projected the same way after it (Adam's element-wise scaling rotates D out of the subspace);
 *   factored  W = U_h S_h V_hᵀ + U_l diag(S_l) V_lᵀ with U_l, S_l, V_l trained, dU_l <- (I - U_h U_hᵀ) dU_l,
 *             dV_l <- (I - V_h V_hᵀ) dV_l (PEFT's OSF), merged back into W at the task end.
 * `paper` projection is the printed G - U_h U_hᵀ G V_h V_hᵀ, for ablation. Defaults follow the paper; the
 * subspace is recomputed from the current weights at every boundary, so nothing per task is stored.
 */
import { tf } from '../tf';
import { matMul } from '../kernels/matmul';
import type { ResolvedAdaptiveSvdConfig, ResolvedRankPolicy } from '../../protocol/config-resolved';
import { ConfigError } from '../../protocol/errors';
import type { MatrixRank } from '../../protocol/events';
import { namesInGroups, type ParamGroup } from '../models/inventory';
import {
  protectedSubspaces,
  projectGradient,
  projectTwoSidedMany,
  type ProtectedSubspace,
  type TwoSidedItem,
} from '../linalg';
import type { Method, MethodContext, MethodState } from './method';
import { chooseRanks, importances, minDim, sigmaStats, type ConstrainedMatrix } from './rank-policy';
import { adaptiveSvdModelIssues, constrainedMatrices } from './rank-pattern';

interface Factors {
  high: tf.Tensor2D;
  U: tf.Variable;
  S: tf.Variable;
  V: tf.Variable;
}

const FREEZE_GROUPS: Record<string, ParamGroup[]> = {
  norms: ['norm'],
  head: ['head'],
  embeddings: ['embedding', 'position'],
  biases: ['bias'],
};

const spectraOf = (subspaces: readonly ProtectedSubspace[]): Float64Array[] => subspaces.map((s) => s.S);

export class AdaptiveSvd implements Method {
  readonly name = 'adaptive-svd';
  private targets: ConstrainedMatrix[] = [];
  private readonly sub = new Map<string, ProtectedSubspace>();
  private readonly factors = new Map<string, Factors>();
  private ks: number[] = [];
  /** Which of `ks` the policy clamped into [1, min_dim], for the ranks event. */
  private clamped: boolean[] = [];
  private boundaries = 0;
  private readonly policy: ResolvedRankPolicy;

  constructor(
    private readonly cfg: ResolvedAdaptiveSvdConfig,
    private readonly path: string,
  ) {
    this.policy = cfg.rank;
  }

  setup(ctx: MethodContext): void {
    // The targets, and a fixed policy's k and rank patterns against every matrix, checked now before any
    // training, as every run's inputs were (rank-pattern.ts); the fixed policy's warnings come with each
    // boundary's ranks.
    const issues = adaptiveSvdModelIssues(this.cfg, ctx.model.inventory, this.path);
    if (issues.length) throw new ConfigError(issues);
    this.targets = constrainedMatrices(ctx.model.inventory, this.cfg.targets);
    if (this.policy.policy === 'fixed') this.decideRanks(null, null);
  }

  trainable(ctx: MethodContext): Map<string, tf.Variable> {
    const inv = ctx.model.inventory;
    const targetNames = new Set(this.targets.map((t) => t.name));
    const nt = this.cfg.nonTargets;
    const frozen = new Set<string>();
    if (nt === 'frozen') inv.params.forEach((p) => !targetNames.has(p.name) && frozen.add(p.name));
    else if (nt !== 'trainable')
      namesInGroups(
        inv,
        nt.freeze.flatMap((g) => FREEZE_GROUPS[g]),
      ).forEach((n) => frozen.add(n));
    const out = new Map<string, tf.Variable>();
    for (const [name, v] of ctx.model.params) {
      if (frozen.has(name)) continue;
      // In the factored form a target's own weight is fixed; its low-rank factors train instead.
      if (this.factors.has(name)) continue;
      out.set(name, v);
    }
    for (const [name, f] of this.factors) {
      out.set(`${name}#U_low`, f.U);
      out.set(`${name}#S_low`, f.S);
      out.set(`${name}#V_low`, f.V);
    }
    return out;
  }

  async beforeTask(ctx: MethodContext): Promise<void> {
    this.release();
    const constrained = ctx.task > 0 || this.cfg.protectPretrained;
    if (!constrained) return;
    const started = performance.now();
    // Calibrate on the previous task's data; before the first task (protectPretrained), on the first task's.
    const calibrationTask = Math.max(0, ctx.task - 1);
    const needsImportance = this.policy.policy === 'adaptive';
    let importance: number[] | null = null;
    if (needsImportance) {
      const batches = ctx.batchesOf(calibrationTask, this.cfg.calibrationSamples).map((b) => ctx.tensorsOf(b));
      try {
        importance = await importances(ctx.model, this.targets, batches, this.policy.importance);
      } finally {
        batches.forEach((b) => tf.dispose([b.inputIds, b.labels, b.mask]));
      }
    }
    // The energy policy decides from the singular values, so it asks for every vector and keeps k of them.
    const afterSvd = this.policy.policy === 'energy';
    const warnings = afterSvd ? [] : this.decideRanks(ctx, importance);
    const factored = this.cfg.parametrisation === 'factored';
    const weights = this.targets.map((t) => ctx.model.params.get(t.name)! as tf.Tensor2D);
    const vectors = this.targets.map((t, i) => (factored || afterSvd ? minDim(t) : this.ks[i]));
    const full = await protectedSubspaces(weights, vectors);
    if (afterSvd) warnings.push(...this.decideRanks(ctx, null, spectraOf(full)));
    const stats: MatrixRank[] = [];
    this.targets.forEach((t, i) => {
      const k = this.ks[i];
      const s = full[i];
      if (factored) this.factors.set(t.name, this.factorise(s, k));
      const slice = factored || afterSvd;
      const sub = slice
        ? {
            Uh: s.Uh.slice([0, 0], [-1, k]) as tf.Tensor2D,
            Vh: s.Vh.slice([0, 0], [-1, k]) as tf.Tensor2D,
            S: s.S,
            path: s.path,
          }
        : s;
      if (slice) tf.dispose([s.Uh, s.Vh]);
      this.sub.set(t.name, sub);
      stats.push({
        name: t.name,
        layer: t.layer,
        role: t.role,
        shape: t.shape,
        k,
        minDim: minDim(t),
        ratio: k / minDim(t),
        ...(importance ? { importance: importance[i] } : {}),
        ...sigmaStats(s.S, k),
        ...(this.clamped[i] ? { clamped: true } : {}),
      });
    });
    this.boundaries++;
    ctx.reportRanks(this.policy.policy, stats, (performance.now() - started) / 1000, warnings);
  }

  /** Sets `ks` from the policy and returns its warnings, which are also reported as warnings when `ctx` is given. */
  private decideRanks(
    ctx: MethodContext | null,
    importance: number[] | null,
    spectra: Float64Array[] | null = null,
  ): string[] {
    const d = chooseRanks(this.policy, this.targets, this.boundaries, importance, `${this.path}.rank`, spectra);
    this.ks = d.choices.map((c) => c.k);
    this.clamped = d.choices.map((c) => c.clamped === true);
    d.warnings.forEach((w) => ctx?.warn(w, 'rank-policy'));
    return d.warnings;
  }

  /** Splits W = U S Vᵀ into the fixed top-k part and trainable low factors (from the full decomposition). */
  private factorise(s: ProtectedSubspace, k: number): Factors {
    return tf.tidy(() => {
      const r = s.S.length;
      const S = tf.tensor1d(Float32Array.from(s.S));
      const Uh = s.Uh.slice([0, 0], [-1, k]);
      const Vh = s.Vh.slice([0, 0], [-1, k]);
      const high = tf.keep(matMul(Uh.mul(S.slice(0, k)), Vh, false, true) as tf.Tensor2D);
      return {
        high,
        U: tf.variable(s.Uh.slice([0, k], [-1, r - k]), true),
        S: tf.variable(S.slice(k, r - k), true),
        V: tf.variable(s.Vh.slice([0, k], [-1, r - k]), true),
      };
    });
  }

  weightOverrides(): Map<string, tf.Tensor> | null {
    if (this.factors.size === 0) return null;
    const out = new Map<string, tf.Tensor>();
    for (const [name, f] of this.factors) out.set(name, f.high.add(matMul(f.U.mul(f.S), f.V, false, true)));
    return out;
  }

  transformGradients(grads: Map<string, tf.Tensor>): Map<string, tf.Tensor> {
    if (this.sub.size === 0) return grads;
    const mode = this.cfg.projection;
    const out = new Map<string, tf.Tensor>();
    // Whole-matrix gradients in the two-sided mode are projected together (one kernel call on a BLAS).
    const many: { name: string; item: TwoSidedItem }[] = [];
    for (const [name, g] of grads) {
      const hash = name.indexOf('#');
      const base = hash < 0 ? name : name.slice(0, hash);
      const sub = this.sub.get(base);
      if (!sub) out.set(name, g);
      else if (hash < 0 && mode === 'two-sided') {
        out.set(name, g); // keeps the gradients' order; the projection below replaces it
        many.push({ name, item: { X: g as tf.Tensor2D, Uh: sub.Uh, Vh: sub.Vh } });
      } else if (hash < 0) out.set(name, projectGradient(g as tf.Tensor2D, sub, mode));
      else if (name.endsWith('#U_low'))
        out.set(
          name,
          tf.tidy(() => g.sub(matMul(sub.Uh, matMul(sub.Uh, g as tf.Tensor2D, true, false)))),
        );
      else if (name.endsWith('#V_low'))
        out.set(
          name,
          tf.tidy(() => g.sub(matMul(sub.Vh, matMul(sub.Vh, g as tf.Tensor2D, true, false)))),
        );
      else out.set(name, g);
    }
    const projected = projectTwoSidedMany(many.map((x) => x.item));
    many.forEach(({ name }, i) => out.set(name, projected[i]));
    return out;
  }

  preStepSnapshot(): readonly string[] {
    if (this.sub.size === 0 || this.factors.size > 0) return [];
    return [...this.sub.keys()];
  }

  afterStep(before: Map<string, tf.Tensor> | null, ctx: MethodContext): void {
    if (!before) return;
    const mode = this.cfg.projection;
    const names = [...before.keys()];
    if (mode === 'two-sided') {
      // W' = old + proj(W - old) for every matrix in one call (kernels/blas-projection.ts on a BLAS).
      const next = projectTwoSidedMany(
        names.map((name) => {
          const sub = this.sub.get(name)!;
          const old = before.get(name) as tf.Tensor2D;
          return { X: ctx.model.params.get(name)! as tf.Tensor2D, Uh: sub.Uh, Vh: sub.Vh, old };
        }),
      );
      names.forEach((name, i) => ctx.model.params.get(name)!.assign(next[i]));
      tf.dispose(next);
      return;
    }
    for (const [name, old] of before) {
      const W = ctx.model.params.get(name)!;
      const sub = this.sub.get(name)!;
      tf.tidy(() => W.assign(old.add(projectGradient(W.sub(old) as tf.Tensor2D, sub, mode))));
    }
  }

  afterTask(ctx: MethodContext): void {
    for (const [name, f] of this.factors) {
      const W = ctx.model.params.get(name)!;
      tf.tidy(() => W.assign(f.high.add(matMul(f.U.mul(f.S), f.V, false, true))));
    }
    this.releaseFactors();
  }

  state(): MethodState {
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, s] of this.sub) {
      tensors.set(`Uh/${name}`, s.Uh);
      tensors.set(`Vh/${name}`, s.Vh);
    }
    for (const [name, f] of this.factors) {
      tensors.set(`high/${name}`, f.high);
      tensors.set(`U_low/${name}`, f.U);
      tensors.set(`S_low/${name}`, f.S);
      tensors.set(`V_low/${name}`, f.V);
    }
    return {
      tensors,
      json: {
        boundaries: this.boundaries,
        ks: this.ks,
        constrained: [...this.sub.keys()],
        factored: [...this.factors.keys()],
      },
    };
  }

  restore(state: MethodState): void {
    this.release();
    const j = state.json as { boundaries: number; ks: number[]; constrained: string[]; factored: string[] };
    this.boundaries = j.boundaries;
    this.ks = j.ks;
    const take = (key: string) => {
      const t = state.tensors.get(key);
      if (!t) throw new Error(`adaptive-svd checkpoint lacks tensor '${key}'`);
      return t;
    };
    for (const name of j.constrained)
      this.sub.set(name, {
        Uh: take(`Uh/${name}`) as tf.Tensor2D,
        Vh: take(`Vh/${name}`) as tf.Tensor2D,
        S: new Float64Array(0),
        path: 'ts',
      });
    const variable = (key: string) => {
      const t = take(key);
      const v = tf.variable(t, true);
      t.dispose();
      return v;
    };
    for (const name of j.factored) {
      this.factors.set(name, {
        high: take(`high/${name}`) as tf.Tensor2D,
        U: variable(`U_low/${name}`),
        S: variable(`S_low/${name}`),
        V: variable(`V_low/${name}`),
      });
    }
  }

  private releaseFactors(): void {
    for (const f of this.factors.values()) tf.dispose([f.high, f.U, f.S, f.V]);
    this.factors.clear();
  }

  private release(): void {
    for (const s of this.sub.values()) tf.dispose([s.Uh, s.Vh]);
    this.sub.clear();
    this.releaseFactors();
  }

  dispose(): void {
    this.release();
  }
}
