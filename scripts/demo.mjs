// `npm run demo`: the default experiment, offline, on this machine's default backend.
// Runs examples/demo.sculpt.json (CL-5 offline, order 1, on the shipped base model; seqft and adaptive-svd as
// separate trainer processes over all cores; a third method would not fit in 10 minutes on 2 cores), then
// prints the comparison table and the accuracy matrices and writes runs/demo/report.md, report.html and
// demo-summary.json.
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

// In the config's method order (each run folder's job.json names its method).
const runs = readdirSync(out, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(out, d.name, 'job.json')))
  .map((d) => join(out, d.name))
  .sort(
    (a, b) =>
      JSON.parse(readFileSync(join(a, 'job.json'), 'utf8')).methodIndex -
      JSON.parse(readFileSync(join(b, 'job.json'), 'utf8')).methodIndex,
  );
const cli = (...args) => spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { encoding: 'utf8' });
writeFileSync(join(out, 'report.md'), cli('report', ...runs).stdout);
cli('report', ...runs, '--html', '--out', join(out, 'report.html'));

const cfg = JSON.parse(readFileSync(config, 'utf8'));
const summary = { tasks: [], methods: {}, wallSeconds: wall, config };
// Each run as every Sculpt view reads it (src/runs/fold.ts), through `sculpt report --json`.
const runSummaries = runs.length ? JSON.parse(cli('report', ...runs, '--json').stdout) : [];
const manifest = JSON.parse(readFileSync(join(root, 'assets', 'data', 'manifest.json'), 'utf8'));
for (const run of runSummaries) {
  if (run.status !== 'finished') continue;
  if (summary.tasks.length === 0) {
    const labelCounts = run.tasks.map((name) => {
      const task = cfg.tasks.find((t) => t.name === name);
      const entry = Object.values(manifest.suites)
        .flatMap((s) => s.tasks)
        .find((t) => t.id === task?.source?.builtin);
      return entry ? entry.labels.length : null;
    });
    summary.tasks = run.tasks.map((name, j) => ({ name, chance: labelCounts[j] ? 100 / labelCounts[j] : null }));
  }
  const m = run.metrics;
  summary.methods[run.method] = {
    AA: m.AA,
    BWT: m.BWT,
    forgetting: m.forgetting,
    FWT: m.FWT,
    seconds: run.seconds,
    R: run.matrix,
    zeroShot: run.zeroShot,
  };
}
const summaryPath = join(root, 'demo-summary.json');
writeFileSync(summaryPath, JSON.stringify(summary, null, 2) + '\n');

const f = (v) => (v == null ? '–' : v.toFixed(1));
const rows = Object.entries(summary.methods).map(
  ([m, s]) => `| ${m} | ${f(s.AA)} | ${f(s.BWT)} | ${f(s.forgetting)} | ${f(s.FWT)} | ${s.seconds.toFixed(0)} |`,
);
console.log(
  `\n## Sculpt demo: ${cfg.name}\n\n| method | AA | BWT | forgetting | FWT | seconds |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
);
for (const [m, s] of Object.entries(summary.methods)) {
  console.log(`${m}: accuracy matrix (rows: after task; columns: ${summary.tasks.map((t) => t.name).join(', ')})`);
  console.log(`  zero-shot  ${s.zeroShot.map((v) => f(v).padStart(6)).join('')}`);
  s.R.forEach((row, i) =>
    console.log(`  ${summary.tasks[i].name.padEnd(10).slice(0, 10)} ${row.map((v) => f(v).padStart(6)).join('')}`),
  );
}
console.log(`\nchance: ${summary.tasks.map((t) => `${t.name} ${f(t.chance)}`).join(', ')}`);
console.log(`wall time ${wall.toFixed(0)} s; runs in ${out}; report ${join(out, 'report.md')}; summary ${summaryPath}`);
if (!existsSync(summaryPath)) process.exit(1);
