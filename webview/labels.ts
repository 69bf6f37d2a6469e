/**
 * What the dashboard calls a run: the user's title (notes.json), else its place in the grid,
 * `<method> · o<order> · s<seed>` (order 1-based, as in folder names and the Runs view), else its folder name.
 * Labels are short enough for legends and table columns; the run id (the folder's name) and path go in
 * tooltips. Runs that would share a label are told apart by their experiment, then by their parent folder.
 */
import type { RunState } from './state';

type Labelled = Pick<RunState, 'key' | 'name' | 'meta' | 'summary' | 'experiment'> & { method?: string | null };

/** The run's method: the log's, else job.json's (a queued run has no event yet); null when neither says. */
export function methodOf(run: Labelled): string | null {
  if (run.summary.method !== '?') return run.summary.method;
  return run.meta.method ?? null;
}

/** `<method> · o<order> · s<seed>`, as much of it as is known; null without a method. */
export function cellText(run: Labelled): string | null {
  const method = methodOf(run);
  if (!method) return null;
  // job.json says which cell of the grid the folder is; the log fills in where it does not.
  const order = run.meta.order ?? run.summary.order;
  const seed = run.meta.seed ?? run.summary.seed;
  return [method, order != null ? `o${order + 1}` : null, seed != null ? `s${seed}` : null]
    .filter(Boolean)
    .join(' \u00b7 ');
}

/** The label of one run, before telling it apart from others. */
export function baseLabel(run: Labelled): string {
  return run.meta.title || cellText(run) || run.name;
}

const parentName = (key: string): string => {
  const parts = key.split(/[\\/]+/).filter(Boolean);
  return parts.length > 1 ? parts[parts.length - 2] : '';
};

/** Sets `label` on every run: its base label, qualified where two runs would otherwise read the same. */
export function relabel(runs: RunState[]): void {
  const labels = runs.map(baseLabel);
  const clash = () => {
    const count = new Map<string, number>();
    for (const l of labels) count.set(l, (count.get(l) ?? 0) + 1);
    return labels.map((l) => (count.get(l) ?? 0) > 1);
  };
  const steps: ((r: RunState) => string | null)[] = [
    (r) => r.meta.experiment ?? r.experiment,
    (r) => parentName(r.key) || null,
  ];
  for (const prefix of steps) {
    const dup = clash();
    if (!dup.some(Boolean)) break;
    runs.forEach((r, i) => {
      const p = dup[i] ? prefix(r) : null;
      if (p && !labels[i].startsWith(`${p} \u00b7 `)) labels[i] = `${p} \u00b7 ${labels[i]}`;
    });
  }
  // Still the same (two folders of one name): numbered in order.
  const seen = new Map<string, number>();
  const dup = clash();
  runs.forEach((r, i) => {
    if (dup[i]) {
      const n = (seen.get(labels[i]) ?? 0) + 1;
      seen.set(labels[i], n);
      r.label = n > 1 ? `${labels[i]} #${n}` : labels[i];
    } else {
      r.label = labels[i];
    }
  });
}

/** The tooltip of a run's label: its id and folder, and the user's notes and tags. */
export function runTitle(run: Pick<RunState, 'key' | 'name' | 'label' | 'meta'>): string {
  const lines = [run.label !== run.name ? `${run.label}: ${run.name}` : run.name, run.key];
  if (run.meta.tags?.length) lines.push(`Tags: ${run.meta.tags.map((t) => `#${t}`).join(' ')}`);
  if (run.meta.notes) lines.push(`Notes: ${run.meta.notes}`);
  return lines.join('\n');
}
