/**
 * `npm run bench -- dashboard [--json] [--reps N] [--steps N]`
 *
 * The dashboard under load: a run of 20,000 step events (5 tasks, a 24-layer model's ranks) is ingested and
 * drawn in the browser harness (Debian's Chromium, the real bundle and CSP). Times run from the host's
 * postMessage to the frame that includes every event, measured in the page:
 *   replay   the whole run arrives in `init` (opening a finished run, or a reload)
 *   append   a live run receives all its steps in one `events` message (a panel catching up)
 *   stream   the steps arrive in messages of 100 as fast as the page takes them (a live run)
 * with the Training tab shown, so the loss and throughput charts are redrawn. The reducer alone (Node, no
 * drawing) is timed too, and the extension host's ingestion: the events.jsonl read by EventTail, then reduced. Target: replay and append under 1 s. No peer (rows carry peer: null).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventTail } from '../../src/supervisor/event-tail';
import type { SculptEvent } from '../../src/protocol/events';
import type { HostMessage, RunSnapshot } from '../../src/protocol/webview';
import { runFromEvents } from '../../webview/state';
import { launchBrowser, openDashboard, startServer } from '../../test/webview/harness';
import { formatStats, markdownTable, printReport, stats, type BenchRow, type Stats } from './report';
import { positiveIntOption } from './options';

const KEY = '/bench/runs/synthetic';

/** A plausible long run: loss decaying per task with noise, evals, ranks at boundaries, a final matrix. */
export function syntheticRun(totalSteps = 20000, T = 5, layers = 24): SculptEvent[] {
  const runId = 'bench-synthetic';
  const out: SculptEvent[] = [];
  let seq = 0;
  let time = 1_700_000_000_000;
  const base = () => ({ v: 1, runId, seq: ++seq, time: (time += 37) });
  const tasks = Array.from({ length: T }, (_, i) => `task${i + 1}`);
  out.push({
    ...base(),
    type: 'run-started',
    config: { name: 'bench' },
    method: 'adaptive-svd',
    tasks,
    order: 0,
    backend: { name: 'webgpu', device: 'bench', isGpu: true, fallbacks: [] },
    model: { arch: 'llama', source: 'bench', parameters: 1.1e9, trainable: 1.1e9, layers, targets: layers * 7 },
  });
  const R: number[][] = [];
  const perTask = Math.floor(totalSteps / T);
  let rnd = 12345;
  const noise = () => ((rnd = (rnd * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.2;
  for (let t = 0; t < T; t++) {
    if (t > 0) {
      const matrices = [];
      for (let l = 0; l < layers; l++) {
        for (const role of ['q', 'k', 'v', 'o', 'gate', 'up', 'down']) {
          const ratio = Math.min(1, 0.2 + 0.1 * t + 0.02 * l);
          matrices.push({
            name: `model.layers.${l}.${role}.weight`,
            layer: l,
            role,
            shape: [2048, 2048] as [number, number],
            k: Math.round(ratio * 2048),
            minDim: 2048,
            ratio,
            sigmaMax: 3,
            sigmaMin: 0.01,
            sigmaMean: 0.4,
            effectiveRank: 900,
            retainedEnergy: Math.min(1, ratio + 0.2),
          });
        }
      }
      out.push({ ...base(), type: 'ranks', beforeTask: t, policy: 'adaptive', matrices, seconds: 12.5 });
    }
    out.push({ ...base(), type: 'task-started', task: t, name: tasks[t], trainExamples: 5000, steps: perTask });
    for (let s = 1; s <= perTask; s++) {
      out.push({
        ...base(),
        type: 'step',
        task: t,
        step: s,
        globalStep: t * perTask + s,
        loss: 0.3 + 3 * Math.exp(-s / 300) + noise(),
        lr: 1e-4,
        tokensPerSecond: 4000 + 500 * noise(),
        progress: s / perTask,
      });
    }
    const row = tasks.map((_, j) => (j <= t ? 90 - 5 * (t - j) : 20));
    R.push(row);
    for (let j = 0; j < T; j++)
      out.push({
        ...base(),
        type: 'eval',
        afterTask: t,
        task: j,
        name: tasks[j],
        mode: 'rank',
        accuracy: row[j],
        examples: 500,
      });
    out.push({
      ...base(),
      type: 'task-finished',
      task: t,
      name: tasks[t],
      row,
      metrics: { AA: 80, BWT: -5, forgetting: 5, FWT: 0 },
      seconds: 100,
    });
  }
  out.push({
    ...base(),
    type: 'run-finished',
    matrix: R,
    zeroShot: tasks.map(() => 20),
    metrics: { AA: 80, BWT: -5, forgetting: 5, FWT: 0 },
    seconds: 500,
  });
  return out;
}

export async function runDashboardBench(argv: readonly string[]): Promise<void> {
  const json = argv.includes('--json');
  const reps = positiveIntOption(argv, '--reps', 3);
  const steps = positiveIntOption(argv, '--steps', 20000);
  const events = syntheticRun(steps);
  const stepEvents = events.filter((e) => e.type === 'step').length;
  // The first two events (run-started, task-started) open the live cases; the rest arrive afterwards.
  const head = events.slice(0, 2);
  const rest = events.slice(2);
  const snapshot = (evs: SculptEvent[], live: boolean): RunSnapshot => ({
    key: KEY,
    name: 'synthetic',
    live,
    events: evs,
    truncatedTail: false,
    badLines: 0,
  });

  const reducer: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    runFromEvents({ key: KEY, name: 'synthetic' }, events);
    reducer.push((performance.now() - t0) / 1000);
  }
  // The extension host's side: the run's events.jsonl read and parsed by EventTail (what the Runs view and the
  // dashboard host do for a finished or reattached run), then folded by the reducer.
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-bench-events-'));
  const log = join(dir, 'events.jsonl');
  writeFileSync(log, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const host: number[] = [];
  try {
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      const read = new EventTail(log).read();
      runFromEvents({ key: KEY, name: 'synthetic' }, read);
      host.push((performance.now() - t0) / 1000);
      if (read.length !== events.length) throw new Error(`EventTail read ${read.length} of ${events.length} events`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const server = await startServer();
  const browser = await launchBrowser();
  const replay: number[] = [];
  const append: number[] = [];
  const stream: number[] = [];
  try {
    const d = await openDashboard(browser, server.origin, { theme: 'dark', width: 1400, height: 1000 });
    // Show the Training tab (restored from the webview state), so the step charts are part of every redraw.
    await d.page.evaluate(() =>
      sessionStorage.setItem(
        'sculpt-test-state',
        JSON.stringify({ protocol: 1, runKeys: [], ui: { tab: 'training' } }),
      ),
    );
    await d.page.reload();
    await d.page.waitForFunction(() =>
      (window as unknown as { __sculptPosted: { type: string }[] }).__sculptPosted.some((m) => m.type === 'ready'),
    );
    /** Posts the messages in the page and returns seconds until a frame includes `total` events. */
    const timed = (messages: HostMessage[], total: number) =>
      d.page.evaluate(
        async ([msgs, n]) => {
          const t0 = performance.now();
          for (const m of msgs) window.postMessage(m, '*');
          await new Promise<void>((resolve) => {
            const check = () =>
              document.documentElement.dataset.sculptEvents === String(n) ? resolve() : requestAnimationFrame(check);
            check();
          });
          return (performance.now() - t0) / 1000;
        },
        [messages, total] as const,
      );
    const reset = async () => {
      await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [] });
      await d.rendered(0);
    };
    for (let i = 0; i < reps; i++) {
      await reset();
      replay.push(
        await timed([{ type: 'init', protocol: 1, theme: 'dark', runs: [snapshot(events, false)] }], events.length),
      );
      await reset();
      await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [snapshot(head, true)] });
      await d.rendered(head.length);
      append.push(await timed([{ type: 'events', key: KEY, events: rest }], events.length));
      await reset();
      await d.post({ type: 'init', protocol: 1, theme: 'dark', runs: [snapshot(head, true)] });
      await d.rendered(head.length);
      const batches: HostMessage[] = [];
      for (let k = 0; k < rest.length; k += 100)
        batches.push({ type: 'events', key: KEY, events: rest.slice(k, k + 100) });
      stream.push(await timed(batches, events.length));
    }
    if (d.problems.length) throw new Error(`the page reported problems: ${d.problems.join('; ')}`);
    await d.page.close();
  } finally {
    await browser.close();
    await server.close();
  }

  const rows: [string, Stats][] = [
    [`reducer only (Node): ${events.length} events`, stats(reducer)],
    [`extension host: events.jsonl (${events.length} events) read by EventTail and reduced`, stats(host)],
    [`replay: init with ${stepEvents} steps, drawn`, stats(replay)],
    [`append: one message of ${rest.length} events, drawn`, stats(append)],
    [`stream: ${Math.ceil(rest.length / 100)} messages of 100, drawn`, stats(stream)],
  ];
  const table = markdownTable(
    ['case', 'time'],
    rows.map(([name, s]) => [name, formatStats(s, 's', 3)]),
  );
  const notes = [
    `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores; node ${process.version}; headless Chromium (software rendering, 1400x1000)`,
    `target: replay and append under 1 s (${stats(replay).median < 1 && stats(append).median < 1 ? 'met' : 'NOT met'})`,
    'charts get at most 2,000 points per series (min/max decimation); the Training tab is shown so loss and throughput redraw',
  ];
  const benchRows: BenchRow[] = rows.map(([name, s]) => ({
    name,
    ours: s.median,
    peer: null,
    unit: 's',
    speedup: null,
  }));
  printReport('dashboard', table, notes, benchRows, json);
}
