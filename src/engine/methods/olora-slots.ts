/**
 * Where O-LoRA's adapters act on a model (olora.ts): the slots its `modules` option names, and the checks of
 * the options against the model's shapes. Nothing here holds a tensor: `sculpt validate` and the start of every
 * run (engine/run-inputs.ts) make these checks from the model's inventory, before a weight is read, and the
 * method's own setup makes them again through the same functions.
 */
import type { OLoraConfig } from '../../protocol/config';
import { ConfigError, type ConfigIssue } from '../../protocol/config-validate';
import type { Inventory, Orientation, TargetMatrix } from '../models/inventory';

type Module = NonNullable<OLoraConfig['modules']>[number];
const FUSED_BLOCK: Partial<Record<Module, number>> = { q: 0, k: 1, v: 2 };

/** Where one adapter acts: a whole weight, or a block of a fused one. */
export interface AdapterSlot {
  /** Name used in variable keys, e.g. 'model.layers.0.self_attn.q_proj' or 'transformer.h.0.attn.c_attn.q'. */
  key: string;
  /** HF key of the adapted weight. */
  weight: string;
  orientation: Orientation;
  dIn: number;
  /** Output width of the adapted block. */
  dOut: number;
  /** First output feature of the block within the weight, and the weight's full output width. */
  offset: number;
  width: number;
}

/** What the slots are resolved from: a loaded model, or a model folder's inventory and architecture name. */
export interface ModelShapes {
  inventory: Inventory;
  /** The implementation's name ('llama', 'gpt2', 't5'), for messages. */
  arch: string;
}

/**
 * The adapter slots for `modules`: each role's projections, or a block of a fused qkv projection when the
 * model has no separate one; `mlp` every projection of the MLP blocks. Errors name the option's JSON path.
 */
export function resolveSlots(model: ModelShapes, modules: readonly Module[], path: string): AdapterSlot[] {
  const targets = model.inventory.targets;
  const available = [
    ...new Set(
      targets.flatMap((t) =>
        t.role === 'qkv'
          ? ['q', 'k', 'v']
          : ['q', 'k', 'v', 'o'].includes(t.role)
            ? [t.role]
            : t.group === 'mlp'
              ? ['mlp']
              : [],
      ),
    ),
  ];
  const fail = (message: string, actual?: unknown): never => {
    throw new ConfigError([
      {
        path,
        message,
        expected: `a non-empty list of distinct projections of this model: ${available.join(', ')}`,
        ...(actual !== undefined ? { actual } : {}),
      },
    ]);
  };
  if (modules.length === 0) fail('is empty: O-LoRA needs at least one projection to adapt', []);
  const dup = modules.find((m, i) => modules.indexOf(m) !== i);
  if (dup) fail(`names '${dup}' twice`, dup);
  const slots: AdapterSlot[] = [];
  const whole = (t: TargetMatrix): AdapterSlot => ({
    key: t.module,
    weight: t.name,
    orientation: t.orientation,
    dIn: t.dIn,
    dOut: t.dOut,
    offset: 0,
    width: t.dOut,
  });
  for (const m of modules) {
    const own = targets.filter((t) => (m === 'mlp' ? t.group === 'mlp' : t.role === m));
    if (own.length) {
      slots.push(...own.map(whole));
      continue;
    }
    const block = FUSED_BLOCK[m];
    const fused = block === undefined ? [] : targets.filter((t) => t.role === 'qkv');
    if (fused.length === 0)
      fail(
        m === 'mlp'
          ? `this ${model.arch} model has no MLP projection to adapt (it has ${available.join(', ') || 'none'})`
          : `'${m}' is not an attention projection of this ${model.arch} model (it has ${available.join(', ') || 'none'})`,
        m,
      );
    for (const t of fused) {
      if (t.dOut % 3 !== 0)
        fail(`the fused projection ${t.name} has ${t.dOut} outputs, not three equal q/k/v blocks`, m);
      const d = t.dOut / 3;
      slots.push({
        key: `${t.module}.${m}`,
        weight: t.name,
        orientation: t.orientation,
        dIn: t.dIn,
        dOut: d,
        offset: block! * d,
        width: t.dOut,
      });
    }
  }
  // One order for every run, whatever order the config lists modules in: layer by layer as the inventory.
  const order = new Map(targets.map((t, i) => [t.name, i]));
  return slots.sort((a, b) => order.get(a.weight)! - order.get(b.weight)! || a.offset - b.offset);
}

/** The rank r of every pair against the slots: A_t is r x d_in and B_t d_out x r, so r <= min(d_in, d_out). */
export function oLoraRankIssues(r: number, slots: readonly AdapterSlot[], path: string): ConfigIssue[] {
  const tooBig = slots.find((s) => r > Math.min(s.dIn, s.dOut));
  if (!tooBig) return [];
  const most = Math.min(...slots.map((s) => Math.min(s.dIn, s.dOut)));
  return [
    {
      path: `${path}.r`,
      message: `rank ${r} exceeds min(d_out, d_in) = ${Math.min(tooBig.dIn, tooBig.dOut)} of ${tooBig.key}; r can be at most ${most} for the projections of this model that \`modules\` names`,
      expected: `an integer <= ${most}`,
      actual: r,
    },
  ];
}

/** The issues of an O-LoRA entry against a model: `modules` it cannot adapt, or a rank r too large for them. */
export function oLoraModelIssues(
  cfg: { modules: readonly Module[]; r: number },
  model: ModelShapes,
  path: string,
): ConfigIssue[] {
  try {
    return oLoraRankIssues(cfg.r, resolveSlots(model, cfg.modules, `${path}.modules`), path);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
}
