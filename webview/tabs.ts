/** What each tab shows: its toolbar controls and the chart specs, for the runs currently shown. */
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import type { WebviewMessage } from '../src/protocol/webview';
import type { RunState } from './state';
import type { ChartSpec } from './charts/spec';
import { averageAccuracySpec, forgettingSpec, matrixSpec } from './charts/accuracy';
import { lossSpec, throughputSpec } from './charts/training';
import { ranksBarsSpec, ranksHeatmapSpec } from './charts/ranks';
import { experimentSpecs } from './charts/experiment';
import type { ExperimentModel } from './experiment/model';
import { ranksAt } from './derive';
import type { TabId, UiState } from './ui';
import { h, labelledSelect as select } from './dom';

export interface TabContext {
  runs: RunState[];
  /** The experiment view's model, computed when the Experiment tab is drawn. */
  experiment: ExperimentModel | null;
  ui: UiState;
  colorIndex(run: RunState): number;
  setUi(patch: Partial<UiState>): void;
  post(message: WebviewMessage): void;
}

/** Runs drawn in overlaid charts: all but those the user hid (never none: hiding every run shows them all). */
function shown(ctx: TabContext): RunState[] {
  const v = ctx.runs.filter((r) => !ctx.ui.hidden.includes(r.key));
  return v.length ? v : ctx.runs;
}

function ranksRun(ctx: TabContext): RunState | undefined {
  return ctx.runs.find((r) => r.key === ctx.ui.ranksRun) ?? ctx.runs.find((r) => r.ranks.length) ?? ctx.runs[0];
}

export function tabSpecs(tab: TabId, ctx: TabContext): ChartSpec[] {
  const runs = shown(ctx);
  if (!runs.length) return [];
  const multi = ctx.runs.length > 1;
  switch (tab) {
    case 'experiment':
      // Every run counts here, hidden or not: the aggregate is over the experiment's cells.
      return ctx.experiment ? experimentSpecs(ctx.experiment) : [];
    case 'accuracy':
      return [
        ...runs.map((r) => matrixSpec(r, multi ? `: ${r.label}` : '')),
        averageAccuracySpec(runs, ctx.colorIndex, multi),
        forgettingSpec(runs, ctx.colorIndex, multi),
      ];
    case 'training':
      return [
        lossSpec(runs, ctx.colorIndex, { log: ctx.ui.logLoss, compare: multi }),
        throughputSpec(runs, ctx.colorIndex, multi),
      ];
    case 'subspace': {
      const run = ranksRun(ctx);
      if (!run) return [];
      return [ranksHeatmapSpec(run), ranksBarsSpec(run, ranksAt(run, ctx.ui.boundary))];
    }
    case 'predictions':
      // Drawn by its own view (components/predictions.ts): its data comes from the host on request.
      return [];
  }
}

export function tabToolbar(tab: TabId, ctx: TabContext): HTMLElement[] {
  if (tab === 'training') {
    return [
      h('vscode-checkbox', {
        attrs: { checked: ctx.ui.logLoss, label: 'Log scale loss' },
        data: { control: 'log-loss' },
        on: { change: (ev) => ctx.setUi({ logLoss: (ev.currentTarget as HTMLInputElement).checked }) },
      }),
    ];
  }
  if (tab === 'subspace') {
    const run = ranksRun(ctx);
    if (!run) return [];
    const out: HTMLElement[] = [];
    const withRanks = ctx.runs.filter((r) => r.ranks.length);
    if (ctx.runs.length > 1) {
      out.push(
        select(
          'Run',
          (withRanks.length ? withRanks : ctx.runs).map((r) => ({ value: r.key, label: r.label })),
          run.key,
          (v) => ctx.setUi({ ranksRun: v, boundary: null }),
        ),
      );
    }
    const current = ranksAt(run, ctx.ui.boundary);
    if (run.ranks.length) {
      out.push(
        select(
          'Boundary',
          run.ranks.map((r) => ({
            value: String(r.beforeTask),
            label: `before ${run.tasks[r.beforeTask] ?? `task ${r.beforeTask + 1}`}`,
          })),
          String(current?.beforeTask ?? ''),
          (v) => {
            const beforeTask = Number(v);
            ctx.setUi({ boundary: beforeTask });
            ctx.post({ type: 'select-boundary', key: run.key, beforeTask });
          },
        ),
      );
    }
    return out;
  }
  return [];
}
