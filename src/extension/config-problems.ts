/**
 * Problems in a `*.sculpt.json` that the JSON schema cannot express (VS Code's JSON support already reports
 * syntax and schema errors): repeated task names or labels, orders that are not permutations, rank bounds,
 * missing data files and checkpoint folders, builtin model and task names that are not in the catalog; and, of
 * the schema's errors, the misspellings with a "did you mean" suggestion (a method, rank policy or other enum
 * value, a field name, a builtin name), which the JSON support reports less precisely. `validateConfig` finds
 * them with JSON paths; this maps each path to the exact text range, and a suggestion to the edit that applies
 * it. The checks that need the engine (the model's files, the data read as a run reads it, the tokenizer's
 * coverage) come from `sculpt validate --json` and are mapped the same way (`findingProblems`). No vscode
 * import: config-diagnostics.ts publishes these.
 */
import { findNodeAtLocation, parseTree, type Node as JsonNode } from 'jsonc-parser';
import * as path from 'node:path';
import { CONFIG_SCHEMA, parseConfigText, validateConfig, type ConfigIssue } from '../protocol/config-validate';
import { SchemaChecker } from '../protocol/schema-check';
import { builtinNameIssues, type BuiltinCatalog } from '../runs/builtin/names';

export interface ConfigProblem {
  /** The JSON path, e.g. `tasks[1].source.train`. */
  path: string;
  message: string;
  severity: 'error' | 'warning';
  /**
   * Offsets of the offending value (or of the nearest enclosing one present in the text), or of the property
   * name for an unknown field.
   */
  start: number;
  end: number;
  /** The "did you mean" fix: replace `start`..`end` (the whole JSON string, quotes included) with `text`. */
  fix?: { title: string; text: string };
}

/** A problem as `sculpt validate --json` reports it; a type only, so nothing of the engine is bundled here. */
import type { ValidateFinding } from '../cli/validate-report';
export type { ValidateFinding };

type Seg = string | number;

/** `tasks[1].source["a b"]` -> ['tasks', 1, 'source', 'a b'] (the inverse of schema-check's joinPath). */
export function parseJsonPath(p: string): Seg[] {
  const out: Seg[] = [];
  const re = /\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([A-Za-z_$][\w$]*)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < p.length && (m = re.exec(p))) {
    if (m[1] !== undefined) out.push(Number(m[1]));
    else if (m[2] !== undefined) out.push(JSON.parse(m[2]) as string);
    else out.push(m[3]);
  }
  return out;
}

/** The node at a path, or the deepest ancestor present when the path names something absent. */
export function nodeFor(root: JsonNode, segs: Seg[]): JsonNode {
  for (let n = segs.length; n > 0; n--) {
    const node = findNodeAtLocation(root, segs.slice(0, n));
    if (node) return node;
  }
  return root;
}

/** Data files and checkpoint folders, checked without the schema (used while the schema still fails). */
function fileIssues(raw: Record<string, unknown>, file: string, exists: (p: string) => boolean): ConfigIssue[] {
  const base = path.dirname(file);
  const abs = (p: string) => (path.isAbsolute(p) ? p : path.resolve(base, p));
  const issues: ConfigIssue[] = [];
  const check = (at: string, p: unknown, what: string, probe = (x: string) => x) => {
    if (typeof p !== 'string' || !p) return;
    const target = probe(abs(p));
    if (!exists(target))
      issues.push({ path: at, message: `${what} not found: ${target}`, expected: `an existing ${what}`, actual: p });
  };
  if (typeof raw.model === 'string' && !raw.model.startsWith('builtin:'))
    check('model', raw.model, 'checkpoint folder (config.json)', (d) => path.join(d, 'config.json'));
  check('tokenizer', raw.tokenizer, 'tokenizer folder or tokenizer.json');
  if (Array.isArray(raw.tasks)) {
    raw.tasks.forEach((t, i) => {
      const s = (t as { source?: Record<string, unknown> } | null)?.source;
      if (!s || typeof s !== 'object') return;
      check(`tasks[${i}].source.train`, s.train, 'data file');
      check(`tasks[${i}].source.test`, s.test, 'data file');
      check(`tasks[${i}].source.folder`, s.folder, 'dataset folder');
    });
  }
  return issues;
}

function schemaIssues(raw: Record<string, unknown>): ConfigIssue[] {
  const c = structuredClone(raw);
  // As validateConfig does: absent sections are checked as empty objects.
  for (const section of ['training', 'eval', 'checkpoint']) if (c[section] === undefined) c[section] = {};
  return new SchemaChecker(CONFIG_SCHEMA).check(c);
}

/**
 * The text of an issue: the property name for an unknown field, else the value (or its nearest ancestor
 * present); `exact` when that is the very string at the issue's path.
 */
function nodeOf(root: JsonNode, issue: ConfigIssue): { node: JsonNode; exact: boolean } {
  const segs = parseJsonPath(issue.path);
  const found = findNodeAtLocation(root, segs);
  const key = issue.onKey && found?.parent?.type === 'property' ? found.parent.children?.[0] : undefined;
  if (key) return { node: key, exact: true };
  if (found) return { node: found, exact: found.type === 'string' };
  return { node: nodeFor(root, segs), exact: false };
}

/** The tree of a config's text, or undefined when it does not parse (within the nesting limit). */
function configTree(text: string): { root: JsonNode; raw: Record<string, unknown> } | undefined {
  const parsed = parseConfigText(text);
  // Only text that parsed (within the nesting limit) is walked again for positions.
  const root = parsed.issues.length ? undefined : parseTree(text, [], { allowTrailingComma: true });
  const raw = parsed.value;
  if (parsed.issues.length || !root || !raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  return { root, raw: raw as Record<string, unknown> };
}

function problemOf(root: JsonNode, i: ConfigIssue, severity: ConfigProblem['severity']): ConfigProblem {
  const { node, exact } = nodeOf(root, i);
  const problem: ConfigProblem = {
    path: i.path,
    message: `${i.path || '(root)'}: ${i.message}`,
    severity,
    start: node.offset,
    end: node.offset + node.length,
  };
  // Only where the range is the string the suggestion replaces (not an enclosing value).
  if (i.suggestion !== undefined && exact)
    problem.fix = { title: `Change to '${i.suggestion}'`, text: JSON.stringify(i.suggestion) };
  return problem;
}

/**
 * Semantic problems of a config's text; `file` is its absolute path, `exists` probes data files, `catalog`
 * holds the builtin model and task names (none checked when absent or empty).
 */
export function configProblems(
  text: string,
  file: string,
  exists: (absPath: string) => boolean,
  catalog?: BuiltinCatalog,
): ConfigProblem[] {
  const tree = configTree(text);
  if (!tree) return [];
  const { root, raw: obj } = tree;
  const schema = schemaIssues(obj);
  // While the schema fails, only its misspellings (the JSON support reports the rest) and missing files.
  const issues = schema.length
    ? [...schema.filter((i) => i.suggestion !== undefined), ...fileIssues(obj, file, exists)]
    : validateConfig(obj, { file, path, exists }).issues;
  if (catalog) issues.push(...builtinNameIssues(obj, catalog));
  return issues.map((i) => problemOf(root, i, 'error'));
}

/**
 * Whether the text passes the schema, so that `sculpt validate` would go on to the files, the model and the data
 * (while it does not, the schema's errors are the JSON support's and the quick checks', not repeated).
 */
export function configSettled(text: string): boolean {
  const tree = configTree(text);
  return !!tree && schemaIssues(tree.raw).length === 0;
}

/** The findings of `sculpt validate --json` on `text`, at their exact ranges in it. */
export function findingProblems(text: string, findings: ValidateFinding[]): ConfigProblem[] {
  const tree = configTree(text);
  if (!tree) return [];
  return findings.map((f) =>
    problemOf(
      tree.root,
      { path: f.path, message: f.message, expected: '', suggestion: f.suggestion, onKey: f.onKey },
      f.severity,
    ),
  );
}
