/**
 * Builtin names as a config writes them, checked against the catalog: an unknown builtin model or task is an
 * issue at its JSON path with the name the user most likely meant, which the editor offers as a quick fix and
 * the CLI prints as "did you mean".
 */
import type { ConfigIssue } from '../../protocol/config-validate';
import { closest } from '../../protocol/schema-check';

/**
 * The known name closest to `name`: by the whole id (`cl5/sentimnet`), else by its last part alone
 * (`sentiment` or `cl15/sentiment` for `cl5/sentiment`), preferring ids of the suite `prefer` (the suite of the
 * config's other builtin tasks) when several share that part.
 */
export function closestBuiltin(name: string, known: string[], prefer?: string): string | undefined {
  const whole = closest(name, known);
  if (whole) return whole;
  const last = (id: string) => id.slice(id.lastIndexOf('/') + 1);
  const part = closest(last(name), [...new Set(known.map(last))]);
  if (!part) return undefined;
  const matches = known.filter((id) => last(id) === part);
  return matches.find((id) => prefer !== undefined && id.startsWith(`${prefer}/`)) ?? matches[0];
}

export interface BuiltinCatalog {
  models: string[];
  tasks: string[];
}

/** Issues for the builtin model and task names of a raw (unvalidated) config that are not in the catalog. */
export function builtinNameIssues(raw: Record<string, unknown>, catalog: BuiltinCatalog): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const model = raw.model;
  if (typeof model === 'string' && model.startsWith('builtin:') && catalog.models.length) {
    const name = model.slice('builtin:'.length);
    if (!catalog.models.includes(name)) {
      const near = closestBuiltin(name, catalog.models);
      issues.push({
        path: 'model',
        message: `unknown builtin model '${name}'${near ? ` (did you mean 'builtin:${near}'?)` : ''}; builtin models: ${catalog.models.map((m) => `builtin:${m}`).join(', ')}`,
        expected: 'a builtin model',
        actual: model,
        ...(near ? { suggestion: `builtin:${near}` } : {}),
      });
    }
  }
  const tasks = Array.isArray(raw.tasks) ? raw.tasks : [];
  const ids = tasks.map((t) => {
    const s = (t as { source?: { builtin?: unknown } } | null)?.source;
    return s && typeof s === 'object' && typeof s.builtin === 'string' ? s.builtin : undefined;
  });
  // The suite most of the known ids belong to, to settle `sentiment` between cl5/ and tiny/.
  const suites = ids.filter((id): id is string => !!id && catalog.tasks.includes(id)).map((id) => id.split('/')[0]);
  const suite = suites.sort((a, b) => suites.filter((x) => x === b).length - suites.filter((x) => x === a).length)[0];
  if (!catalog.tasks.length) return issues;
  ids.forEach((id, i) => {
    if (!id || catalog.tasks.includes(id)) return;
    const near = closestBuiltin(id, catalog.tasks, suite);
    issues.push({
      path: `tasks[${i}].source.builtin`,
      message: `unknown builtin task '${id}'${near ? ` (did you mean '${near}'?)` : ''}; builtin tasks: ${catalog.tasks.join(', ')}`,
      expected: 'a builtin task id',
      actual: id,
      ...(near ? { suggestion: near } : {}),
    });
  });
  return issues;
}
