/**
 * A model's parameters as its forward reads them: the named variables (HF state-dict keys) and, while
 * `withWeights` runs, tensors that stand in for some of them. Decoder-only and encoder-decoder models read every
 * weight through one store, so a method that replaces weights (O-LoRA's W + Σ BᵢAᵢ) reaches every architecture
 * the same way.
 */
import type { tf } from '../tf';

/**
 * A term added to a projection's output, computed from the projection's input x [rows, d_in]: [rows, d_out] in the
 * output's layout (O-LoRA's adapters on dropped-out inputs while training).
 */
export type ProjectionTerm = (x: tf.Tensor2D) => tf.Tensor2D;

export class ParamStore {
  private overrides: Map<string, tf.Tensor> | null = null;
  private terms: Map<string, ProjectionTerm> | null = null;

  constructor(
    /** Architecture name, for messages. */
    private readonly arch: string,
    private readonly variables: Map<string, tf.Variable>,
  ) {}

  /** The tensor the forward uses for `name`: its replacement while one is set, else the variable. */
  get(name: string): tf.Tensor {
    const v = this.maybe(name);
    if (!v) throw new Error(`${this.arch} model: parameter '${name}' is missing (the model was built without it)`);
    return v;
  }

  /** As `get`, for parameters an architecture may lack (optional biases). */
  maybe(name: string): tf.Tensor | undefined {
    return this.overrides?.get(name) ?? this.variables.get(name);
  }

  /** See `CausalLM.withWeights`: nested calls stack, and the replacements end with `f` (or its promise). */
  withWeights<T>(overrides: Map<string, tf.Tensor>, f: () => T): T {
    for (const [name, t] of overrides) {
      const v = this.variables.get(name);
      if (!v) throw new Error(`withWeights: '${name}' is not a parameter of this ${this.arch} model`);
      if (t.shape.join(',') !== v.shape.join(','))
        throw new Error(`withWeights: '${name}' has shape [${t.shape}], the parameter [${v.shape}]`);
    }
    const saved = this.overrides;
    this.overrides = new Map([...(saved ?? []), ...overrides]);
    return whileRunning(f, () => (this.overrides = saved));
  }

  /** y, the projection of x through weight `name`, plus the term set for that weight (see `withTerms`), if any. */
  project(name: string, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D {
    const term = this.terms?.get(name);
    return term ? y.add(term(x)) : y;
  }

  /** See `CausalLM.withTerms`: nested calls stack, and the terms end with `f` (or its promise). */
  withTerms<T>(terms: Map<string, ProjectionTerm>, f: () => T): T {
    for (const name of terms.keys())
      if (!this.variables.has(name))
        throw new Error(`withTerms: '${name}' is not a parameter of this ${this.arch} model`);
    const saved = this.terms;
    this.terms = new Map([...(saved ?? []), ...terms]);
    return whileRunning(f, () => (this.terms = saved));
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

/**
 * Runs `f` and calls `restore` once `f` is over: at once when it returns a value or throws, and when its promise
 * settles when it returns one. Replaced weights thus outlive the asynchronous reads of an evaluation (webgpu has
 * no synchronous readback in Node), yet end with `f` as before.
 */
function whileRunning<T>(f: () => T, restore: () => void): T {
  let result: T;
  try {
    result = f();
  } catch (e) {
    restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}
