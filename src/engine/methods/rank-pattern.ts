/**
 * The matrices adaptive SVD constrains, and PEFT OSF's `rank_pattern` over them: which pattern names which
 * matrix, what rank a pattern's value means for a matrix, and the chosen ranks written back as a rank pattern.
 * No tensors here, so `sculpt validate` can check patterns against a model's names without loading weights.
 *
 * A pattern matches a matrix when it is found (unanchored, as Python's re.search) in the matrix's module name
 * (its parameter name without `.weight`, what PEFT matches) or in its parameter name. A run's chosen ranks are
 * written with one key per matrix, `^<module name, escaped>$`: PEFT reads it as a full match of that module
 * and so does Sculpt, so the file works as a rank_pattern in either and reproduces every k exactly.
 */
import type { FixedRankPolicy } from '../../protocol/config';
import type { ResolvedAdaptiveSvdConfig } from '../../protocol/config-resolved';
import { rankPatternPath, regexProblem, type ConfigIssue } from '../../protocol/config-validate';
import type { Inventory } from '../models/inventory';

export interface ConstrainedMatrix {
  /** HF key of the weight. */
  name: string;
  layer: number;
  role: string;
  /** Shape as stored. */
  shape: [number, number];
  dIn: number;
  dOut: number;
  /** 'in_out' (GPT-2 Conv1D): y = x W; 'out_in' (nn.Linear): y = x Wᵀ. */
  orientation: 'in_out' | 'out_in';
}

export const minDim = (m: Pick<ConstrainedMatrix, 'dIn' | 'dOut'>): number => Math.min(m.dIn, m.dOut);
export const maxDim = (m: Pick<ConstrainedMatrix, 'dIn' | 'dOut'>): number => Math.max(m.dIn, m.dOut);

/** Target groups of the adaptive-svd config (`targets`). */
export type TargetOption = 'attention' | 'mlp' | 'cross-attention' | 'head' | 'embeddings';

/**
 * The matrices a `targets` option selects: the inventory's projections of the wanted groups, then the head and
 * the embeddings when asked for. Those are [vocab, d] matrices with y = h Eᵀ for the head, so they read as
 * nn.Linear.
 */
export function constrainedMatrices(inv: Inventory, targets: readonly TargetOption[]): ConstrainedMatrix[] {
  const wanted = new Set<string>(targets);
  const out: ConstrainedMatrix[] = inv.targets
    .filter((t) => wanted.has(t.group))
    .map((t) => ({
      name: t.name,
      layer: t.layer,
      role: t.role,
      shape: t.shape,
      dIn: t.dIn,
      dOut: t.dOut,
      orientation: t.orientation,
    }));
  for (const p of inv.params) {
    const asTarget =
      (p.group === 'head' && wanted.has('head')) || (p.group === 'embedding' && wanted.has('embeddings'));
    if (asTarget && p.shape.length === 2) {
      out.push({
        name: p.name,
        layer: -1,
        role: p.group,
        shape: [p.shape[0], p.shape[1]],
        dIn: p.shape[1],
        dOut: p.shape[0],
        orientation: 'out_in',
      });
    }
  }
  return out;
}

/** The module a weight belongs to, as PEFT names modules: the parameter name without `.weight`. */
export function moduleName(name: string): string {
  return name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
}

export interface CompiledPattern {
  source: string;
  re: RegExp;
  value: number;
}

/** The rank pattern's entries in the order they are tried, and those that are not regular expressions. */
export function compileRankPattern(rankPattern: Record<string, number> | undefined): {
  patterns: CompiledPattern[];
  invalid: { source: string; message: string }[];
} {
  const patterns: CompiledPattern[] = [];
  const invalid: { source: string; message: string }[] = [];
  for (const [source, value] of Object.entries(rankPattern ?? {})) {
    const problem = regexProblem(source);
    if (problem) invalid.push({ source, message: problem });
    else patterns.push({ source, re: new RegExp(source), value });
  }
  return { patterns, invalid };
}

export function patternMatches(re: RegExp, name: string): boolean {
  return re.test(moduleName(name)) || re.test(name);
}

/** The first pattern that matches the matrix named `name`, or undefined. */
export function firstMatch(patterns: readonly CompiledPattern[], name: string): CompiledPattern | undefined {
  return patterns.find((p) => patternMatches(p.re, name));
}

/**
 * A rank as PEFT OSF reads one, for a matrix of min_dim d: an integer r asks for r directions, a fraction r in
 * (0, 1) for floor(r * d). `raw` is that request, k the request clamped to [1, d].
 */
export function resolveRank(value: number, d: number): { raw: number; k: number; fraction: boolean } {
  const fraction = !Number.isInteger(value);
  const raw = fraction ? Math.floor(value * d) : value;
  return { raw, k: Math.min(d, Math.max(1, raw)), fraction };
}

/**
 * Issues for rank patterns that match no matrix of `targets` (or are not regular expressions), each at the
 * entry's JSON path: a pattern that names nothing is a typo or a pattern written for another model.
 */
export function rankPatternIssues(
  policy: Pick<FixedRankPolicy, 'rankPattern'>,
  targets: readonly Pick<ConstrainedMatrix, 'name'>[],
  policyPath: string,
): ConfigIssue[] {
  const { patterns, invalid } = compileRankPattern(policy.rankPattern);
  const issues: ConfigIssue[] = invalid.map(({ source, message }) => ({
    path: rankPatternPath(policyPath, source),
    message,
    expected: 'a JavaScript regular expression',
    actual: source,
  }));
  const shown = targets.slice(0, 3).map((t) => moduleName(t.name));
  const examples = shown.length
    ? ` (module names such as ${shown.join(', ')}${targets.length > 3 ? ', ...' : ''})`
    : '';
  for (const p of patterns) {
    if (targets.some((t) => patternMatches(p.re, t.name))) continue;
    issues.push({
      path: rankPatternPath(policyPath, p.source),
      message: `matches none of the ${targets.length} target matrices of this model${examples}`,
      expected: 'a pattern that matches a target module or parameter name',
      actual: p.source,
    });
  }
  return issues;
}

/**
 * A fixed policy's k against the matrices no rankPattern entry matches (those take the pattern's rank): a k
 * above a matrix's min(d_out, d_in) asks for more directions than the matrix has. An error rather than a clamp,
 * as it always was, since k names one exact rank for every matrix; ratio and effectiveRank clamp per matrix.
 */
export function fixedKIssues(
  policy: Pick<FixedRankPolicy, 'k' | 'rankPattern'>,
  targets: readonly Pick<ConstrainedMatrix, 'name' | 'dIn' | 'dOut'>[],
  policyPath: string,
): ConfigIssue[] {
  const k = policy.k;
  if (k === undefined) return [];
  const { patterns } = compileRankPattern(policy.rankPattern);
  const own = targets.filter((t) => !firstMatch(patterns, t.name));
  const tooBig = own.find((t) => k > minDim(t));
  if (!tooBig) return [];
  const most = Math.min(...own.map(minDim));
  return [
    {
      path: `${policyPath}.k`,
      message: `k = ${k} exceeds min(d_out, d_in) = ${minDim(tooBig)} of ${tooBig.name}; k can be at most ${most} for the target matrices of this model (ratio or effectiveRank gives each matrix its own share)`,
      expected: 'k <= min(d_out, d_in) of every target',
      actual: k,
    },
  ];
}

/**
 * The issues of an adaptive-svd entry against a model's inventory: `targets` that select no matrix, and a fixed
 * policy's rank patterns and k. The method's setup makes the same checks through this function on the loaded
 * model; `sculpt validate` and every run's start make them before a weight is read (engine/run-inputs.ts).
 */
export function adaptiveSvdModelIssues(
  cfg: Pick<ResolvedAdaptiveSvdConfig, 'targets' | 'rank'>,
  inventory: Inventory,
  path: string,
): ConfigIssue[] {
  const targets = constrainedMatrices(inventory, cfg.targets);
  if (targets.length === 0) {
    return [
      {
        path: `${path}.targets`,
        message: 'selects no weight matrix of this model',
        expected: 'attention, mlp, head or embeddings',
      },
    ];
  }
  const policy = cfg.rank;
  if (policy.policy !== 'fixed') return [];
  return [...rankPatternIssues(policy, targets, `${path}.rank`), ...fixedKIssues(policy, targets, `${path}.rank`)];
}

/** `s` as a regular expression that matches exactly `s`, in JavaScript and in Python alike. */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The chosen ranks as a PEFT rank_pattern: `^<escaped module name>$` -> k for every matrix, in the order given.
 * Read back as a fixed policy's rankPattern it gives every matrix the same k (each key matches its own module
 * only; k >= 1 is an integer, so it is read as a rank, never as a fraction).
 */
export function rankPatternOf(matrices: readonly { name: string; k: number }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of matrices) out[`^${escapeRegExp(moduleName(m.name))}$`] = m.k;
  return out;
}

/** Where a run keeps the ranks chosen before task `beforeTask` (0-based), relative to the run folder. */
export function rankPatternFile(beforeTask: number): string {
  return `ranks/before-task-${beforeTask + 1}.rank_pattern.json`;
}
