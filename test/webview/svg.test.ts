// The SVG export's serializer: a chart's painting recorded through a stand-in 2D context becomes SVG paths and
// text in output coordinates, each dataset grouped under its label, below a title band; user strings are escaped.
// (test/webview/export.test.ts exports real charts in Chromium.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SvgRecorder, escapeXml, paintAttrs, svgDocument } from '../../webview/charts/svg';

/** Enough of a CanvasRenderingContext2D for the recorder: state it reads, calls it forwards. */
function fakeContext() {
  const calls: string[] = [];
  let m = { a: 1, b: 0, c: 0, d: 1, e: 0, f: 0 };
  const stack: (typeof m)[] = [];
  const ctx = {
    calls,
    fillStyle: '#000000' as unknown,
    strokeStyle: '#000000' as unknown,
    globalAlpha: 1,
    lineWidth: 1,
    lineCap: 'butt',
    lineJoin: 'miter',
    font: '12px sans-serif',
    textAlign: 'start',
    textBaseline: 'alphabetic',
    dash: [] as number[],
    getTransform: () => m,
    setTransform: (a: number, b: number, c: number, d: number, e: number, f: number) => void (m = { a, b, c, d, e, f }),
    save: () => void stack.push(m),
    restore: () => void (m = stack.pop() ?? m),
    getLineDash() {
      return this.dash;
    },
    setLineDash(d: number[]) {
      this.dash = d;
    },
    createLinearGradient: () => ({ addColorStop: () => undefined }),
  } as Record<string, unknown> & { calls: string[] };
  for (const name of [
    'beginPath',
    'closePath',
    'moveTo',
    'lineTo',
    'bezierCurveTo',
    'quadraticCurveTo',
    'rect',
    'arc',
    'ellipse',
    'fill',
    'stroke',
    'clip',
    'fillRect',
    'strokeRect',
    'fillText',
    'strokeText',
    'clearRect',
  ])
    ctx[name] = (...args: unknown[]) => void calls.push(`${name}(${args.length})`);
  return ctx;
}

test('a recorded line, points, bars and labels become SVG paths and text, grouped by series', () => {
  const real = fakeContext();
  const rec = new SvgRecorder(real as unknown as CanvasRenderingContext2D);
  const ctx = rec.context();
  // A clip to the plot area, as Chart.js sets before drawing datasets.
  ctx.save();
  ctx.beginPath();
  ctx.rect(10, 10, 200, 100);
  ctx.clip();
  rec.beginSeries('adaptive-svd · o1 · s0');
  ctx.strokeStyle = 'rgba(55, 148, 255, 0.5)';
  ctx.lineWidth = 2;
  ctx.setLineDash([5, 4]);
  ctx.beginPath();
  ctx.moveTo(10, 100);
  ctx.lineTo(60, 50);
  ctx.lineTo(110, 20);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = '#3794ff';
  ctx.beginPath();
  ctx.arc(60, 50, 4, 0, Math.PI * 2);
  ctx.fill();
  rec.endSeries();
  rec.beginSeries('seqft <o1>');
  ctx.fillRect(120, 40, 20, 70);
  rec.endSeries();
  ctx.restore();
  // A Path2D (Chart.js strokes its lines that way): its recorded operations, not the context's path.
  ctx.strokeStyle = '#ff0000';
  ctx.stroke({
    ops: [
      ['moveTo', [0, 0]],
      ['lineTo', [5, 5]],
    ],
  } as unknown as Path2D);
  ctx.fillStyle = '#cccccc';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.font = '600 11px system-ui';
  ctx.fillText('after <training>', 100, 120);
  rec.finish();
  assert.ok(real.calls.includes('stroke(0)') && real.calls.includes('fillText(3)'), 'the real context still draws');
  const body = rec.body.join('\n');
  assert.match(body, /<g class="series" data-series="adaptive-svd · o1 · s0"><title>adaptive-svd · o1 · s0<\/title>/);
  assert.match(
    body,
    /<path d="M10 100L60 50L110 20" stroke="rgb\(55, 148, 255\)" stroke-opacity="0.5" fill="none" stroke-width="2" stroke-dasharray="5 4" clip-path="url\(#c1\)"\/>/,
  );
  assert.match(body, /<path d="M64 50A4 4 0 1 1 56 50A4 4 0 1 1 64 50" fill="#3794ff" stroke="none"/);
  assert.match(body, /data-series="seqft &lt;o1&gt;"[^]*<path d="M120 40L140 40L140 110L120 110Z"/);
  assert.match(body, /<path d="M0 0L5 5" stroke="#ff0000" fill="none" stroke-width="2"\/>/, 'no clip after restore');
  assert.match(
    body,
    /<text x="100" y="120" text-anchor="middle" dominant-baseline="central" font-size="11" style="font: 600 11px system-ui" fill="#cccccc">after &lt;training&gt;<\/text>/,
  );
  assert.equal(rec.body.filter((l) => l === '</g>').length, 2);
  assert.match(
    rec.defs.join(''),
    /<clipPath id="c1" clipPathUnits="userSpaceOnUse"><path d="M10 10L210 10L210 110L10 110Z"\/><\/clipPath>/,
  );
});

test('transforms are applied: a scaled context records output coordinates, rotated text keeps its matrix', () => {
  const real = fakeContext();
  const rec = new SvgRecorder(real as unknown as CanvasRenderingContext2D);
  const ctx = rec.context();
  ctx.setTransform(2, 0, 0, 2, 0, 0);
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(1, 1);
  ctx.lineTo(3, 1);
  ctx.stroke();
  ctx.setTransform(0, -1, 1, 0, 10, 50);
  ctx.fillText('loss', 0, 0);
  assert.match(rec.body[0], /d="M2 2L6 2".*stroke-width="2"/);
  assert.match(rec.body[1], /<text transform="matrix\(0 -1 1 0 10 50\)"/);
});

test('the document: a title band above the chart, the title in <title>, colours any SVG reader takes', () => {
  const svg = svgDocument({
    title: 'Forgetting per task',
    subtitle: 'tiny3 & co · BWT −33.3',
    describe: 'Bar chart',
    width: 960,
    height: 260,
    background: '#ffffff',
    foreground: '#1f1f1f',
    muted: 'rgba(31, 31, 31, 0.7)',
    fontFamily: '"Segoe UI", sans-serif',
    defs: ['<clipPath id="c1"/>'],
    body: ['<path d="M0 0"/>'],
  });
  assert.match(
    svg,
    /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="960" height="306" viewBox="0 0 960 306"/,
  );
  assert.match(svg, /<title>Forgetting per task<\/title>\n<desc>Bar chart<\/desc>/);
  assert.match(svg, /<text class="chart-title"[^>]*>Forgetting per task<\/text>/);
  assert.match(
    svg,
    /<text class="chart-subtitle"[^>]*fill="rgb\(31, 31, 31\)" fill-opacity="0.7">tiny3 &amp; co · BWT −33.3<\/text>/,
  );
  assert.match(svg, /font-family="&quot;Segoe UI&quot;, sans-serif"/);
  assert.match(svg, /<g transform="translate\(0 46\)">\n<path d="M0 0"\/>\n<\/g>\n<\/svg>\n$/);
  assert.equal(escapeXml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  assert.equal(paintAttrs('fill', 'rgba(1, 2, 3, 0.25)', 0.5), 'fill="rgb(1, 2, 3)" fill-opacity="0.13"');
});
