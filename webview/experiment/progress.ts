/**
 * The head of the Experiment tab: what the grid is (methods × orders × seeds) and where each of its cells
 * stands: queued, running (with its task and progress), finished, failed or stopped. Updated live as events and
 * trainer exits arrive; a cell that has not started is shown with its method (known from experiment.json).
 */
import type { ExperimentAggregate } from '../../src/runs/aggregate-types';
import type { CellState, ExperimentModel, GridCell } from './model';
import { h } from '../dom';

const STATE_ORDER: CellState[] = ['finished', 'running', 'queued', 'stopped', 'failed'];

/** The precise status when it says more than the cell's state ("failed (crashed)"). */
function stateText(c: GridCell): string {
  const plain: Record<CellState, string[]> = {
    queued: ['new', 'queued'],
    running: ['starting', 'running'],
    finished: ['finished'],
    failed: ['failed'],
    stopped: ['stopped'],
  };
  return plain[c.state].includes(c.status) ? c.state : `${c.state} (${c.status})`;
}

function cellTitle(c: GridCell, counted: Set<string>): string {
  const lines = [c.label === c.name ? c.name : `${c.label}: ${c.name}`];
  if (c.state === 'queued') lines.push('Not started yet.');
  if (c.state === 'finished') lines.push(counted.has(c.name) ? 'Counted in the aggregate.' : 'Not counted.');
  else lines.push('Not counted in the aggregate (only finished runs are).');
  if (c.error) lines.push(c.error);
  return lines.join('\n');
}

function gridTable(model: ExperimentModel, counted: Set<string>): HTMLElement {
  const head = h(
    'tr',
    {},
    h('th', { attrs: { scope: 'col' }, text: 'method' }),
    ...model.columns.map((col) => h('th', { attrs: { scope: 'col' }, text: col.label })),
  );
  const body = model.methods.map((method, i) =>
    h(
      'tr',
      { data: { method } },
      h('th', { attrs: { scope: 'row' }, text: method }),
      ...model.grid[i].map((c) =>
        c
          ? h(
              'td',
              {
                class: `grid-cell cell-${c.state}`,
                title: cellTitle(c, counted),
                data: {
                  cell: c.key,
                  state: c.state,
                  status: c.status,
                  method: c.method,
                  order: c.order,
                  seed: c.seed,
                  counted: counted.has(c.name) ? 'true' : 'false',
                },
              },
              h('span', { class: `status status-${c.state}`, text: stateText(c) }),
              c.progress ? h('span', { class: 'cell-progress', text: c.progress }) : null,
            )
          : h('td', { class: 'grid-cell cell-none', text: '' }),
      ),
    ),
  );
  return h(
    'div',
    { class: 'table-scroll' },
    h(
      'table',
      { class: 'data-table experiment-grid', data: { table: 'experiment-grid' } },
      h('caption', { class: 'sr-only', text: 'Cells of the experiment: method by order and seed, with their state' }),
      h('thead', {}, head),
      h('tbody', {}, ...body),
    ),
  );
}

function countedNames(agg: ExperimentAggregate): Set<string> {
  return new Set(agg.methods.flatMap((m) => m.cells.filter((c) => c.counted).map((c) => c.name)));
}

export function renderExperimentHead(model: ExperimentModel): HTMLElement {
  const total = model.grid.reduce((s, row) => s + row.filter(Boolean).length, 0);
  const counts = STATE_ORDER.filter((s) => model.counts[s] > 0).map((s) => `${model.counts[s]} ${s}`);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const shape = model.shape
    ? [
        plural(model.shape.methods, 'method'),
        plural(model.shape.orders, 'order'),
        plural(model.shape.seeds, 'seed'),
      ].join(' \u00d7 ')
    : `${plural(model.methods.length, 'method')} \u00d7 ${plural(model.columns.length, '(order, seed) cell')}`;
  const baseline = model.aggregate.baseline;
  return h(
    'section',
    { class: 'experiment-head', data: { experiment: model.name ?? '' } },
    h(
      'p',
      { class: 'experiment-line' },
      h('strong', { text: `${total} run${total === 1 ? '' : 's'}` }),
      ` (${shape})${counts.length ? `: ${counts.join(' \u00b7 ')}` : ''}`,
      baseline ? ` \u00b7 baseline ${baseline}` : '',
    ),
    gridTable(model, countedNames(model.aggregate)),
  );
}
