/**
 * A small JSON Schema (draft-07 subset) checker for the schemas generated from our own types: type, const,
 * enum, properties/required/additionalProperties, items, anyOf, if/then/else, $ref, min/max bounds, lengths,
 * pattern.
 * Interpreting the schema (instead of compiling it to code) keeps eval-like constructs out of the product, and
 * lets the messages say what a user needs: the JSON path, what was expected, and the offending value.
 * Defaults from the schema are filled in as it goes (on a copy the caller made), the nested ones of a filled-in
 * default too, and `if`/`then`/`else` adds the defaults that depend on other fields; so the schema, generated
 * from the `@default` annotations of the config types, is the one place defaults are written.
 */

export interface SchemaIssue {
  /** JSON path in the user's terms, e.g. `methods[1].rank.trr`; `` for the root. */
  path: string;
  message: string;
  expected: string;
  actual?: unknown;
  /**
   * The name the user most likely meant ("did you mean"): a known value for a misspelt one, or, with `onKey`,
   * a known field for a misspelt field name. Editors offer it as a quick fix.
   */
  suggestion?: string;
  /** The issue is about the property name at `path` rather than its value (an unknown field). */
  onKey?: boolean;
}

export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  if?: JsonSchema;
  then?: JsonSchema;
  else?: JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  minItems?: number;
  pattern?: string;
  default?: unknown;
  description?: string;
  definitions?: Record<string, JsonSchema>;
}

export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? (base ? `${base}.${key}` : key) : `${base}[${JSON.stringify(key)}]`;
}

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** `obj[key]` when `key` is the object's own property: never a prototype's (`constructor`, `__proto__`). */
function own<T>(obj: Record<string, T> | undefined, key: string): T | undefined {
  return obj !== undefined && Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export class SchemaChecker {
  constructor(private readonly root: JsonSchema) {}

  private resolve(s: JsonSchema): JsonSchema {
    let cur = s;
    for (let guard = 0; cur.$ref && guard < 32; guard++) {
      const name = cur.$ref.replace(/^#\/definitions\//, '');
      const target = own(this.root.definitions, name);
      if (!target) throw new Error(`schema: unresolved reference ${cur.$ref}`);
      // A $ref with siblings (description, default) keeps the siblings.
      const { $ref: _ref, ...siblings } = cur;
      cur = { ...target, ...siblings };
    }
    return cur;
  }

  /** Checks `value` (already a copy: defaults are written into it) and returns every issue found. */
  check(value: unknown, schema: JsonSchema = this.root, path = ''): SchemaIssue[] {
    const s = this.resolve(schema);
    if (s.anyOf) return this.checkAnyOf(value, s, path);
    const issues: SchemaIssue[] = [];
    const fail = (message: string, expected: string) => issues.push({ path, message, expected, actual: value });

    if (s.const !== undefined && value !== s.const) {
      fail(`must be ${JSON.stringify(s.const)}, got ${describeValue(value)}`, JSON.stringify(s.const));
      return issues;
    }
    if (s.enum && !s.enum.includes(value)) {
      const choices = s.enum.map((e) => JSON.stringify(e)).join(', ');
      const names = s.enum.filter((e): e is string => typeof e === 'string');
      const near = typeof value === 'string' ? closest(value, names) : undefined;
      fail(
        `must be one of ${choices}, got ${describeValue(value)}${near ? ` (did you mean '${near}'?)` : ''}`,
        `one of ${choices}`,
      );
      if (near) issues[issues.length - 1].suggestion = near;
      return issues;
    }
    if (s.type) {
      const types = Array.isArray(s.type) ? s.type : [s.type];
      if (!acceptsType(s, value)) {
        fail(`expected ${types.join(' or ')}, got ${describeValue(value)}`, types.join(' or '));
        return issues;
      }
    }
    if (typeof value === 'number') this.checkNumber(value, s, fail);
    if (typeof value === 'string') {
      if (s.minLength !== undefined && value.length < s.minLength) {
        fail(
          s.minLength === 1 ? 'must not be empty' : `must have at least ${s.minLength} characters`,
          `length >= ${s.minLength}`,
        );
      }
      if (s.pattern && !new RegExp(s.pattern).test(value))
        fail(`${describeValue(value)} does not match ${s.pattern}`, `a string matching ${s.pattern}`);
    }
    if (Array.isArray(value)) {
      if (s.minItems !== undefined && value.length < s.minItems) {
        fail(
          `needs at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}, got ${value.length}`,
          `>= ${s.minItems} items`,
        );
      }
      if (s.items)
        value.forEach((item, i) => issues.push(...this.check(item, s.items as JsonSchema, joinPath(path, i))));
    } else if (
      value !== null &&
      typeof value === 'object' &&
      (s.properties || s.required || s.additionalProperties !== undefined)
    ) {
      issues.push(...this.checkObject(value as Record<string, unknown>, s, path));
    }
    if (s.if && issues.length === 0) {
      // The condition is tested on a copy: only the branch taken may fill in defaults.
      const branch = this.check(structuredClone(value), s.if, path).length === 0 ? s.then : s.else;
      if (branch) issues.push(...this.check(value, branch, path));
    }
    return issues;
  }

  private checkNumber(v: number, s: JsonSchema, fail: (m: string, e: string) => void): void {
    if (!Number.isFinite(v)) fail(`must be a finite number, got ${v}`, 'a finite number');
    if (s.minimum !== undefined && v < s.minimum) fail(`must be >= ${s.minimum}, got ${v}`, `>= ${s.minimum}`);
    if (s.maximum !== undefined && v > s.maximum) fail(`must be <= ${s.maximum}, got ${v}`, `<= ${s.maximum}`);
    if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum)
      fail(`must be > ${s.exclusiveMinimum}, got ${v}`, `> ${s.exclusiveMinimum}`);
    if (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum)
      fail(`must be < ${s.exclusiveMaximum}, got ${v}`, `< ${s.exclusiveMaximum}`);
  }

  private checkObject(obj: Record<string, unknown>, s: JsonSchema, path: string): SchemaIssue[] {
    const issues: SchemaIssue[] = [];
    const props = s.properties ?? {};
    for (const key of s.required ?? []) {
      if (!Object.hasOwn(obj, key)) {
        const want = this.resolve(own(props, key) ?? {});
        issues.push({
          path: joinPath(path, key),
          message: `is required (${want.description?.split('.')[0] ?? 'missing field'})`,
          expected: 'present',
        });
      }
    }
    for (const [key, v] of Object.entries(obj)) {
      const sub = own(props, key);
      if (sub) issues.push(...this.check(v, sub, joinPath(path, key)));
      else if (s.additionalProperties === false) {
        const known = Object.keys(props).filter((k) => k !== '$schema');
        const near = closest(key, known);
        issues.push({
          path: joinPath(path, key),
          message: `is not a known field${near ? ` (did you mean '${near}'?)` : ''}; known fields: ${known.join(', ')}`,
          expected: `one of ${known.join(', ')}`,
          actual: key,
          onKey: true,
          ...(near ? { suggestion: near } : {}),
        });
      }
    }
    // Fill defaults only where the object is otherwise valid, so a broken object is reported as written.
    if (issues.length === 0) {
      for (const [key, sub] of Object.entries(props)) {
        const d = this.resolve(sub).default;
        if (Object.hasOwn(obj, key) || d === undefined) continue;
        obj[key] = structuredClone(d);
        // A default such as `{"policy": "adaptive"}` gets the defaults of its own fields.
        issues.push(...this.check(obj[key], sub, joinPath(path, key)));
      }
    }
    return issues;
  }

  /**
   * Unions: a discriminated union (every branch an object with a `const` property of the same name, such as
   * `method` or `policy`) is resolved by that property so the message names the unknown value; a value of the
   * type of exactly one branch gets that branch's issues; other unions take the branch with the fewest issues
   * (the one the user most likely meant).
   */
  private checkAnyOf(value: unknown, s: JsonSchema, path: string): SchemaIssue[] {
    const branches = (s.anyOf ?? []).map((b) => this.resolve(b));
    const disc = discriminator(branches);
    if (disc && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const tag = own(value as Record<string, unknown>, disc);
      const names = branches.map((b) => own(b.properties, disc)?.const as string);
      const idx = names.indexOf(tag as string);
      if (idx < 0) {
        const p = joinPath(path, disc);
        if (tag === undefined)
          return [{ path: p, message: `is required: one of ${names.join(', ')}`, expected: names.join(' | ') }];
        const near = typeof tag === 'string' ? closest(tag, names) : undefined;
        return [
          {
            path: p,
            message: `unknown ${disc} ${typeof tag === 'string' ? JSON.stringify(tag) : describeValue(tag)}${near ? ` (did you mean '${near}'?)` : ''}; expected one of ${names.join(', ')}`,
            expected: names.join(' | '),
            actual: tag,
            ...(near ? { suggestion: near } : {}),
          },
        ];
      }
      return this.check(value, s.anyOf![idx], path);
    }
    let best: SchemaIssue[] | undefined;
    const found: SchemaIssue[][] = [];
    for (const b of s.anyOf ?? []) {
      const trial = structuredClone(value);
      const issues = this.check(trial, b, path);
      found.push(issues);
      if (issues.length === 0) {
        // Commit the defaults the matching branch filled in.
        if (value !== null && typeof value === 'object' && trial !== null && typeof trial === 'object') {
          // Defined, not assigned: an own `__proto__` key stays a key.
          for (const [k, v] of Object.entries(trial))
            Object.defineProperty(value, k, { value: v, enumerable: true, writable: true, configurable: true });
        }
        return [];
      }
      if (!best || issues.length < best.length) best = issues;
    }
    // A value of the one type a branch takes (a number where a list or a count is allowed) is meant for that
    // branch: its own problem (a bound, a bad element) says more than the list of types the union allows.
    const typed = branches.every((b) => b.type !== undefined);
    const ofType = branches.flatMap((b, i) => (typed && acceptsType(b, value) ? [i] : []));
    if (ofType.length === 1) {
      // A bound broken by the value itself reads better with what the field is for ("a count n meaning ...").
      const about = s.description?.split('.')[0];
      return found[ofType[0]].map((i) => (i.path === path && about ? { ...i, message: `${i.message} (${about})` } : i));
    }
    const simple = branches.every((b) => b.const !== undefined || (typeof b.type === 'string' && !b.properties));
    if (simple) {
      const expected = branches.map((b) => (b.const !== undefined ? JSON.stringify(b.const) : b.type)).join(' or ');
      return [{ path, message: `expected ${expected}, got ${describeValue(value)}`, expected, actual: value }];
    }
    return best ?? [];
  }
}

/** Whether `value`'s JSON type is one the schema's `type` allows (an integer is a number). */
function acceptsType(s: JsonSchema, value: unknown): boolean {
  const t = typeOf(value);
  const types = Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type];
  return types.some((want) => want === t || (want === 'number' && t === 'integer'));
}

function discriminator(branches: JsonSchema[]): string | undefined {
  if (branches.length < 2 || !branches.every((b) => b.properties)) return undefined;
  const first = branches[0].properties ?? {};
  return Object.keys(first).find((k) =>
    branches.every((b) => b.properties?.[k]?.const !== undefined && b.required?.includes(k)),
  );
}

/** The known name closest to a typo (edit distance <= 2), for "did you mean" hints. */
export function closest(word: string, names: string[]): string | undefined {
  if (word.length > 64) return undefined;
  let best: string | undefined;
  let bestD = 3;
  for (const n of names) {
    const d = editDistance(word.toLowerCase(), n.toLowerCase());
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}
