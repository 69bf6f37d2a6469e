// The experiment view in a real browser (Debian's Chromium) under the panel's CSP: an experiment folder of
// 2 methods × 2 task orders × 2 seeds with synthetic, schema-valid event logs (six finished cells, one failed,
// one queued without a log) is read by the dashboard host and shown in one panel. The numbers the view displays
// (means, interval bounds, n, p-values, verdicts, notes, a mean matrix cell ± sd) are those of the built CLI's
// `sculpt report <experiment folder> --json`; the grid shows each cell's state and follows a queued cell live to
// its finish, after which the view and the CLI agree again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { Metrics, SculptEvent } from '../../src/protocol/events';
import { validateConfig, type ResolvedConfig } from '../../src/protocol/config-validate';
import type { ExperimentInfo, RunSnapshot } from '../../src/protocol/webview';
import { METRIC_NAMES, type ExperimentAggregate, type MetricName } from '../../src/runs/aggregate-types';
import { createExperiment } from '../../src/runs/experiment-dir';
import type { RunSummary } from '../../src/runs/fold';
import { metricsAfter } from '../../src/runs/metrics';
import { readExperimentInfo, readRunSnapshot } from '../../src/extension/dashboard/run-files';
import { launchBrowser, openDashboard, startServer, type DashboardPage, type Harness } from './harness';
import { tinyExperiment, tinyTasks } from '../helpers/experiment';
import { repoRoot } from '../helpers/paths';
import { CLI, assertEventLog } from '../helpers/runs';

const SHOTS = join(repoRoot, 'test-output', 'webview');
const work = mkdtempSync(join(tmpdir(), 'sculpt-experiment-view-'));
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
  rmSync(work, { recursive: true, force: true });
});

// ---- the experiment folder ----

const TASKS = ['sentiment', 'topic', 'size'];
const ORDERS = [TASKS, ['size', 'topic', 'sentiment']];
/** Accuracy on `on` after training `after`, before a method's lift and a cell's noise. */
const BASE: Record<string, Record<string, number>> = {
  sentiment: { sentiment: 91.5, topic: 34.25, size: 48.5 },
  topic: { sentiment: 62.75, topic: 88, size: 51.125 },
  size: { sentiment: 55.5, topic: 71.375, size: 93.25 },
};
const ZERO_SHOT: Record<string, number> = { sentiment: 50, topic: 33.5, size: 47.25 };
const LIFT: Record<string, number> = { seqft: 0, 'adaptive-svd': 6.5 };

/** A fixed, uneven noise per (cell, after, on), so that means, spreads and intervals are not round. */
function noise(method: string, order: number, seed: number, a: string, b: string): number {
  let h = 2166136261;
  for (const c of `${method}|${order}|${seed}|${a}|${b}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return ((h >>> 0) % 1000) / 125 - 4;
}

function matrixOf(method: string, order: number, seed: number): number[][] {
  const tasks = ORDERS[order];
  // Forgetting grows with each later task for seqft; adaptive SVD keeps most of it.
  return tasks.map((after, i) =>
    tasks.map((on, j) => {
      const forget = j < i ? (method === 'seqft' ? 9 : 2) * (i - j) : 0;
      return Math.min(
        100,
        Math.max(0, BASE[after][on] + LIFT[method] - forget + noise(method, order, seed, after, on)),
      );
    }),
  );
}

function resolved(): ResolvedConfig {
  const { config, issues } = validateConfig(
    tinyExperiment({
      name: 'grid-view',
      output: join(work, 'runs'),
      tasks: tinyTasks(TASKS),
      orders: [ORDERS[1]],
      seeds: [0, 1],
      methods: [{ method: 'seqft' }, { method: 'adaptive-svd' }],
    }),
  );
  assert.deepEqual(issues, []);
  return config!;
}

interface CellPlan {
  dir: string;
  method: string;
  order: number;
  seed: number;
}

/** The events of a cell: finished (with or without the zero-shot row), or failed in its second task. */
function cellEvents(cell: CellPlan, outcome: 'finished' | 'failed', zeroShot: boolean): SculptEvent[] {
  const config = JSON.parse(readFileSync(join(cell.dir, 'config.json'), 'utf8'));
  const tasks = ORDERS[cell.order];
  const R = matrixOf(cell.method, cell.order, cell.seed);
  const zs = zeroShot ? tasks.map((t) => ZERO_SHOT[t]) : null;
  const runId = `grid-view-${cell.method}-o${cell.order + 1}-s${cell.seed}`;
  let seq = 0;
  let time = 1_800_000_000_000 + cell.order * 1e6 + cell.seed * 1e5;
  const ev = (e: Record<string, unknown>) => ({ v: 1, runId, seq: ++seq, time: (time += 1500), ...e }) as SculptEvent;
  const out: SculptEvent[] = [
    ev({
      type: 'run-started',
      config,
      method: cell.method,
      tasks,
      order: cell.order,
      backend: { name: 'wasm', device: 'WebAssembly SIMD, 1 thread', isGpu: false, fallbacks: [] },
      model: {
        arch: 'llama',
        source: 'builtin:tiny-llama',
        parameters: 20768,
        trainable: 20768,
        layers: 2,
        targets: 14,
      },
    }),
  ];
  const last = outcome === 'finished' ? tasks.length : 1;
  for (let i = 0; i < last; i++) {
    out.push(ev({ type: 'task-started', task: i, name: tasks[i], trainExamples: 64, steps: 8 }));
    out.push(
      ev({
        type: 'step',
        task: i,
        step: 4,
        globalStep: i * 8 + 4,
        loss: 1.5 - 0.1 * i,
        lr: 0.01,
        tokensPerSecond: 900,
        progress: 0.5,
      }),
    );
    const metrics: Metrics = metricsAfter(R.slice(0, i + 1), zs, i);
    out.push(ev({ type: 'task-finished', task: i, name: tasks[i], row: R[i], metrics, seconds: 2.5 }));
  }
  if (outcome === 'failed') {
    out.push(
      ev({ type: 'error', message: 'out of memory while training topic', where: 'train', hint: 'lower batchSize' }),
    );
  } else {
    out.push(ev({ type: 'run-finished', matrix: R, zeroShot: zs, metrics: metricsAfter(R, zs), seconds: 9.5 }));
  }
  assertEventLog(out, runId);
  return out;
}

const jsonl = (events: SculptEvent[]) => events.map((e) => JSON.stringify(e)).join('\n') + '\n';

const experiment = createExperiment(resolved(), { now: new Date(2026, 11, 7, 10, 30, 0) });
const info: ExperimentInfo = readExperimentInfo(experiment.dir);
const plans: CellPlan[] = info.cells.map((c) => ({ dir: c.key, method: c.method, order: c.order, seed: c.seed }));
const cell = (method: string, order: number, seed: number) =>
  plans.find((p) => p.method === method && p.order === order && p.seed === seed)!;
const FAILED = cell('seqft', 1, 1);
const QUEUED = cell('adaptive-svd', 1, 1);
/** The queued cell's log, posted live (and appended to its file) in the second test. */
const queuedEvents = cellEvents(QUEUED, 'finished', false);
for (const p of plans) {
  if (p === QUEUED) continue;
  // Only one adaptive-SVD run measured the base model: its FWT has n = 1.
  const zeroShot = p.method === 'seqft' || (p.order === 0 && p.seed === 0);
  writeFileSync(join(p.dir, 'events.jsonl'), jsonl(cellEvents(p, p === FAILED ? 'failed' : 'finished', zeroShot)));
}

// ---- what the CLI says ----

interface Report {
  runs: RunSummary[];
  aggregate: ExperimentAggregate;
}

function cliReport(): Report {
  const r = spawnSync(process.execPath, [CLI, 'report', experiment.dir, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `sculpt report failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Report;
}

// ---- reading the page ----

interface ReadCell {
  text: string;
  value: number | null;
  data: Record<string, string>;
}

interface ReadTable {
  columns: string[];
  rows: { header: string; cells: ReadCell[] }[];
}

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
        data: { ...td.dataset } as Record<string, string>,
      })),
    })),
  }));
}

async function footer(page: Page, cardId: string, cls = ''): Promise<string[]> {
  return page.locator(`section[data-card="${cardId}"] .card-footer li${cls}`).allTextContents();
}

async function gridStates(page: Page): Promise<Map<string, { state: string; text: string; counted: string }>> {
  const cells = await page.locator('table[data-table="experiment-grid"] td[data-cell]').evaluateAll((tds) =>
    tds.map((td) => ({
      key: (td as HTMLElement).dataset.cell!,
      state: (td as HTMLElement).dataset.state!,
      counted: (td as HTMLElement).dataset.counted!,
      text: td.textContent ?? '',
    })),
  );
  return new Map(cells.map((c) => [c.key, c]));
}

const num = (s: string | undefined) => (s === undefined ? null : Number(s));
const f1 = (v: number) => v.toFixed(1);
const signed = (v: number) =>
  Number(Math.abs(v).toFixed(1)) === 0 ? Math.abs(v).toFixed(1) : `${v > 0 ? '+' : '\u2212'}${Math.abs(v).toFixed(1)}`;

/** Every figure the view shows for the methods and the comparison equals the CLI's. */
async function assertSameNumbers(page: Page, cli: ExperimentAggregate, methods: string[]): Promise<void> {
  for (const metric of METRIC_NAMES) {
    const t = await readCardTable(page, `exp-metric:${metric}`);
    assert.deepEqual(t.columns, ['method', 'n', 'mean', 'sd', '95% CI', 'runs']);
    for (const method of methods) {
      const e = cli.methods.find((m) => m.method === method)!.metrics[metric];
      const row = t.rows.find((r) => r.header === method);
      assert.ok(row, `${metric}: a row for ${method}`);
      const [n, mean, sd, ci, values] = row.cells;
      assert.equal(n.value, e.n, `${metric} ${method} n`);
      assert.equal(mean.value, e.mean, `${metric} ${method} mean`);
      assert.equal(sd.value, e.sd, `${metric} ${method} sd`);
      assert.equal(num(ci.data.low), e.ci95?.[0] ?? null, `${metric} ${method} CI low`);
      assert.equal(num(ci.data.high), e.ci95?.[1] ?? null, `${metric} ${method} CI high`);
      assert.deepEqual(JSON.parse(values.data.values), e.values, `${metric} ${method} values`);
      if (e.n === 1) assert.equal(ci.text, 'no interval (n = 1)');
      else if (e.ci95) {
        const fmt = metric === 'BWT' || metric === 'FWT' ? signed : f1;
        assert.equal(ci.text, `[${fmt(e.ci95[0])}, ${fmt(e.ci95[1])}]`);
        assert.equal(mean.text, fmt(e.mean!));
      }
    }
    // The chart's own text says n, and that one run has no interval.
    const lines = await footer(page, `exp-metric:${metric}`);
    for (const method of methods) {
      const e = cli.methods.find((m) => m.method === method)!.metrics[metric];
      const line = lines.find((l) => l.startsWith(`${method}:`)) ?? '';
      if (e.n === 1) assert.match(line, /no interval \(n = 1\)$/);
      else if (e.n > 1) assert.match(line, new RegExp(`n = ${e.n}$`));
    }
  }
  const cmp = await readCardTable(page, 'exp-compare');
  assert.deepEqual(cmp.columns, ['method \u00b7 metric', 'pairs', 'mean difference', 'sd', '95% CI', 'p', 'verdict']);
  for (const c of cli.comparisons.filter((x) => methods.includes(x.method))) {
    for (const metric of METRIC_NAMES) {
      const d = c.metrics[metric as MetricName];
      const row = cmp.rows.find((r) => r.header === `${c.method} \u00b7 ${metric}`);
      assert.ok(row, `a comparison row for ${c.method} ${metric}`);
      const [pairs, mean, sd, ci, p, verdict] = row.cells;
      assert.equal(pairs.value, d.n, `${metric} pairs`);
      assert.equal(mean.value, d.mean, `${metric} mean difference`);
      assert.equal(sd.value, d.sd, `${metric} sd of the differences`);
      assert.equal(num(ci.data.low), d.ci95?.[0] ?? null, `${metric} difference CI low`);
      assert.equal(num(ci.data.high), d.ci95?.[1] ?? null, `${metric} difference CI high`);
      assert.equal(p.value, d.p, `${metric} p`);
      assert.equal(verdict.text, d.verdict, `${metric} verdict`);
    }
  }
  // Verdicts and p-values in text under the chart, and the aggregate's notes with them.
  const lines = await footer(page, 'exp-compare', ':not(.footer-note)');
  for (const c of cli.comparisons.filter((x) => methods.includes(x.method))) {
    for (const metric of METRIC_NAMES) {
      const d = c.metrics[metric as MetricName];
      const line = lines.find((l) => l.startsWith(`${c.method} \u2212 ${c.baseline}, ${metric}:`));
      assert.ok(line, `a line for ${c.method} ${metric}`);
      assert.ok(line.includes(`: ${d.verdict}`), line);
      if (d.p != null) assert.ok(line.includes(`p = ${d.p < 0.001 ? '< 0.001' : d.p.toFixed(3)}`), line);
    }
  }
  const notes = await footer(page, 'exp-compare', '.footer-note');
  assert.ok(notes.length > 0, 'the notes are shown');
  // A cell that has not started is filed under its method by both (from its job.json and experiment.json).
  assert.ok(!cli.methods.some((m) => m.method === '?'), "the report names the queued cell's method");
  assert.deepEqual(notes, cli.notes);
  // A mean matrix cell: mean ± sd by task name, as the CLI has it.
  for (const method of methods) {
    const m = cli.methods.find((x) => x.method === method)!;
    const t = await readCardTable(page, `exp-matrix:${method}`);
    assert.deepEqual(t.columns.slice(1), cli.tasks);
    const rows = t.rows.filter((r) => r.header !== 'zero-shot');
    cli.tasks.forEach((_, a) =>
      cli.tasks.forEach((__, b) => {
        const e = m.matrix[a][b];
        const c = rows[a].cells[b];
        assert.equal(c.value, e.mean, `${method} matrix [${a}][${b}] mean`);
        assert.equal(num(c.data.sd), e.sd, `${method} matrix [${a}][${b}] sd`);
        if (e.sd != null) assert.equal(c.text, `${f1(e.mean!)} \u00b1 ${f1(e.sd)}`);
      }),
    );
  }
}

async function assertClean(d: DashboardPage): Promise<void> {
  assert.deepEqual(d.problems, []);
  assert.deepEqual(await d.cspViolations(), []);
}

function snapshots(): RunSnapshot[] {
  return info.cells.map((c) => readRunSnapshot(c.key, false));
}

let page: DashboardPage;

test('an experiment: the Experiment tab opens first and shows the numbers of `sculpt report --json`', async () => {
  const runs = snapshots();
  const cli = cliReport();
  assert.equal(runs.find((r) => r.key === QUEUED.dir)?.readError, undefined, 'a queued cell is not an error');
  page = await openDashboard(browser, server.origin, { theme: 'dark' });
  await page.post({ type: 'init', protocol: 1, theme: 'dark', runs, experiment: info });
  await page.rendered(runs.reduce((s, r) => s + r.events.length, 0));
  const p = page.page;
  assert.equal(await p.locator('.title').textContent(), 'grid-view: 8 runs');
  const tabs = await p.locator('vscode-tab-header').evaluateAll((hs) => hs.map((x) => (x as HTMLElement).dataset.tab));
  assert.deepEqual(tabs, ['experiment', 'accuracy', 'training', 'subspace', 'predictions']);
  assert.equal(
    await p.locator('vscode-tabs').evaluate((t: HTMLElement & { selectedIndex: number }) => t.selectedIndex),
    0,
  );
  await p.screenshot({ path: join(SHOTS, 'experiment-dark.png'), fullPage: true });

  // The grid: every cell with its method; the failed one is failed and not counted, the queued one queued.
  const grid = await gridStates(p);
  assert.equal(grid.size, 8);
  assert.equal(grid.get(QUEUED.dir)?.state, 'queued');
  assert.equal(grid.get(QUEUED.dir)?.text, 'queued');
  assert.equal(grid.get(FAILED.dir)?.state, 'failed');
  assert.equal(grid.get(FAILED.dir)?.counted, 'false');
  assert.equal([...grid.values()].filter((c) => c.state === 'finished' && c.counted === 'true').length, 6);
  const rowOf = (key: string) =>
    p
      .locator(`table[data-table="experiment-grid"] td[data-cell="${key}"]`)
      .evaluate((td) => td.closest('tr')!.dataset.method);
  assert.equal(await rowOf(QUEUED.dir), 'adaptive-svd');
  assert.equal(
    await p.locator('.experiment-line').textContent(),
    '8 runs (2 methods \u00d7 2 orders \u00d7 2 seeds): 6 finished \u00b7 1 queued \u00b7 1 failed \u00b7 baseline seqft',
  );

  // n leaves the failed and the queued cell out; one adaptive-SVD run measured zero-shot: FWT n = 1.
  const svd = cli.aggregate.methods.find((m) => m.method === 'adaptive-svd')!;
  const seqft = cli.aggregate.methods.find((m) => m.method === 'seqft')!;
  assert.equal(svd.n, 3);
  assert.equal(seqft.n, 3);
  assert.equal(svd.metrics.FWT.n, 1);
  assert.equal(cli.aggregate.baseline, 'seqft');
  await assertSameNumbers(p, cli.aggregate, ['seqft', 'adaptive-svd']);
  await p.screenshot({ path: join(SHOTS, 'experiment-tables-dark.png'), fullPage: true });
  await assertClean(page);
});

test('the grid follows a queued cell live to its finish; the view then agrees with the CLI again', async () => {
  const p = page.page;
  const total = () => p.evaluate(() => Number(document.documentElement.dataset.sculptEvents));
  const before = await total();
  await page.post({ type: 'live', key: QUEUED.dir, live: true });
  const started = queuedEvents.findIndex((e) => e.type === 'step');
  await page.post({ type: 'events', key: QUEUED.dir, events: queuedEvents.slice(0, started + 1) });
  await page.rendered(before + started + 1);
  await p.waitForFunction(
    (key) => document.querySelector(`td[data-cell="${key}"]`)?.getAttribute('data-state') === 'running',
    QUEUED.dir,
  );
  assert.equal(await p.locator(`td[data-cell="${QUEUED.dir}"]`).textContent(), 'running' + 'task 1/3 \u00b7 50%');
  await p.screenshot({ path: join(SHOTS, 'experiment-live-dark.png'), fullPage: true });
  // The rest of its log arrives live and is on disk for the CLI.
  writeFileSync(join(QUEUED.dir, 'events.jsonl'), jsonl(queuedEvents.slice(0, started + 1)));
  appendFileSync(join(QUEUED.dir, 'events.jsonl'), jsonl(queuedEvents.slice(started + 1)));
  await page.post({ type: 'events', key: QUEUED.dir, events: queuedEvents.slice(started + 1) });
  await page.post({ type: 'live', key: QUEUED.dir, live: false, exitCode: 0 });
  await page.rendered(before + queuedEvents.length);
  await p.waitForFunction(
    (key) => document.querySelector(`td[data-cell="${key}"]`)?.getAttribute('data-state') === 'finished',
    QUEUED.dir,
  );
  const cli = cliReport();
  assert.equal(cli.aggregate.methods.find((m) => m.method === 'adaptive-svd')!.n, 4);
  await assertSameNumbers(p, cli.aggregate, ['seqft', 'adaptive-svd']);
  const ns = await readCardTable(p, 'exp-metric:AA');
  assert.deepEqual(
    ns.rows.map((r) => [r.header, r.cells[0].value]),
    [
      ['seqft', 3],
      ['adaptive-svd', 4],
    ],
  );
  await assertClean(page);
  await page.page.close();
});

test('runs compared without an experiment: the tab is offered for several runs per method, not for one each', async () => {
  const runs = snapshots().filter((r) => r.events.length);
  const d = await openDashboard(browser, server.origin, { theme: 'light' });
  await d.post({ type: 'init', protocol: 1, theme: 'light', runs });
  await d.rendered(runs.reduce((s, r) => s + r.events.length, 0));
  const tabs = () =>
    d.page.locator('vscode-tab-header').evaluateAll((hs) => hs.map((x) => (x as HTMLElement).dataset.tab));
  assert.deepEqual(await tabs(), ['experiment', 'accuracy', 'training', 'subspace', 'predictions']);
  assert.equal(
    await d.page.locator('vscode-tabs').evaluate((t: HTMLElement & { selectedIndex: number }) => t.selectedIndex),
    0,
  );
  assert.ok(await d.page.locator('section[data-card="exp-compare"]').count());
  await d.page.screenshot({ path: join(SHOTS, 'experiment-compare-light.png'), fullPage: true });
  // One run per method: no Experiment tab, the Accuracy tab as before.
  const one = [runs.find((r) => r.name.startsWith('seqft'))!, runs.find((r) => r.name.startsWith('adaptive-svd'))!];
  await d.post({ type: 'runs', runs: one.map((r) => ({ key: r.key, name: r.name, live: false })) });
  await d.page.waitForFunction(() => document.querySelectorAll('vscode-tab-header').length === 4);
  assert.deepEqual(await tabs(), ['accuracy', 'training', 'subspace', 'predictions']);
  assert.equal(
    await d.page.locator('vscode-tabs').evaluate((t: HTMLElement & { selectedIndex: number }) => t.selectedIndex),
    0,
  );
  await d.page.locator('section[data-card^="matrix:"]').first().waitFor();
  await assertClean(d);
  await d.page.close();
});
