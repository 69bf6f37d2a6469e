/**
 * What a model's parameters are for. Methods use this to pick the matrices they constrain (the targets: every
 * attention and MLP projection) and to freeze or train the rest by group, without knowing the architecture.
 */

/** 'attention' and 'mlp' hold the target weights; every bias of a projection is in 'bias'; norm weights and
 * norm biases are in 'norm'. 'cross-attention' holds an encoder-decoder model's decoder-to-encoder projections:
 * targets too, but in a group of their own so that methods constrain them only when asked. */
export type ParamGroup = 'attention' | 'mlp' | 'cross-attention' | 'embedding' | 'position' | 'norm' | 'head' | 'bias';
export const PARAM_GROUPS: readonly ParamGroup[] = [
  'attention',
  'mlp',
  'cross-attention',
  'embedding',
  'position',
  'norm',
  'head',
  'bias',
];

/** The groups whose weights are target matrices. */
export type TargetGroup = 'attention' | 'mlp' | 'cross-attention';

/** q/k/v/o: separate attention projections; qkv: GPT-2's fused c_attn; gate/up/down: SwiGLU; fc/proj: GPT-2 MLP. */
export type TargetRole = 'q' | 'k' | 'v' | 'o' | 'qkv' | 'gate' | 'up' | 'down' | 'fc' | 'proj';

/** 'out_in': nn.Linear, stored [out, in], y = x Wᵀ. 'in_out': GPT-2 Conv1D, stored [in, out], y = x W. */
export type Orientation = 'out_in' | 'in_out';

export interface TargetMatrix {
  /** HF key of the weight, e.g. 'model.layers.0.self_attn.q_proj.weight'. */
  name: string;
  /** The module path, e.g. 'model.layers.0.self_attn.q_proj' (how PEFT and the reference fixtures name it). */
  module: string;
  role: TargetRole;
  group: TargetGroup;
  layer: number;
  /** Shape as stored in the checkpoint and in the variable. */
  shape: [number, number];
  dIn: number;
  dOut: number;
  orientation: Orientation;
  /** HF key of the projection's bias, or null. */
  bias: string | null;
}

export interface ParamEntry {
  name: string;
  shape: number[];
  group: ParamGroup;
  /** Transformer block index, null for embeddings, final norm and head. */
  layer: number | null;
}

export interface Inventory {
  /** Every parameter (targets included), in checkpoint order. */
  params: ParamEntry[];
  targets: TargetMatrix[];
  /** The output head reuses the 'embedding' matrix; the 'head' group is then empty. */
  tiedHead: boolean;
}

/** Collects entries while an architecture lists its parameters. */
export class InventoryBuilder {
  private readonly params: ParamEntry[] = [];
  private readonly targets: TargetMatrix[] = [];

  add(name: string, shape: number[], group: ParamGroup, layer: number | null = null): this {
    this.params.push({ name, shape, group, layer });
    return this;
  }

  /** A projection `module` with its weight (and bias, if `bias`). */
  target(
    module: string,
    role: TargetRole,
    group: TargetGroup,
    layer: number,
    dIn: number,
    dOut: number,
    orientation: Orientation,
    bias: boolean,
  ): this {
    const shape: [number, number] = orientation === 'out_in' ? [dOut, dIn] : [dIn, dOut];
    const name = `${module}.weight`;
    this.add(name, shape, group, layer);
    if (bias) this.add(`${module}.bias`, [dOut], 'bias', layer);
    this.targets.push({
      name,
      module,
      role,
      group,
      layer,
      shape,
      dIn,
      dOut,
      orientation,
      bias: bias ? `${module}.bias` : null,
    });
    return this;
  }

  build(tiedHead: boolean): Inventory {
    return { params: this.params, targets: this.targets, tiedHead };
  }
}

export interface ParamCounts {
  total: number;
  byGroup: Record<ParamGroup, number>;
}

export function paramCounts(inv: Inventory): ParamCounts {
  const byGroup = Object.fromEntries(PARAM_GROUPS.map((g) => [g, 0])) as Record<ParamGroup, number>;
  let total = 0;
  for (const p of inv.params) {
    const n = p.shape.reduce((a, d) => a * d, 1);
    byGroup[p.group] += n;
    total += n;
  }
  return { total, byGroup };
}

/** Parameter names of the given groups, e.g. to freeze embeddings, norms and biases. */
export function namesInGroups(inv: Inventory, groups: readonly ParamGroup[]): string[] {
  return inv.params.filter((p) => groups.includes(p.group)).map((p) => p.name);
}
