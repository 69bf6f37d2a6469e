/**
 * Optimizers over named variables, with state that can be checkpointed and restored exactly.
 *
 * tfjs ships Adam and SGD but not AdamW (decoupled weight decay), and its optimizers key their slots by
 * variable id, which does not survive a restart. These follow PyTorch's update rules step for step, so the
 * reference runs made with torch.optim reproduce here:
 *   SGD:    p <- p - lr g
 *   Adam:   m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g²;  p <- p - (lr / (1-b1^t)) m / (sqrt(v / (1-b2^t)) + eps)
 *   AdamW:  p <- p (1 - lr wd), then the Adam step (decoupled decay, as torch.optim.AdamW).
 * Every update runs inside tf.tidy or disposes what it makes; no value is read back to JavaScript (but for the
 * clipping scale on wasm, where reading is free). On the webgpu backend Adam(W) runs as one fused dispatch over
 * all variables (kernels/webgpu/adamw.ts), its moments in flat GPU buffers; moments of variables outside the
 * current layout are "parked" as tensors in `m`/`v`. On the wasm backend it runs as one kernel per variable
 * (kernels/wasm-adamw.ts), with the moments in `m`/`v` as on the tf-op path.
 */
import { addMany, tf } from './tf';
import { FusedAdamW } from './kernels/webgpu/adamw';
import { useFused, useWasmFused } from './kernels/webgpu/switches';
import { fusedGlobalNorm } from './kernels/webgpu/global-norm';
import { wasmAdamW, wasmGlobalNorm } from './kernels/wasm-adamw';

export type OptimizerName = 'adamw' | 'adam' | 'sgd';

export interface OptimizerOptions {
  name: OptimizerName;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface OptimizerState {
  name: OptimizerName;
  step: number;
  /** Slot tensors by `<slot>/<variable name>` (e.g. `m/model.layers.0.mlp.up_proj.weight`). */
  slots: Map<string, tf.Tensor>;
}

export class Optimizer {
  readonly name: OptimizerName;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;
  private t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private fused: FusedAdamW | null = null;
  /** Tensors handed out by state() in fused mode, disposed at the next call. */
  private exported: tf.Tensor[] = [];

  constructor(opts: OptimizerOptions) {
    this.name = opts.name;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.name === 'adamw' ? (opts.weightDecay ?? 0) : 0;
  }

  get step(): number {
    return this.t;
  }

  /** One update of every variable that has a gradient. `grads` are not disposed. */
  apply(grads: Map<string, tf.Tensor>, vars: Map<string, tf.Variable>, lr: number): void {
    this.t++;
    const t = this.t;
    if (this.name !== 'sgd' && useFused('adamw')) {
      this.applyFused(grads, vars, lr);
      return;
    }
    if (this.fused) this.park();
    const wasm = this.name !== 'sgd' && useWasmFused('adamw');
    for (const [name, g] of grads) {
      const p = vars.get(name);
      if (!p) throw new Error(`optimizer: gradient for '${name}', which is not a trainable variable`);
      if (this.name === 'sgd') {
        tf.tidy(() => p.assign(p.sub(g.mul(lr))));
        continue;
      }
      const m = this.slot(this.m, name, p);
      const v = this.slot(this.v, name, p);
      if (wasm && p.dtype === 'float32' && g.dtype === 'float32') {
        if (p.size === 0) continue;
        const attrs = { lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay };
        const out = wasmAdamW(p, g, m, v, { ...attrs, step: t });
        // assign drops the variables' references to their old data; the kernel's tensors then hand theirs over.
        p.assign(out[0]);
        m.assign(out[1]);
        v.assign(out[2]);
        tf.dispose(out);
        continue;
      }
      const bc1 = 1 - Math.pow(this.beta1, t);
      const bc2 = 1 - Math.pow(this.beta2, t);
      tf.tidy(() => {
        const decayed = this.weightDecay > 0 ? p.mul(1 - lr * this.weightDecay) : p;
        const m1 = m.mul(this.beta1).add(g.mul(1 - this.beta1));
        const v1 = v.mul(this.beta2).add(g.square().mul(1 - this.beta2));
        m.assign(m1);
        v.assign(v1);
        const denom = v1.div(bc2).sqrt().add(this.eps);
        p.assign(decayed.sub(m1.div(denom).mul(lr / bc1)));
      });
    }
  }

  private applyFused(grads: Map<string, tf.Tensor>, vars: Map<string, tf.Variable>, lr: number): void {
    const names = [...grads.keys()].filter((n) => grads.get(n)!.size > 0);
    const list = names.map((name) => {
      const p = vars.get(name);
      if (!p) throw new Error(`optimizer: gradient for '${name}', which is not a trainable variable`);
      return { name, shape: p.shape };
    });
    if (!this.fused || !this.fused.matches(list)) {
      this.park();
      this.fused = new FusedAdamW(list, {
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        weightDecay: this.weightDecay,
      });
      const parked = new Map<string, tf.Tensor>();
      for (const n of names) {
        const m = this.m.get(n);
        const v = this.v.get(n);
        if (m) parked.set(`m/${n}`, m);
        if (v) parked.set(`v/${n}`, v);
      }
      this.fused.importMoments(parked);
      this.forgetParked(names);
    }
    this.fused.step(
      names.map((n) => grads.get(n)!),
      names.map((n) => vars.get(n)!),
      lr,
      this.t,
    );
  }

  /** Moves the fused layout's moments into per-variable tensors and drops the layout. */
  private park(): void {
    if (!this.fused) return;
    for (const [key, t] of this.fused.exportMoments()) {
      const [slot, ...rest] = key.split('/');
      const store = slot === 'm' ? this.m : this.v;
      const name = rest.join('/');
      store.get(name)?.dispose();
      store.set(name, tf.variable(t, false));
      t.dispose();
    }
    this.fused.dispose();
    this.fused = null;
  }

  private forgetParked(names: Iterable<string>): void {
    for (const n of names) {
      this.m.get(n)?.dispose();
      this.v.get(n)?.dispose();
      this.m.delete(n);
      this.v.delete(n);
    }
  }

  private slot(store: Map<string, tf.Variable>, name: string, like: tf.Variable): tf.Variable {
    let s = store.get(name);
    if (!s) {
      const zeros = tf.zerosLike(like);
      s = tf.variable(zeros, false);
      zeros.dispose();
      store.set(name, s);
    }
    return s;
  }

  /** Drops the slots of variables no longer trained (e.g. a finished task's adapters). */
  forget(names: Iterable<string>): void {
    const list = [...names];
    if (this.fused && list.some((n) => this.fused!.names.includes(n))) this.park();
    this.forgetParked(list);
  }

  /** Resets moments and the step count, as a fresh optimizer per task does. */
  reset(): void {
    this.fused?.dispose();
    this.fused = null;
    this.forgetParked([...this.m.keys()]);
    tf.dispose(this.exported);
    this.exported = [];
    this.t = 0;
  }

  /** The slots by `m/<name>`, `v/<name>`; the tensors stay the optimizer's (valid until the next step). */
  state(): OptimizerState {
    const slots = new Map<string, tf.Tensor>();
    tf.dispose(this.exported);
    this.exported = [];
    if (this.fused) {
      for (const [k, t] of this.fused.exportMoments()) {
        slots.set(k, t);
        this.exported.push(t);
      }
    }
    for (const [n, s] of this.m) if (!slots.has(`m/${n}`)) slots.set(`m/${n}`, s);
    for (const [n, s] of this.v) if (!slots.has(`v/${n}`)) slots.set(`v/${n}`, s);
    return { name: this.name, step: this.t, slots };
  }

  load(state: OptimizerState): void {
    if (state.name !== this.name)
      throw new Error(`optimizer state is for '${state.name}', this run uses '${this.name}'`);
    this.reset();
    this.t = state.step;
    for (const [key, value] of state.slots) {
      const [slot, ...rest] = key.split('/');
      const name = rest.join('/');
      const store = slot === 'm' ? this.m : slot === 'v' ? this.v : undefined;
      if (!store) throw new Error(`optimizer state has an unknown slot '${key}'`);
      // The slot owns a copy; the caller keeps (and disposes) the tensors it passed in.
      store.set(name, tf.variable(value, false));
    }
  }

  dispose(): void {
    this.reset();
  }
}

/**
 * Scales the gradients so that their global L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_).
 * Returns new tensors and the norm before clipping (a scalar tensor, so nothing is read back).
 */
export function clipByGlobalNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: tf.Scalar | null } {
  // No clipping, no work: the same map and tensors come back (the norm is not computed).
  if (!(maxNorm > 0)) return { grads, norm: null };
  const names = [...grads.keys()];
  const gs = names.map((n) => grads.get(n)!);
  const wasm = useWasmFused('clip') && gs.every((g) => g.dtype === 'float32');
  const norm = useFused('clip')
    ? fusedGlobalNorm(gs)
    : wasm
      ? wasmGlobalNorm(gs)
      : (tf.tidy(() => (gs.length ? addMany(gs.map((g) => g.square().sum())) : tf.scalar(0)).sqrt()) as tf.Scalar);
  // tidy keeps tensors it finds in arrays and plain objects (not in Maps), so build the Map afterwards.
  const clipped = tf.tidy(() => {
    const scale = tf.minimum(tf.scalar(1), tf.scalar(maxNorm).div(norm.add(1e-6)));
    // On wasm the scale is read back at no cost (the heap is host memory). At exactly 1 (the norm within the
    // limit) g · 1 is g, so clones, which share the data, stand for the products without a pass over each.
    if (wasm && scale.dataSync()[0] === 1) return gs.map((g) => g.clone());
    return gs.map((g) => g.mul(scale));
  });
  return { grads: new Map(names.map((n, i) => [n, clipped[i]])), norm };
}

export type Schedule = 'constant' | 'linear' | 'cosine';

/** Learning rate at optimizer step `step` (1-based) of `total`, with linear warm-up. */
export function learningRate(peak: number, step: number, total: number, warmup: number, schedule: Schedule): number {
  if (warmup > 0 && step <= warmup) return (peak * step) / warmup;
  const span = Math.max(1, total - warmup);
  const progress = Math.min(1, Math.max(0, (step - warmup) / span));
  switch (schedule) {
    case 'constant':
      return peak;
    case 'linear':
      return peak * (1 - progress);
    case 'cosine':
      return peak * 0.5 * (1 + Math.cos(Math.PI * progress));
  }
}
