/**
 * `sculpt report --html`: one self-contained page (no scripts, no external resources). First the experiment: the
 * methods' means with 95% intervals, the paired differences to the baseline with their verdicts, the notes, and
 * per metric a chart of each method's mean, interval and runs. Then, per run: the summary table (best value per
 * column marked), average accuracy after each task, and each run's accuracy matrix as a heatmap. Given the run
 * folders, a last section shows each run's per-example predictions (`eval.predictions`) at its latest evaluation
 * with them: per task a confusion matrix and the first misclassified examples. Charts are inline SVG so the page
 * opens anywhere, offline, and prints well. Every run-provided string (names, labels, example inputs) is escaped.
 */
import { aggregateRuns, isCounted } from './aggregate';
import { HIGHER_IS_BETTER, METRIC_NAMES, type ExperimentAggregate, type MetricName } from './aggregate-types';
import type { RunSummary } from './fold';
import { metricsAfter } from './metrics';
import { MAX_CONFUSION_LABELS, OTHER_LABEL, confusionMatrix, misclassifiedRows } from './confusion';
import { listPredictionSets, readPredictionRecords } from './predictions';
import type { ConfusionMatrix, MisclassifiedRow } from '../protocol/predictions';
import {
  aggregateHasValidation,
  fmtEstimate,
  fmtInterval,
  fmtPValue,
  fmtSigned,
  fmtVerdict,
  INTERVAL_LEGEND,
  METRICS_LEGEND,
  pairedLegend,
  runsHaveValidation,
  VALIDATION_COLUMNS,
  SELECTION_LEGEND,
  selectionSentence,
  shownStatus,
  VALIDATION_LEGEND,
} from './report';

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (v: number | null | undefined, d = 1): string => (v == null ? '–' : v.toFixed(d));
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

/** Blue (0%) to green (100%) through a light middle, readable with dark text. */
function cellColour(v: number): string {
  const t = Math.max(0, Math.min(1, v / 100));
  const r = Math.round(235 - 150 * t);
  const g = Math.round(120 + 90 * t);
  const b = Math.round(200 - 110 * t);
  return `rgb(${r},${g},${b})`;
}

/** A run's accuracy matrix (by default R on the test sets; `what` names another, such as the validation matrix). */
function heatmap(
  r: RunSummary,
  matrix: number[][] = r.matrix,
  zeroShot: (number | null)[] | null = r.zeroShot,
  what = 'accuracy matrix',
): string {
  const T = r.tasks.length;
  const cw = 64;
  const ch = 28;
  const left = 110;
  const top = 24;
  const rows = zeroShot
    ? [{ label: 'zero-shot', row: zeroShot }, ...matrix.map((row, i) => ({ label: `after ${r.tasks[i]}`, row }))]
    : matrix.map((row, i) => ({ label: `after ${r.tasks[i]}`, row }));
  const w = left + T * cw + 10;
  const h = top + rows.length * ch + 10;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="${what} of ${esc(r.name)}">`,
  ];
  r.tasks.forEach((t, j) =>
    parts.push(
      `<text x="${left + j * cw + cw / 2}" y="${top - 8}" text-anchor="middle" class="axis">${esc(t.slice(0, 10))}</text>`,
    ),
  );
  rows.forEach(({ label, row }, i) => {
    const y = top + i * ch;
    parts.push(
      `<text x="${left - 6}" y="${y + ch / 2 + 4}" text-anchor="end" class="axis">${esc(label.slice(0, 18))}</text>`,
    );
    row.forEach((v, j) => {
      const x = left + j * cw;
      const unseen = zeroShot ? i - 1 < j : i < j;
      if (v == null) return;
      parts.push(
        `<rect x="${x}" y="${y}" width="${cw - 2}" height="${ch - 2}" fill="${cellColour(v)}"${unseen ? ' fill-opacity="0.45"' : ''}><title>${esc(label)} on ${esc(r.tasks[j])}: ${fmt(v)}%</title></rect>`,
      );
      parts.push(
        `<text x="${x + cw / 2 - 1}" y="${y + ch / 2 + 4}" text-anchor="middle" class="cell">${fmt(v)}</text>`,
      );
    });
  });
  parts.push('</svg>');
  return parts.join('');
}

/** Each method's colour, in the aggregate's order of methods (then any other run's), the same in every chart. */
function methodColours(runs: RunSummary[], agg: ExperimentAggregate): (method: string) => string {
  const order = [...new Set([...agg.methods.map((m) => m.method), ...runs.map((r) => r.method)])];
  return (method) => PALETTE[Math.max(0, order.indexOf(method)) % PALETTE.length];
}

/**
 * A legend entry: a swatch and the label, both in the series' colour. The label's class sets no fill, because a
 * CSS fill (such as `.axis`'s) overrides the `fill` attribute of an SVG element.
 */
function legendEntry(x: number, y: number, colour: string, label: string): string {
  return (
    `<line x1="${x}" x2="${x + 14}" y1="${y - 4}" y2="${y - 4}" stroke="${colour}" stroke-width="3"/>` +
    `<text x="${x + 18}" y="${y}" class="legend" fill="${colour}">${esc(label.slice(0, 22))}</text>`
  );
}

/** Average accuracy after each task, one line per run, coloured by method (the legend names the methods). */
function averageChart(runs: RunSummary[], colourOf: (method: string) => string): string {
  const T = Math.max(...runs.map((r) => r.matrix.length), 1);
  const w = 640;
  const h = 240;
  const pad = 40;
  const legend = 150;
  const x = (i: number) => pad + (T === 1 ? 0 : (i * (w - 2 * pad - legend)) / (T - 1));
  const y = (v: number) => h - pad - (v / 100) * (h - 2 * pad);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="average accuracy after each task">`,
  ];
  for (const v of [0, 25, 50, 75, 100])
    parts.push(
      `<line x1="${pad}" x2="${w - pad - legend}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${pad - 6}" y="${y(v) + 4}" text-anchor="end" class="axis">${v}</text>`,
    );
  for (let i = 0; i < T; i++)
    parts.push(`<text x="${x(i)}" y="${h - pad + 16}" text-anchor="middle" class="axis">${i + 1}</text>`);
  for (const r of runs) {
    const pts = r.matrix.map((_, t) => [x(t), y(metricsAfter(r.matrix, r.zeroShot, t).AA)]);
    const colour = colourOf(r.method);
    parts.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map((p) => p.join(',')).join(' ')}"><title>${esc(r.name)}</title></polyline>`,
    );
    pts.forEach(([px, py]) => parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${colour}"/>`));
  }
  [...new Set(runs.map((r) => r.method))].forEach((m, k) =>
    parts.push(legendEntry(w - legend, pad + 16 * k, colourOf(m), m)),
  );
  parts.push('</svg>');
  return parts.join('');
}

/** Axis ticks at a round step (1, 2 or 5 × 10^k) covering [lo, hi] in about `count` steps. */
function niceScale(lo: number, hi: number, count = 5): { min: number; max: number; step: number } {
  const span = hi - lo || Math.max(1, Math.abs(hi));
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const min = Math.floor(lo / step) * step;
  let max = Math.ceil(hi / step) * step;
  if (max - min < step) max = min + step;
  return { min, max, step };
}

/** Whether a run's metric went into the aggregate (finished, with a finite value). */
const counted = (r: RunSummary, metric: MetricName): boolean =>
  isCounted(r) && typeof r.metrics?.[metric] === 'number' && Number.isFinite(r.metrics[metric]);

/**
 * One metric over the methods: per method, every counted run as a dot (its name in the tooltip), and the mean
 * with its 95% interval as an error bar beside them. The y axis spans the data, not 0..100: differences of a
 * point or two are what the chart is for.
 */
function metricChart(
  metric: MetricName,
  runs: RunSummary[],
  agg: ExperimentAggregate,
  colourOf: (method: string) => string,
): string {
  const all: number[] = [];
  for (const m of agg.methods) {
    const e = m.metrics[metric];
    all.push(...e.values, ...(e.mean == null ? [] : [e.mean]), ...(e.ci95 ?? []));
  }
  const direction = HIGHER_IS_BETTER[metric] ? 'higher is better' : 'lower is better';
  const heading = `<figcaption>${metric} <small>${direction}</small></figcaption>`;
  if (all.length === 0) return `<figure>${heading}<p class="empty">No finished run has ${metric}.</p></figure>`;
  const { min, max, step } = niceScale(Math.min(...all), Math.max(...all));
  const band = 110;
  const left = 48;
  const top = 12;
  const plotH = 170;
  const w = left + band * agg.methods.length + 12;
  const h = top + plotH + 40;
  const y = (v: number) => top + plotH - ((v - min) / (max - min)) * plotH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="${metric} by method: mean, 95% interval and each run">`,
  ];
  for (let v = min; v <= max + step / 2; v += step) {
    const label = Number(v.toFixed(6));
    parts.push(
      `<line x1="${left}" x2="${w - 12}" y1="${y(v)}" y2="${y(v)}" class="${label === 0 ? 'zero' : 'grid'}"/><text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" class="axis">${label}</text>`,
    );
  }
  agg.methods.forEach((m, i) => {
    const colour = colourOf(m.method);
    const x0 = left + band * (i + 0.5);
    const dots = runs.filter((r) => r.method === m.method && counted(r, metric));
    dots.forEach((r, k) => {
      // Spread side by side left of the centre, so that equal values stay visible.
      const dx = dots.length === 1 ? 0.2 : (0.4 * k) / (dots.length - 1);
      const v = r.metrics![metric]!;
      parts.push(
        `<circle cx="${(x0 - band * (0.42 - dx)).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${colour}" fill-opacity="0.6"><title>${esc(r.name)}: ${fmt(v, 2)}</title></circle>`,
      );
    });
    const e = m.metrics[metric];
    const xm = x0 + band * 0.2;
    if (e.ci95) {
      const [lo, hi] = e.ci95.map(y);
      parts.push(`<line x1="${xm}" x2="${xm}" y1="${lo}" y2="${hi}" stroke="${colour}" stroke-width="2"/>`);
      for (const yy of [lo, hi])
        parts.push(`<line x1="${xm - 6}" x2="${xm + 6}" y1="${yy}" y2="${yy}" stroke="${colour}" stroke-width="2"/>`);
    }
    if (e.mean != null) {
      parts.push(
        `<circle cx="${xm}" cy="${y(e.mean)}" r="5" fill="${colour}" stroke="#222" stroke-width="1"><title>${esc(m.method)}: ${esc(fmtEstimate(e))}</title></circle>`,
      );
    }
    parts.push(
      `<text x="${x0}" y="${top + plotH + 18}" text-anchor="middle" class="axis">${esc(m.method.slice(0, 18))}</text>`,
    );
    parts.push(`<text x="${x0}" y="${top + plotH + 32}" text-anchor="middle" class="axis">n = ${e.n}</text>`);
  });
  parts.push('</svg>');
  return `<figure>${heading}${parts.join('')}</figure>`;
}

/** The methods' table, the paired table against the baseline, the notes and one chart per metric. */
function aggregateSection(runs: RunSummary[], agg: ExperimentAggregate, colourOf: (method: string) => string): string {
  const validation = aggregateHasValidation(agg) ? VALIDATION_COLUMNS : [];
  const methodRows = agg.methods
    .map((m) => {
      const cells = [
        ...METRIC_NAMES.map((k) => fmtEstimate(m.metrics[k])),
        ...validation.map((k) => (m.validationMetrics ? fmtEstimate(m.validationMetrics[k]) : '–')),
      ];
      return `<tr><td>${esc(m.method)}</td><td class="num">${m.n}</td>${cells.map((c) => `<td class="num">${esc(c)}</td>`).join('')}</tr>`;
    })
    .join('\n');
  const heads = [...METRIC_NAMES, ...validation.map((k) => `validation ${k}`)];
  const parts = [
    '<h2>Methods</h2>',
    `<table><thead><tr><th>method</th><th>n</th>${heads.map((k) => `<th>${k}</th>`).join('')}</tr></thead>`,
    `<tbody>\n${methodRows}\n</tbody></table>`,
    `<p>${esc(validation.length ? `${INTERVAL_LEGEND} ${VALIDATION_LEGEND}` : INTERVAL_LEGEND)}</p>`,
  ];
  if (agg.baseline != null && agg.comparisons.length) {
    const rows = agg.comparisons.flatMap((c) =>
      METRIC_NAMES.map((k) => {
        const d = c.metrics[k];
        const cls = d.n === 0 || d.verdict === 'not distinguishable at 95%' ? 'same' : d.verdict;
        return `<tr><td>${esc(c.method)}</td><td>${k}</td><td class="num">${fmtSigned(d.mean)}</td><td class="num">${fmtInterval(d.ci95)}</td><td class="num">${esc(fmtPValue(d))}</td><td class="verdict ${cls}">${esc(fmtVerdict(d))}</td></tr>`;
      }),
    );
    parts.push(
      `<h2>Against ${esc(agg.baseline)}</h2>`,
      '<table><thead><tr><th>method</th><th>metric</th><th>mean difference</th><th>95% CI</th><th>p</th><th>verdict</th></tr></thead>',
      `<tbody>\n${rows.join('\n')}\n</tbody></table>`,
      `<p>${esc(pairedLegend(agg.baseline))}</p>`,
    );
  }
  const sel = agg.selection;
  if (sel && sel.ranking.length > 1) {
    const rows = sel.ranking.map(
      (r, i) =>
        `<tr><td class="num">${i + 1}</td><td>${esc(r.method)}</td><td class="num">${r.n}</td><td class="num">${r.AA.toFixed(1)}</td><td class="num">${r.BWT == null ? '–' : r.BWT.toFixed(1)}</td></tr>`,
    );
    const sentence = selectionSentence(agg);
    parts.push(
      '<h2>Ranked on validation</h2>',
      '<table><thead><tr><th>rank</th><th>method</th><th>n</th><th>validation AA</th><th>validation BWT</th></tr></thead>',
      `<tbody>\n${rows.join('\n')}\n</tbody></table>`,
      `<p>${esc(SELECTION_LEGEND)}${sentence ? ` ${esc(sentence)}` : ''}</p>`,
    );
  }
  if (agg.notes.length)
    parts.push('<h2>Notes</h2>', `<ul class="notes">${agg.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  if (agg.methods.length) {
    parts.push(
      '<h2>Metrics by method</h2>',
      '<p>Dots: single runs. Bars: the mean (ringed) and its 95% interval.</p>',
      `<div class="charts">${METRIC_NAMES.map((k) => metricChart(k, runs, agg, colourOf)).join('\n')}</div>`,
    );
  }
  return parts.join('\n');
}

/** Misclassified examples the page lists per task at most: enough to see a pattern, short enough to print. */
export const HTML_MISCLASSIFIED = 25;

/** Where the page finds a run's per-example predictions: the run's folder, by the run's name. */
export interface RunFolder {
  name: string;
  dir: string;
}

export interface HtmlReportOptions {
  /** Run folders whose predictions the page shows (those without any are left out of that section). */
  predictions?: readonly RunFolder[];
  /** Misclassified examples per task at most (default HTML_MISCLASSIFIED). */
  misclassifiedLimit?: number;
}

/**
 * A confusion matrix as a table: rows expected, columns predicted (and `(other)` for predictions that are no
 * label); each cell shaded by its share of the row, the diagonal outlined. Counts stay readable as text, so the
 * table survives printing and copying.
 */
function confusionTable(m: ConfusionMatrix): string {
  const cols = m.other ? [...m.labels, OTHER_LABEL] : m.labels;
  const head = cols.map((l) => `<th>${esc(l)}</th>`).join('');
  const rows = m.labels.map((label, i) => {
    const counts = m.other ? [...m.counts[i], m.other[i]] : m.counts[i];
    const total = counts.reduce((a, b) => a + b, 0);
    const cells = counts.map((n, j) => {
      const share = total ? n / total : 0;
      // Correct predictions in green, confusions in red, by their share of the expected label's examples.
      const fill =
        n === 0
          ? ''
          : ` style="background: rgba(${i === j ? '89,161,79' : '225,87,89'},${(0.15 + 0.6 * share).toFixed(2)})"`;
      const title = `expected ${label}, predicted ${cols[j]}: ${n} of ${total}`;
      return `<td class="num${i === j ? ' diag' : ''}"${fill} title="${esc(title)}">${n}</td>`;
    });
    return `<tr><th scope="row">${esc(label)}</th>${cells.join('')}<td class="num total">${total}</td></tr>`;
  });
  return (
    '<table class="confusion"><thead><tr><th class="corner">expected \\ predicted</th>' +
    `${head}<th>examples</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

/** The misclassified examples: input as text (never markup), expected, predicted, and the best labels' shares. */
function misclassifiedTable(rows: readonly MisclassifiedRow[], total: number): string {
  if (total === 0) return '<p class="empty">No misclassified example.</p>';
  const body = rows.map((r) => {
    const top = r.top.map((t) => `${esc(t.label)} ${(100 * t.share).toFixed(0)}%`).join(', ');
    const cut = r.inputTruncated ? ' <small>(cut)</small>' : '';
    return `<tr><td class="num">${r.index}</td><td class="input">${esc(r.input)}${cut}</td><td>${esc(r.expected)}</td><td>${esc(r.predicted)}</td><td>${top || '–'}</td></tr>`;
  });
  const shown = rows.length < total ? `the first ${rows.length} of ${total}` : `all ${total}`;
  return (
    `<details><summary>Misclassified examples: ${shown}, in test-set order</summary>` +
    '<table class="misclassified"><thead><tr><th>#</th><th>input</th><th>expected</th><th>predicted</th><th>best labels (share of probability)</th></tr></thead>' +
    `<tbody>${body.join('')}</tbody></table></details>`
  );
}

/**
 * Per run, the test sets of its latest evaluation with predictions (after the last task for a finished run with
 * the default `eval.predictions`), as the Markdown report picks them: each task's confusion matrix and its first
 * misclassified examples. Empty when no run folder has predictions.
 */
export function predictionsHtml(folders: readonly RunFolder[], limit = HTML_MISCLASSIFIED): string {
  const parts: string[] = [];
  for (const run of folders) {
    const sets = listPredictionSets(run.dir).sets.filter((s) => s.split === 'test');
    if (!sets.length) continue;
    const last = sets.reduce((a, b) => (b.afterTask > a.afterTask ? b : a)).point;
    parts.push(`<section><h3>${esc(run.name)} <small>${esc(last.replace(/-/g, ' '))}, test sets</small></h3>`);
    for (const s of sets.filter((x) => x.point === last)) {
      parts.push(
        `<h4>${esc(s.name)} <small>${esc(s.mode)}, ${s.examples} examples, accuracy ${s.accuracy.toFixed(1)}</small></h4>`,
      );
      try {
        const { records, badLines } = readPredictionRecords(run.dir, s);
        const m = confusionMatrix(records, s.labels);
        parts.push(
          m.labels.length > MAX_CONFUSION_LABELS
            ? `<p class="empty">${m.labels.length} distinct labels: too many for a confusion matrix (at most ${MAX_CONFUSION_LABELS}).</p>`
            : confusionTable(m),
        );
        const wrong = misclassifiedRows(records, limit);
        parts.push(misclassifiedTable(wrong.rows, wrong.total));
        if (badLines)
          parts.push(`<p class="error">${badLines} line(s) of the file could not be read and are left out.</p>`);
      } catch (e) {
        parts.push(`<p class="error">Unreadable: ${esc((e as Error).message)}</p>`);
      }
    }
    parts.push('</section>');
  }
  if (!parts.length) return '';
  return [
    '<h2>Predictions</h2>',
    '<p>Per-example predictions in the run folders (<code>eval.predictions</code>), on the test sets. Confusion matrices: rows are the expected labels, columns the predicted ones; the diagonal counts the correct predictions.</p>',
    ...parts,
  ].join('\n');
}

export function htmlReport(
  runs: RunSummary[],
  aggregate: ExperimentAggregate = aggregateRuns(runs),
  options: HtmlReportOptions = {},
): string {
  const colourOf = methodColours(runs, aggregate);
  const cols: { key: MetricName; better: 'max' | 'min' }[] = METRIC_NAMES.map((key) => ({
    key,
    better: HIGHER_IS_BETTER[key] ? 'max' : 'min',
  }));
  const best = new Map<string, number>();
  for (const c of cols) {
    const vals = runs.map((r) => r.metrics?.[c.key]).filter((v): v is number => v != null);
    if (vals.length) best.set(c.key, c.better === 'max' ? Math.max(...vals) : Math.min(...vals));
  }
  const validation = runsHaveValidation(runs) ? VALIDATION_COLUMNS : [];
  const rows = runs
    .map((r) => {
      const cells = cols.map((c) => {
        const v = r.metrics?.[c.key];
        const isBest = v != null && runs.length > 1 && v === best.get(c.key);
        return `<td class="num${isBest ? ' best' : ''}">${fmt(v)}</td>`;
      });
      for (const k of validation) cells.push(`<td class="num">${fmt(r.validationMetrics?.[k])}</td>`);
      return `<tr><td>${esc(r.name)}</td><td>${esc(r.method)}</td><td>${esc(shownStatus(r))}</td>${cells.join('')}<td class="num">${fmt(r.seconds, 0)}</td></tr>`;
    })
    .join('\n');
  const sections = runs
    .map((r) => {
      const validationMap = r.validationMatrix?.length
        ? `<h4>Validation splits</h4>${heatmap(r, r.validationMatrix, r.validationZeroShot, 'validation accuracy matrix')}`
        : '';
      return `<section><h3>${esc(r.name)} <small>${esc(r.method)}</small></h3>${heatmap(r)}${validationMap}${r.error ? `<p class="error">Failed: ${esc(r.error)}</p>` : ''}</section>`;
    })
    .join('\n');
  const validationHeads = validation.map((k) => `<th>validation ${k}</th>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Sculpt report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: 700; background: #e8f4e8; }
td.verdict.better { font-weight: 700; color: #1a6b1a; }
td.verdict.worse { font-weight: 700; color: #a00; }
td.verdict.same { color: #666; }
.axis { font-size: 11px; fill: #444; }
.legend { font-size: 11px; }
.cell { font-size: 11px; fill: #111; }
.grid { stroke: #e4e4e4; }
.zero { stroke: #999; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
small { color: #666; font-weight: normal; }
.error { color: #a00; }
.empty { color: #666; }
table.confusion th, table.confusion td { border: 1px solid #ddd; }
table.confusion td.diag { outline: 2px solid #59a14f; outline-offset: -2px; }
table.confusion td.total { color: #666; }
table.confusion th.corner { font-weight: normal; color: #666; }
table.misclassified td { vertical-align: top; }
table.misclassified td.input { max-width: 60ch; white-space: pre-wrap; overflow-wrap: anywhere; }
details { margin: 4px 0 16px; }
</style></head><body>
<h1>Sculpt report</h1>
<p>${esc(METRICS_LEGEND)}</p>
${aggregateSection(runs, aggregate, colourOf)}
<h2>Per run</h2>
<p>${validation.length ? `The best value of each test column is in bold. ${esc(VALIDATION_LEGEND)}` : 'The best value of each column is in bold.'}</p>
<table><thead><tr><th>run</th><th>method</th><th>status</th><th>AA</th><th>BWT</th><th>forgetting</th><th>FWT</th>${validationHeads}<th>time (s)</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h3>Average accuracy after each task</h3>
${averageChart(runs, colourOf)}
${sections}
${options.predictions ? predictionsHtml(options.predictions, options.misclassifiedLimit) : ''}
</body></html>
`;
}
