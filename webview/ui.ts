/** UI choices that survive a reload (tab, table views, hidden runs, ...), kept with VS Code's setState. */

export type TabId = 'experiment' | 'accuracy' | 'training' | 'subspace' | 'predictions';

/** The predictions shown: a run and the parts of a set picked so far (the host fills in the rest). */
export interface PredictionsUi {
  run: string | null;
  point?: string;
  split?: 'test' | 'validation';
  task?: number;
  mode?: 'rank' | 'generate';
}

export interface UiState {
  tab: TabId;
  /**
   * Whether the user picked the tab: until then the dashboard opens on the Experiment tab when it shows several
   * runs per method, else on Accuracy.
   */
  tabPicked: boolean;
  /** Card ids showing their table instead of the chart. */
  tables: string[];
  /** Run keys hidden from the overlaid charts in compare mode. */
  hidden: string[];
  /** Run shown in the subspace tab. */
  ranksRun: string | null;
  /** Boundary (beforeTask) shown in the per-matrix chart. */
  boundary: number | null;
  logLoss: boolean;
  /** Exported charts on white with light colours, whatever the theme (else on the theme's background). */
  exportWhite: boolean;
  predictions: PredictionsUi;
}

/** In order; the Experiment tab is offered only for experiments and several runs per method (see app.ts). */
export const TABS: { id: TabId; label: string }[] = [
  { id: 'experiment', label: 'Experiment' },
  { id: 'accuracy', label: 'Accuracy' },
  { id: 'training', label: 'Training' },
  { id: 'subspace', label: 'Subspace ranks' },
  { id: 'predictions', label: 'Predictions' },
];

export function defaultUi(): UiState {
  return {
    tab: 'accuracy',
    tabPicked: false,
    tables: [],
    hidden: [],
    ranksRun: null,
    boundary: null,
    logLoss: false,
    exportWhite: false,
    predictions: { run: null },
  };
}

/** Reads what an earlier page stored, keeping only well-formed fields (the state may come from an older build). */
export function restoreUi(raw: unknown): UiState {
  const ui = defaultUi();
  if (!raw || typeof raw !== 'object') return ui;
  const r = raw as Record<string, unknown>;
  const strings = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
  if (TABS.some((t) => t.id === r.tab)) ui.tab = r.tab as TabId;
  ui.tabPicked = r.tabPicked === true;
  ui.tables = strings(r.tables);
  ui.hidden = strings(r.hidden);
  if (typeof r.ranksRun === 'string') ui.ranksRun = r.ranksRun;
  if (typeof r.boundary === 'number' && Number.isInteger(r.boundary)) ui.boundary = r.boundary;
  ui.logLoss = r.logLoss === true;
  ui.exportWhite = r.exportWhite === true;
  ui.predictions = restorePredictions(r.predictions);
  return ui;
}

function restorePredictions(raw: unknown): PredictionsUi {
  const out: PredictionsUi = { run: null };
  if (!raw || typeof raw !== 'object') return out;
  const p = raw as Record<string, unknown>;
  if (typeof p.run === 'string') out.run = p.run;
  if (typeof p.point === 'string') out.point = p.point;
  if (p.split === 'test' || p.split === 'validation') out.split = p.split;
  if (typeof p.task === 'number' && Number.isInteger(p.task)) out.task = p.task;
  if (p.mode === 'rank' || p.mode === 'generate') out.mode = p.mode;
  return out;
}
