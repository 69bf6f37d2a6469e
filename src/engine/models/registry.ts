/**
 * Which implementation serves a config.json, and building a model from named weights or from a seed.
 * Adding an architecture means adding it to ARCHITECTURES; nothing else dispatches on model types.
 */
import { tf } from '../tf';
import { Rng } from '../../data/rng';
import { ModelFileError } from '../../protocol/errors';
import type { RawConfig } from './config';
import { gpt2Architecture } from './gpt2';
import { llamaArchitecture } from './llama';
import { t5Architecture } from './t5';
import type { Architecture, CausalLM } from './types';

export const ARCHITECTURES: readonly Architecture[] = [gpt2Architecture, llamaArchitecture, t5Architecture];
export const SUPPORTED_MODEL_TYPES: readonly string[] = ARCHITECTURES.flatMap((a) => a.modelTypes);

export class UnsupportedModelError extends ModelFileError {
  override readonly name: string = 'UnsupportedModelError';

  constructor(file: string, detail: string) {
    super(file, detail, { field: 'model_type' });
  }
}

/** The architecture for `model_type` (or, without it, for the class named in `architectures`). */
export function architectureFor(raw: RawConfig, where = 'config.json'): Architecture {
  const type = raw.model_type;
  const classes = Array.isArray(raw.architectures) ? raw.architectures.map(String) : [];
  const supported = `supported model_type values: ${SUPPORTED_MODEL_TYPES.join(', ')}`;
  let arch: Architecture | undefined;
  if (typeof type === 'string') {
    arch = ARCHITECTURES.find((a) => a.modelTypes.includes(type));
    if (!arch) throw new UnsupportedModelError(where, `model_type '${type}' is not supported; ${supported}`);
  } else {
    arch = ARCHITECTURES.find((a) => classes.some((c) => a.classes.includes(c)));
    if (!arch)
      throw new UnsupportedModelError(
        where,
        `no model_type, and architectures ${JSON.stringify(classes)} names no supported class; ${supported}`,
      );
  }
  const foreign = classes.filter((c) => !arch.classes.includes(c));
  if (classes.length > 0 && foreign.length === classes.length) {
    throw new UnsupportedModelError(
      where,
      `architectures ${JSON.stringify(classes)} is not a causal language model this engine implements; supported classes: ${arch.classes.join(', ')}`,
    );
  }
  return arch;
}

/** Builds a model over existing variables (keys = the inventory's names); takes ownership of them. */
export function buildModel(raw: RawConfig, params: Map<string, tf.Variable>, dtypes?: Map<string, string>): CausalLM {
  const arch = architectureFor(raw);
  const cfg = arch.config(raw);
  const model = arch.build(cfg, raw, params);
  for (const p of model.inventory.params) model.paramDtypes.set(p.name, dtypes?.get(p.name) ?? 'F32');
  return model;
}

export interface RandomInit {
  seed?: number;
  /** Standard deviation of matrices and embeddings; default the config's initializer_range or 0.02. */
  std?: number;
}

/**
 * A freshly initialised model as HF initialises one: matrices and embeddings N(0, std), norm weights 1,
 * biases 0. Deterministic for a seed on every backend (the numbers are drawn in JavaScript).
 */
export function randomModel(raw: RawConfig, init: RandomInit = {}): CausalLM {
  const arch = architectureFor(raw);
  const cfg = arch.config(raw);
  const inv = arch.inventory(cfg, raw);
  const std = init.std ?? (typeof raw.initializer_range === 'number' ? raw.initializer_range : 0.02);
  const rng = gaussian(init.seed ?? 0);
  const params = new Map<string, tf.Variable>();
  for (const p of inv.params) {
    const n = p.shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(n);
    if (p.name.endsWith('.bias')) data.fill(0);
    else if (p.group === 'norm') data.fill(1);
    else for (let i = 0; i < n; i++) data[i] = std * rng();
    params.set(p.name, variableOf(data, p.shape));
  }
  return buildModel(raw, params);
}

/** A trainable float32 variable holding `data` (the temporary tensor is released; the variable owns the data). */
export function variableOf(data: Float32Array, shape: number[]): tf.Variable {
  const t = tf.tensor(data, shape, 'float32');
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

/** Standard normal draws (Box-Muller) from the engine's seeded uniform stream. */
function gaussian(seed: number): () => number {
  const rng = new Rng(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(1 - rng.next()));
    const a = 2 * Math.PI * rng.next();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
}
