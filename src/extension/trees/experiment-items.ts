/**
 * The Experiments view's rows: the workspace's `*.sculpt.json` files, with the experiment's shape (tasks,
 * methods, model) in the tooltip, read leniently so that a config being edited still shows. Also where a
 * config's launches are: the experiment folders (src/runs/experiment-dir.ts) made from it, newest first.
 */
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'jsonc-parser';
import { excessiveNesting } from '../../protocol/json-limits';
import { isExperimentFolder, readExperiment, type ExperimentRecord } from '../../runs/experiment-dir';
import type { TreeNode } from './node';

export interface ExperimentFile {
  file: string;
  /** Path relative to the workspace folder, for display. */
  relative: string;
  text: string;
}

const CONFIG_SUFFIX = '.sculpt.json';

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** A config's text as an object, leniently (comments, trailing commas); undefined when it is not one yet. */
function parseLenient(text: string): Record<string, unknown> | undefined {
  const v = excessiveNesting(text) >= 0 ? undefined : (parse(text, [], { allowTrailingComma: true }) as unknown);
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Where a config's runs go: its `output` beside the config (default `runs/`). */
export function configOutput(file: string, text: string): string {
  const out = parseLenient(text)?.output;
  return resolve(dirname(file), typeof out === 'string' && out ? out : 'runs');
}

export interface ExperimentFolder {
  dir: string;
  record: ExperimentRecord;
}

/**
 * The experiment folders in `roots` (a root that is one, and those directly inside each root), each once,
 * newest first (by launch time, then by folder name, which carries the time). Unreadable records are skipped.
 */
export function findExperimentFolders(roots: string[]): ExperimentFolder[] {
  const dirs = new Set<string>();
  for (const root of roots.map((r) => resolve(r))) {
    if (isExperimentFolder(root)) dirs.add(root);
    let names: string[] = [];
    try {
      names = readdirSync(root, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      continue;
    }
    for (const n of names) if (isExperimentFolder(join(root, n))) dirs.add(join(root, n));
  }
  const out: ExperimentFolder[] = [];
  for (const dir of dirs) {
    try {
      out.push({ dir, record: readExperiment(dir) });
    } catch {
      // A broken experiment.json: not one to open.
    }
  }
  const created = (f: ExperimentFolder) => (typeof f.record.created === 'string' ? f.record.created : '');
  return out.sort((a, b) => created(b).localeCompare(created(a)) || b.dir.localeCompare(a.dir));
}

/**
 * The experiment folders launched from the config `file`, newest first: those whose record names the file, or,
 * for records that do not say which file they came from, that carry the config's name.
 */
export function experimentsOfConfig(file: string, text: string, roots: string[]): ExperimentFolder[] {
  const name = parseLenient(text)?.name;
  const target = resolve(file);
  return findExperimentFolders([configOutput(file, text), ...roots]).filter(({ record }) =>
    record.configFile ? resolve(record.configFile) === target : typeof name === 'string' && record.name === name,
  );
}

export function experimentNode(f: ExperimentFile): TreeNode {
  const base = f.relative.split(/[\\/]/).pop() ?? f.relative;
  const folder = f.relative.slice(0, f.relative.length - base.length).replace(/[\\/]$/, '');
  const label = base.endsWith(CONFIG_SUFFIX) ? base.slice(0, -CONFIG_SUFFIX.length) : base;
  const v =
    excessiveNesting(f.text) >= 0
      ? undefined
      : (parse(f.text, [], { allowTrailingComma: true }) as Record<string, unknown> | undefined);
  const node: TreeNode = {
    id: `experiment:${f.file}`,
    label,
    description: folder || undefined,
    icon: 'beaker',
    contextValue: 'sculptExperiment',
    file: f.file,
  };
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    return { ...node, icon: 'warning', tooltip: `${f.relative}\nNot a JSON object yet: open it to see the problems.` };
  }
  const tasks = asList(v.tasks).map((t) =>
    t && typeof t === 'object' ? String((t as { name?: unknown }).name ?? '?') : '?',
  );
  const methods = asList(v.methods).map((m) => {
    const o = (m && typeof m === 'object' ? m : {}) as { method?: unknown; label?: unknown };
    return String(o.label ?? o.method ?? '?');
  });
  const orders = 1 + asList(v.orders).length;
  const lines = [
    `${typeof v.name === 'string' ? v.name : label} (${f.relative})`,
    `Model: ${typeof v.model === 'string' ? v.model : '–'}`,
    `Tasks: ${tasks.length ? tasks.join(' → ') : '–'}`,
    `Methods: ${methods.length ? methods.join(', ') : '–'}`,
    `Runs: ${methods.length * orders} (${methods.length} method${methods.length === 1 ? '' : 's'} × ${orders} order${orders === 1 ? '' : 's'})`,
  ];
  return { ...node, tooltip: lines.join('\n') };
}

export function experimentNodes(files: ExperimentFile[]): TreeNode[] {
  return [...files].sort((a, b) => a.relative.localeCompare(b.relative)).map(experimentNode);
}
