// The dashboard's host side against a fake vscode API: panels beside the editor with a strict CSP, nothing sent
// before `ready`, runs read from their folders, live events batched, panels reused per set of runs, exports
// saved beside the runs, requests limited to the panel's runs, and panels restored by the serializer; an
// experiment folder in one panel under its name, reused, growing with its record, restored as the experiment.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fake, Uri, type FakePanel } from './fake-vscode';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import type { HostMessage, InitMessage } from '../../src/protocol/webview';
import { fixture } from '../helpers/paths';

// Imported after the fake is installed (a static import would be evaluated first).
const host = () => import('../../src/extension/dashboard');
const files = () => import('../../src/extension/dashboard/run-files');

const root = mkdtempSync(join(tmpdir(), 'sculpt-dashboard-host-'));
after(() => rmSync(root, { recursive: true, force: true }));
function runDir(name: string, fixtureName?: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  if (fixtureName) cpSync(fixture('events', `${fixtureName}.jsonl`), join(dir, 'events.jsonl'));
  return dir;
}
const eventsOf = (name: string) => parseEventLog(readFileSync(fixture('events', `${name}.jsonl`), 'utf8')).events;
const context = () => ({ extensionUri: Uri.file('/ext'), subscriptions: [] as { dispose(): void }[] });
const sent = (p: FakePanel) => p.sent as HostMessage[];
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
/** Waits for the export result of request `id` (file writes take their time on a busy machine). */
async function resultOf(p: FakePanel, id: number): Promise<void> {
  for (let t = 0; t < 5000; t += 10) {
    await tick(10);
    // A little longer for what follows the result (the Reveal message's button).
    if (sent(p).some((m) => m.type === 'export-result' && m.requestId === id)) return void (await tick(10));
  }
  throw new Error(`no export result for request ${id}`);
}

test('open: a panel beside the editor, scripts only from dist, a fresh nonce per load, nothing sent before ready', async () => {
  const { registerDashboard } = await host();
  const ctx = context();
  const m = registerDashboard(ctx as never);
  const dir = runDir('a', 'adaptive-svd-finished');
  m.open([dir]);
  const p = fake.panels.at(-1)!;
  assert.equal(p.viewType, 'sculpt.dashboard');
  assert.deepEqual(p.showOptions, { viewColumn: -2, preserveFocus: true });
  assert.equal(p.title, 'Sculpt: a');
  assert.equal(p.webview.options.enableScripts, true);
  assert.deepEqual(
    (p.webview.options.localResourceRoots as Uri[]).map((u) => u.fsPath),
    ['/ext/dist', '/ext/media'],
  );
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(p.webview.html)?.[1] ?? '';
  const nonce = /'nonce-([A-Za-z0-9]+)'/.exec(csp)?.[1] ?? '';
  assert.ok(nonce.length >= 16);
  assert.equal(
    csp,
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src https://fake.vscode-cdn.net 'nonce-${nonce}'; img-src https://fake.vscode-cdn.net data:; font-src https://fake.vscode-cdn.net`,
  );
  assert.deepEqual(
    [...p.webview.html.matchAll(/<script ([^>]*)>/g)].map((x) => x[1]),
    [`nonce="${nonce}" src="https://fake.vscode-cdn.net/ext/dist/webview.js"`],
  );
  assert.doesNotMatch(p.webview.html, /\son\w+=|<style|\sstyle=/);
  m.notify(dir, eventsOf('adaptive-svd-finished')[0]);
  await tick(80);
  assert.deepEqual(p.sent, [], 'nothing before ready');
  p.fromWebview({ type: 'ready', protocol: 1 });
  await tick();
  const init = sent(p)[0] as InitMessage;
  assert.equal(init.type, 'init');
  assert.equal(init.theme, 'dark');
  assert.equal(init.runs[0].key, dir);
  assert.equal(init.runs[0].events.length, eventsOf('adaptive-svd-finished').length);
  // A reload (the webview says ready again) gets a fresh init with a new nonce in the page.
  const html = p.webview.html;
  const m2 = registerDashboard(context() as never);
  m2.open([dir]);
  assert.notEqual(fake.panels.at(-1)!.webview.html, html);
  m.dispose();
  m2.dispose();
  assert.ok(p.disposed);
});

test('live events: merged into init when not on disk yet, then batched, final events flushed at once', async () => {
  const { DashboardManager } = await host();
  const m = new DashboardManager(Uri.file('/ext') as never);
  const dir = runDir('live');
  const evs = eventsOf('seqft-finished');
  m.notify(dir, evs[0]);
  m.open([dir]);
  const p = fake.panels.at(-1)!;
  p.fromWebview({ type: 'ready', protocol: 1 });
  await tick();
  const init = sent(p)[0] as InitMessage;
  assert.equal(init.runs[0].live, true);
  assert.equal(init.runs[0].readError, undefined, 'a live run without a log yet is not an error');
  assert.deepEqual(
    init.runs[0].events.map((e) => e.seq),
    [1],
  );
  for (const e of evs.slice(1, 30)) m.notify(dir, e);
  assert.equal(p.sent.length, 1, 'batched, not one message per event');
  await tick(90);
  const batch = sent(p)[1];
  assert.ok(batch.type === 'events' && batch.key === dir && batch.events.length === 29);
  m.notify(dir, evs[evs.length - 1]);
  const last = sent(p)[2];
  assert.ok(last.type === 'events' && last.events[0].type === 'run-finished', 'a final event is not delayed');
  m.notify(runDir('other'), evs[1]);
  m.setLive(dir, false, 1);
  assert.deepEqual(sent(p)[3], { type: 'live', key: dir, live: false, exitCode: 1 });
  assert.equal(p.sent.length, 4, 'events of runs not shown are not sent');
  fake.themeChanged.fire({ kind: 1 });
  assert.deepEqual(sent(p)[4], { type: 'theme', theme: 'light' });
  m.dispose();
});

test('the same runs reuse their panel; a different set opens another', async () => {
  const { DashboardManager } = await host();
  const m = new DashboardManager(Uri.file('/ext') as never);
  const a = runDir('ra', 'adaptive-svd-finished');
  const b = runDir('rb', 'seqft-finished');
  const before = fake.panels.length;
  m.open([a, b]);
  m.open([b, a + '/']);
  assert.equal(fake.panels.length, before + 1);
  assert.equal(fake.panels.at(-1)!.reveals.length, 1);
  assert.equal(fake.panels.at(-1)!.title, 'Sculpt: 2 runs');
  m.open([a], { viewColumn: 1 as never });
  assert.equal(fake.panels.length, before + 2);
  assert.deepEqual((fake.panels.at(-1)!.showOptions as { viewColumn: number }).viewColumn, 1);
  assert.deepEqual(m.openPanels(), [[a, b], [a]]);
  fake.panels.at(-1)!.dispose();
  assert.deepEqual(m.openPanels(), [[a, b]]);
  m.dispose();
});

test('exports are saved beside the run (or its parent) without overwriting, with a Reveal message; folder and boundary requests only for the panel\u2019s runs', async () => {
  const { DashboardManager } = await host();
  const m = new DashboardManager(Uri.file('/ext') as never);
  const dir = runDir('ex', 'adaptive-svd-finished');
  const chosen: { runDir: string; beforeTask: number }[] = [];
  m.onDidSelectBoundary((s) => chosen.push(s));
  m.open([dir]);
  const p = fake.panels.at(-1)!;
  p.fromWebview({ type: 'ready', protocol: 1 });
  const dialogs = fake.saveDialogs.length;
  fake.messageAnswer = 'Reveal';
  p.fromWebview({
    type: 'export',
    requestId: 7,
    format: 'csv',
    suggestedName: '../../evil/x.csv',
    key: dir,
    data: 'a,b\n1,2\n',
  });
  await resultOf(p, 7);
  assert.equal(readFileSync(join(dir, 'x.csv'), 'utf8'), 'a,b\n1,2\n', 'in the run folder; the name loses any folder');
  assert.deepEqual(sent(p).at(-1), { type: 'export-result', requestId: 7, outcome: 'saved', path: join(dir, 'x.csv') });
  assert.equal(fake.saveDialogs.length, dialogs, 'no save dialog');
  assert.deepEqual(fake.messages.at(-1), {
    level: 'info',
    text: `Sculpt: saved ${join(dir, 'x.csv')}`,
    items: ['Reveal'],
  });
  assert.deepEqual(
    fake.commands.at(-1)!.map((c) => (c instanceof Uri ? c.fsPath : c)),
    ['revealFileInOS', join(dir, 'x.csv')],
    'Reveal shows the file',
  );
  p.fromWebview({ type: 'export', requestId: 8, format: 'csv', suggestedName: 'x.csv', key: dir, data: 'second\n' });
  await resultOf(p, 8);
  assert.equal(readFileSync(join(dir, 'x.csv'), 'utf8'), 'a,b\n1,2\n', 'an export never overwrites');
  assert.equal(readFileSync(join(dir, 'x-2.csv'), 'utf8'), 'second\n');
  // No run named: beside the runs (their shared parent folder).
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
  p.fromWebview({
    type: 'export',
    requestId: 9,
    format: 'png',
    suggestedName: 'c.png',
    data: `data:image/png;base64,${png.toString('base64')}`,
  });
  await resultOf(p, 9);
  assert.deepEqual(readFileSync(join(root, 'c.png')), png);
  p.fromWebview({ type: 'export', requestId: 10, format: 'png', suggestedName: 'c.png', data: 'javascript:alert(1)' });
  await resultOf(p, 10);
  assert.equal((sent(p).at(-1) as { outcome: string }).outcome, 'failed');
  assert.equal(fake.messages.at(-1)?.level, 'error');
  p.fromWebview({ type: 'export', requestId: 11, format: 'svg', suggestedName: 'c.svg', key: dir, data: '<b>no</b>' });
  await resultOf(p, 11);
  assert.equal((sent(p).at(-1) as { outcome: string }).outcome, 'failed', 'an SVG export must be an SVG document');
  const svg = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><title>t</title></svg>\n';
  p.fromWebview({ type: 'export', requestId: 12, format: 'svg', suggestedName: 'chart.png', key: dir, data: svg });
  await resultOf(p, 12);
  assert.equal(readFileSync(join(dir, 'chart.svg'), 'utf8'), svg, 'the extension follows the format');
  // Export all charts: one new folder, every file in it, names made unique.
  p.fromWebview({
    type: 'export-files',
    requestId: 13,
    folder: '../ex-accuracy-charts',
    files: [
      { format: 'csv', name: 'a.csv', data: '1\n' },
      { format: 'svg', name: 'a.svg', data: svg },
      { format: 'csv', name: 'a.csv', data: '2\n' },
    ],
  });
  await resultOf(p, 13);
  const folder = join(root, 'ex-accuracy-charts');
  assert.deepEqual(sent(p).at(-1), { type: 'export-result', requestId: 13, outcome: 'saved', path: folder, count: 3 });
  assert.equal(readFileSync(join(folder, 'a.csv'), 'utf8'), '1\n');
  assert.equal(readFileSync(join(folder, 'a-2.csv'), 'utf8'), '2\n');
  assert.equal(readFileSync(join(folder, 'a.svg'), 'utf8'), svg);
  assert.match(fake.messages.at(-1)!.text, /3 files exported to .*ex-accuracy-charts$/);
  p.fromWebview({ type: 'export-files', requestId: 14, folder: 'ex-accuracy-charts', files: [] });
  await resultOf(p, 14);
  assert.equal((sent(p).at(-1) as { path: string }).path, `${folder}-2`, 'a second export gets a folder of its own');
  const n = fake.commands.length;
  p.fromWebview({ type: 'open-run-folder', key: '/etc' });
  p.fromWebview({ type: 'open-run-folder', key: dir });
  p.fromWebview({ type: 'select-boundary', key: '/etc', beforeTask: 1 });
  p.fromWebview({ type: 'select-boundary', key: dir, beforeTask: 2 });
  p.fromWebview({ type: 'ready' });
  p.fromWebview({ type: 'eval', code: 'x' });
  await tick(20);
  assert.deepEqual(
    fake.commands.slice(n).map((c) => [c[0], (c[1] as Uri).fsPath]),
    [['revealFileInOS', dir]],
  );
  assert.deepEqual(chosen, [{ runDir: dir, beforeTask: 2 }]);
  m.dispose();
});

test('the serializer restores a panel from its webview state and re-reads the runs; bad state closes it', async () => {
  const { registerDashboard } = await host();
  const ctx = context();
  registerDashboard(ctx as never);
  const s = fake.serializers.get('sculpt.dashboard')!;
  const dir = runDir('restored', 'adaptive-svd-crashed');
  const { FakePanel } = await import('./fake-vscode');
  const p = new FakePanel('sculpt.dashboard', {});
  await s.deserializeWebviewPanel(p, { protocol: 1, runKeys: [dir], ui: { tab: 'training' } });
  assert.match(p.webview.html, /Content-Security-Policy/);
  assert.equal(p.webview.options.enableScripts, true);
  p.fromWebview({ type: 'ready', protocol: 1 });
  await tick();
  const init = sent(p)[0] as InitMessage;
  assert.equal(init.runs[0].truncatedTail, true);
  assert.equal(init.runs[0].live, false);
  const bad = new FakePanel('sculpt.dashboard', {});
  await s.deserializeWebviewPanel(bad, undefined);
  assert.ok(bad.disposed);
  for (const d of ctx.subscriptions) d.dispose();
  assert.ok(p.disposed, 'the extension context disposes the manager and its panels');
  assert.equal(fake.serializers.size, 0);
});

test('run snapshots: missing logs are reported, recent live events are merged by sequence number', async () => {
  const { readRunSnapshot } = await files();
  const missing = readRunSnapshot(join(root, 'nope'), false);
  assert.match(missing.readError ?? '', /nope\/events\.jsonl does not exist/);
  const dir = runDir('merge', 'adaptive-svd-stopped');
  const evs = eventsOf('adaptive-svd-stopped');
  const extra: SculptEvent = {
    ...evs[evs.length - 1],
    seq: evs[evs.length - 1].seq + 1,
    type: 'warning',
    message: 'late',
  } as SculptEvent;
  const snap = readRunSnapshot(dir, true, [evs[3], extra]);
  assert.deepEqual(
    snap.events.slice(-2).map((e) => e.seq),
    [evs[evs.length - 1].seq, extra.seq],
  );
  assert.equal(snap.name, 'merge');
});

test('run snapshots carry the cell job.json names and the user\u2019s notes; a queued folder says so; a rename reaches the panels', async () => {
  const { DashboardManager } = await host();
  const { readRunSnapshot } = await files();
  const { updateRunNotes } = await import('../../src/runs/run-notes');
  const queued = runDir('queued-cell');
  writeFileSync(
    join(queued, 'config.json'),
    JSON.stringify({
      name: 'grid',
      seed: 4,
      methods: [{ method: 'seqft' }, { method: 'adaptive-svd', label: 'svd-0.5' }],
    }),
  );
  writeFileSync(join(queued, 'job.json'), JSON.stringify({ methodIndex: 1, order: 1, seed: 2 }));
  const snap = readRunSnapshot(queued, false);
  assert.equal(snap.readError, undefined, 'a queued run is no error');
  assert.deepEqual(snap.meta, {
    method: 'svd-0.5',
    order: 1,
    seed: 2,
    experiment: 'grid',
    queued: true,
    title: '',
    notes: '',
    tags: [],
  });
  const done = runDir('noted', 'adaptive-svd-finished');
  updateRunNotes(done, { title: 'lr 1e-3 retry', tags: ['baseline'] });
  assert.deepEqual(readRunSnapshot(done, false).meta, {
    order: null,
    seed: null,
    queued: false,
    title: 'lr 1e-3 retry',
    notes: '',
    tags: ['baseline'],
  });
  const m = new DashboardManager(Uri.file('/ext') as never);
  m.open([done]);
  const p = fake.panels.at(-1)!;
  p.fromWebview({ type: 'ready', protocol: 1 });
  updateRunNotes(done, { title: 'renamed', notes: 'after the fix' });
  m.updateMeta(done);
  m.updateMeta(queued);
  const metas = sent(p).filter((x) => x.type === 'run-meta');
  assert.equal(metas.length, 1, 'only panels that show the run hear of it');
  assert.deepEqual(metas[0], {
    type: 'run-meta',
    key: done,
    meta: { order: null, seed: null, queued: false, title: 'renamed', notes: 'after the fix', tags: ['baseline'] },
  });
  m.dispose();
});

/** An experiment folder as createExperiment leaves it: experiment.json and one prepared folder per cell. */
function experimentDir(name: string, cells: string[]): string {
  const dir = join(root, `${name}-20261207-103000`);
  mkdirSync(dir, { recursive: true });
  for (const c of cells) {
    mkdirSync(join(dir, c), { recursive: true });
    writeFileSync(join(dir, c, 'job.json'), JSON.stringify({ methodIndex: 0, order: 0 }));
  }
  const record = {
    kind: 'sculpt-experiment',
    version: 1,
    name,
    configFile: null,
    created: '2026-12-07T10:30:00.000Z',
    methods: ['seqft', 'adaptive-svd'],
    orders: [['sentiment', 'topic', 'size']],
    seeds: [0, 1],
    baseline: null,
    cells: cells.map((c) => {
      const [, method, order, seed] = /^(.*)-o(\d+)-s(\d+)$/.exec(c)!;
      return { dir: c, methodIndex: method === 'seqft' ? 0 : 1, method, order: Number(order) - 1, seed: Number(seed) };
    }),
  };
  writeFileSync(join(dir, 'experiment.json'), JSON.stringify(record));
  return dir;
}

test('an experiment opens in one panel titled with its name, reused when opened again; queued cells are no error', async () => {
  const { DashboardManager } = await host();
  const m = new DashboardManager(Uri.file('/ext') as never);
  const dir = experimentDir('grid', ['seqft-o1-s0', 'adaptive-svd-o1-s0', 'seqft-o1-s1', 'adaptive-svd-o1-s1']);
  cpSync(fixture('events', 'seqft-finished.jsonl'), join(dir, 'seqft-o1-s0', 'events.jsonl'));
  const before = fake.panels.length;
  m.openExperiment(dir);
  m.openExperiment(dir + '/');
  assert.equal(fake.panels.length, before + 1, 'one panel per experiment');
  const p = fake.panels.at(-1)!;
  assert.equal(p.title, 'Sculpt: grid');
  assert.equal(p.reveals.length, 1, 'the second open reveals the first panel');
  assert.deepEqual(m.openExperiments(), [dir]);
  const cells = ['seqft-o1-s0', 'adaptive-svd-o1-s0', 'seqft-o1-s1', 'adaptive-svd-o1-s1'].map((c) => join(dir, c));
  assert.deepEqual(m.openPanels().at(-1), cells, 'the cells in run order');
  p.fromWebview({ type: 'ready', protocol: 1 });
  await tick();
  const init = sent(p)[0] as InitMessage;
  assert.equal(init.experiment?.name, 'grid');
  assert.equal(init.experiment?.dir, dir);
  assert.deepEqual(
    init.experiment?.cells.map((c) => [c.key, c.method, c.order, c.seed]),
    cells.map((k, i) => [k, i % 2 ? 'adaptive-svd' : 'seqft', 0, i < 2 ? 0 : 1]),
  );
  assert.deepEqual(
    init.runs.map((r) => [r.key, r.events.length > 0, r.readError]),
    cells.map((k, i) => [k, i === 0, undefined]),
    'cells without a log yet are queued, not errors',
  );
  // A live event of a cell reaches the panel.
  m.notify(cells[1], eventsOf('adaptive-svd-finished')[0]);
  await tick(80);
  assert.ok(sent(p).some((x) => x.type === 'events' && x.key === cells[1]));
  // Open Dashboard on exactly the experiment's runs reveals its panel rather than opening a second.
  m.open(cells);
  assert.equal(fake.panels.length, before + 1, 'the same set of runs reveals the panel that shows them');
  m.dispose();
});

test('an experiment panel picks up cells added to experiment.json and restores as the experiment', async () => {
  const { DashboardManager, registerDashboard } = await host();
  const m = new DashboardManager(Uri.file('/ext') as never);
  const dir = experimentDir('grow', ['seqft-o1-s0', 'adaptive-svd-o1-s0']);
  m.openExperiment(dir);
  const p = fake.panels.at(-1)!;
  p.fromWebview({ type: 'ready', protocol: 1 });
  await tick();
  assert.equal((sent(p)[0] as InitMessage).runs.length, 2);
  // The record grows (a resumed grid with more seeds): the first event of a new cell brings it in.
  experimentDir('grow', ['seqft-o1-s0', 'adaptive-svd-o1-s0', 'seqft-o1-s1']);
  const added = join(dir, 'seqft-o1-s1');
  m.notify(added, eventsOf('seqft-finished')[0]);
  await tick(80);
  const runs = sent(p).find((x) => x.type === 'runs');
  assert.ok(runs && runs.type === 'runs');
  assert.deepEqual(
    runs.runs.map((r) => r.key),
    [join(dir, 'seqft-o1-s0'), join(dir, 'adaptive-svd-o1-s0'), added],
  );
  const exp = sent(p).find((x) => x.type === 'experiment');
  assert.ok(exp && exp.type === 'experiment' && exp.experiment?.cells.length === 3);
  assert.ok(sent(p).some((x) => x.type === 'events' && x.key === added));
  m.openExperiment(dir);
  assert.equal(fake.panels.at(-1), p);
  m.dispose();

  // After a window reload the serializer restores it as the experiment, with its current cells.
  const ctx = context();
  registerDashboard(ctx as never);
  const s = fake.serializers.get('sculpt.dashboard')!;
  const { FakePanel } = await import('./fake-vscode');
  const restored = new FakePanel('sculpt.dashboard', {});
  await s.deserializeWebviewPanel(restored, { protocol: 1, runKeys: [join(dir, 'seqft-o1-s0')], experimentDir: dir });
  assert.equal(restored.title, 'Sculpt: grow');
  restored.fromWebview({ type: 'ready', protocol: 1 });
  await tick();
  const init = sent(restored)[0] as InitMessage;
  assert.equal(init.experiment?.cells.length, 3);
  assert.equal(init.runs.length, 3);
  // A second restored panel of the same experiment closes rather than duplicating it.
  const twin = new FakePanel('sculpt.dashboard', {});
  await s.deserializeWebviewPanel(twin, { protocol: 1, runKeys: [], experimentDir: dir });
  assert.ok(twin.disposed);
  for (const d of ctx.subscriptions) d.dispose();
});

test('a folder without a readable experiment.json is refused with a message naming it', async () => {
  const { DashboardManager } = await host();
  const m = new DashboardManager(Uri.file('/ext') as never);
  const before = fake.panels.length;
  assert.throws(() => m.openExperiment(runDir('not-an-experiment')), /not-an-experiment .*experiment\.json/);
  assert.equal(fake.panels.length, before);
  m.dispose();
});
