/**
 * The dashboard application: owns the state, the UI choices and the cards, and renders at most once per frame
 * however fast events arrive. Only the visible tab's charts are drawn; the others catch up when shown.
 */
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import type { ExportFile, HostMessage } from '../src/protocol/webview';
import { WEBVIEW_PROTOCOL, exportFileName } from '../src/protocol/webview';
import { emptyDashboard, reduceHost, type DashboardState, type RunState } from './state';
import { exportPalette, readPalette, seriesColor, themeKindFromBody, type Palette } from './theme';
import { applyChartDefaults } from './charts/setup';
import { ChartCard, type CardHost } from './components/card';
import { renderSummary } from './components/summary';
import { overallProgress, renderNotices, runFacts, runProgress, titleText } from './components/header';
import { tabSpecs, tabToolbar, type TabContext } from './tabs';
import type { ChartSpec } from './charts/spec';
import { restoreUi, TABS, type TabId, type UiState } from './ui';
import { experimentModel, hasExperimentView, severalRunsPerMethod, type ExperimentModel } from './experiment/model';
import { renderExperimentHead } from './experiment/progress';
import { clear, h } from './dom';
import { runsJson } from './export';
import { summaryRow } from './derive';
import type { HostBridge } from './vscode-api';
import { chartFiles } from './chart-export';
import { alignTasks } from './align';
import { PredictionsPanel } from './components/predictions';

export class DashboardApp implements CardHost {
  state: DashboardState = emptyDashboard(themeKindFromBody());
  ui: UiState;
  private pal: Palette;
  private palVersion = 0;
  private readonly cards = new Map<string, ChartCard>();
  private readonly grids = new Map<TabId, HTMLElement>();
  private readonly toolbars = new Map<TabId, HTMLElement>();
  private readonly tabParts = new Map<TabId, [HTMLElement, HTMLElement]>();
  /** The Experiment tab's grid of cells, above its cards. */
  private readonly experimentHead = h('div', { class: 'experiment-head-box' });
  /** The Predictions tab, which asks the host for its data. */
  private readonly predictions: PredictionsPanel;
  /** The tabs offered now, in order (the Experiment tab only for experiments and several runs per method). */
  private offered: TabId[] = [];
  private readonly sigs = new Map<string, string>();
  private readonly titleEl = h('h1', { class: 'title' });
  private readonly factsEl = h('div', { class: 'facts-box' });
  private readonly progressEl = h('div', { class: 'progress-box' });
  private readonly summaryEl = h('div', { class: 'summary-box' });
  private readonly noticesEl = h('div', { class: 'notices-box' });
  private readonly toastEl = h('div', { class: 'toast', attrs: { role: 'status', 'aria-live': 'polite' } });
  private readonly tabsEl: HTMLElement & { selectedIndex: number };
  private pending = false;
  private renders = 0;
  private nextRequest = 1;

  constructor(
    root: HTMLElement,
    private readonly bridge: HostBridge,
  ) {
    const saved = bridge.getState() as { ui?: unknown } | undefined;
    this.ui = restoreUi(saved?.ui);
    this.pal = readPalette(this.state.theme);
    applyChartDefaults(this.pal);
    this.tabsEl = h('vscode-tabs', {}) as HTMLElement & { selectedIndex: number };
    this.predictions = new PredictionsPanel({
      card: this,
      post: (m) => bridge.post(m),
      schedule: () => this.schedule(),
    });
    for (const t of TABS) {
      const grid = h('div', { class: `grid grid-${t.id}`, data: { grid: t.id } });
      const bar = h('div', { class: 'tab-toolbar' });
      this.grids.set(t.id, grid);
      this.toolbars.set(t.id, bar);
      this.tabParts.set(t.id, [
        h('vscode-tab-header', { attrs: { slot: 'header' }, data: { tab: t.id }, text: t.label }),
        h(
          'vscode-tab-panel',
          { data: { panel: t.id } },
          bar,
          t.id === 'experiment' ? this.experimentHead : null,
          t.id === 'predictions' ? this.predictions.el : null,
          grid,
        ),
      ]);
    }
    this.syncTabs();
    this.tabsEl.addEventListener('vsc-tabs-select', (ev) => {
      const i = (ev as CustomEvent<{ selectedIndex: number }>).detail.selectedIndex;
      this.setUi({ tab: this.offered[i] ?? 'accuracy', tabPicked: true });
    });
    const exportJson = h('vscode-button', {
      attrs: { secondary: true },
      text: 'Export JSON',
      title: 'Save every shown run (events and summary) as JSON',
      data: { action: 'export-json' },
      on: { click: () => this.exportJson() },
    });
    const exportCharts = h('vscode-button', {
      attrs: { secondary: true },
      text: 'Export all charts',
      title: 'Save every chart of this tab (PNG, SVG and CSV) into a new folder beside the experiment or run',
      data: { action: 'export-all' },
      on: { click: () => this.exportAll() },
    });
    const white = h('vscode-checkbox', {
      attrs: { checked: this.ui.exportWhite, label: 'White background' },
      title: 'Export charts on white with light colours, whatever the theme',
      data: { control: 'export-white' },
      on: { change: (ev) => this.setUi({ exportWhite: (ev.currentTarget as HTMLInputElement).checked }) },
    });
    clear(
      root,
      h(
        'header',
        { class: 'top' },
        h('div', { class: 'top-titles' }, this.titleEl, this.factsEl),
        h('div', { class: 'top-actions' }, white, exportCharts, exportJson),
      ),
      this.progressEl,
      this.summaryEl,
      this.noticesEl,
      this.tabsEl,
      this.toastEl,
    );
    // VS Code switches the body class on theme changes; the host's theme message may come later or not at all.
    new MutationObserver(() => this.refreshTheme()).observe(document.body, {
      attributes: true,
      attributeFilter: ['class'],
    });
  }

  receive(msg: HostMessage): void {
    reduceHost(this.state, msg);
    if (msg.type === 'predictions') this.predictions.receive(msg);
    if (msg.type === 'theme' || msg.type === 'init') this.refreshTheme();
    if (msg.type === 'init' || msg.type === 'runs') this.persist();
    this.schedule();
  }

  // ---- CardHost ----
  palette(): Palette {
    return this.pal;
  }
  paletteVersion(): number {
    return this.palVersion;
  }
  isTable(id: string): boolean {
    return this.ui.tables.includes(id);
  }
  toggleTable(id: string): void {
    this.setUi({ tables: this.isTable(id) ? this.ui.tables.filter((t) => t !== id) : [...this.ui.tables, id] });
  }
  exportFile(format: 'png' | 'svg' | 'csv' | 'json', fileBase: string, data: string, runKey?: string): void {
    this.bridge.post({
      type: 'export',
      requestId: this.nextRequest++,
      format,
      suggestedName: `${exportFileName(fileBase)}.${format}`,
      key: runKey,
      data,
    });
  }

  /** One chart as a file beside its run (or the experiment): PNG and SVG with a title, or its data as CSV. */
  exportChart(spec: ChartSpec, format: 'png' | 'svg' | 'csv'): void {
    try {
      const data =
        format === 'csv'
          ? spec.csv
            ? spec.csv()
            : ''
          : chartFiles(spec, exportPalette(this.pal, this.ui.exportWhite), this.pal, this.exportContext())[format];
      this.exportFile(format, spec.fileBase, data, spec.runKey);
    } catch (e) {
      this.exportFailed(e);
    }
  }

  /** "Export all charts": every chart of the tab shown, as PNG, SVG and CSV, into one new folder. */
  exportAll(): void {
    try {
      const tab = this.currentTab();
      const specs = tabSpecs(tab, this.tabContext(tab)).filter((s) => !s.empty);
      if (!specs.length) {
        this.state.notice = { text: 'This tab has no chart to export yet.', kind: 'info' };
        this.schedule();
        return;
      }
      const palette = exportPalette(this.pal, this.ui.exportWhite);
      const context = this.exportContext();
      const files: ExportFile[] = specs.flatMap((spec) => {
        const f = chartFiles(spec, palette, this.pal, context);
        const base = exportFileName(spec.fileBase);
        return (['png', 'svg', 'csv'] as const).map((format) => ({
          format,
          name: `${base}.${format}`,
          data: f[format],
        }));
      });
      const exp = this.state.experiment;
      const runs = this.state.runs;
      const base = exp ? exp.name : runs.length === 1 ? runs[0].name : 'compare';
      this.bridge.post({
        type: 'export-files',
        requestId: this.nextRequest++,
        folder: exportFileName(base, tab, 'charts'),
        files,
      });
    } catch (e) {
      this.exportFailed(e);
    }
  }

  private exportFailed(e: unknown): void {
    this.state.notice = { text: `Export failed: ${(e as Error).message}`, kind: 'error' };
    this.bridge.post({ type: 'webview-error', message: `export: ${(e as Error).stack ?? String(e)}` });
    this.schedule();
  }

  /** What exported charts are of: the dashboard's title (the experiment, or the run's label). */
  private exportContext(): string {
    return titleText(this.state.runs, this.state.experiment);
  }

  colorIndex(run: RunState): number {
    return Math.max(0, this.state.runs.indexOf(run));
  }

  setUi(patch: Partial<UiState>): void {
    this.ui = { ...this.ui, ...patch };
    this.persist();
    this.schedule();
  }

  private persist(): void {
    this.bridge.setState({
      protocol: WEBVIEW_PROTOCOL,
      runKeys: this.state.runs.map((r) => r.key),
      ...(this.state.experiment ? { experimentDir: this.state.experiment.dir } : {}),
      ui: this.ui,
    });
  }

  private exportJson(): void {
    const runs = this.state.runs;
    if (!runs.length) return;
    const exp = this.state.experiment;
    const aggregate = hasExperimentView(this.state) ? experimentModel(this.state).aggregate : undefined;
    const base = exp ? exp.name : runs.length === 1 ? runs[0].name : 'sculpt-compare';
    // One run's export goes into its folder; an experiment's or a comparison's beside the runs (the host's default).
    this.exportFile(
      'json',
      base,
      runsJson(runs, { experiment: exp, aggregate }),
      exp || runs.length > 1 ? undefined : runs[0].key,
    );
  }

  /**
   * The tab shown: the user's pick, else the Experiment tab when some method has several runs, else Accuracy;
   * never a tab that is not offered.
   */
  private currentTab(): TabId {
    const tab = this.ui.tabPicked ? this.ui.tab : severalRunsPerMethod(this.state) ? 'experiment' : this.ui.tab;
    return this.offered.includes(tab) ? tab : 'accuracy';
  }

  /** Adds or removes the Experiment tab as the runs shown call for it, and selects the current tab. */
  private syncTabs(): void {
    const offered = TABS.map((t) => t.id).filter((id) => id !== 'experiment' || hasExperimentView(this.state));
    if (offered.join() !== this.offered.join()) {
      for (const [id, parts] of this.tabParts) {
        if (!offered.includes(id)) for (const el of parts) el.remove();
      }
      // Inserted in order; parts already in place stay (moving a canvas makes Chart.js rebind it).
      offered.forEach((id, i) => {
        const [header, panel] = this.tabParts.get(id)!;
        if (header.parentElement === this.tabsEl) return;
        const before =
          offered
            .slice(i + 1)
            .map((x) => this.tabParts.get(x)![0])
            .find((el) => el.parentElement === this.tabsEl) ?? null;
        this.tabsEl.insertBefore(header, before);
        this.tabsEl.insertBefore(panel, before);
      });
      this.offered = offered;
    }
    const index = this.offered.indexOf(this.currentTab());
    if (this.tabsEl.selectedIndex !== index) this.tabsEl.selectedIndex = index;
  }

  private refreshTheme(): void {
    const kind = themeKindFromBody();
    this.pal = readPalette(kind);
    applyChartDefaults(this.pal);
    this.palVersion++;
    this.sigs.clear();
    this.schedule();
  }

  schedule(): void {
    if (this.pending) return;
    this.pending = true;
    const run = () => {
      this.pending = false;
      this.render();
    };
    // Hidden documents get no animation frames; fall back to a timer so state and markers stay current.
    if (document.hidden) setTimeout(run, 50);
    else requestAnimationFrame(run);
  }

  /**
   * Parts with controls (summary, toolbars) are rebuilt only when what they show changes: rebuilding them on
   * every live event would swallow clicks and close open dropdowns.
   */
  private changed(part: string, sig: unknown): boolean {
    const s = JSON.stringify(sig);
    if (this.sigs.get(part) === s) return false;
    this.sigs.set(part, s);
    return true;
  }

  render(): void {
    const runs = this.state.runs;
    this.syncTabs();
    this.titleEl.textContent = titleText(runs, this.state.experiment);
    clear(this.factsEl, runs.length === 1 ? runFacts(runs[0]) : null);
    clear(this.progressEl, overallProgress(runs), ...runs.map(runProgress));
    const rows = runs.map(summaryRow);
    const summarySig = [
      this.palVersion,
      this.ui.hidden,
      this.state.experiment?.cells.map((c) => c.key),
      rows.map((r, i) => [
        r.key,
        r.name,
        r.label,
        runs[i].meta,
        r.method,
        r.status,
        r.metrics,
        r.tasksDone,
        r.tasksTotal,
        Math.round(r.seconds ?? -1),
      ]),
    ];
    if (this.changed('summary', summarySig)) {
      clear(
        this.summaryEl,
        runs.length
          ? renderSummary(runs, {
              colorOf: (r) => seriesColor(this.pal, this.colorIndex(r)),
              isHidden: (k) => this.ui.hidden.includes(k),
              setHidden: (k, hide) =>
                this.setUi({
                  hidden: hide ? [...new Set([...this.ui.hidden, k])] : this.ui.hidden.filter((x) => x !== k),
                }),
              openFolder: (key) => this.bridge.post({ type: 'open-run-folder', key }),
              cellMethod: (key) => this.state.experiment?.cells.find((c) => c.key === key)?.method,
            })
          : h('p', { class: 'card-empty', text: 'Waiting for runs\u2026' }),
      );
    }
    const noticeSig = [
      this.state.protocolError,
      alignTasks(runs).sequences,
      runs.map((r) => [
        r.key,
        r.warnings.length,
        r.error?.seq,
        r.stopped?.seq,
        r.log,
        r.exitCode,
        rows[runs.indexOf(r)].status,
      ]),
    ];
    if (this.changed('notices', noticeSig)) clear(this.noticesEl, renderNotices(this.state));
    if (this.state.notice) {
      this.toastEl.textContent = this.state.notice.text;
      this.toastEl.className = `toast toast-${this.state.notice.kind} visible`;
      this.state.notice = null;
      setTimeout(() => this.toastEl.classList.remove('visible'), 4000);
    }
    this.renderTab(this.currentTab());
    this.renders++;
    const total = runs.reduce((s, r) => s + r.events.length, 0);
    // Markers for tests and benchmarks: how many events the drawn picture includes.
    document.documentElement.dataset.sculptEvents = String(total);
    document.documentElement.dataset.sculptRenders = String(this.renders);
  }

  private renderTab(tab: TabId): void {
    const runs = this.state.runs;
    let model: ExperimentModel | null = null;
    if (tab === 'experiment') {
      model = experimentModel(this.state);
      const headSig = [
        model.name,
        model.columns.map((c) => c.id),
        model.grid.map((row) => row.map((c) => c && [c.key, c.state, c.status, c.progress, c.error])),
        model.aggregate.baseline,
        model.signature,
      ];
      if (this.changed('experiment-head', headSig)) clear(this.experimentHead, renderExperimentHead(model));
    }
    const ctx = this.tabContext(tab, model);
    if (tab === 'predictions') this.predictions.render(ctx);
    const toolbarSig = [tab, this.state.layout, this.ui, runs.map((r) => [r.key, r.ranks.map((x) => x.beforeTask)])];
    if (this.changed(`toolbar:${tab}`, toolbarSig)) clear(this.toolbars.get(tab)!, ...tabToolbar(tab, ctx));
    // The experiment's cards change with the aggregate, not with every step event of a running cell.
    const data = model ? model.signature : runs.map((r) => [r.key, r.version]);
    if (this.changed(`tab:${tab}`, [this.palVersion, this.state.layout, data, this.ui]))
      this.syncCards(this.grids.get(tab)!, tabSpecs(tab, ctx));
  }

  /** What a tab's toolbar and cards are drawn from (the experiment's model is computed when not given). */
  private tabContext(tab: TabId, model?: ExperimentModel | null): TabContext {
    return {
      runs: this.state.runs,
      experiment: model !== undefined ? model : tab === 'experiment' ? experimentModel(this.state) : null,
      ui: this.ui,
      colorIndex: (r: RunState) => this.colorIndex(r),
      setUi: (p: Partial<UiState>) => this.setUi(p),
      post: this.bridge.post,
    };
  }

  private syncCards(grid: HTMLElement, specs: ChartSpec[]): void {
    const wanted = new Set(specs.map((s) => s.id));
    for (const child of [...grid.children]) {
      const id = (child as HTMLElement).dataset.card ?? '';
      if (!wanted.has(id)) {
        this.cards.get(id)?.destroy();
        this.cards.delete(id);
      }
    }
    specs.forEach((spec, i) => {
      let card = this.cards.get(spec.id);
      if (!card) {
        card = new ChartCard(spec.id, this);
        this.cards.set(spec.id, card);
      }
      // Move only cards out of place: detaching a canvas makes Chart.js rebind and resize it.
      if (grid.children[i] !== card.el) grid.insertBefore(card.el, grid.children[i] ?? null);
      card.update(spec);
    });
  }
}
