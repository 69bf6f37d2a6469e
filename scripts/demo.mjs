// `npm run demo`: the default experiment, offline, on this machine's default backend, as a repeated comparison.
// Runs examples/demo.sculpt.json (CL-5 offline on the shipped base model; seqft and adaptive-svd, each over
// several seeds, one trainer process per run over all cores), then prints the aggregate table (mean and 95%
// confidence interval per method), the paired differences against seqft with the sign-flip test's verdict, and
// each run's figures; writes runs/demo/report.md, report.html and demo-summary.json.
//   npm run demo                        the default
//   npm run demo -- --config other.sculpt.json --out runs/other
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const root = resolve(import.meta.dirname, '..');
const config = resolve(arg('config', join(root, 'examples', 'demo.sculpt.json')));
const out = resolve(arg('out', join(root, 'runs', 'demo')));

const build = spawnSync(process.execPath, [join(root, 'esbuild.mjs')], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

// The demo's matrix products run on a native BLAS when one is installed; without it, on tfjs's wasm kernels,
// the same runs take about 2.8 times as long (README, CPU notes). Say so before the wait, with the fix.
const blasOff = process.env.SCULPT_BLAS === 'off';
const noOpenBlas =
  process.platform === 'linux' &&
  !process.env.SCULPT_BLAS &&
  !/libopenblas\.so\.0/.test(spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '');
if (blasOff || noOpenBlas) {
  console.error(
    `sculpt demo: ${blasOff ? 'SCULPT_BLAS=off' : 'no OpenBLAS found'}: the matrix products run on the wasm kernels, ` +
      'and the demo takes about 20 minutes on 2 cores instead of about 8. ' +
      "`npm run provision` (as root) or `apt install libopenblas0-pthread` installs Debian's OpenBLAS.",
  );
}

const started = Date.now();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const run = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'run', config, '--out', out], {
  stdio: 'inherit',
});
if (run.status !== 0) {
  console.error(`sculpt demo: the run failed (exit ${run.status}); the run folders are in ${out}`);
  process.exit(run.status ?? 1);
}
const wall = (Date.now() - started) / 1000;

const experiment = readdirSync(out, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(out, d.name, 'experiment.json')))
  .map((d) => join(out, d.name))[0];
const cli = (...args) => spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { encoding: 'utf8' });
writeFileSync(join(out, 'report.md'), cli('report', experiment).stdout);
cli('report', experiment, '--html', '--out', join(out, 'report.html'));
// Every run as every Sculpt view reads it (src/runs/fold.ts), and the aggregate (src/runs/aggregate.ts).
const report = JSON.parse(cli('report', experiment, '--json').stdout);
const { runs, aggregate } = report;

const cfg = JSON.parse(readFileSync(config, 'utf8'));
const manifest = JSON.parse(readFileSync(join(root, 'assets', 'data', 'manifest.json'), 'utf8'));
const builtinTasks = Object.values(manifest.suites).flatMap((s) => s.tasks);
const chanceOf = (name) => {
  const task = cfg.tasks.find((t) => t.name === name);
  const entry = builtinTasks.find((t) => t.id === task?.source?.builtin);
  return entry ? 100 / entry.labels.length : null;
};

const METRICS = ['AA', 'BWT', 'forgetting', 'FWT'];
const pick = (e) => ({ mean: e.mean, ci95: e.ci95, n: e.n });
const summary = {
  tasks: aggregate.tasks.map((name) => ({ name, chance: chanceOf(name) })),
  baseline: aggregate.baseline,
  methods: {},
  wallSeconds: wall,
  config,
};
for (const m of aggregate.methods) {
  const cells = runs.filter((r) => r.method === m.method && r.status === 'finished');
  const entry = {
    // The means, under the keys a single-run summary had.
    AA: m.metrics.AA.mean,
    BWT: m.metrics.BWT.mean,
    forgetting: m.metrics.forgetting.mean,
    FWT: m.metrics.FWT.mean,
    aggregate: Object.fromEntries(METRICS.map((k) => [k, pick(m.metrics[k])])),
    runs: cells.map((r) => ({
      seed: r.seed,
      order: r.order,
      tasks: r.tasks,
      AA: r.metrics.AA,
      BWT: r.metrics.BWT,
      forgetting: r.metrics.forgetting,
      FWT: r.metrics.FWT,
      R: r.matrix,
      zeroShot: r.zeroShot,
      seconds: r.seconds,
    })),
  };
  const cmp = aggregate.comparisons.find((c) => c.method === m.method);
  if (cmp) {
    entry.paired = Object.fromEntries(
      ['AA', 'BWT'].map((k) => [
        k,
        { mean: cmp.metrics[k].mean, ci95: cmp.metrics[k].ci95, p: cmp.metrics[k].p, verdict: cmp.metrics[k].verdict },
      ]),
    );
  }
  summary.methods[m.method] = entry;
}
const summaryPath = join(root, 'demo-summary.json');
writeFileSync(summaryPath, JSON.stringify(summary, null, 2) + '\n');

const f = (v) => (v == null ? '–' : v.toFixed(1));
const withCi = (e) => (e.n === 0 ? '–' : e.ci95 ? `${f(e.mean)} ± ${f(e.ci95[1] - e.mean)}` : `${f(e.mean)} (n = 1)`);
const ci = (c) => (c ? `[${f(c[0])}, ${f(c[1])}]` : '–');
const p = (v) => (v == null ? '–' : v < 0.001 ? '< 0.001' : v.toFixed(3));
const signed = (v) => (v == null ? '–' : `${v > 0 ? '+' : ''}${v.toFixed(1)}`);

console.log(`\n## Sculpt demo: ${cfg.name}\n`);
console.log('Mean ± 95% confidence half-width over the runs (Student t); n runs per method.\n');
console.log('| method | n | AA | BWT | forgetting | FWT |\n|---|---|---|---|---|---|');
for (const m of aggregate.methods)
  console.log(`| ${m.method} | ${m.n} | ${METRICS.map((k) => withCi(m.metrics[k])).join(' | ')} |`);
if (aggregate.baseline) {
  console.log(`\nPaired differences against ${aggregate.baseline}, over the (order, seed) runs both finished; p from`);
  console.log('the exact sign-flip test.\n');
  console.log('| method | metric | n | mean difference | 95% CI | p | verdict |\n|---|---|---|---|---|---|---|');
  for (const c of aggregate.comparisons) {
    for (const k of METRICS) {
      const d = c.metrics[k];
      console.log(`| ${c.method} | ${k} | ${d.n} | ${signed(d.mean)} | ${ci(d.ci95)} | ${p(d.p)} | ${d.verdict} |`);
    }
  }
}
for (const note of aggregate.notes) console.log(`\n${note}`);

console.log('\nEach run (accuracy right after training each task; chance in brackets):\n');
console.log(`| run | AA | BWT | ${summary.tasks.map((t) => `${t.name} (${f(t.chance)})`).join(' | ')} |`);
console.log(`|---|---|---|${summary.tasks.map(() => '---').join('|')}|`);
// A task counts as learned when the accuracy right after training it is at least chance + 25 points.
const unlearned = [];
for (const r of runs) {
  if (r.status !== 'finished') {
    console.log(`| ${r.name} | ${r.status} | | ${summary.tasks.map(() => '').join(' | ')} |`);
    continue;
  }
  const diag = summary.tasks.map(({ name, chance }) => {
    const i = r.tasks.indexOf(name);
    const v = r.matrix[i]?.[i];
    if (v != null && chance != null && v < chance + 25) unlearned.push(`${r.name} on ${name} (${f(v)})`);
    return f(v);
  });
  console.log(`| ${r.name} | ${f(r.metrics.AA)} | ${f(r.metrics.BWT)} | ${diag.join(' | ')} |`);
}
console.log(
  unlearned.length
    ? `\nBelow chance + 25 right after training: ${unlearned.join(', ')}.`
    : '\nEvery run learned every task (chance + 25 or more right after training it).',
);
console.log(
  `\nwall time ${wall.toFixed(0)} s; runs in ${experiment}; report ${join(out, 'report.md')}; summary ${summaryPath}`,
);
if (runs.some((r) => r.status !== 'finished')) process.exit(1);
