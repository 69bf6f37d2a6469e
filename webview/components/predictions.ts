/**
 * The Predictions tab: one run's per-example predictions (`eval.predictions`), asked of the host when shown and
 * again when the run has evaluated more, never pushed with events. A toolbar picks the evaluation point, split,
 * task and mode; a card shows the confusion matrix (charts/confusion.ts) and a table lists the misclassified
 * examples with the labels the model preferred, filtered by a (expected, predicted) pair from a select or a
 * click on the matrix. Inputs and labels come from data files and are only ever set as text.
 */
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { WebviewMessage } from '../../src/protocol/webview';
import type {
  MisclassifiedRow,
  PredictionPick,
  PredictionSetInfo,
  PredictionsMessage,
  PredictionsView,
} from '../../src/protocol/predictions';
import { frequentConfusions } from '../../src/runs/confusion';
import type { RunState } from '../state';
import type { PredictionsUi, UiState } from '../ui';
import { confusionSpec } from '../charts/confusion';
import { ChartCard, type CardHost } from './card';
import { clear, h, labelledSelect } from '../dom';

export interface PredictionsHost {
  card: CardHost;
  post(message: WebviewMessage): void;
  /** Draw again (a reply arrived, a filter changed). */
  schedule(): void;
}

export interface PredictionsContext {
  runs: RunState[];
  ui: UiState;
  setUi(patch: Partial<UiState>): void;
}

type Filter = { expected: string; predicted: string } | null;

const SPLITS = ['test', 'validation'] as const;

/** What an evaluation point is called: "zero-shot", "after topic (task 2)". */
export function pointLabel(run: RunState, point: string, afterTask: number): string {
  if (afterTask < 0) return 'zero-shot';
  const name = run.tasks[afterTask];
  return name ? `after ${name} (task ${afterTask + 1})` : point.replace(/-/g, ' ');
}

/** A picker of this tab, named by its data-control. */
const select = (
  label: string,
  control: string,
  options: { value: string; label: string }[],
  value: string,
  onChange: (v: string) => void,
): HTMLElement => labelledSelect(label, options, value, onChange, control);

const unique = <T>(xs: T[]): T[] => [...new Set(xs)];
const percent = (share: number) => (share > 0 && share < 0.005 ? '<1%' : `${Math.round(100 * share)}%`);

export class PredictionsPanel {
  readonly el: HTMLElement;
  private readonly toolbar = h('div', { class: 'tab-toolbar' });
  private readonly statusEl = h('p', { class: 'card-empty', attrs: { role: 'status' } });
  private readonly noteEl = h('p', { class: 'table-note predictions-note' });
  private readonly grid: HTMLElement;
  private readonly card: ChartCard;
  private readonly list = h('section', { class: 'card predictions-list', data: { card: 'misclassified' } });
  private reply: PredictionsMessage | null = null;
  /** The last request: what it asked (to ask again only when that changes) and its id (older replies are late). */
  private asked = '';
  private waiting = 0;
  private nextId = 1;
  private filter: Filter = null;
  private drawn = '';

  constructor(private readonly host: PredictionsHost) {
    this.card = new ChartCard('confusion', host.card);
    this.grid = h('div', { class: 'grid grid-predictions' }, this.card.el, this.list);
    this.el = h(
      'div',
      { class: 'predictions', data: { view: 'predictions' } },
      this.toolbar,
      this.statusEl,
      this.noteEl,
    );
    this.el.append(this.grid);
  }

  receive(msg: PredictionsMessage): void {
    if (msg.requestId !== this.waiting) return;
    if (this.reply?.view?.set.file !== msg.view?.set.file || this.reply?.view?.set.point !== msg.view?.set.point)
      this.filter = null;
    this.reply = msg;
    this.host.schedule();
  }

  private runOf(ctx: PredictionsContext): RunState | undefined {
    return ctx.runs.find((r) => r.key === ctx.ui.predictions.run) ?? ctx.runs[0];
  }

  render(ctx: PredictionsContext): void {
    const run = this.runOf(ctx);
    if (!run) {
      this.show('No run to show.');
      return;
    }
    const p = ctx.ui.predictions;
    const pick: PredictionPick =
      p.run === run.key ? { point: p.point, split: p.split, task: p.task, mode: p.mode } : {};
    // A run that evaluated again (a task finished, the run ended or resumed) may have written a new point.
    const progress = [
      run.taskMetrics.filter((m) => m != null).length,
      run.spans.length,
      run.summary.status,
      run.resumes,
    ];
    const ask = JSON.stringify([run.key, pick, progress]);
    if (ask !== this.asked) {
      this.asked = ask;
      this.waiting = this.nextId++;
      this.host.post({ type: 'predictions-request', requestId: this.waiting, key: run.key, pick: clean(pick) });
    }
    const reply = this.reply?.key === run.key ? this.reply : null;
    const sig = JSON.stringify([
      reply?.requestId,
      this.filter,
      ctx.ui.tables.includes('confusion'),
      this.host.card.paletteVersion(),
      run.tasks,
      ctx.runs.map((r) => [r.key, r.label]),
    ]);
    if (sig === this.drawn) return;
    this.drawn = sig;
    clear(this.toolbar, ...this.controls(ctx, run, reply));
    if (!reply) {
      this.show('Loading predictions\u2026');
      return;
    }
    if (!reply.view) {
      this.show(
        reply.error
          ? `The predictions could not be read: ${reply.error}`
          : run.summary.status === 'finished'
            ? 'This run folder has no predictions: the run had `eval.predictions` set to "none", or was made before Sculpt wrote them.'
            : 'No predictions yet: they are written after the last task (`eval.predictions`: "final", the default), or after every evaluation with "all".',
      );
      return;
    }
    this.statusEl.hidden = true;
    this.grid.hidden = false;
    const notes = [
      reply.error ? `Some predictions could not be read: ${reply.error}` : '',
      reply.view.badLines ? `${reply.view.badLines} damaged line(s) of the file were skipped.` : '',
    ].filter(Boolean);
    this.noteEl.textContent = notes.join(' ');
    this.noteEl.hidden = !notes.length;
    const set = reply.view.set;
    this.card.update(
      confusionSpec(reply.view, {
        runLabel: run.label,
        runKey: run.key,
        pointLabel: pointLabel(run, set.point, set.afterTask),
        onCell: (expected, predicted) => {
          this.filter = expected === predicted ? null : { expected, predicted };
          this.drawn = '';
          this.host.schedule();
        },
      }),
    );
    clear(this.list, ...this.misclassified(reply.view));
  }

  private show(text: string): void {
    this.statusEl.textContent = text;
    this.statusEl.hidden = false;
    this.noteEl.hidden = true;
    this.grid.hidden = true;
    this.card.destroyChart();
  }

  /** Run, evaluation point, split, task and mode; a choice is offered only where there is more than one. */
  private controls(ctx: PredictionsContext, run: RunState, reply: PredictionsMessage | null): HTMLElement[] {
    const out: HTMLElement[] = [];
    if (ctx.runs.length > 1) {
      out.push(
        select(
          'Run',
          'predictions-run',
          ctx.runs.map((r) => ({ value: r.key, label: r.label })),
          run.key,
          (v) => ctx.setUi({ predictions: { run: v } }),
        ),
      );
    }
    const set = reply?.view?.set;
    if (!reply || !set) return out;
    const sets = reply.sets;
    const choose = (patch: Partial<PredictionsUi>) =>
      ctx.setUi({
        predictions: { run: run.key, point: set.point, split: set.split, task: set.task, mode: set.mode, ...patch },
      });
    const points = unique(sets.map((s) => s.point)).map((point) => {
      const at = sets.find((s) => s.point === point)!.afterTask;
      return { value: point, label: pointLabel(run, point, at) };
    });
    out.push(select('Evaluation', 'predictions-point', points, set.point, (v) => choose({ point: v })));
    const here = sets.filter((s) => s.point === set.point);
    const splits = SPLITS.filter((sp) => here.some((s) => s.split === sp));
    if (splits.length > 1) {
      out.push(
        select(
          'Split',
          'predictions-split',
          splits.map((s) => ({ value: s, label: s })),
          set.split,
          (v) => choose({ split: v as PredictionSetInfo['split'] }),
        ),
      );
    }
    const inSplit = here.filter((s) => s.split === set.split);
    const tasks = unique(inSplit.map((s) => s.task)).map((t) => ({
      value: String(t),
      label: inSplit.find((s) => s.task === t)!.name,
    }));
    out.push(select('Task', 'predictions-task', tasks, String(set.task), (v) => choose({ task: Number(v) })));
    const modes = unique(inSplit.filter((s) => s.task === set.task).map((s) => s.mode));
    if (modes.length > 1) {
      out.push(
        select(
          'Mode',
          'predictions-mode',
          modes.map((m) => ({ value: m, label: m })),
          set.mode,
          (v) => choose({ mode: v as PredictionSetInfo['mode'] }),
        ),
      );
    }
    return out;
  }

  private misclassified(view: PredictionsView): (HTMLElement | null)[] {
    const f = this.filter;
    const rows = f
      ? view.misclassified.filter((r) => r.expected === f.expected && r.predicted === f.predicted)
      : view.misclassified;
    const pairs = view.confusion ? frequentConfusions(view.confusion, Infinity) : [];
    const filterSelect =
      pairs.length > 1
        ? select(
            'Show',
            'predictions-filter',
            [
              { value: '', label: `all (${view.misclassifiedTotal})` },
              ...pairs.map((c) => ({
                value: JSON.stringify([c.expected, c.predicted]),
                label: `${c.expected} \u2192 ${c.predicted} (${c.count})`,
              })),
            ],
            f ? JSON.stringify([f.expected, f.predicted]) : '',
            (v) => {
              const pair = v ? (JSON.parse(v) as [string, string]) : null;
              this.filter = pair && { expected: pair[0], predicted: pair[1] };
              this.drawn = '';
              this.host.schedule();
            },
          )
        : null;
    const rank = view.set.mode === 'rank';
    const caption = f
      ? `Misclassified examples: expected ${f.expected}, predicted ${f.predicted} (${rows.length})`
      : `Misclassified examples (${view.misclassifiedTotal} of ${view.set.examples})`;
    const head = h(
      'tr',
      {},
      ...['index', 'input', 'expected', 'predicted', ...(rank ? ['scores (share of probability)'] : [])].map((c) =>
        h('th', { attrs: { scope: 'col' }, text: c }),
      ),
    );
    const body = rows.map((r) => misclassifiedRow(r, rank));
    const cut = view.misclassified.length < view.misclassifiedTotal;
    return [
      h(
        'header',
        { class: 'card-head' },
        h('div', { class: 'card-titles' }, h('h3', { class: 'card-title', text: 'Misclassified examples' })),
        filterSelect,
      ),
      rows.length
        ? h(
            'div',
            { class: 'table-scroll', attrs: { tabindex: 0, role: 'region', 'aria-label': caption } },
            h(
              'table',
              { class: 'data-table predictions-table', data: { table: 'misclassified' } },
              h('caption', { text: caption }),
              h('thead', {}, head),
              h('tbody', {}, ...body),
            ),
          )
        : h('p', { class: 'card-empty', text: f ? 'No such examples.' : 'Every example is classified correctly.' }),
      cut
        ? h('p', {
            class: 'table-note',
            text: `The first ${view.misclassified.length} of ${view.misclassifiedTotal} are listed; all are in ${view.set.point}/${view.set.file} in the run folder.`,
          })
        : null,
    ];
  }
}

function misclassifiedRow(r: MisclassifiedRow, rank: boolean): HTMLElement {
  return h(
    'tr',
    { data: { index: r.index } },
    h('td', { class: 'num', text: String(r.index) }),
    h('td', {
      class: 'prediction-input',
      text: r.inputTruncated ? `${r.input}\u2026` : r.input,
      title: r.inputTruncated ? 'cut at 500 characters' : undefined,
    }),
    h('td', { class: 'prediction-expected', text: r.expected }),
    h('td', { class: 'prediction-predicted', text: r.predicted }),
    rank
      ? h('td', {
          class: 'prediction-scores',
          text: r.top.map((s) => `${s.label} ${percent(s.share)}`).join(' \u00b7 '),
          title: r.top.map((s) => `${s.label}: log p = ${s.logprob.toFixed(3)}`).join('\n'),
        })
      : null,
  );
}

/** The pick without unset parts (a message is JSON: undefined fields would vanish anyway). */
function clean(p: PredictionPick): PredictionPick {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as PredictionPick;
}
