/**
 * `sculpt report --html`: one self-contained page (no scripts, no external resources) with the summary table
 * (best value per column marked), each run's accuracy matrix as a heatmap, and average accuracy after each
 * task for all runs. Charts are inline SVG so the page opens anywhere, offline, and prints well.
 * Every run-provided string is escaped.
 */
import type { RunSummary } from './fold';
import { metricsAfter } from './metrics';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (v: number | null | undefined, d = 1): string => (v == null ? '–' : v.toFixed(d));
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Blue (0%) to green (100%) through a light middle, readable with dark text. */
function cellColour(v: number): string {
  const t = Math.max(0, Math.min(1, v / 100));
  const r = Math.round(235 - 150 * t);
  const g = Math.round(120 + 90 * t);
  const b = Math.round(200 - 110 * t);
  return `rgb(${r},${g},${b})`;
}

function heatmap(r: RunSummary): string {
  const T = r.tasks.length;
  const cw = 64;
  const ch = 28;
  const left = 110;
  const top = 24;
  const rows = r.zeroShot ? [{ label: 'zero-shot', row: r.zeroShot }, ...r.matrix.map((row, i) => ({ label: `after ${r.tasks[i]}`, row }))] : r.matrix.map((row, i) => ({ label: `after ${r.tasks[i]}`, row }));
  const w = left + T * cw + 10;
  const h = top + rows.length * ch + 10;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="accuracy matrix of ${esc(r.name)}">`];
  r.tasks.forEach((t, j) => parts.push(`<text x="${left + j * cw + cw / 2}" y="${top - 8}" text-anchor="middle" class="axis">${esc(t.slice(0, 10))}</text>`));
  rows.forEach(({ label, row }, i) => {
    const y = top + i * ch;
    parts.push(`<text x="${left - 6}" y="${y + ch / 2 + 4}" text-anchor="end" class="axis">${esc(label.slice(0, 18))}</text>`);
    row.forEach((v, j) => {
      const x = left + j * cw;
      const unseen = r.zeroShot ? i - 1 < j : i < j;
      if (v == null) return;
      parts.push(`<rect x="${x}" y="${y}" width="${cw - 2}" height="${ch - 2}" fill="${cellColour(v)}"${unseen ? ' fill-opacity="0.45"' : ''}><title>${esc(label)} on ${esc(r.tasks[j])}: ${fmt(v)}%</title></rect>`);
      parts.push(`<text x="${x + cw / 2 - 1}" y="${y + ch / 2 + 4}" text-anchor="middle" class="cell">${fmt(v)}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('');
}

function averageChart(runs: RunSummary[]): string {
  const T = Math.max(...runs.map((r) => r.matrix.length), 1);
  const w = 640;
  const h = 240;
  const pad = 40;
  const legend = 150;
  const x = (i: number) => pad + (T === 1 ? 0 : (i * (w - 2 * pad - legend)) / (T - 1));
  const y = (v: number) => h - pad - (v / 100) * (h - 2 * pad);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="average accuracy after each task">`];
  for (const v of [0, 25, 50, 75, 100]) parts.push(`<line x1="${pad}" x2="${w - pad - legend}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${pad - 6}" y="${y(v) + 4}" text-anchor="end" class="axis">${v}</text>`);
  for (let i = 0; i < T; i++) parts.push(`<text x="${x(i)}" y="${h - pad + 16}" text-anchor="middle" class="axis">${i + 1}</text>`);
  runs.forEach((r, k) => {
    const pts = r.matrix.map((_, t) => [x(t), y(metricsAfter(r.matrix, r.zeroShot, t).AA)]);
    const colour = PALETTE[k % PALETTE.length];
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map((p) => p.join(',')).join(' ')}"/>`);
    pts.forEach(([px, py]) => parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${colour}"/>`));
    parts.push(`<text x="${w - legend}" y="${pad + 14 * k}" class="axis" fill="${colour}">${esc(r.method)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

export function htmlReport(runs: RunSummary[]): string {
  const cols: { key: 'AA' | 'BWT' | 'forgetting' | 'FWT'; better: 'max' | 'min' }[] = [
    { key: 'AA', better: 'max' },
    { key: 'BWT', better: 'max' },
    { key: 'forgetting', better: 'min' },
    { key: 'FWT', better: 'max' },
  ];
  const best = new Map<string, number>();
  for (const c of cols) {
    const vals = runs.map((r) => r.metrics?.[c.key]).filter((v): v is number => v != null);
    if (vals.length) best.set(c.key, c.better === 'max' ? Math.max(...vals) : Math.min(...vals));
  }
  const rows = runs
    .map((r) => {
      const cells = cols.map((c) => {
        const v = r.metrics?.[c.key];
        const isBest = v != null && runs.length > 1 && v === best.get(c.key);
        return `<td class="num${isBest ? ' best' : ''}">${fmt(v)}</td>`;
      });
      return `<tr><td>${esc(r.name)}</td><td>${esc(r.method)}</td><td>${esc(r.status)}</td>${cells.join('')}<td class="num">${fmt(r.seconds, 0)}</td></tr>`;
    })
    .join('\n');
  const sections = runs.map((r) => `<section><h2>${esc(r.name)} <small>${esc(r.method)}</small></h2>${heatmap(r)}${r.error ? `<p class="error">Failed: ${esc(r.error)}</p>` : ''}</section>`).join('\n');
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
.axis { font-size: 11px; fill: #444; }
.cell { font-size: 11px; fill: #111; }
.grid { stroke: #e4e4e4; }
small { color: #666; font-weight: normal; }
.error { color: #a00; }
</style></head><body>
<h1>Sculpt report</h1>
<p>Accuracies in percent. AA: average accuracy after the last task; BWT: backward transfer; forgetting: Chaudhry et al.; FWT: GEM forward transfer against the zero-shot row. The best value of each column is in bold.</p>
<table><thead><tr><th>run</th><th>method</th><th>status</th><th>AA</th><th>BWT</th><th>forgetting</th><th>FWT</th><th>time (s)</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Average accuracy after each task</h2>
${averageChart(runs)}
${sections}
</body></html>
`;
}
