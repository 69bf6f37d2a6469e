// Runs a TypeScript script of this repository: bundles it with esbuild (like the product) and runs it.
//   node scripts/run-ts.mjs scripts/make-tiny-model.ts [args...]
import * as esbuild from 'esbuild';
import { nodeOptions, toolExternal } from './build/options.mjs';
import { mkdirSync, rmSync } from 'node:fs';
import { join, basename } from 'node:path';
import { spawnSync } from 'node:child_process';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs <script.ts> [args...]');
  process.exit(2);
}
const outdir = join('out', 'scripts', String(process.pid));
mkdirSync(outdir, { recursive: true });
const outfile = join(outdir, basename(entry).replace(/\.ts$/, '.js'));
await esbuild.build({ ...nodeOptions, external: toolExternal, entryPoints: [entry], outfile, sourcemap: 'inline' });
const r = spawnSync(process.execPath, ['--enable-source-maps', outfile, ...args], {
  stdio: 'inherit',
  env: { ...process.env, SCULPT_REPO_ROOT: process.cwd() },
});
rmSync(outdir, { recursive: true, force: true });
process.exit(r.status ?? 1);
