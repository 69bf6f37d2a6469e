/**
 * A chart card: title, headline figure, the chart or its table, and export buttons (PNG, SVG, CSV; the images
 * are drawn off screen by the host, see chart-export.ts, so they work in table view too). The card keeps its
 * Chart.js instance across updates (new data, same canvas) and rebuilds it only when the theme changes, since
 * Chart.js resolves colours when a chart is created.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { Chart as ChartT } from 'chart.js';
import { Chart } from '../charts/setup';
import type { ChartSpec } from '../charts/spec';
import type { Palette } from '../theme';
import { clear, h } from '../dom';
import { renderTable } from './table';

export interface CardHost {
  palette(): Palette;
  /** Bumped on theme changes. */
  paletteVersion(): number;
  isTable(id: string): boolean;
  toggleTable(id: string): void;
  exportChart(spec: ChartSpec, format: 'png' | 'svg' | 'csv'): void;
}

export class ChartCard {
  readonly el: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly subEl: HTMLElement;
  private readonly figureEl: HTMLElement;
  private readonly chartBox: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tableBox: HTMLElement;
  private readonly emptyEl: HTMLElement;
  private readonly footerEl: HTMLElement;
  private readonly toggleBtn: HTMLElement;
  private readonly imageBtns: HTMLElement[];
  private chart: ChartT | null = null;
  private chartPalette = -1;
  private spec: ChartSpec | null = null;

  constructor(
    readonly id: string,
    private readonly host: CardHost,
  ) {
    this.titleEl = h('h3', { class: 'card-title' });
    this.subEl = h('p', { class: 'card-sub' });
    this.figureEl = h('div', { class: 'card-figure' });
    this.toggleBtn = h('vscode-button', {
      attrs: { secondary: true },
      data: { action: 'toggle-table' },
      on: { click: () => this.host.toggleTable(this.id) },
    });
    const exportBtn = (format: 'png' | 'svg' | 'csv', title: string) =>
      h('vscode-button', {
        attrs: { secondary: true },
        text: format.toUpperCase(),
        title,
        data: { action: format },
        on: { click: () => this.spec && this.host.exportChart(this.spec, format) },
      });
    this.imageBtns = [
      exportBtn('png', 'Save the chart as a PNG image with its title, beside the run or experiment'),
      exportBtn('svg', 'Save the chart as an SVG vector image with its title, beside the run or experiment'),
    ];
    const csvBtn = exportBtn('csv', 'Save the chart\u2019s data as CSV, beside the run or experiment');
    this.canvas = h('canvas', { attrs: { role: 'img' } });
    this.chartBox = h('div', { class: 'chart-box' }, this.canvas);
    this.tableBox = h('div', { class: 'table-box' });
    this.emptyEl = h('p', { class: 'card-empty' });
    this.footerEl = h('ul', { class: 'card-footer' });
    this.el = h(
      'section',
      { class: 'card', data: { card: id } },
      h(
        'header',
        { class: 'card-head' },
        h('div', { class: 'card-titles' }, this.titleEl, this.subEl),
        this.figureEl,
        h('div', { class: 'card-actions' }, this.toggleBtn, ...this.imageBtns, csvBtn),
      ),
      this.emptyEl,
      this.chartBox,
      this.tableBox,
      this.footerEl,
    );
  }

  update(spec: ChartSpec): void {
    this.spec = spec;
    this.titleEl.textContent = spec.title;
    this.titleEl.title = spec.titleTooltip ?? '';
    this.subEl.textContent = spec.subtitle ?? '';
    this.subEl.hidden = !spec.subtitle;
    if (spec.figure) {
      clear(
        this.figureEl,
        h('span', { class: 'figure-label', text: spec.figure.label }),
        h('span', { class: 'figure-value', text: spec.figure.value }),
      );
      this.figureEl.title = spec.figure.title ?? '';
      this.figureEl.hidden = false;
    } else {
      this.figureEl.hidden = true;
    }
    const tableMode = this.host.isTable(this.id);
    this.toggleBtn.textContent = tableMode ? 'Chart' : 'Table';
    this.toggleBtn.title = tableMode ? 'Show the chart' : 'Show the numbers as a table';
    this.toggleBtn.setAttribute('aria-pressed', String(tableMode));
    this.el.classList.toggle('show-table', tableMode);
    const empty = spec.empty ?? null;
    this.emptyEl.textContent = empty ?? '';
    this.emptyEl.hidden = !empty;
    this.chartBox.hidden = !!empty || tableMode;
    this.tableBox.hidden = !!empty || !tableMode;
    for (const b of this.imageBtns) b.toggleAttribute('disabled', !!empty);
    const footer = spec.footer ?? [];
    clear(
      this.footerEl,
      ...footer.map((l) => h('li', { class: l.kind ? `footer-${l.kind}` : undefined, data: l.data, text: l.text })),
    );
    this.footerEl.hidden = footer.length === 0;
    if (empty) {
      this.destroyChart();
      return;
    }
    if (tableMode) {
      clear(this.tableBox, renderTable(spec.table(), this.id));
      return;
    }
    this.tableBox.replaceChildren();
    this.chartBox.style.height = `${spec.height}px`;
    this.canvas.setAttribute('aria-label', spec.describe);
    this.draw(spec);
  }

  private draw(spec: ChartSpec): void {
    const palette = this.host.palette();
    const cfg = spec.config(palette);
    if (
      this.chart &&
      this.chartPalette === this.host.paletteVersion() &&
      (this.chart.config as { type?: string }).type === cfg.type
    ) {
      this.chart.data = cfg.data;
      this.chart.options = cfg.options ?? {};
      this.chart.update('none');
      return;
    }
    this.destroyChart();
    this.chart = new Chart(this.canvas, cfg);
    this.chartPalette = this.host.paletteVersion();
  }

  destroyChart(): void {
    this.chart?.destroy();
    this.chart = null;
  }

  destroy(): void {
    this.destroyChart();
    this.el.remove();
  }
}
