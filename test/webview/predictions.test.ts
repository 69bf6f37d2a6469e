// The Predictions tab in a real browser (Debian's Chromium) under the panel's CSP: shown, it asks the host for the
// run's predictions; the host's answer (read by the real host code from a run folder written here) becomes a
// confusion matrix whose table holds the counts made by hand and a list of the misclassified examples; picking
// a task asks again; inputs and labels with markup stay text; nothing logs an error or violates the policy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { parseEventLog } from '../../src/protocol/events';
import type { RunSnapshot } from '../../src/protocol/webview';
import type { PredictionsRequestMessage } from '../../src/protocol/predictions';
import { predictionRecord, writePredictionPoint, type PredictionSetData } from '../../src/runs/predictions';
import { readPredictions } from '../../src/extension/dashboard/run-files';
import { launchBrowser, openDashboard, startServer, type DashboardPage, type Harness } from './harness';
import { fixture, repoRoot } from '../helpers/paths';

const SHOTS = join(repoRoot, 'test-output', 'webview');
let server: Harness;
let browser: Browser;
const runDir = mkdtempSync(join(tmpdir(), 'sculpt-webview-predictions-'));

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
  rmSync(runDir, { recursive: true, force: true });
});

const EVIL = '<img src=x onerror="window.__pwned=1">';

/** A set of rank records from (input, expected, predicted) with scores that make `predicted` the best label. */
function rankSet(task: number, name: string, labels: string[], rows: [string, string, string][]): PredictionSetData {
  const records = rows.map(([input, expected, predicted], i) =>
    predictionRecord(i, input, expected, predicted, expected === predicted, {
      labels,
      values: labels.map((l) => (l === predicted ? -0.2 : l === expected ? -1.5 : -3)),
    }),
  );
  const correct = records.filter((r) => r.correct).length;
  return { split: 'test', task, name, mode: 'rank', labels, accuracy: (100 * correct) / records.length, records };
}

// sentiment: good→good ×2, good→bad ×1, bad→bad ×1, bad→good ×2.
const SENTIMENT = rankSet(
  0,
  'sentiment',
  ['good', 'bad'],
  [
    ['sunny happy', 'good', 'good'],
    ['great calm', 'good', 'good'],
    ['kind sweet', 'good', 'bad'],
    ['sad dark', 'bad', 'bad'],
    ['rainy gloomy', 'bad', 'good'],
    ['cruel angry', 'bad', 'good'],
  ],
);
const TOPIC = rankSet(
  1,
  'topic',
  ['animal', 'food', '<b>place</b>'],
  [
    ['cat dog', 'animal', 'animal'],
    [EVIL, 'food', '<b>place</b>'],
    ['lake hill', '<b>place</b>', 'animal'],
  ],
);

function snapshot(): RunSnapshot {
  const log = parseEventLog(readFileSync(fixture('events', 'seqft-finished.jsonl'), 'utf8'));
  return { key: runDir, name: 'seqft-finished', live: false, events: log.events, truncatedTail: false, badLines: 0 };
}

async function requests(d: DashboardPage, n: number): Promise<PredictionsRequestMessage[]> {
  await d.page.waitForFunction(
    (count) =>
      (window as unknown as { __sculptPosted: { type: string }[] }).__sculptPosted.filter(
        (m) => m.type === 'predictions-request',
      ).length >= count,
    n,
  );
  return (await d.posted()).filter((m): m is PredictionsRequestMessage => m.type === 'predictions-request');
}

/** Answers the latest request as the host does. */
async function answer(d: DashboardPage, n: number): Promise<PredictionsRequestMessage> {
  const req = (await requests(d, n)).at(-1)!;
  await d.post(readPredictions(req.key, req.pick, req.requestId));
  return req;
}

async function confusionTable(page: Page): Promise<{ columns: string[]; rows: string[][] }> {
  const card = page.locator('section[data-card="confusion"]');
  if (!(await card.evaluate((el) => el.classList.contains('show-table'))))
    await card.locator('vscode-button[data-action="toggle-table"]').click();
  const table = card.locator('table');
  await table.waitFor();
  return table.evaluate((t) => ({
    columns: [...t.querySelectorAll('thead th')].map((th) => th.textContent ?? ''),
    rows: [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((c) => c.textContent ?? '')),
  }));
}

const misclassified = (page: Page) =>
  page
    .locator('table[data-table="misclassified"]')
    .evaluate((t) => [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((c) => c.textContent)));

async function pick(page: Page, control: string, value: string): Promise<void> {
  await page
    .locator(`vscode-single-select[data-control="${control}"]`)
    .evaluate((el: HTMLElement & { value: string }, v) => {
      el.value = v;
      el.dispatchEvent(new Event('change'));
    }, value);
}

test('the Predictions tab: a confusion matrix and the misclassified examples, asked of the host on demand', async () => {
  writePredictionPoint(runDir, -1, ['sentiment', 'topic', 'size'], [SENTIMENT]);
  writePredictionPoint(
    runDir,
    2,
    ['sentiment', 'topic', 'size'],
    [SENTIMENT, TOPIC, { ...SENTIMENT, split: 'validation', records: SENTIMENT.records.slice(0, 2), accuracy: 100 }],
  );
  const run = snapshot();
  const d = await openDashboard(browser, server.origin, { theme: 'dark' });
  await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [run] });
  await d.rendered(run.events.length);
  assert.equal((await d.posted()).filter((m) => m.type === 'predictions-request').length, 0, 'nothing asked unseen');
  await d.page.locator('vscode-tab-header[data-tab="predictions"]').click();
  const first = await answer(d, 1);
  assert.deepEqual([first.key, first.pick], [runDir, {}]);
  const panel = d.page.locator('vscode-tab-panel[data-panel="predictions"]');
  await panel.locator('section[data-card="confusion"] canvas').waitFor();
  assert.match(
    (await panel.locator('section[data-card="confusion"] .card-title').textContent()) ?? '',
    /sentiment, test, after size \(task 3\)/,
  );
  await d.page.screenshot({ path: join(SHOTS, 'predictions-dark.png'), fullPage: true });
  // The last point, the test split and the first task; points and splits offered.
  const options = (control: string) =>
    panel
      .locator(`vscode-single-select[data-control="${control}"] vscode-option`)
      .evaluateAll((os) => os.map((o) => o.textContent));
  assert.deepEqual(await options('predictions-point'), ['zero-shot', 'after size (task 3)']);
  assert.deepEqual(await options('predictions-split'), ['test', 'validation']);
  assert.deepEqual(await options('predictions-task'), ['sentiment', 'topic']);

  const t = await confusionTable(d.page);
  assert.deepEqual(t.columns, ['expected \\ predicted', 'good', 'bad', 'examples', 'correct %']);
  assert.deepEqual(t.rows, [
    ['good', '2', '1', '3', '66.7'],
    ['bad', '2', '1', '3', '33.3'],
  ]);
  assert.deepEqual(await misclassified(d.page), [
    ['2', 'kind sweet', 'good', 'bad', 'bad 79% · good 21%'],
    ['4', 'rainy gloomy', 'bad', 'good', 'good 79% · bad 21%'],
    ['5', 'cruel angry', 'bad', 'good', 'good 79% · bad 21%'],
  ]);
  // One (expected, predicted) pair at a time.
  await pick(d.page, 'predictions-filter', JSON.stringify(['bad', 'good']));
  await d.page.waitForFunction(
    () => document.querySelectorAll('table[data-table="misclassified"] tbody tr').length === 2,
  );

  // Another task: asked again with what is shown, and the answer drawn; markup in data stays text.
  await pick(d.page, 'predictions-task', '1');
  const second = await answer(d, 2);
  assert.deepEqual(second.pick, { point: 'after-task-3', split: 'test', task: 1, mode: 'rank' });
  await d.page.waitForFunction(() =>
    document.querySelector('table[data-table="misclassified"] caption')?.textContent?.includes('2 of 3'),
  );
  const topic = await confusionTable(d.page);
  assert.deepEqual(topic.columns, ['expected \\ predicted', 'animal', 'food', '<b>place</b>', 'examples', 'correct %']);
  assert.deepEqual(
    topic.rows.map((r) => r.slice(0, 4)),
    [
      ['animal', '1', '0', '0'],
      ['food', '0', '0', '1'],
      ['<b>place</b>', '1', '0', '0'],
    ],
  );
  const rows = await misclassified(d.page);
  assert.deepEqual(
    rows.map((r) => r.slice(0, 4)),
    [
      ['1', EVIL, 'food', '<b>place</b>'],
      ['2', 'lake hill', '<b>place</b>', 'animal'],
    ],
  );
  assert.equal(await panel.locator('section img, section b').count(), 0, 'no element made from data');
  assert.equal(await d.page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);

  // The validation split of the same point.
  await pick(d.page, 'predictions-task', '0');
  await answer(d, 3);
  await pick(d.page, 'predictions-split', 'validation');
  const fourth = await answer(d, 4);
  assert.equal(fourth.pick.split, 'validation');
  await d.page.waitForFunction(() =>
    document.querySelector('section[data-card="misclassified"] .card-empty')?.textContent?.includes('correctly'),
  );
  assert.deepEqual(d.problems, []);
  assert.deepEqual(await d.cspViolations(), []);
  await d.page.close();
});

test('a run folder without predictions says why, and how to get them', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'sculpt-webview-nopred-'));
  try {
    const run = { ...snapshot(), key: empty };
    const d = await openDashboard(browser, server.origin, { theme: 'light' });
    await d.post({ type: 'init', protocol: 1, theme: 'light', runs: [run] });
    await d.rendered(run.events.length);
    await d.page.locator('vscode-tab-header[data-tab="predictions"]').click();
    await answer(d, 1);
    const status = d.page.locator('vscode-tab-panel[data-panel="predictions"] p[role="status"]');
    await d.page.waitForFunction(() =>
      document
        .querySelector('vscode-tab-panel[data-panel="predictions"] p[role="status"]')
        ?.textContent?.includes('eval.predictions'),
    );
    assert.match((await status.textContent()) ?? '', /no predictions/);
    assert.deepEqual(d.problems, []);
    assert.deepEqual(await d.cspViolations(), []);
    await d.page.close();
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
