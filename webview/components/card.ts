/**
 * A chart card: title, headline figure, the chart or its table, and export buttons. The card keeps its Chart.js
 * instance across updates (new data, same canvas) and rebuilds it only when the theme changes, since Chart.js
 * resolves colours when a chart is created.
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
  exportFile(format: 'png' | 'csv', fileBase: string, data: string, runKey?: string): void;
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
  private readonly pngBtn: HTMLElement;
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
    this.pngBtn = h('vscode-button', {
      attrs: { secondary: true },
      text: 'PNG',
      title: 'Save the chart as a PNG image',
      data: { action: 'png' },
      on: { click: () => this.exportPng() },
    });
    const csvBtn = h('vscode-button', {
      attrs: { secondary: true },
      text: 'CSV',
      title: 'Save the data as CSV',
      data: { action: 'csv' },
      on: { click: () => this.exportCsv() },
    });
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
        h('div', { class: 'card-actions' }, this.toggleBtn, this.pngBtn, csvBtn),
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
    this.pngBtn.toggleAttribute('disabled', !!empty || tableMode);
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

  private exportCsv(): void {
    if (!this.spec) return;
    const s = this.spec;
    this.host.exportFile('csv', s.fileBase, s.csv ? s.csv() : '', s.runKey);
  }

  /** The chart on the theme's background: a transparent PNG is unreadable when pasted on another background. */
  private exportPng(): void {
    if (!this.chart || !this.spec) return;
    const src = this.chart.canvas;
    const out = document.createElement('canvas');
    out.width = src.width;
    out.height = src.height;
    const ctx = out.getContext('2d');
    if (!ctx) return;
    ctx.fillStyle = this.host.palette().background;
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.drawImage(src, 0, 0);
    this.host.exportFile('png', this.spec.fileBase, out.toDataURL('image/png'), this.spec.runKey);
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
