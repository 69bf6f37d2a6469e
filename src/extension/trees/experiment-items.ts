/**
 * The Experiments view's rows: the workspace's `*.sculpt.json` files, with the experiment's shape (tasks,
 * methods, model) in the tooltip, read leniently so that a config being edited still shows.
 */
import { parse } from 'jsonc-parser';
import { excessiveNesting } from '../../protocol/json-limits';
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
