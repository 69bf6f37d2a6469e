// Runs a TypeScript script of this repository: bundles it with esbuild (like the product) and runs it.
//   node scripts/run-ts.mjs scripts/make-tiny-model.ts [args...]
import * as esbuild from 'esbuild';
import { wasmThreadsPlugin } from './build/wasm-threads.mjs';
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
await esbuild.build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'inline',
  mainFields: ['module', 'main'],
  plugins: [wasmThreadsPlugin],
  external: ['vscode', 'webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'koffi', 'playwright-core', 'esbuild'],
  logLevel: 'warning',
});
const r = spawnSync(process.execPath, ['--enable-source-maps', outfile, ...args], { stdio: 'inherit', env: { ...process.env, SCULPT_REPO_ROOT: process.cwd() } });
rmSync(outdir, { recursive: true, force: true });
process.exit(r.status ?? 1);
