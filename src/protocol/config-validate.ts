/**
 * Validation of experiment configs: the generated schema first (types, bounds, unknown fields, and every
 * default, filled in from the schema), then the rules a schema cannot express (unique names, orders that are
 * permutations, files that exist). Every issue carries its JSON path, what was expected and what was found.
 * Relative paths are resolved against the config file's folder, so a resolved config can be run from anywhere
 * (and resumed).
 */
import { printParseErrorCode, visit, type ParseError } from 'jsonc-parser';
import schemaJson from '../../schemas/sculpt.schema.json';
import type { FixedRankPolicy, MethodConfig } from './config';
import type { ResolvedConfig, ResolvedMethod, ResolvedMethodConfig, ResolvedTask } from './config-resolved';
import { ConfigError } from './errors';
import { MAX_JSON_DEPTH, excessiveNesting, lineColumn } from './json-limits';
import { SchemaChecker, closest, describeValue, joinPath, type JsonSchema, type SchemaIssue } from './schema-check';

export type { ResolvedConfig, ResolvedMethod, ResolvedMethodConfig } from './config-resolved';
export { ConfigError, formatIssues } from './errors';

export type ConfigIssue = SchemaIssue;

export const CONFIG_SCHEMA = schemaJson as JsonSchema;

export interface ValidateOptions {
  /** Absolute path of the config file; relative paths inside it are resolved against its folder. */
  file?: string;
  /** When given, data files and checkpoint folders are checked to exist. */
  exists?: (absPath: string) => boolean;
  /** Path helpers (node:path) so this module stays free of Node imports for the webview and extension. */
  path?: { resolve(...p: string[]): string; dirname(p: string): string; isAbsolute(p: string): boolean };
}

export interface ValidationResult {
  config?: ResolvedConfig;
  issues: ConfigIssue[];
}

/** At most this many tasks, methods and orders: a config beyond them is refused before it is checked. */
export const CONFIG_LIMITS = { tasks: 1000, methods: 100, orders: 1000 } as const;

/**
 * Parses config text (JSON; comments and trailing commas are tolerated, as VS Code's JSON editor does),
 * turning syntax errors into issues with line and column. Nesting deeper than MAX_JSON_DEPTH is refused
 * before parsing. Every key becomes an own property, `__proto__` included, so that validation reports it as
 * an unknown field instead of the key changing the object's prototype.
 */
export function parseConfigText(text: string): { value?: unknown; issues: ConfigIssue[] } {
  const deep = excessiveNesting(text);
  if (deep >= 0) {
    const { line, column } = lineColumn(text, deep);
    return {
      issues: [
        {
          path: '',
          message: `nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels at line ${line}, column ${column}; a config needs a few`,
          expected: `nesting of at most ${MAX_JSON_DEPTH} levels`,
        },
      ],
    };
  }
  // Plain JSON, the common case, through the engine's own parser (which defines every key as an own property).
  try {
    return { value: JSON.parse(text), issues: [] };
  } catch {
    // Comments, trailing commas or an error: the tolerant parser below says where.
  }
  const errors: ParseError[] = [];
  const value = parseOwn(text, errors);
  if (errors.length === 0) return { value, issues: [] };
  const issues = errors.slice(0, 20).map((e) => {
    const { line, column } = lineColumn(text, e.offset);
    return {
      path: '',
      message: `is not valid JSON at line ${line}, column ${column}: ${printParseErrorCode(e.error)}`,
      expected: 'a JSON object',
    };
  });
  return { issues };
}

/**
 * JSON with comments and trailing commas, as jsonc-parser's `parse`, but every object key is defined as an own,
 * enumerable property: assigning would let a `__proto__` key replace the object's prototype.
 */
function parseOwn(text: string, errors: ParseError[]): unknown {
  let root: unknown;
  const stack: (unknown[] | Record<string, unknown>)[] = [];
  const keys: (string | undefined)[] = [];
  let key: string | undefined;
  const add = (v: unknown) => {
    const parent = stack[stack.length - 1];
    if (parent === undefined) root = v;
    else if (Array.isArray(parent)) parent.push(v);
    else if (key !== undefined)
      Object.defineProperty(parent, key, { value: v, enumerable: true, writable: true, configurable: true });
  };
  const open = (v: unknown[] | Record<string, unknown>) => {
    add(v);
    stack.push(v);
    keys.push(key);
    key = undefined;
  };
  const close = () => {
    stack.pop();
    key = keys.pop();
  };
  visit(
    text,
    {
      onObjectBegin: () => open({}),
      onObjectProperty: (name) => (key = name),
      onObjectEnd: close,
      onArrayBegin: () => open([]),
      onArrayEnd: close,
      onLiteralValue: add,
      onError: (error, offset, length) => errors.push({ error, offset, length }),
    },
    { allowTrailingComma: true, disallowComments: false },
  );
  return root;
}

/** Issues for arrays longer than CONFIG_LIMITS, found before the schema walks them. */
function countIssues(raw: Record<string, unknown>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const key of ['tasks', 'methods', 'orders'] as const) {
    const v = Object.hasOwn(raw, key) ? raw[key] : undefined;
    const max = CONFIG_LIMITS[key];
    if (Array.isArray(v) && v.length > max) {
      issues.push({
        path: key,
        message: `has ${v.length} entries; at most ${max} are supported (split the experiment into several configs)`,
        expected: `at most ${max} entries`,
      });
    }
  }
  return issues;
}

export function validateConfig(raw: unknown, opts: ValidateOptions = {}): ValidationResult {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      issues: [
        { path: '', message: `expected an object, got ${describeValue(raw)}`, expected: 'an object', actual: raw },
      ],
    };
  }
  const tooMany = countIssues(raw as Record<string, unknown>);
  if (tooMany.length > 0) return { issues: tooMany };
  const cfg = structuredClone(raw) as Record<string, unknown>;
  const issues = new SchemaChecker(CONFIG_SCHEMA).check(cfg);
  if (issues.length > 0) return { issues };
  const config = cfg as unknown as ResolvedConfig;
  issues.push(...semanticIssues(config));
  if (opts.path) resolvePaths(config, opts, issues);
  return issues.length ? { issues } : { config, issues };
}

/**
 * A run folder's config.json again through validation: it was resolved when the run was created, but by the
 * version of Sculpt of that day, which may have filled in fewer defaults. Resolving is idempotent.
 */
export function resolveStoredConfig(stored: unknown, file: string): ResolvedConfig {
  const { config, issues } = validateConfig(withoutValidationSplit(stored));
  if (!config) throw new ConfigError(issues, file);
  return config;
}

/**
 * A stored config without `eval.validation` comes from a run folder made before the validation split existed:
 * that run trained on all of each task's training data, and the default split would change what the rest of it
 * trains on. It continues without a split.
 */
function withoutValidationSplit(stored: unknown): unknown {
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return stored;
  const evalSection = (stored as Record<string, unknown>).eval;
  if (evalSection !== undefined && (evalSection === null || typeof evalSection !== 'object')) return stored;
  if (evalSection && Object.hasOwn(evalSection, 'validation')) return stored;
  return { ...stored, eval: { ...(evalSection as object | undefined), validation: 0 } };
}

/** One method entry with its defaults filled in, as validation does for a config's `methods`. */
export function resolveMethod<M extends MethodConfig>(method: M, path = 'method'): ResolvedMethod<M> {
  const copy = structuredClone(method);
  const schemaIssues = new SchemaChecker(CONFIG_SCHEMA).check(copy, { $ref: '#/definitions/MethodConfig' }, path);
  const resolved = copy as unknown as ResolvedMethod<M>;
  const issues = schemaIssues.length ? schemaIssues : methodIssues(resolved, path);
  if (issues.length) throw new ConfigError(issues);
  return resolved;
}

function semanticIssues(c: ResolvedConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const names = c.tasks.map((t) => t.name);
  const firstTask = firstIndex(names);
  const known = new Set(names);
  c.tasks.forEach((t, i) => {
    const first = firstTask.get(t.name)!;
    if (first !== i)
      issues.push({
        path: `tasks[${i}].name`,
        message: `repeats the name of tasks[${first}] ('${t.name}')`,
        expected: 'a unique task name',
        actual: t.name,
      });
    issues.push(...templateIssues(t.template, `tasks[${i}].template`));
    const empty = t.labels?.indexOf('') ?? -1;
    if (empty >= 0) {
      // An empty answer is refused in the data (examples.ts); as a label it would be scored as nothing at all.
      issues.push({
        path: `tasks[${i}].labels[${empty}]`,
        message: `is an empty label of task '${t.name}'; a label is an answer the model is taught and scored on, so it needs text`,
        expected: 'a non-empty label',
        actual: '',
      });
    }
    if (t.labels && new Set(t.labels).size !== t.labels.length) {
      issues.push({
        path: `tasks[${i}].labels`,
        message: 'contains the same label twice',
        expected: 'distinct labels',
        actual: t.labels,
      });
    }
  });
  (c.orders ?? []).forEach((order, i) => {
    const path = `orders[${i}]`;
    const unknown = order.filter((n) => !known.has(n));
    if (unknown.length)
      issues.push({
        path,
        message: `names unknown task(s) ${unknown.join(', ')}; tasks are ${names.join(', ')}`,
        expected: 'task names',
        actual: order,
      });
    else if (order.length !== names.length || new Set(order).size !== order.length) {
      issues.push({
        path,
        message: `must list every task exactly once (${names.length} tasks)`,
        expected: 'a permutation of the task names',
        actual: order,
      });
    }
  });
  const labels = c.methods.map(methodLabel);
  const firstLabel = firstIndex(labels);
  c.methods.forEach((m, i) => {
    const first = firstLabel.get(labels[i])!;
    if (first !== i) {
      issues.push({
        path: `methods[${i}]`,
        message: `has the same label '${labels[i]}' as methods[${first}]; give one a distinct "label"`,
        expected: 'unique labels',
      });
    }
    issues.push(...methodIssues(m, `methods[${i}]`));
  });
  if (Array.isArray(c.seeds)) {
    const firstSeed = firstIndex(c.seeds.map(String));
    c.seeds.forEach((seed, i) => {
      const first = firstSeed.get(String(seed))!;
      if (first !== i)
        issues.push({
          path: `seeds[${i}]`,
          message: `repeats seeds[${first}] (${seed}); a repeated seed would repeat the same runs`,
          expected: 'distinct seeds',
          actual: seed,
        });
    });
  }
  const baseline = c.compare.baseline;
  if (baseline !== undefined && !labels.includes(baseline)) {
    const near = closest(baseline, labels);
    issues.push({
      path: 'compare.baseline',
      message: `names no method of this experiment; the methods are ${labels.join(', ')}${near ? ` (did you mean '${near}'?)` : ''}`,
      expected: 'the label (or name) of one of the methods',
      actual: baseline,
      ...(near ? { suggestion: near } : {}),
    });
  }
  const split = c.eval.validation;
  if (split >= 1 && !Number.isInteger(split)) {
    issues.push({
      path: 'eval.validation',
      message: `must be a fraction below 1 or a whole number of examples, got ${split}`,
      expected: 'a number in [0, 1) or an integer >= 1',
      actual: split,
    });
  }
  issues.push(...torchIssues(c));
  const every = c.checkpoint.every;
  if (typeof every === 'number' && !(Number.isInteger(every) && every >= 1)) {
    issues.push({
      path: 'checkpoint.every',
      message: `a step interval must be a positive integer, got ${every}`,
      expected: 'integer >= 1',
      actual: every,
    });
  }
  return issues;
}

/**
 * The torch section's rules between fields. Checked whatever the engine, as the schema checks its fields: a
 * config switched to `torch` later must not start failing on settings it already held.
 */
function torchIssues(c: ResolvedConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const t = c.torch;
  // Without a rendezvous the nodes of a multi-node run cannot find each other: torchrun would wait forever.
  if (t.nnodes > 1 && t.rdzvEndpoint === undefined)
    issues.push({
      path: 'torch.rdzvEndpoint',
      message: `is needed when torch.nnodes is ${t.nnodes}: the host:port every node meets at (torchrun's --rdzv-endpoint), the same on every node`,
      expected: 'host:port, e.g. "10.0.0.1:29500"',
    });
  // torchrun takes the endpoint as host:port (an IPv6 host in brackets) and fails on anything else, and only after
  // the run has started: said here, as validate and run check configs.
  if (t.rdzvEndpoint !== undefined && !/^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/.test(t.rdzvEndpoint))
    issues.push({
      path: 'torch.rdzvEndpoint',
      message: `must be host:port (torchrun's --rdzv-endpoint; an IPv6 host in brackets), got '${t.rdzvEndpoint}'`,
      expected: 'host:port, e.g. "10.0.0.1:29500"',
      actual: t.rdzvEndpoint,
    });
  if (t.nodeRank >= t.nnodes)
    issues.push({
      path: 'torch.nodeRank',
      message: `must be below torch.nnodes (${t.nnodes}): nodes are numbered 0 to ${t.nnodes - 1}, got ${t.nodeRank}`,
      expected: `an integer in [0, ${t.nnodes - 1}]`,
      actual: t.nodeRank,
    });
  return issues;
}

/**
 * What a valid config holds that does nothing or is likely not meant: settings of the engine it does not use.
 * They leave the config valid; `sculpt validate` prints them as warnings (with `code`) and the editor shows them.
 * FSDP2 on CPU is not among them: fully_shard runs over gloo (and saves the memory DDP spends on a copy of the
 * model per process).
 */
export function configWarnings(c: ResolvedConfig): (ConfigIssue & { code: string })[] {
  const warnings: (ConfigIssue & { code: string })[] = [];
  if (c.engine === 'torch' && c.backend !== 'auto')
    warnings.push({
      path: 'backend',
      code: 'backend-unused',
      message: `is '${c.backend}', but backend picks the tfjs engine's device; with engine "torch" it is not used (torch.device picks the worker's)`,
      expected: '"auto" (or no backend) with engine "torch"',
      actual: c.backend,
    });
  const t = c.torch;
  if (c.engine === 'torch' && t.nprocPerNode * t.nnodes === 1 && (t.shard === 'ddp' || t.shard === 'fsdp2'))
    warnings.push({
      path: 'torch.shard',
      code: 'torch-shard',
      message: `is '${t.shard}', but the run has one process (torch.nprocPerNode ${t.nprocPerNode} × torch.nnodes ${t.nnodes}): nothing is sharded`,
      expected: 'more than one process for ddp or fsdp2, or "auto"',
      actual: t.shard,
    });
  const set = torchSettings(c);
  if (c.engine === 'tfjs' && set.length > 0)
    warnings.push({
      path: 'torch',
      code: 'torch-unused',
      message: `sets ${set.join(', ')}, which only the torch engine uses; this config runs on engine "tfjs" (set "engine": "torch" to use them)`,
      expected: 'no torch settings with engine "tfjs"',
    });
  return warnings;
}

/**
 * The torch fields that differ from their schema defaults (any value of one without a default): what a config
 * sets there, since the resolved section holds every default. A default written out changes nothing.
 */
function torchSettings(c: ResolvedConfig): string[] {
  const props = CONFIG_SCHEMA.definitions?.TorchConfig?.properties ?? {};
  const t = c.torch as Record<string, unknown>;
  // In the schema's order, whatever order the config wrote them in.
  return Object.keys(props).filter((k) => t[k] !== undefined && t[k] !== props[k].default);
}

/** Each value's first index. */
/** The placeholders a task template may hold; engine/data/batches.ts formatPrompt fills them in. */
export const TEMPLATE_PLACEHOLDERS = ['input', 'instruction'] as const;

/**
 * A template that never shows the model an example's input trains and evaluates without complaint on prompts
 * that are all alike, so one without `{input}`, or with a placeholder that is not filled in (a typo such as
 * `{inptu}`, left in the prompt as text), is an error.
 */
export function templateIssues(template: string | undefined, path: string): ConfigIssue[] {
  if (template === undefined) return [];
  const known: readonly string[] = TEMPLATE_PLACEHOLDERS;
  const placeholders = known.map((p) => `{${p}}`).join(' and ');
  const unknown = [...new Set([...template.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]))].filter(
    (name) => !known.includes(name),
  );
  const noInput = !template.includes('{input}');
  if (!unknown.length && !noInput) return [];
  const near = unknown.length === 1 ? closest(unknown[0], [...known]) : undefined;
  const parts = [
    ...(unknown.length
      ? [
          `${unknown.map((n) => `{${n}}`).join(', ')} ${unknown.length === 1 ? 'is not a placeholder' : 'are not placeholders'}${near ? ` (did you mean {${near}}?)` : ''} and would stay in every prompt as text`,
        ]
      : []),
    ...(noInput ? ['has no {input}, so no prompt shows the model the example it is about'] : []),
  ];
  return [
    {
      path,
      message: `${parts.join('; it ')}. The placeholders are ${placeholders} (the example's fields)`,
      expected: 'a template with {input}, and no placeholders but ' + placeholders,
      actual: template,
      ...(near ? { suggestion: template.replace(`{${unknown[0]}}`, `{${near}}`) } : {}),
    },
  ];
}

function firstIndex(values: string[]): Map<string, number> {
  const m = new Map<string, number>();
  values.forEach((v, i) => {
    if (!m.has(v)) m.set(v, i);
  });
  return m;
}

function methodIssues(m: ResolvedMethodConfig, path: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (m.method === 'adaptive-svd' && m.rank) {
    const r = m.rank;
    const p = joinPath(path, 'rank');
    if (r.policy === 'adaptive' && r.mrr > r.trr) {
      issues.push({
        path: `${p}.mrr`,
        message: `must not exceed trr (${r.trr}), got ${r.mrr}`,
        expected: '<= trr',
        actual: r.mrr,
      });
    }
    if (r.policy === 'fixed') issues.push(...fixedPolicyIssues(r, p));
    if (r.policy === 'schedule' && r.start > r.max) {
      issues.push({
        path: `${p}.start`,
        message: `must not exceed max (${r.max})`,
        expected: '<= max',
        actual: r.start,
      });
    }
    if (r.policy === 'energy' && r.threshold > r.maxThreshold) {
      issues.push({
        path: `${p}.threshold`,
        message: `must not exceed maxThreshold (${r.maxThreshold}), got ${r.threshold}`,
        expected: '<= maxThreshold',
        actual: r.threshold,
      });
    }
  }
  return issues;
}

/** The JSON path of one rankPattern entry, always in brackets since patterns are rarely identifiers. */
export function rankPatternPath(policyPath: string, pattern: string): string {
  return `${policyPath}.rankPattern[${JSON.stringify(pattern)}]`;
}

/** What is wrong with a rank given as PEFT OSF does (an integer >= 1 or a fraction in (0, 1]), if anything. */
export function rankValueProblem(v: unknown): string | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) return `must be a number, got ${describeValue(v)}`;
  if (v <= 0) return `must be a positive integer rank or a fraction in (0, 1], got ${v}`;
  if (v > 1 && !Number.isInteger(v)) return `a fraction must lie in (0, 1] (ranks above 1 are integers), got ${v}`;
  return undefined;
}

/** Why `pattern` is not a JavaScript regular expression, if it is not. */
export function regexProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
    return undefined;
  } catch (e) {
    // PEFT's patterns are Python's; the one common construct JavaScript spells differently is a named group.
    const hint = pattern.includes('(?P<') ? " (Python's (?P<name>...) is (?<name>...) in JavaScript)" : '';
    return `is not a valid JavaScript regular expression: ${(e as Error).message}${hint}`;
  }
}

function fixedPolicyIssues(r: FixedRankPolicy, p: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  // The resolved type holds one of k, ratio and effectiveRank; this is where a config that holds two is caught.
  if (r.k !== undefined && r.ratio !== undefined)
    issues.push({ path: `${p}.k`, message: 'give either k or ratio, not both', expected: 'k or ratio', actual: r.k });
  if (r.effectiveRank !== undefined) {
    if (r.k !== undefined || r.ratio !== undefined)
      issues.push({
        path: `${p}.effectiveRank`,
        message: `give one of effectiveRank, ratio and k, not ${r.k !== undefined ? 'k' : 'ratio'} as well`,
        expected: 'one of effectiveRank, ratio, k',
        actual: r.effectiveRank,
      });
    const problem = rankValueProblem(r.effectiveRank);
    if (problem)
      issues.push({
        path: `${p}.effectiveRank`,
        message: problem,
        expected: 'an integer >= 1 or a fraction in (0, 1]',
        actual: r.effectiveRank,
      });
  }
  for (const [pattern, value] of Object.entries(r.rankPattern ?? {})) {
    const path = rankPatternPath(p, pattern);
    const bad = regexProblem(pattern);
    if (bad) issues.push({ path, message: bad, expected: 'a JavaScript regular expression', actual: pattern });
    const problem = rankValueProblem(value);
    if (problem)
      issues.push({ path, message: problem, expected: 'an integer >= 1 or a fraction in (0, 1]', actual: value });
  }
  return issues;
}

export function methodLabel(m: MethodConfig): string {
  return m.label ?? m.method;
}

function resolvePaths(c: ResolvedConfig, opts: ValidateOptions, issues: ConfigIssue[]): void {
  const p = opts.path!;
  const base = opts.file ? p.dirname(opts.file) : '.';
  const abs = (rel: string) => (p.isAbsolute(rel) ? rel : p.resolve(base, rel));
  const check = (path: string, file: string, what: string) => {
    if (opts.exists && !opts.exists(file))
      issues.push({ path, message: `${what} not found: ${file}`, expected: `an existing ${what}`, actual: file });
  };
  if (!c.model.startsWith('builtin:')) {
    c.model = abs(c.model);
    check('model', p.resolve(c.model, 'config.json'), 'checkpoint folder (config.json)');
  }
  if (c.tokenizer !== undefined) {
    c.tokenizer = abs(c.tokenizer);
    check('tokenizer', c.tokenizer, 'tokenizer folder or tokenizer.json');
  }
  c.output = abs(c.output);
  // A path (it has a separator) is the config's, like every other path in it; a bare name such as `python3` is a
  // command the PATH finds, as a shell would.
  if (c.torch.python !== undefined && /[\\/]/.test(c.torch.python)) c.torch.python = abs(c.torch.python);
  c.tasks.forEach((t: ResolvedTask, i) => {
    const s = t.source;
    if ('train' in s) {
      s.train = abs(s.train);
      s.test = abs(s.test);
      check(`tasks[${i}].source.train`, s.train, 'data file');
      check(`tasks[${i}].source.test`, s.test, 'data file');
    } else if ('folder' in s) {
      s.folder = abs(s.folder);
      check(`tasks[${i}].source.folder`, s.folder, 'dataset folder');
    }
  });
}
