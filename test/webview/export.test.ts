// Chart exports in Debian's Chromium under the panel's CSP: PNG and SVG carry the chart's title; the SVG is
// vector (a path per line and bar, text for ticks and legends) with each dataset grouped under its run's label;
// the white-background option gives the same chart on white in light colours whatever the theme; CSV is the
// chart's data; "Export all charts" sends every chart of the tab in every format in one request; exports work
// in table view; the charts on screen are not disturbed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { parseEventLog } from '../../src/protocol/events';
import type { ExportFilesMessage, ExportMessage, RunSnapshot } from '../../src/protocol/webview';
import { launchBrowser, openDashboard, startServer, type DashboardPage, type Harness } from './harness';
import { fixture, repoRoot } from '../helpers/paths';

const OUT = join(repoRoot, 'test-output', 'webview', 'exports');
let server: Harness;
let browser: Browser;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

function snapshot(name: string): RunSnapshot {
  const log = parseEventLog(readFileSync(fixture('events', `${name}.jsonl`), 'utf8'));
  return {
    key: `/home/researcher/sculpt/runs/${name}`,
    name,
    live: false,
    events: log.events,
    truncatedTail: false,
    badLines: 0,
  };
}

async function open(runs: RunSnapshot[], theme: 'dark' | 'light' = 'dark'): Promise<DashboardPage> {
  const d = await openDashboard(browser, server.origin, { theme });
  await d.post({ type: 'init', protocol: 1, theme, runs });
  await d.rendered(runs.reduce((s, r) => s + r.events.length, 0));
  return d;
}

/** Clicks a card's export button and returns the message it posted. */
async function exportOf(d: DashboardPage, card: string, format: 'png' | 'svg' | 'csv'): Promise<ExportMessage> {
  const before = (await d.posted()).length;
  await d.page.locator(`section[data-card="${card}"] vscode-button[data-action="${format}"]`).click();
  await d.page.waitForFunction(
    (n) => (window as unknown as { __sculptPosted: unknown[] }).__sculptPosted.length > n,
    before,
  );
  const m = (await d.posted()).at(-1)!;
  assert.equal(m.type, 'export');
  return m as ExportMessage;
}

/** A PNG data URL's size and the colour of one pixel, read by the browser. */
function pngPixel(page: Page, url: string, x: number, y: number) {
  return page.evaluate(
    async ([src, px, py]) => {
      const img = new Image();
      img.src = src as string;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width;
      c.height = img.height;
      const ctx = c.getContext('2d')!;
      ctx.drawImage(img, 0, 0);
      return {
        width: img.width,
        height: img.height,
        rgba: [...ctx.getImageData(px as number, py as number, 1, 1).data],
      };
    },
    [url, x, y] as const,
  );
}

const canvasImage = (page: Page, card: string) =>
  page.locator(`section[data-card="${card}"] canvas`).evaluate((c: HTMLCanvasElement) => c.toDataURL());

test('SVG: a vector chart with its title and one group per run, named by the run\u2019s label', async () => {
  const a = snapshot('adaptive-svd-finished');
  const s = snapshot('seqft-finished');
  const d = await open([a, s]);
  const onScreen = await canvasImage(d.page, 'average-accuracy');
  const m = await exportOf(d, 'average-accuracy', 'svg');
  assert.equal(m.suggestedName, 'compare-average-accuracy.svg');
  assert.equal(m.key, undefined, 'a chart of several runs goes beside them, not into one run\u2019s folder');
  const svg = m.data;
  writeFileSync(join(OUT, 'compare-average-accuracy.svg'), svg);
  assert.match(
    svg,
    /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="960"/,
  );
  assert.match(svg, /<title>Average accuracy after each task<\/title>/);
  assert.match(svg, /<text class="chart-title"[^>]*>Average accuracy after each task<\/text>/);
  assert.match(
    svg,
    /<text class="chart-subtitle"[^>]*>tiny3: 2 runs compared · OP_t: mean of R\[t\]\[0..t\], %<\/text>/,
  );
  for (const label of ['adaptive-svd · o1 · s0', 'seqft · o1 · s0']) {
    const group = new RegExp(`<g class="series" data-series="${label}"><title>${label}</title>\\n([^]*?)\\n</g>`).exec(
      svg,
    );
    assert.ok(group, `a group for ${label}`);
    // The line through the three points (a path of lines, not an image) and a marker per point.
    const line = group[1].split('\n').find((l) => /^<path d="M[\d.]+ [\d.]+(L[\d.]+ [\d.]+){2,}" stroke=/.test(l));
    assert.ok(line, `${label}: its line is a vector path`);
    assert.equal(
      group[1].split('\n').filter((l) => /A4 4 0 1 1 .* fill="#/.test(l)).length,
      3,
      `${label}: a filled marker per point`,
    );
    assert.match(svg, new RegExp(`<text [^>]*>${label}</text>`), `${label} in the legend`);
  }
  for (const tick of ['sentiment', 'topic', 'size', 'after training', '100'])
    assert.match(svg, new RegExp(`<text [^>]*>${tick}</text>`), `axis text ${tick}`);
  assert.doesNotMatch(svg, /<image|data:image/, 'no embedded bitmap');
  // Bars are vector too.
  const bars = (await exportOf(d, 'forgetting', 'svg')).data;
  assert.match(
    bars,
    /<g class="series" data-series="seqft · o1 · s0"><title>seqft · o1 · s0<\/title>\n<path d="M[\d.]+ [\d.]+L[\d.]+ [\d.]+L[\d.]+ [\d.]+L[\d.]+ [\d.]+Z" fill=/,
  );
  assert.equal(await canvasImage(d.page, 'average-accuracy'), onScreen, 'the chart on screen is untouched');
  assert.deepEqual(d.problems, []);
  assert.deepEqual(await d.cspViolations(), []);
  await d.page.close();
});

test('PNG: twice the resolution, a title band, on the theme\u2019s background or, as an option, on white', async () => {
  const run = snapshot('adaptive-svd-finished');
  const d = await open([run]);
  const card = `matrix:${run.key}`;
  const dark = await exportOf(d, card, 'png');
  assert.equal(dark.suggestedName, 'adaptive-svd-finished-accuracy-matrix.png');
  assert.equal(dark.key, run.key, 'a chart of one run goes into its folder');
  const px = await pngPixel(d.page, dark.data, 4, 4);
  assert.equal(px.width, 1920);
  const height = Number(
    await d.page
      .locator(`section[data-card="${card}"] .chart-box`)
      .evaluate((el) => parseFloat((el as HTMLElement).style.height)),
  );
  assert.equal(px.height, (height + 46) * 2, 'the chart below a title band of two lines');
  assert.deepEqual(px.rgba, [31, 31, 31, 255], 'the dark theme\u2019s background');
  // The title band holds text: some pixels of it differ from the background.
  const title = await d.page.evaluate(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = 60;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, c.width, 60).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] > 120) n++;
    return n;
  }, dark.data);
  assert.ok(title > 200, 'the title is written');
  writeFileSync(join(OUT, 'matrix-dark.png'), Buffer.from(dark.data.split(',')[1], 'base64'));

  const onScreen = await canvasImage(d.page, card);
  await d.page.locator('vscode-checkbox[data-control="export-white"]').click();
  await d.page.waitForFunction(
    () => JSON.parse(sessionStorage.getItem('sculpt-test-state') ?? '{}').ui?.exportWhite === true,
  );
  const white = await exportOf(d, card, 'png');
  assert.deepEqual((await pngPixel(d.page, white.data, 4, 4)).rgba, [255, 255, 255, 255], 'white, whatever the theme');
  writeFileSync(join(OUT, 'matrix-white.png'), Buffer.from(white.data.split(',')[1], 'base64'));
  const svg = (await exportOf(d, card, 'svg')).data;
  assert.match(svg, /<rect width="960" height="\d+" fill="#ffffff"\/>/);
  assert.match(svg, /<text class="chart-title"[^>]*fill="#1f1f1f">Accuracy matrix<\/text>/);
  assert.equal(await canvasImage(d.page, card), onScreen, 'the chart on screen keeps the theme\u2019s colours');
  // In table view the images can still be saved.
  await d.page.locator(`section[data-card="${card}"] vscode-button[data-action="toggle-table"]`).click();
  await d.page.locator(`section[data-card="${card}"] table`).waitFor();
  assert.match((await exportOf(d, card, 'png')).data, /^data:image\/png;base64,/);
  const csv = await exportOf(d, card, 'csv');
  assert.match(csv.data, /^after \\ on,sentiment,topic,size\n/);
  assert.deepEqual(d.problems, []);
  await d.page.close();
});

test('Export all charts: every chart of the tab as PNG, SVG and CSV in one request', async () => {
  const run = snapshot('adaptive-svd-finished');
  const d = await open([run]);
  await d.page.locator('vscode-button[data-action="export-all"]').click();
  await d.page.waitForFunction(() =>
    (window as unknown as { __sculptPosted: { type: string }[] }).__sculptPosted.some((m) => m.type === 'export-files'),
  );
  const m = (await d.posted()).find((x): x is ExportFilesMessage => x.type === 'export-files')!;
  assert.equal(m.folder, 'adaptive-svd-finished-accuracy-charts');
  const base = [
    'adaptive-svd-finished-accuracy-matrix',
    'adaptive-svd-finished-average-accuracy',
    'adaptive-svd-finished-forgetting',
  ];
  assert.deepEqual(
    m.files.map((f) => f.name),
    base.flatMap((b) => ['png', 'svg', 'csv'].map((x) => `${b}.${x}`)),
  );
  for (const f of m.files) {
    if (f.format === 'png') assert.match(f.data, /^data:image\/png;base64,/);
    if (f.format === 'svg')
      assert.match(
        f.data,
        /^<\?xml[^]*<title>(Accuracy matrix|Average accuracy after each task|Forgetting per task)<\/title>/,
      );
    if (f.format === 'csv') assert.ok(f.data.split('\n').length > 2, `${f.name} has rows`);
  }
  await d.post({ type: 'export-result', requestId: 1, outcome: 'saved', path: '/tmp/charts', count: 9 });
  await d.page.waitForFunction(() => document.querySelector('.toast')?.textContent === 'Saved 9 files in /tmp/charts');
  assert.deepEqual(d.problems, []);
  await d.page.close();
});
