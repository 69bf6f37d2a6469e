// The dashboard in a real browser (Debian's Chromium) under the panel's own CSP: recorded event streams render
// the numbers of their events (matrix cells, AA, BWT), live increments end where a replay does, a crashed log
// shows what it has, runs compare with the best values marked, exports and host requests are posted, user
// strings stay text, the UI survives a reload, and nothing logs an error or violates the policy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  parseEventLog,
  type RunFinishedEvent,
  type RunStartedEvent,
  type SculptEvent,
} from '../../src/protocol/events';
import type { RunSnapshot } from '../../src/protocol/webview';
import { dashboardCsp, launchBrowser, openDashboard, startServer, type DashboardPage, type Harness } from './harness';
import { fixture, repoRoot } from '../helpers/paths';

const SHOTS = join(repoRoot, 'test-output', 'webview');
let server: Harness;
let browser: Browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const keyOf = (name: string) => `/home/researcher/sculpt/runs/${name}`;

function snapshot(name: string, opts: { live?: boolean; events?: SculptEvent[] } = {}): RunSnapshot {
  const log = parseEventLog(readFileSync(fixture('events', `${name}.jsonl`), 'utf8'));
  return {
    key: keyOf(name),
    name,
    live: opts.live ?? false,
    events: opts.events ?? log.events,
    truncatedTail: log.truncatedTail,
    badLines: log.badLines.length,
  };
}

const finishedOf = (s: RunSnapshot) => s.events.find((e): e is RunFinishedEvent => e.type === 'run-finished')!;

async function open(theme: 'dark' | 'light' = 'dark'): Promise<DashboardPage> {
  return openDashboard(browser, server.origin, { theme });
}

/** Nothing logged as an error or warning, no CSP violation, no failed request. */
async function assertClean(d: DashboardPage): Promise<void> {
  assert.deepEqual(d.problems, []);
  assert.deepEqual(await d.cspViolations(), []);
  await d.page.close();
}

interface ReadTable {
  columns: string[];
  rows: { header: string; cells: { text: string; value: number | null }[] }[];
}

/** Switches a card to its table view and reads it. */
async function readCardTable(page: Page, cardId: string): Promise<ReadTable> {
  const card = page.locator(`section[data-card="${cardId}"]`);
  if (!(await card.evaluate((el) => el.classList.contains('show-table'))))
    await card.locator('vscode-button[data-action="toggle-table"]').click();
  const table = card.locator('table');
  await table.waitFor();
  return table.evaluate((t) => ({
    columns: [...t.querySelectorAll('thead th')].map((th) => th.textContent ?? ''),
    rows: [...t.querySelectorAll('tbody tr')].map((tr) => ({
      header: tr.querySelector('th')?.textContent ?? '',
      cells: [...tr.querySelectorAll('td')].map((td) => ({
        text: td.textContent ?? '',
        value: td.dataset.value === undefined ? null : Number(td.dataset.value),
      })),
    })),
  }));
}

async function summaryValue(page: Page, key: string, metric: string): Promise<number | null> {
  const v = await page
    .locator(`table[data-table="summary"] tr[data-run="${key}"] td[data-metric="${metric}"]`)
    .getAttribute('data-value');
  return v == null ? null : Number(v);
}

/** Painted pixels of a card's canvas: a chart that failed to draw has none. */
async function paintedPixels(page: Page, cardId: string): Promise<number> {
  return page.locator(`section[data-card="${cardId}"] canvas`).evaluate((c: HTMLCanvasElement) => {
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return n;
  });
}

async function showTab(page: Page, tab: string): Promise<void> {
  await page.locator(`vscode-tab-header[data-tab="${tab}"]`).click();
  await page.locator(`vscode-tab-panel[data-panel="${tab}"] section.card`).first().waitFor();
}

const matrixRows = (t: ReadTable) =>
  t.rows.filter((r) => r.header !== 'zero-shot').map((r) => r.cells.map((c) => c.value));

test('a finished run: heatmap cells equal the matrix, the summary equals the run-finished metrics; screenshots', async () => {
  const run = snapshot('adaptive-svd-finished');
  const fin = finishedOf(run);
  for (const theme of ['dark', 'light'] as const) {
    const d = await open(theme);
    await d.post({ type: 'init', protocol: 1, theme, runs: [run] });
    await d.rendered(run.events.length);
    assert.ok((await paintedPixels(d.page, `matrix:${run.key}`)) > 1000, 'the heatmap is drawn');
    await d.page.screenshot({ path: join(SHOTS, `finished-accuracy-${theme}.png`), fullPage: true });
    await showTab(d.page, 'training');
    assert.ok((await paintedPixels(d.page, 'loss')) > 1000, 'the loss chart is drawn');
    await d.page.screenshot({ path: join(SHOTS, `finished-training-${theme}.png`), fullPage: true });
    await showTab(d.page, 'subspace');
    assert.ok((await paintedPixels(d.page, `ranks-bars:${run.key}`)) > 1000, 'the ranks chart is drawn');
    await d.page.screenshot({ path: join(SHOTS, `finished-subspace-${theme}.png`), fullPage: true });
    await showTab(d.page, 'accuracy');
    const t = await readCardTable(d.page, `matrix:${run.key}`);
    assert.deepEqual(t.columns, ['after \\ on', 'sentiment', 'topic', 'size']);
    assert.deepEqual(matrixRows(t), fin.matrix);
    assert.deepEqual(
      t.rows.find((r) => r.header === 'zero-shot')?.cells.map((c) => c.value),
      fin.zeroShot,
    );
    assert.equal(t.rows[1].cells[0].text, fin.matrix[0][0].toFixed(1));
    assert.equal(await summaryValue(d.page, run.key, 'AA'), fin.metrics.AA);
    assert.equal(await summaryValue(d.page, run.key, 'BWT'), fin.metrics.BWT);
    assert.equal(await summaryValue(d.page, run.key, 'forgetting'), fin.metrics.forgetting);
    assert.equal(await summaryValue(d.page, run.key, 'seconds'), fin.seconds);
    assert.equal(await d.page.locator('.status').first().textContent(), 'finished');
    const forgetting = await readCardTable(d.page, 'forgetting');
    assert.equal(forgetting.rows.find((r) => r.header === 'BWT')?.cells[0].value, fin.metrics.BWT);
    await assertClean(d);
  }
});

test('a live run in increments ends exactly where a replay of its log does', async () => {
  const full = snapshot('adaptive-svd-finished');
  const fin = finishedOf(full);
  const d = await open();
  await d.post({
    type: 'init',
    protocol: 1,
    theme: 'dark',
    runs: [{ ...full, live: true, events: full.events.slice(0, 5) }],
  });
  await d.rendered(5);
  let sent = 5;
  const midTopic = full.events.findIndex((e) => e.type === 'step' && e.task === 1 && e.step === 60);
  for (; sent < full.events.length; sent += 9) {
    await d.post({ type: 'events', key: full.key, events: full.events.slice(sent, sent + 9) });
    if (sent <= midTopic && midTopic < sent + 9) {
      await d.rendered(sent + 9);
      const progress = await d.page.locator(`.progress[data-run="${full.key}"] .progress-text`).textContent();
      assert.match(progress ?? '', /task 2\/3 topic · step 6\d\/120/);
      await d.page.screenshot({ path: join(SHOTS, 'live-accuracy-dark.png'), fullPage: true });
      const partial = await readCardTable(d.page, `matrix:${full.key}`);
      assert.deepEqual(matrixRows(partial)[0], fin.matrix[0], 'the first row is in');
      assert.deepEqual(matrixRows(partial)[1], [null, null, null], 'the second is not yet');
      assert.equal(await d.page.locator('.status').first().textContent(), 'running');
    }
  }
  // A repeated delivery (live and from disk) changes nothing.
  await d.post({ type: 'events', key: full.key, events: full.events.slice(-20) });
  await d.rendered(full.events.length);
  const live = await readCardTable(d.page, `matrix:${full.key}`);
  assert.deepEqual(matrixRows(live), fin.matrix);
  assert.equal(await summaryValue(d.page, full.key, 'AA'), fin.metrics.AA);
  const liveSummary = await d.page.locator('table[data-table="summary"] tbody').textContent();
  await assertClean(d);

  const r = await open();
  await r.post({ type: 'init', protocol: 1, theme: 'dark', runs: [full] });
  await r.rendered(full.events.length);
  assert.equal(await r.page.locator('table[data-table="summary"] tbody').textContent(), liveSummary);
  assert.deepEqual(matrixRows(await readCardTable(r.page, `matrix:${full.key}`)), fin.matrix);
  await assertClean(r);
});

test('a theme change repaints the charts with the new theme\u2019s colours (light, dark, high contrast)', async () => {
  const run = snapshot('adaptive-svd-finished');
  const d = await open('dark');
  await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [run] });
  await d.rendered(run.events.length);
  const image = () =>
    d.page.locator(`section[data-card="matrix:${run.key}"] canvas`).evaluate((c: HTMLCanvasElement) => c.toDataURL());
  const renders = () => d.page.evaluate(() => Number(document.documentElement.dataset.sculptRenders));
  const seen = new Set([await image()]);
  for (const theme of ['light', 'high-contrast'] as const) {
    const before = await renders();
    await d.setTheme(theme);
    await d.post({ type: 'theme', theme });
    await d.page.waitForFunction((n) => Number(document.documentElement.dataset.sculptRenders) > n, before);
    seen.add(await image());
    const bg = await d.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, theme === 'light' ? 'rgb(255, 255, 255)' : 'rgb(0, 0, 0)');
  }
  assert.equal(seen.size, 3, 'each theme paints differently');
  await d.page.screenshot({ path: join(SHOTS, 'finished-accuracy-high-contrast.png'), fullPage: true });
  await assertClean(d);
});

test('a crashed run with a truncated log shows what it has and says so', async () => {
  const run = snapshot('adaptive-svd-crashed');
  assert.equal(run.truncatedTail, true);
  const d = await open();
  await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [run] });
  await d.rendered(run.events.length);
  assert.equal(await d.page.locator('.status').first().textContent(), 'crashed');
  assert.match(
    (await d.page.locator('.notice-error').first().textContent()) ?? '',
    /ended without a final event.*partial line/,
  );
  const t = matrixRows(await readCardTable(d.page, `matrix:${run.key}`));
  const rows = run.events
    .filter((e) => e.type === 'task-finished')
    .map((e) => (e.type === 'task-finished' ? e.row : []));
  assert.deepEqual(t, [...rows, [null, null, null]]);
  await showTab(d.page, 'training');
  assert.ok((await paintedPixels(d.page, 'loss')) > 1000);
  await d.page.screenshot({ path: join(SHOTS, 'crashed-training-dark.png'), fullPage: true });
  await assertClean(d);
});

test('two runs compared: overlaid charts, one colour per run, the best value of each column marked', async () => {
  const a = snapshot('adaptive-svd-finished');
  const s = snapshot('seqft-finished');
  for (const theme of ['dark', 'light'] as const) {
    const d = await open(theme);
    await d.post({ type: 'init', protocol: 1, theme, runs: [a, s] });
    await d.rendered(a.events.length + s.events.length);
    const best = await d.page
      .locator('table[data-table="summary"] td[data-best="true"]')
      .evaluateAll((tds) => tds.map((td) => `${td.closest('tr')!.dataset.run}:${(td as HTMLElement).dataset.metric}`));
    assert.deepEqual(best.sort(), [`${a.key}:AA`, `${a.key}:BWT`, `${a.key}:forgetting`, `${s.key}:seconds`].sort());
    assert.equal(await summaryValue(d.page, s.key, 'AA'), finishedOf(s).metrics.AA);
    const swatches = await d.page
      .locator('table[data-table="summary"] .swatch')
      .evaluateAll((els) => els.map((e) => getComputedStyle(e).backgroundColor));
    assert.equal(new Set(swatches).size, 2, 'one colour per run');
    await d.page.screenshot({ path: join(SHOTS, `compare-accuracy-${theme}.png`), fullPage: true });
    if (theme === 'dark') {
      await showTab(d.page, 'training');
      await d.page.screenshot({ path: join(SHOTS, 'compare-training-dark.png'), fullPage: true });
      await showTab(d.page, 'accuracy');
      const aa = await readCardTable(d.page, 'average-accuracy');
      // Runs go by short labels (method · order · seed); their folder names are in the tooltips.
      assert.deepEqual(aa.columns.slice(1), ['adaptive-svd · o1 · s0', 'seqft · o1 · s0']);
      assert.deepEqual(
        aa.rows.map((r) => r.cells.map((c) => c.value)),
        [0, 1, 2].map((t) =>
          [a, s].map(
            (x) =>
              (x.events.find((e) => e.type === 'task-finished' && e.task === t) as { metrics: { AA: number } }).metrics
                .AA,
          ),
        ),
      );
      // Hiding a run removes it from the overlays.
      await d.page.locator(`table[data-table="summary"] tr[data-run="${s.key}"] vscode-checkbox`).click();
      await d.page.waitForFunction(() => document.querySelectorAll('section[data-card^="matrix:"]').length === 1);
      assert.deepEqual((await readCardTable(d.page, 'average-accuracy')).columns.slice(1), ['adaptive-svd · o1 · s0']);
    }
    await assertClean(d);
  }
});

test('exports and host requests are posted: CSV, PNG, JSON, open folder, boundary', async () => {
  const run = snapshot('adaptive-svd-finished');
  const d = await open();
  await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [run] });
  await d.rendered(run.events.length);
  await d.page.locator(`section[data-card="matrix:${run.key}"] vscode-button[data-action="csv"]`).click();
  await d.page.locator(`section[data-card="matrix:${run.key}"] vscode-button[data-action="png"]`).click();
  await d.page.locator('vscode-button[data-action="export-json"]').click();
  await d.page.locator(`tr[data-run="${run.key}"] vscode-button`).click();
  await showTab(d.page, 'subspace');
  await d.page.locator('vscode-single-select').evaluate((el: HTMLElement & { value: string }) => {
    el.value = '1';
    el.dispatchEvent(new Event('change'));
  });
  await d.page.waitForFunction(() =>
    (window as unknown as { __sculptPosted: { type: string }[] }).__sculptPosted.some(
      (m) => m.type === 'select-boundary',
    ),
  );
  const posted = await d.posted();
  const exports = posted.filter((m) => m.type === 'export');
  assert.deepEqual(
    exports.map((m) => m.type === 'export' && [m.format, m.suggestedName, m.key]),
    [
      ['csv', 'adaptive-svd-finished-accuracy-matrix.csv', run.key],
      ['png', 'adaptive-svd-finished-accuracy-matrix.png', run.key],
      ['json', 'adaptive-svd-finished.json', run.key],
    ],
  );
  const [csv, png, json] = exports.map((m) => (m.type === 'export' ? m.data : ''));
  assert.match(
    csv,
    /^after \\ on,sentiment,topic,size\nzero-shot,50,33.333333333333336,50\nsentiment,100,33.333333333333336,50\n/,
  );
  assert.match(png, /^data:image\/png;base64,/);
  assert.ok(Buffer.from(png.split(',')[1], 'base64').length > 5000, 'a real image');
  const doc = JSON.parse(json) as { runs: { events: unknown[]; summary: { metrics: unknown } }[] };
  assert.equal(doc.runs[0].events.length, run.events.length);
  assert.deepEqual(doc.runs[0].summary.metrics, finishedOf(run).metrics);
  assert.ok(posted.some((m) => m.type === 'open-run-folder' && m.key === run.key));
  assert.ok(posted.some((m) => m.type === 'select-boundary' && m.key === run.key && m.beforeTask === 1));
  await d.page.waitForFunction(
    (id) => /before topic/.test(document.querySelector(`section[data-card="${id}"] .card-title`)?.textContent ?? ''),
    `ranks-bars:${run.key}`,
  );
  await d.post({ type: 'export-result', requestId: 1, outcome: 'saved', path: '/tmp/x.csv' });
  await d.page.waitForFunction(() => document.querySelector('.toast')?.textContent === 'Saved /tmp/x.csv');
  await assertClean(d);
});

test('task names, run names and messages from configs and logs are shown as text, never markup', async () => {
  const evil = '<img src=x onerror="window.__pwned=1">';
  const run = snapshot('seqft-finished');
  const events = run.events.map((e) => {
    if (e.type === 'run-started') return { ...e, tasks: [evil, ...e.tasks.slice(1)] };
    if (e.type === 'task-started' && e.task === 0) return { ...e, name: evil };
    return e;
  });
  events.splice(10, 0, {
    v: 1,
    runId: run.events[0].runId,
    seq: 10.5,
    time: 0,
    type: 'warning',
    message: `<b>${evil}</b>`,
    code: '<i>x</i>',
  });
  const d = await open();
  await d.post({
    type: 'init',
    protocol: 1,
    theme: 'dark',
    runs: [
      {
        ...run,
        name: `<script>alert(1)</script>${evil}`,
        events,
        meta: { title: `<script>alert(1)</script>${evil}`, tags: [evil], notes: evil },
      },
    ],
  });
  await d.rendered(events.length);
  await showTab(d.page, 'training');
  await readCardTable(d.page, `loss`);
  assert.equal(await d.page.locator('#app img').count(), 0);
  assert.equal(await d.page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
  assert.ok((await d.page.locator('.title').textContent())?.includes('<script>alert(1)</script>'));
  assert.ok((await d.page.locator('.run-label').getAttribute('title'))?.includes(`Notes: ${evil}`));
  assert.equal(await d.page.locator('.run-tag').textContent(), `#${evil}`);
  assert.ok((await d.page.locator('.facts').textContent())?.includes(evil));
  assert.ok((await d.page.locator('.notices').textContent())?.includes(`<b>${evil}</b>`));
  await assertClean(d);
});

test('the header names a torch run\u2019s engine (world size, sharding, precision); a tfjs or older log its backend', async () => {
  const old = snapshot('seqft-finished');
  const restarted = (engine: RunStartedEvent['engine'], backend?: RunStartedEvent['backend']): RunSnapshot => ({
    ...old,
    events: old.events.map((e) =>
      e.type === 'run-started' ? { ...e, ...(backend ? { backend } : {}), ...(engine ? { engine } : {}) } : e,
    ),
  });
  const facts = async (run: RunSnapshot) => {
    const d = await open();
    await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [run] });
    await d.rendered(run.events.length);
    const line = d.page.locator('.facts');
    const engine = line.locator('[data-fact="engine"]');
    const read = {
      line: await line.textContent(),
      engine: (await engine.count()) ? await engine.textContent() : null,
      title: (await engine.count()) ? await engine.getAttribute('title') : null,
    };
    await assertClean(d);
    return read;
  };
  const torch = await facts(
    restarted(
      { name: 'torch', version: '2.13.0', world: 2, shard: 'fsdp2', precision: 'bf16' },
      { name: 'torch', device: 'cuda:0 (NVIDIA H100 80GB HBM3)', isGpu: true, fallbacks: [] },
    ),
  );
  assert.equal(torch.engine, 'torch \u00d72 (fsdp2, bf16) on GPU');
  assert.equal(torch.title, 'Engine: torch 2.13.0 \u00d72 (fsdp2, bf16)\nDevice: cuda:0 (NVIDIA H100 80GB HBM3)');
  assert.equal(
    torch.line,
    'seqft \u00b7 3 tasks: sentiment \u2192 topic \u2192 size \u00b7 torch \u00d72 (fsdp2, bf16) on GPU \u00b7 llama, 21k parameters',
  );
  // The fixture predates the engine block: it and a tfjs run read as before, their backend named and no engine.
  for (const run of [old, restarted({ name: 'tfjs' })]) {
    const read = await facts(run);
    assert.equal(read.engine, null);
    assert.equal(
      read.line,
      'seqft \u00b7 3 tasks: sentiment \u2192 topic \u2192 size \u00b7 wasm \u00b7 llama, 21k parameters',
    );
  }
});

test('the UI state survives a reload: the webview says ready again and restores tab and table views', async () => {
  const run = snapshot('adaptive-svd-stopped');
  const d = await open();
  await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [run] });
  await d.rendered(run.events.length);
  await showTab(d.page, 'training');
  await readCardTable(d.page, 'loss');
  const state = await d.page.evaluate(() => JSON.parse(sessionStorage.getItem('sculpt-test-state') ?? 'null'));
  assert.deepEqual(state.runKeys, [run.key]);
  await d.page.reload();
  await d.page.waitForFunction(() =>
    (window as unknown as { __sculptPosted: { type: string }[] }).__sculptPosted.some((m) => m.type === 'ready'),
  );
  await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [run] });
  await d.rendered(run.events.length);
  assert.equal(
    await d.page.locator('vscode-tabs').evaluate((t: HTMLElement & { selectedIndex: number }) => t.selectedIndex),
    1,
  );
  await d.page.locator('section[data-card="loss"] table').waitFor();
  assert.equal(await d.page.locator('.status').first().textContent(), 'stopped');
  await assertClean(d);
});

test('the page runs under the panel\u2019s CSP, and the policy is enforced', async () => {
  const d = await open();
  const csp = await d.page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  const nonce = /'nonce-([A-Za-z0-9]+)'/.exec(csp ?? '')?.[1];
  assert.ok(nonce && nonce.length >= 16);
  assert.equal(csp, dashboardCsp(server.origin, nonce));
  const ran = await d.page.evaluate(async () => {
    const s = document.createElement('script');
    s.textContent = 'window.__inline = 1';
    document.body.append(s);
    await new Promise((r) => setTimeout(r, 50));
    return (window as unknown as { __inline?: number }).__inline;
  });
  assert.equal(ran, undefined, 'inline script blocked');
  const v = (await d.cspViolations()) as { directive: string }[];
  assert.ok(
    v.some((x) => x.directive.startsWith('script-src')),
    'the violation is reported (so the zero counts elsewhere mean something)',
  );
  await d.page.close();
});
