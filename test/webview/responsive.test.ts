// The dashboard at the widths it is used at, in Debian's Chromium under the panel's CSP: beside an editor at
// 700 px the page never scrolls sideways (wide tables scroll in their own box), charts stack in one column and
// table headers do not overlap; at 1280×800 the run table fits. Runs are named by short labels (method · order ·
// seed, or the user's title) with the run id in tooltips; a queued cell shows as queued under its method; runs
// of different task sequences are compared by task name, say so, and mark no best value.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import type { ExperimentInfo, RunMeta, RunSnapshot } from '../../src/protocol/webview';
import { launchBrowser, openDashboard, startServer, type DashboardPage, type Harness } from './harness';
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

const events = (name: string) => parseEventLog(readFileSync(fixture('events', `${name}.jsonl`), 'utf8')).events;

/** The log with its tasks renamed position by position, and its config's name changed. */
function retasked(evs: SculptEvent[], tasks: string[], experiment: string): SculptEvent[] {
  return evs.map((e) => {
    if (e.type === 'run-started') return { ...e, tasks, config: { ...(e.config as object), name: experiment } };
    if (e.type === 'task-started' || e.type === 'task-finished') return { ...e, name: tasks[e.task] };
    return e;
  });
}

function snap(key: string, evs: SculptEvent[], meta: RunMeta = {}): RunSnapshot {
  return { key, name: key.split('/').pop()!, live: false, events: evs, truncatedTail: false, badLines: 0, meta };
}

const EXP = '/home/researcher/sculpt/runs/tiny3-20261127-031447';
const cellKey = (m: string, o: number, s: number) => `${EXP}/${m}-o${o + 1}-s${s}`;

/** An experiment of 2 methods × 1 order × 3 seeds: four finished cells (one renamed and tagged), two queued. */
function experiment(): { runs: RunSnapshot[]; info: ExperimentInfo } {
  const cells = [0, 1, 2].flatMap((seed) =>
    ['seqft', 'adaptive-svd'].map((method, methodIndex) => ({
      key: cellKey(method, 0, seed),
      method,
      methodIndex,
      order: 0,
      seed,
    })),
  );
  const runs = cells.map((c) => {
    const meta: RunMeta = { method: c.method, order: 0, seed: c.seed, experiment: 'tiny3' };
    if (c.seed === 2) return snap(c.key, [], { ...meta, queued: true });
    // The recorded logs, as this cell's seed (run-started names the seed in its config).
    const evs = events(c.method === 'seqft' ? 'seqft-finished' : 'adaptive-svd-finished').map((e) =>
      e.type === 'run-started' ? { ...e, config: { ...(e.config as object), seed: c.seed } } : e,
    );
    if (c.seed === 1 && c.method === 'adaptive-svd')
      return snap(c.key, evs, {
        ...meta,
        title: 'adaptive SVD with the fixed 0.5 ratio and a floor of 0.2 per matrix',
        tags: ['ratio-study', 'rerun-after-tokenizer-fix', 'baseline-candidate'],
        notes: 'compare with table 2',
      });
    return snap(c.key, evs, meta);
  });
  const info: ExperimentInfo = {
    dir: EXP,
    name: 'tiny3',
    methods: ['seqft', 'adaptive-svd'],
    orders: [['sentiment', 'topic', 'size']],
    seeds: [0, 1, 2],
    baseline: 'seqft',
    cells,
  };
  return { runs, info };
}

const total = (runs: RunSnapshot[]) => runs.reduce((s, r) => s + r.events.length, 0);

async function open(width: number, height = 900): Promise<DashboardPage> {
  const d = await openDashboard(browser, server.origin, { width, height });
  const { runs, info } = experiment();
  await d.post({ type: 'init', protocol: 1, theme: 'dark', runs, experiment: info });
  await d.rendered(total(runs));
  return d;
}

async function showTab(page: Page, tab: string): Promise<void> {
  await page.locator(`vscode-tab-header[data-tab="${tab}"]`).click();
  await page.locator(`vscode-tab-panel[data-panel="${tab}"] section.card`).first().waitFor();
}

/** Whether the page scrolls sideways: the document wider than the window. */
const pageOverflow = (page: Page) =>
  page.evaluate(() => ({
    doc: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    body: document.body.scrollWidth - document.documentElement.clientWidth,
  }));

/** Pairs of header cells of `selector`'s first row whose boxes overlap. */
const overlappingHeaders = (page: Page, selector: string) =>
  page.locator(selector).evaluateAll((tables) =>
    tables.flatMap((t) => {
      const rects = [...t.querySelectorAll('thead th')].map((th) => th.getBoundingClientRect());
      const out: string[] = [];
      for (let i = 0; i + 1 < rects.length; i++)
        if (rects[i].right > rects[i + 1].left + 0.5 && rects[i].width > 0) out.push(`${i}/${i + 1}`);
      return out;
    }),
  );

test('at 700 px: no sideways scrolling of the page, tables scroll in their own box, charts in one column', async () => {
  const d = await open(700);
  const { page } = d;
  for (const tab of ['experiment', 'accuracy', 'training']) {
    await showTab(page, tab);
    await page.waitForTimeout(100);
    assert.deepEqual(await pageOverflow(page), { doc: 0, body: 0 }, `${tab}: the page does not scroll sideways`);
    const lefts = await page
      .locator(`vscode-tab-panel[data-panel="${tab}"] section.card`)
      .evaluateAll((cards) => cards.map((c) => Math.round(c.getBoundingClientRect().left)));
    assert.ok(lefts.length >= 2, `${tab}: cards`);
    assert.equal(new Set(lefts).size, 1, `${tab}: every card in one column`);
    const right = await page
      .locator(`vscode-tab-panel[data-panel="${tab}"] section.card`)
      .evaluateAll((cards) => Math.max(...cards.map((c) => c.getBoundingClientRect().right)));
    assert.ok(right <= 700, `${tab}: cards end inside the window (${right})`);
    await page.screenshot({ path: join(SHOTS, `narrow-700-${tab}.png`), fullPage: true });
  }
  // The run table is wider than the panel: it scrolls inside its box, which ends inside the window.
  const box = await page.locator('.summary-box .table-scroll').evaluate((el) => ({
    overflow: getComputedStyle(el).overflowX,
    scrolls: el.scrollWidth > el.clientWidth,
    right: el.getBoundingClientRect().right,
  }));
  assert.equal(box.overflow, 'auto');
  assert.equal(box.scrolls, true, 'the wide run table scrolls in its own box');
  assert.ok(box.right <= 700);
  // Matrix tables and the experiment grid: headers side by side, never on top of each other.
  await showTab(page, 'accuracy');
  const matrix = page.locator('section[data-card^="matrix:"]').first();
  await matrix.locator('vscode-button[data-action="toggle-table"]').click();
  await matrix.locator('table').waitFor();
  assert.deepEqual(await overlappingHeaders(page, 'section[data-card^="matrix:"] table'), []);
  assert.deepEqual(await overlappingHeaders(page, 'table[data-table="summary"]'), []);
  assert.deepEqual(await pageOverflow(page), { doc: 0, body: 0 }, 'a table view does not widen the page');
  await showTab(page, 'experiment');
  assert.deepEqual(await overlappingHeaders(page, 'table[data-table="experiment-grid"]'), []);
  assert.deepEqual(d.problems, []);
  await page.close();
});

test('at 1280×800 the run table fits without scrolling; screenshot', async () => {
  const d = await open(1280, 800);
  const fit = await d.page.locator('.summary-box .table-scroll').evaluate((el) => ({
    scrolls: el.scrollWidth > el.clientWidth,
    right: el.getBoundingClientRect().right,
  }));
  assert.equal(fit.scrolls, false, 'nothing of the run table is cut off');
  assert.ok(fit.right <= 1280);
  assert.deepEqual(await pageOverflow(d.page), { doc: 0, body: 0 });
  await d.page.screenshot({ path: join(SHOTS, 'experiment-1280x800.png') });
  assert.deepEqual(d.problems, []);
  await d.page.close();
});

test('short labels in tables, titles and legends; the run id and notes in tooltips; queued cells queued', async () => {
  const d = await open(1280);
  const { page } = d;
  const row = (key: string) => page.locator(`table[data-table="summary"] tr[data-run="${key}"]`);
  const svd0 = cellKey('adaptive-svd', 0, 0);
  const label = row(svd0).locator('.run-label');
  assert.equal(await label.textContent(), 'adaptive-svd · o1 · s0');
  assert.equal(await label.getAttribute('title'), `adaptive-svd · o1 · s0: adaptive-svd-o1-s0\n${svd0}`);
  const renamed = row(cellKey('adaptive-svd', 0, 1));
  assert.equal(
    await renamed.locator('.run-label').textContent(),
    'adaptive SVD with the fixed 0.5 ratio and a floor of 0.2 per matrix',
  );
  assert.match(
    (await renamed.locator('.run-label').getAttribute('title')) ?? '',
    /adaptive-svd-o1-s1\n.*\nTags: #ratio-study .*\nNotes: compare with table 2/,
  );
  assert.deepEqual(await renamed.locator('.run-tag').allTextContents(), [
    '#ratio-study',
    '#rerun-after-tokenizer-fix',
    '#baseline-candidate',
  ]);
  // Queued cells: their method and "queued", not "?" and "no events".
  const queued = row(cellKey('seqft', 0, 2));
  assert.equal(await queued.locator('.status').textContent(), 'queued');
  assert.equal(await queued.locator('td').nth(1).textContent(), 'seqft');
  assert.equal(await queued.locator('.run-label').textContent(), 'seqft · o1 · s2');
  // The header's progress line counts the grid.
  assert.match(
    (await page.locator('.progress-overall .progress-text').textContent()) ?? '',
    /^4\/6 finished · 2 queued · 66% done$/,
  );
  await showTab(page, 'accuracy');
  const title = page.locator(`section[data-card="matrix:${svd0}"] .card-title`);
  assert.equal(await title.textContent(), 'Accuracy matrix: adaptive-svd · o1 · s0');
  assert.match((await title.getAttribute('title')) ?? '', /adaptive-svd-o1-s0/);
  const aa = page.locator('section[data-card="average-accuracy"]');
  await aa.locator('vscode-button[data-action="toggle-table"]').click();
  const heads = aa.locator('thead th');
  await heads.first().waitFor();
  assert.equal(await heads.nth(1).textContent(), 'seqft · o1 · s0');
  assert.match((await heads.nth(1).getAttribute('title')) ?? '', /^seqft · o1 · s0: seqft-o1-s0\n/);
  // The experiment grid's cells: label and id in the tooltip.
  await showTab(page, 'experiment');
  assert.match(
    (await page.locator(`td[data-cell="${svd0}"]`).getAttribute('title')) ?? '',
    /^adaptive-svd · o1 · s0: adaptive-svd-o1-s0\n/,
  );
  assert.deepEqual(d.problems, []);
  await page.close();
});

test('runs of two experiments with different task sequences: a note, figures by task name, no best marked', async () => {
  const d = await openDashboard(browser, server.origin, { width: 1280 });
  const a = snap(
    '/w/runs/exp-a-1/adaptive-svd-o1-s0',
    retasked(events('adaptive-svd-finished'), ['sentiment', 'topic', 'size'], 'exp-a'),
  );
  const b = snap(
    '/w/runs/exp-b-1/seqft-o1-s0',
    retasked(events('seqft-finished'), ['size', 'spam', 'sentiment'], 'exp-b'),
  );
  await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [a, b] });
  await d.rendered(total([a, b]));
  const { page } = d;
  assert.equal(await page.locator('table[data-table="summary"] td[data-best="true"]').count(), 0, 'no best marked');
  assert.match(
    (await page.locator('table[data-table="summary"] caption').textContent()) ?? '',
    /different task sequences, so no value is marked best/,
  );
  assert.match(
    (await page.locator('.notices .notice-info').first().textContent()) ?? '',
    /different task sequences \(adaptive-svd · o1 · s0: sentiment → topic → size; seqft · o1 · s0: size → spam → sentiment\)/,
  );
  const f = page.locator('section[data-card="forgetting"]');
  await f.locator('vscode-button[data-action="toggle-table"]').click();
  await f.locator('table').waitFor();
  const rows = await f.locator('tbody th').allTextContents();
  assert.deepEqual(rows, ['sentiment', 'topic', 'size', 'spam', 'mean forgetting', 'BWT'], 'every task once, by name');
  assert.match((await f.locator('.card-footer').textContent()) ?? '', /matched by task name/);
  await page.screenshot({ path: join(SHOTS, 'compare-sequences-dark.png'), fullPage: true });
  assert.deepEqual(d.problems, []);
  await page.close();
});
