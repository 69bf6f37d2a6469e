/** The top of the dashboard: what is shown (experiment, method, engine, backend, model), live progress, and notices. */
import type { ExperimentInfo } from '../../src/protocol/webview';
import { runStatus, type DashboardState, type RunState } from '../state';
import { fmtCompact, fmtCount, fmt } from '../format';
import { h } from '../dom';
import { alignTasks, sequenceNote } from '../align';
import { runTitle } from '../labels';
import { completeRows } from '../derive';
import { engineText } from '../../src/runs/run-engine';

export function titleText(runs: RunState[], experiment: ExperimentInfo | null = null): string {
  if (experiment) return `${experiment.name}: ${runs.length} run${runs.length === 1 ? '' : 's'}`;
  const experiments = [...new Set(runs.map((r) => r.experiment).filter((x): x is string => !!x))];
  if (runs.length === 0) return 'Sculpt dashboard';
  if (runs.length === 1) return runs[0].label;
  return experiments.length === 1 ? `${experiments[0]}: ${runs.length} runs compared` : `${runs.length} runs compared`;
}

/** One fact of a run's header line: what it says, and what its tooltip adds. */
export interface RunFact {
  /** Which fact it is (`method`, `tasks`, `engine`, `backend`, `model`, `resumes`): tests and styles find it by this. */
  key: string;
  text: string;
  title?: string;
}

/** The facts about a single run, in the order the header shows them: method, tasks, engine, backend, model size. */
export function runFactList(run: RunState): RunFact[] {
  const facts: RunFact[] = [];
  const method = run.method ?? run.meta.method;
  if (method) facts.push({ key: 'method', text: method });
  if (run.tasks.length) facts.push({ key: 'tasks', text: `${run.tasks.length} tasks: ${run.tasks.join(' \u2192 ')}` });
  const engine = run.summary.engine;
  const backend = run.backend;
  // tfjs is the default engine and logs from before the PyTorch engine name none: their backend (wasm, webgpu...)
  // says enough, as in the Runs view. Another engine earns its words, its version goes in the tooltip.
  const shown = engine && engine.name !== 'tfjs' ? engine : null;
  // The torch worker names itself as the backend too: one fact says both, and keeps whether it runs on a GPU.
  const merged = !!shown && !!backend && backend.name === shown.name;
  if (shown) {
    const title = [`Engine: ${engineText(shown, { version: true })}`];
    if (merged && backend.device) title.push(`Device: ${backend.device}`);
    facts.push({
      key: 'engine',
      text: `${engineText(shown)}${merged && backend.isGpu ? ' on GPU' : ''}`,
      title: title.join('\n'),
    });
  }
  if (backend && !merged) facts.push({ key: 'backend', text: `${backend.name}${backend.isGpu ? ' (GPU)' : ''}` });
  if (run.model)
    facts.push({ key: 'model', text: `${run.model.arch}, ${fmtCompact(run.model.parameters)} parameters` });
  if (run.resumes) facts.push({ key: 'resumes', text: `resumed ${run.resumes}\u00d7` });
  return facts;
}

/** One line of facts about a single run (runFactList), each fact a span of text so that it can carry a tooltip. */
export function runFacts(run: RunState): HTMLElement {
  const children: (HTMLElement | string)[] = [];
  for (const f of runFactList(run)) {
    if (children.length) children.push(' \u00b7 ');
    children.push(h('span', { class: 'fact', text: f.text, title: f.title, data: { fact: f.key } }));
  }
  return h('p', { class: 'facts' }, ...children);
}

function progressBar(fraction: number, label: string): HTMLElement {
  const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  const bar = h('div', { class: 'progress-fill' });
  bar.style.width = `${pct}%`;
  return h(
    'div',
    {
      class: 'progress-track',
      attrs: {
        role: 'progressbar',
        'aria-valuemin': 0,
        'aria-valuemax': 100,
        'aria-valuenow': pct,
        'aria-label': label,
      },
    },
    bar,
  );
}

/** Progress of a running run: task k of T, step, loss. */
export function runProgress(run: RunState): HTMLElement | null {
  if (runStatus(run) !== 'running' || !run.current) return null;
  const c = run.current;
  const T = run.tasks.length || '?';
  return h(
    'div',
    { class: 'progress', data: { run: run.key } },
    h('span', {
      class: 'progress-text',
      title: runTitle(run),
      text: `${run.label}: task ${c.task + 1}/${T} ${c.name} \u00b7 step ${fmtCount(c.step)}/${fmtCount(c.steps)}${c.loss != null ? ` \u00b7 loss ${fmt(c.loss, 4)}` : ''}`,
    }),
    progressBar(c.progress, `${run.label} task progress`),
  );
}

/** Fraction of a run done, 0..1: finished tasks and the current one's progress, tasks weighing the same. */
export function runFraction(run: RunState): number {
  const status = runStatus(run);
  if (status === 'finished') return 1;
  const T = run.tasks.length;
  if (!T) return 0;
  const done = completeRows(run).length;
  const current = run.current && run.current.task >= done ? Math.max(0, Math.min(1, run.current.progress)) : 0;
  return Math.min(1, (done + current) / T);
}

const GROUPS: [string, RegExp][] = [
  ['finished', /^finished$/],
  ['running', /^(starting|running|stopping)$/],
  ['queued', /^(queued|new)$/],
  ['stopped', /^(stopped|cancelled|interrupted)$/],
  ['failed', /^(failed|crashed|killed)$/],
];

/**
 * The progress of several runs at once (an experiment's grid, runs compared), while any runs or waits:
 * "3/8 finished · 2 running · 3 queued" over one bar of the work done. Null when nothing is live or queued.
 */
export function overallProgress(runs: RunState[]): HTMLElement | null {
  if (runs.length < 2) return null;
  const statuses = runs.map(runStatus);
  if (!statuses.some((s) => /^(starting|running|stopping|queued)$/.test(s))) return null;
  const counts = GROUPS.map(([name, re]) => [name, statuses.filter((s) => re.test(s)).length] as const);
  const finished = counts[0][1];
  const parts = [
    `${finished}/${runs.length} finished`,
    ...counts.slice(1).flatMap(([name, n]) => (n ? [`${n} ${name}`] : [])),
  ];
  const fraction = runs.reduce((s, r) => s + runFraction(r), 0) / runs.length;
  return h(
    'div',
    { class: 'progress progress-overall', data: { overall: 'true' } },
    h('span', { class: 'progress-text', text: `${parts.join(' \u00b7 ')} \u00b7 ${Math.floor(fraction * 100)}% done` }),
    progressBar(fraction, 'progress of all runs'),
  );
}

function checkpointWhere(run: RunState, c: { task: number; step: number; reason: string }): string {
  const name = run.tasks[c.task] ?? `task ${c.task + 1}`;
  return c.reason === 'task' && c.step === 0
    ? `before task ${c.task + 1} (${name})`
    : `task ${c.task + 1} (${name}), step ${c.step}`;
}

interface Notice {
  kind: 'error' | 'warning' | 'info';
  title: string;
  lines: string[];
}

function runNotices(run: RunState, multi: boolean): Notice[] {
  const who = multi ? `${run.label}: ` : '';
  const out: Notice[] = [];
  if (run.log.readError) out.push({ kind: 'error', title: `${who}cannot read the run`, lines: [run.log.readError] });
  if (run.error)
    out.push({
      kind: 'error',
      title: `${who}${run.error.message}`,
      lines: [run.error.where ? `where: ${run.error.where}` : '', run.error.hint ?? ''].filter(Boolean),
    });
  const status = runStatus(run);
  if (status === 'crashed') {
    const lines = [];
    if (run.log.truncatedTail) lines.push('The event log ends in a partial line; everything before it is shown.');
    if (run.exitCode != null) lines.push(`The trainer exited with code ${run.exitCode}.`);
    const last = run.checkpoints[run.checkpoints.length - 1];
    if (last) lines.push(`Last checkpoint: ${checkpointWhere(run, last)} (${last.path}). Resume continues from there.`);
    out.push({ kind: 'error', title: `${who}the run ended without a final event`, lines });
  }
  if (run.stopped) {
    out.push({
      kind: 'info',
      title: `${who}stopped in task ${run.stopped.task + 1} at step ${run.stopped.step}`,
      lines: run.stopped.checkpoint ? [`Checkpoint: ${run.stopped.checkpoint}. Resume continues from there.`] : [],
    });
  }
  if (run.log.badLines)
    out.push({
      kind: 'warning',
      title: `${who}${run.log.badLines} unreadable line(s) in events.jsonl were skipped`,
      lines: [],
    });
  // Repeated warnings (one per boundary, say) are grouped by code so the list stays short.
  const groups = new Map<string, { count: number; message: string }>();
  for (const w of run.warnings) {
    const k = w.code ?? w.message;
    const g = groups.get(k);
    groups.set(k, { count: (g?.count ?? 0) + 1, message: w.message });
  }
  if (groups.size) {
    out.push({
      kind: 'warning',
      title: `${who}${run.warnings.length} warning${run.warnings.length === 1 ? '' : 's'}`,
      lines: [...groups.entries()].map(
        ([code, g]) => `${g.count > 1 ? `${g.count}\u00d7 ` : ''}${code !== g.message ? `[${code}] ` : ''}${g.message}`,
      ),
    });
  }
  return out;
}

export function renderNotices(state: DashboardState): HTMLElement {
  const notices: Notice[] = [];
  if (state.protocolError) notices.push({ kind: 'error', title: state.protocolError, lines: [] });
  // Runs compared across experiments: say that their sequences differ (an experiment's orders are its design).
  const align = alignTasks(state.runs);
  const note = sequenceNote(align);
  if (note && (!state.experiment || !align.sameSet)) notices.push({ kind: 'info', title: note, lines: [] });
  for (const r of state.runs) notices.push(...runNotices(r, state.runs.length > 1));
  return h(
    'div',
    { class: 'notices' },
    ...notices.map((n) => {
      const body = n.lines.length ? h('ul', {}, ...n.lines.map((l) => h('li', { text: l }))) : null;
      // Warnings fold away (they can be long); errors stay open.
      if (n.kind === 'warning' && body) {
        return h('details', { class: `notice notice-${n.kind}` }, h('summary', { text: n.title }), body);
      }
      return h(
        'div',
        { class: `notice notice-${n.kind}`, attrs: { role: n.kind === 'error' ? 'alert' : 'status' } },
        h('strong', { text: n.title }),
        body,
      );
    }),
  );
}
