/**
 * The run table at the top: one row per run with its colour, status and headline metrics (AA, BWT, forgetting,
 * FWT, time), the best value of each column marked when runs are compared. It doubles as the run list: a
 * checkbox hides a run from the overlaid charts, a button opens its folder.
 */
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { RunStatus } from '../../src/runs/status';
import type { RunState } from '../state';
import { bestKeys, summaryRow, type MetricKey, type SummaryRow } from '../derive';
import { fmt, fmtSeconds, fmtSigned } from '../format';
import { h } from '../dom';
import { alignTasks } from '../align';
import { runTitle } from '../labels';

export interface SummaryHost {
  colorOf(run: RunState): string;
  isHidden(key: string): boolean;
  setHidden(key: string, hidden: boolean): void;
  openFolder(key: string): void;
  /** The method of a run that is a cell of the experiment shown (known before its log starts). */
  cellMethod?(key: string): string | undefined;
}

/** The pill's word; the same as the Runs view's, except 'new', which says why the row is empty. */
const STATUS_TEXT: Record<RunStatus, string> = {
  new: 'no events',
  queued: 'queued',
  starting: 'starting',
  running: 'running',
  stopping: 'stopping',
  finished: 'finished',
  stopped: 'stopped',
  failed: 'failed',
  crashed: 'crashed',
  killed: 'killed',
  cancelled: 'cancelled',
  interrupted: 'interrupted',
};

const STATUS_HINT: Partial<Record<RunStatus, string>> = {
  crashed:
    'The trainer ended without a final event (the log ends mid-line or the process failed); resume continues from the last checkpoint.',
  interrupted: 'No final event yet: the run is running elsewhere or was interrupted.',
};

const COLUMNS: { key: MetricKey; label: string; title: string; format: (v: number | null) => string }[] = [
  { key: 'AA', label: 'AA', title: 'Average accuracy over all tasks after the last task (%)', format: (v) => fmt(v) },
  {
    key: 'BWT',
    label: 'BWT',
    title: 'Backward transfer (percentage points; negative = forgetting)',
    format: (v) => fmtSigned(v),
  },
  {
    key: 'forgetting',
    label: 'Forgetting',
    title: 'Mean forgetting, Chaudhry et al. (percentage points; lower is better)',
    format: (v) => fmt(v),
  },
  {
    key: 'FWT',
    label: 'FWT',
    title: 'Forward transfer against the zero-shot accuracy (percentage points)',
    format: (v) => fmtSigned(v),
  },
  { key: 'seconds', label: 'Time', title: 'Wall time of the run', format: (v) => fmtSeconds(v) },
];

export function statusPill(status: RunStatus): HTMLElement {
  return h('span', {
    class: `status status-${status}`,
    text: STATUS_TEXT[status],
    title: STATUS_HINT[status],
    data: { status },
  });
}

function metricCell(
  row: SummaryRow,
  key: MetricKey,
  best: Set<string>,
  format: (v: number | null) => string,
): HTMLElement {
  const raw = key === 'seconds' ? row.seconds : (row.metrics?.[key] ?? null);
  const isBest = best.has(row.key);
  const text = key === 'seconds' && raw != null && !row.secondsFinal ? `${format(raw)} so far` : format(raw);
  return h(
    'td',
    {
      class: `num${isBest ? ' best' : ''}`,
      data: { metric: key, value: raw == null ? undefined : String(raw), best: isBest ? 'true' : undefined },
    },
    isBest ? h('span', { class: 'best-mark', text: '\u2605', attrs: { 'aria-hidden': 'true' } }) : null,
    text,
    isBest ? h('span', { class: 'sr-only', text: ' (best)' }) : null,
  );
}

export function renderSummary(runs: RunState[], host: SummaryHost): HTMLElement {
  const rows = runs.map(summaryRow);
  const compare = runs.length > 1;
  // AA or BWT over different task sequences are not the same measurement: nothing is best then.
  const sameTasks = alignTasks(runs).same;
  const mark = compare && sameTasks;
  const best = new Map(COLUMNS.map((c) => [c.key, mark ? bestKeys(rows, c.key) : new Set<string>()]));
  const head = h(
    'tr',
    {},
    compare
      ? h(
          'th',
          { attrs: { scope: 'col' }, class: 'col-show' },
          h('span', { class: 'sr-only', text: 'shown in charts' }),
        )
      : null,
    h('th', { attrs: { scope: 'col' }, text: 'Run' }),
    h('th', { attrs: { scope: 'col' }, text: 'Method' }),
    h('th', { attrs: { scope: 'col' }, text: 'Status' }),
    ...COLUMNS.map((c) => h('th', { attrs: { scope: 'col' }, class: 'num', text: c.label, title: c.title })),
    h('th', { attrs: { scope: 'col' } }, h('span', { class: 'sr-only', text: 'actions' })),
  );
  const body = runs.map((run, i) => {
    const row = rows[i];
    const show = compare
      ? h(
          'td',
          { class: 'col-show' },
          h('vscode-checkbox', {
            attrs: { checked: !host.isHidden(run.key), 'aria-label': `show ${run.label} in the charts` },
            title: 'Show in the charts',
            on: { change: (ev) => host.setHidden(run.key, !(ev.currentTarget as HTMLInputElement).checked) },
          }),
        )
      : null;
    // A cell of an experiment that has not started waits in the grid: queued, under its method.
    const cellMethod = host.cellMethod?.(run.key) ?? run.meta.method;
    const method = row.method === '?' && cellMethod ? cellMethod : row.method;
    const status = row.status === 'new' && cellMethod ? 'queued' : row.status;
    const swatch = h('span', { class: 'swatch', attrs: { 'aria-hidden': 'true' } });
    swatch.style.background = host.colorOf(run);
    return h(
      'tr',
      { data: { run: run.key } },
      show,
      h(
        'th',
        { attrs: { scope: 'row' }, class: 'run-name' },
        h(
          'div',
          {},
          swatch,
          h('span', { class: 'run-label', text: run.label, title: runTitle(run) }),
          run.meta.tags?.length
            ? h(
                'span',
                { class: 'run-tags', title: runTitle(run) },
                ...run.meta.tags.map((t) => h('span', { class: 'run-tag', text: `#${t}` })),
              )
            : null,
        ),
      ),
      h('td', { text: method }),
      h(
        'td',
        {},
        statusPill(status),
        status !== 'finished' && row.tasksTotal
          ? h('span', {
              class: 'status-note',
              text: `${row.tasksDone}/${row.tasksTotal} tasks`,
              title: 'Metrics are after the last finished task',
            })
          : null,
      ),
      ...COLUMNS.map((c) => metricCell(row, c.key, best.get(c.key)!, c.format)),
      h(
        'td',
        { class: 'row-actions' },
        h('vscode-button', {
          attrs: { secondary: true },
          text: 'Folder',
          title: `Open ${run.key}`,
          on: { click: () => host.openFolder(run.key) },
        }),
      ),
    );
  });
  return h(
    'div',
    { class: 'table-scroll' },
    h(
      'table',
      { class: 'data-table summary-table', data: { table: 'summary' } },
      h('caption', {
        class: 'sr-only',
        text: !compare
          ? 'Run summary'
          : mark
            ? 'Runs compared, with the best value of each column marked'
            : 'Runs compared; they trained different task sequences, so no value is marked best',
      }),
      h('thead', {}, head),
      h('tbody', {}, ...body),
    ),
  );
}
