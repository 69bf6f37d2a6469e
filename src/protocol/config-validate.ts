/**
 * Validation of experiment configs: the generated schema first (types, bounds, unknown fields, and every
 * default, filled in from the schema), then the rules a schema cannot express (unique names, orders that are
 * permutations, files that exist). Every issue carries its JSON path, what was expected and what was found.
 * Relative paths are resolved against the config file's folder, so a resolved config can be run from anywhere
 * (and resumed).
 */
import { parse, printParseErrorCode, type ParseError } from 'jsonc-parser';
import schemaJson from '../../schemas/sculpt.schema.json';
import type { FixedRankPolicy, MethodConfig } from './config';
import type { ResolvedConfig, ResolvedMethod, ResolvedMethodConfig, ResolvedTask } from './config-resolved';
import { ConfigError } from './errors';
import { SchemaChecker, describeValue, joinPath, type JsonSchema, type SchemaIssue } from './schema-check';

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

/**
 * Parses config text (JSON; comments and trailing commas are tolerated, as VS Code's JSON editor does),
 * turning syntax errors into issues with line and column.
 */
export function parseConfigText(text: string): { value?: unknown; issues: ConfigIssue[] } {
  const errors: ParseError[] = [];
  const value = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length === 0) return { value, issues: [] };
  const issues = errors.map((e) => {
    const before = text.slice(0, e.offset);
    const line = before.split('\n').length;
    const column = e.offset - before.lastIndexOf('\n');
    return {
      path: '',
      message: `is not valid JSON at line ${line}, column ${column}: ${printParseErrorCode(e.error)}`,
      expected: 'a JSON object',
    };
  });
  return { issues };
}

export function validateConfig(raw: unknown, opts: ValidateOptions = {}): ValidationResult {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      issues: [
        { path: '', message: `expected an object, got ${describeValue(raw)}`, expected: 'an object', actual: raw },
      ],
    };
  }
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
  const { config, issues } = validateConfig(stored);
  if (!config) throw new ConfigError(issues, file);
  return config;
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
  c.tasks.forEach((t, i) => {
    const first = names.indexOf(t.name);
    if (first !== i)
      issues.push({
        path: `tasks[${i}].name`,
        message: `repeats the name of tasks[${first}] ('${t.name}')`,
        expected: 'a unique task name',
        actual: t.name,
      });
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
    const unknown = order.filter((n) => !names.includes(n));
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
  c.methods.forEach((m, i) => {
    const first = labels.indexOf(labels[i]);
    if (first !== i) {
      issues.push({
        path: `methods[${i}]`,
        message: `has the same label '${labels[i]}' as methods[${first}]; give one a distinct "label"`,
        expected: 'unique labels',
      });
    }
    issues.push(...methodIssues(m, `methods[${i}]`));
  });
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
    if (r.policy === 'fixed') {
      // The resolved type holds one of the two; this is where a config that holds both is caught.
      const given: FixedRankPolicy = r;
      if (given.k !== undefined && given.ratio !== undefined)
        issues.push({
          path: `${p}.k`,
          message: 'give either k or ratio, not both',
          expected: 'k or ratio',
          actual: given.k,
        });
    }
    if (r.policy === 'schedule' && r.start > r.max) {
      issues.push({
        path: `${p}.start`,
        message: `must not exceed max (${r.max})`,
        expected: '<= max',
        actual: r.start,
      });
    }
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
  c.output = abs(c.output);
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
