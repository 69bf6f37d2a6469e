/**
 * A repeated comparison through the built CLI (dist/): the tiny example as a grid of 2 methods × 2 orders ×
 * 2 seeds, stopped while it runs, resumed through its experiment folder, and reported on. The aggregate the
 * report prints is recomputed here from each run's own events, independently of src/runs/aggregate.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { RunSummary } from '../../src/runs/fold';
import type { ExperimentAggregate } from '../../src/runs/aggregate-types';
import { EXPERIMENT_FILE, readExperiment } from '../../src/runs/experiment-dir';
import { tinyExperiment, tinyTraining, writeExperiment } from '../helpers/experiment';
import { CLI, RUN_ENV, assertEventLog, cli, events, experimentDirs, runDirs } from '../helpers/runs';

const work = mkdtempSync(join(tmpdir(), 'sculpt-grid-'));
const output = join(work, 'runs');

/** Student t quantile t_{0.975, df} for df = 3 (scipy 1.14: scipy.stats.t.ppf(0.975, 3)). */
const T975_DF3 = 3.182446305284263;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));

/** A cell's events; none for a cell that never started. */
const logOf = (dir: string) => (existsSync(join(dir, 'events.jsonl')) ? events(dir) : []);

function runFinished(dir: string) {
  const e = logOf(dir)
    .filter((x) => x.type === 'run-finished')
    .at(-1);
  return e?.type === 'run-finished' ? e : undefined;
}

function job(dir: string): { methodIndex: number; order: number; seed: number } {
  return JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8'));
}

test('a 2 × 2 × 2 grid runs, stops as a whole, resumes from its experiment folder, and reports its aggregate', async () => {
  const cfg = writeExperiment(
    work,
    tinyExperiment({
      name: 'grid',
      output,
      seeds: 2,
      orders: [['topic', 'sentiment']],
      methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', ratio: 0.5 } }],
      // Long enough per run that the stop lands while some cells run and others wait.
      training: tinyTraining({ epochs: 8, stepEventInterval: 1 }),
    }),
  );

  const valid = cli('validate', cfg);
  assert.equal(valid.status, 0, valid.stderr);
  assert.match(valid.stdout, /: valid \(2 tasks; 2 methods × 2 orders × 2 seeds = 8 runs; model /);

  // Run it, and stop the whole grid (Ctrl-C) once one pair of cells has finished and the next ones are stepping.
  const child = spawn(process.execPath, [CLI, 'run', cfg, '--jobs', '2'], {
    env: RUN_ENV,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const deadline = Date.now() + 120_000;
  for (;;) {
    const dirs = runDirs(output);
    const done = dirs.filter((d) => runFinished(d)).length;
    const stepping = dirs.filter((d) => !runFinished(d) && logOf(d).some((e) => e.type === 'step')).length;
    if (done >= 2 && stepping >= 1) break;
    assert.ok(Date.now() < deadline, `the grid did not get going: ${stderr}`);
    assert.equal(child.exitCode, null, `the grid ended before it could be stopped: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGINT');
  assert.equal(await exited, 3, `a stopped grid exits 3: ${stderr}`);

  const [experiment] = experimentDirs(output);
  const record = readExperiment(experiment);
  assert.deepEqual(record.seeds, [0, 1]);
  assert.equal(record.cells.length, 8);
  // The folder names say the grid: <method>-o<order>-s<seed>.
  assert.deepEqual(
    record.cells.map((c) => c.dir),
    [
      'seqft-o1-s0',
      'adaptive-svd-o1-s0',
      'seqft-o2-s0',
      'adaptive-svd-o2-s0',
      'seqft-o1-s1',
      'adaptive-svd-o1-s1',
      'seqft-o2-s1',
      'adaptive-svd-o2-s1',
    ],
  );
  const cells = runDirs(output);
  assert.equal(cells.length, 8);
  const finishedBefore = cells.filter((d) => runFinished(d));
  const stopped = cells.filter((d) => logOf(d).some((e) => e.type === 'stopped'));
  const untouched = cells.filter((d) => !existsSync(join(d, 'events.jsonl')));
  assert.ok(finishedBefore.length >= 2 && finishedBefore.length < 8, `some cells finished: ${finishedBefore.length}`);
  assert.ok(stopped.length >= 1, 'the running cells stopped at a checkpoint');
  assert.ok(untouched.length >= 1, 'queued cells were never started');
  // Each cell's config is an ordinary run's: its own seed, no grid of seeds.
  for (const d of cells) {
    const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    assert.equal(c.seed, job(d).seed);
    assert.equal(c.seeds, undefined);
  }
  const finishedLogs = new Map(finishedBefore.map((d) => [d, readFileSync(join(d, 'events.jsonl'), 'utf8')]));

  // Resume the experiment folder: every unfinished cell runs to its end; finished ones are left alone.
  const resumed = cli('resume', experiment, '--jobs', '2');
  assert.equal(resumed.status, 0, resumed.stderr);
  for (const d of cells) {
    assert.ok(runFinished(d), `${basename(d)} finished after the resume`);
    assertEventLog(events(d), basename(d));
  }
  for (const [d, log] of finishedLogs) assert.equal(readFileSync(join(d, 'events.jsonl'), 'utf8'), log);
  for (const d of stopped) {
    const starts = events(d).filter((e) => e.type === 'run-started');
    assert.ok(starts.at(-1)?.type === 'run-started' && starts.at(-1)!.resumedFrom, `${basename(d)} resumed`);
  }
  // Resuming a finished grid is a no-op that succeeds.
  assert.equal(cli('resume', experiment).status, 0);

  // The report on the experiment folder.
  const r = cli('report', experiment, '--json');
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { runs: RunSummary[]; aggregate: ExperimentAggregate };
  assert.equal(report.runs.length, 8);
  const agg = report.aggregate;
  assert.deepEqual(
    agg.methods.map((m) => m.method),
    ['seqft', 'adaptive-svd'],
  );
  assert.equal(agg.baseline, 'seqft');

  // Recomputed from the runs' own run-finished events, keyed by (order, seed) from job.json.
  const byMethod = new Map<number, Map<string, { AA: number; BWT: number; forgetting: number; R: number[][] }>>();
  for (const d of cells) {
    const j = job(d);
    const fin = runFinished(d)!;
    const m = byMethod.get(j.methodIndex) ?? new Map();
    m.set(`${j.order}/${j.seed}`, {
      AA: fin.metrics.AA,
      BWT: fin.metrics.BWT!,
      forgetting: fin.metrics.forgetting!,
      R: fin.matrix,
    });
    byMethod.set(j.methodIndex, m);
  }
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);
  agg.methods.forEach((ma, mi) => {
    const runs = [...byMethod.get(mi)!.values()];
    assert.equal(ma.n, 4);
    for (const metric of ['AA', 'BWT', 'forgetting'] as const) {
      const xs = runs.map((x) => x[metric]);
      const est = ma.metrics[metric];
      assert.equal(est.n, 4);
      close(est.mean!, mean(xs), `${ma.method} ${metric} mean`);
      close(est.sd!, sd(xs), `${ma.method} ${metric} sd`);
      const h = (T975_DF3 * sd(xs)) / 2;
      close(est.ci95![0], mean(xs) - h, `${ma.method} ${metric} CI low`);
      close(est.ci95![1], mean(xs) + h, `${ma.method} ${metric} CI high`);
    }
    // The matrix by task name: order 2 trains topic first, so its rows and columns are swapped back.
    const onSentimentAfterTopic = [...byMethod.get(mi)!.entries()].map(([key, x]) =>
      key.startsWith('0/') ? x.R[1][0] : x.R[0][1],
    );
    close(ma.matrix[1][0].mean!, mean(onSentimentAfterTopic), `${ma.method} R[topic][sentiment]`);
  });
  // Paired over (order, seed): adaptive-svd minus seqft, cell by cell.
  const base = byMethod.get(0)!;
  const other = byMethod.get(1)!;
  const diffs = [...other.keys()].sort().map((k) => other.get(k)!.AA - base.get(k)!.AA);
  const cmp = agg.comparisons.find((c) => c.method === 'adaptive-svd')!;
  assert.equal(cmp.baseline, 'seqft');
  assert.equal(cmp.metrics.AA.n, 4);
  close(cmp.metrics.AA.mean!, mean(diffs), 'paired AA mean difference');
  // Four pairs: the exact sign-flip test has 16 sign assignments, so p >= 2/16 and no verdict can be reached.
  assert.ok(cmp.metrics.AA.p! >= 2 / 16 - 1e-12);
  assert.equal(cmp.metrics.AA.verdict, 'not distinguishable at 95%');

  // The Markdown report leads with the aggregate.
  const md = cli('report', experiment);
  assert.equal(md.status, 0, md.stderr);
  assert.match(md.stdout, new RegExp(`\\| seqft \\| 4 \\| ${agg.methods[0].metrics.AA.mean!.toFixed(1)} ± `));

  // A cell folder deleted by hand: the report names it and goes on with the rest.
  rmSync(cells[7], { recursive: true });
  const partial = cli('report', experiment, '--json');
  assert.equal(partial.status, 0, partial.stderr);
  assert.ok(partial.stderr.includes(`${cells[7]} is a run of its ${EXPERIMENT_FILE} but is missing`), partial.stderr);
  assert.equal((JSON.parse(partial.stdout) as { runs: RunSummary[] }).runs.length, 7);
});
