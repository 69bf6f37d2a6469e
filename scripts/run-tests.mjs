// Compiles the TypeScript tests with esbuild and runs them with Node's built-in test runner.
//   node scripts/run-tests.mjs                 every suite under test/ (unit, integration, webview, ...)
//   node scripts/run-tests.mjs unit/svd        only test files whose path contains one of the given words
// Tests are bundled one file each (dependencies stay in node_modules) into out/test/, mirroring test/.
import * as esbuild from 'esbuild';
import { nodeOptions, toolExternal } from './build/options.mjs';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const passthrough = process.argv.slice(2).filter((a) => a.startsWith('--'));

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'fixtures') continue;
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const entries = findTests('test').filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)));
if (entries.length === 0) {
  console.error(`no test files match ${JSON.stringify(filters)}`);
  process.exit(1);
}
// One output folder per invocation, so that several test runs can share a checkout.
const outdir = join('out', 'test', String(process.pid));
rmSync(outdir, { recursive: true, force: true });
await esbuild.build({
  ...nodeOptions,
  external: toolExternal,
  entryPoints: entries,
  outdir,
  outbase: 'test',
  sourcemap: 'inline',
});
const compiled = entries.map((f) => join(outdir, relative('test', f)).replace(/\.ts$/, '.js'));
const r = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-reporter=spec', ...passthrough, ...compiled],
  {
    stdio: 'inherit',
    env: { ...process.env, SCULPT_REPO_ROOT: process.cwd() },
  },
);
rmSync(outdir, { recursive: true, force: true });
process.exit(r.status ?? 1);
