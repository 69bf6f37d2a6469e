/**
 * Completions for `*.sculpt.json` that the JSON schema cannot provide because they depend on the installation
 * or the workspace: builtin model and task ids, data files and Hugging Face checkpoint folders near the config,
 * task names in `orders`, and the options of the method (or rank policy) an object has chosen, where the
 * schema's anyOf would offer the options of every method. No vscode import: the provider adapts these.
 */
import { getLocation, parse, type Node as JsonNode } from 'jsonc-parser';
import { excessiveNesting } from '../protocol/json-limits';
import { CONFIG_SCHEMA } from '../protocol/config-validate';
import type { JsonSchema } from '../protocol/schema-check';

export interface CompletionSources {
  builtinModels: () => string[];
  builtinTasks: () => string[];
  /** Data files (JSON Lines / JSON), as paths relative to the config's folder with `/` separators. */
  dataFiles: () => string[];
  /** Folders with a config.json (Hugging Face checkpoints), relative to the config's folder. */
  checkpointFolders: () => string[];
  /** A builtin task's size ("800 train / 400 test, 5 labels"), shown beside its id. */
  describeBuiltinTask?: (id: string) => string | undefined;
  /** A builtin model's size ("llama, 4 layers × 128, 1.6M parameters"), shown beside its name. */
  describeBuiltinModel?: (name: string) => string | undefined;
}

export type CompletionKind = 'value' | 'file' | 'folder' | 'property' | 'reference';

export interface CompletionEntry {
  label: string;
  /** Text for the replaced range; a snippet when `snippet` is set. */
  insertText: string;
  snippet?: boolean;
  /** What the editor filters on (the typed text includes the opening quote). */
  filterText: string;
  kind: CompletionKind;
  detail?: string;
  documentation?: string;
  sortText?: string;
  /** Offsets in the document of the text to replace. */
  start: number;
  end: number;
}

type Seg = string | number;

function definition(name: string): JsonSchema | undefined {
  return CONFIG_SCHEMA.definitions?.[name];
}

/** The object definitions of an anyOf of $refs (or of a single $ref), resolved. */
function variants(name: string): JsonSchema[] {
  const d = definition(name);
  if (!d) return [];
  const refs = d.anyOf ?? [d];
  return refs
    .map((r) => (r.$ref ? definition(r.$ref.replace('#/definitions/', '')) : r))
    .filter((x): x is JsonSchema => !!x?.properties);
}

/** The variant of `name` whose discriminator property (e.g. `method`) has the given const value. */
function variantFor(name: string, key: string, value: unknown): JsonSchema | undefined {
  return variants(name).find((v) => v.properties?.[key]?.const === value);
}

function valueAt(root: unknown, path: Seg[]): unknown {
  let v = root;
  for (const s of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

const snippetEscape = (s: string) => s.replace(/[\\$}]/g, (c) => `\\${c}`);

function valueSnippet(p: JsonSchema): string {
  if (p.default !== undefined) return `\${1:${snippetEscape(JSON.stringify(p.default))}}`;
  const t = Array.isArray(p.type) ? p.type[0] : p.type;
  if (t === 'string') return '"$1"';
  if (t === 'array') return '[$1]';
  if (t === 'object' || p.$ref) return '{$1}';
  if (t === 'boolean') return '${1:false}';
  return '$1';
}

function propertyEntries(
  text: string,
  schema: JsonSchema,
  present: Set<string>,
  discriminator: string,
  node: JsonNode | undefined,
  offset: number,
): CompletionEntry[] {
  // While a key is typed, getLocation reports it as a `property` node spanning the key's string.
  const inKey = node?.type === 'property' || node?.type === 'string';
  const start = inKey ? node!.offset : offset;
  const end = inKey ? node!.offset + node!.length : offset;
  const keyHasColon = inKey && /^\s*:/.test(text.slice(end));
  return Object.entries(schema.properties ?? {})
    .filter(([k]) => k !== discriminator && !present.has(k))
    .map(([k, p]) => ({
      label: k,
      insertText: keyHasColon ? JSON.stringify(k) : `${JSON.stringify(k)}: ${valueSnippet(p)}`,
      snippet: !keyHasColon,
      filterText: JSON.stringify(k),
      kind: 'property' as const,
      detail: `${String(schema.properties?.[discriminator]?.const ?? '')} option`,
      documentation: p.description,
      start,
      end,
    }));
}

function valueEntries(
  values: { value: string; kind: CompletionKind; detail?: string; sortText?: string }[],
  node: JsonNode | undefined,
  offset: number,
): CompletionEntry[] {
  const inString = node?.type === 'string';
  const start = inString ? node.offset : offset;
  const end = inString ? node.offset + node.length : offset;
  return values.map((v) => ({
    label: v.value,
    insertText: JSON.stringify(v.value),
    filterText: JSON.stringify(v.value),
    kind: v.kind,
    detail: v.detail,
    sortText: v.sortText,
    start,
    end,
  }));
}

function relativeRef(p: string): string {
  return p.startsWith('.') || p.startsWith('/') ? p : `./${p}`;
}

/** Completion entries at `offset` of a config's text; empty where the schema's own completions suffice. */
export function configCompletions(text: string, offset: number, src: CompletionSources): CompletionEntry[] {
  // Deeper than any config nests: the parser below would recurse past the stack.
  if (excessiveNesting(text) >= 0) return [];
  const loc = getLocation(text, offset);
  const path = loc.path;
  const node = loc.previousNode;
  const root = parse(text, [], { allowTrailingComma: true }) as unknown;
  const is = (...pattern: (Seg | '*' | '#')[]) =>
    path.length === pattern.length &&
    pattern.every((p, i) => (p === '#' ? typeof path[i] === 'number' : p === '*' ? true : p === path[i]));

  if (loc.isAtPropertyKey) {
    const parent = path.slice(0, -1);
    const obj = valueAt(root, parent);
    const present = new Set(obj && typeof obj === 'object' ? Object.keys(obj) : []);
    if (parent.length === 2 && parent[0] === 'methods' && typeof parent[1] === 'number') {
      const v = variantFor('MethodConfig', 'method', (obj as { method?: unknown } | undefined)?.method);
      return v ? propertyEntries(text, v, present, 'method', node, offset) : [];
    }
    if (parent.length === 3 && parent[0] === 'methods' && parent[2] === 'rank') {
      const v = variantFor('RankPolicy', 'policy', (obj as { policy?: unknown } | undefined)?.policy);
      return v ? propertyEntries(text, v, present, 'policy', node, offset) : [];
    }
    return [];
  }
  if (is('model')) {
    return valueEntries(
      [
        ...src.builtinModels().map((m) => {
          const size = src.describeBuiltinModel?.(m);
          return {
            value: `builtin:${m}`,
            kind: 'reference' as const,
            detail: size ? `builtin model: ${size}` : 'builtin model',
            sortText: `0${m}`,
          };
        }),
        ...src.checkpointFolders().map((d) => ({
          value: relativeRef(d),
          kind: 'folder' as const,
          detail: 'Hugging Face checkpoint folder',
          sortText: `1${d}`,
        })),
      ],
      node,
      offset,
    );
  }
  if (is('tasks', '#', 'source', 'builtin')) {
    return valueEntries(
      src.builtinTasks().map((t) => {
        const size = src.describeBuiltinTask?.(t);
        return { value: t, kind: 'reference' as const, detail: size ? `builtin task: ${size}` : 'builtin task' };
      }),
      node,
      offset,
    );
  }
  if (is('tasks', '#', 'source', 'train') || is('tasks', '#', 'source', 'test')) {
    const want = path[3] as string;
    return valueEntries(
      src.dataFiles().map((f) => ({
        value: relativeRef(f),
        kind: 'file' as const,
        detail: 'data file',
        sortText: `${f.toLowerCase().includes(want) ? 0 : 1}${f}`,
      })),
      node,
      offset,
    );
  }
  if (is('orders', '#', '#')) {
    const tasks = valueAt(root, ['tasks']);
    const names = Array.isArray(tasks)
      ? tasks.map((t) => (t as { name?: unknown })?.name).filter((n): n is string => typeof n === 'string')
      : [];
    return valueEntries(
      names.map((n) => ({ value: n, kind: 'value' as const, detail: 'task' })),
      node,
      offset,
    );
  }
  return [];
}

/** Method option names of a method, for documentation and tests. */
export function methodOptionNames(method: string): string[] {
  return Object.keys(variantFor('MethodConfig', 'method', method)?.properties ?? {}).filter((k) => k !== 'method');
}
