// Builds the four bundles (extension, trainer, CLI, webview) plus the benchmark harness.
//   node esbuild.mjs               one development build
//   node esbuild.mjs --watch       rebuild on change
//   node esbuild.mjs --production  minified, no source maps (used by `npm run package`)
import * as esbuild from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { browserOptions, nodeOptions, toolExternal } from './scripts/build/options.mjs';

const require = createRequire(import.meta.url);
const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
const outdir = 'dist';

const output = {
  sourcemap: production ? false : 'linked',
  minify: production,
  legalComments: 'linked',
};

const nodeBundle = (entry, out, extra = {}) => ({
  ...nodeOptions,
  ...output,
  entryPoints: [entry],
  outfile: join(outdir, out),
  ...extra,
});

const builds = [
  nodeBundle('src/extension/main.ts', 'extension.js'),
  nodeBundle('src/trainer/main.ts', 'trainer.js'),
  nodeBundle('src/cli/main.ts', 'cli.js', { banner: { js: '#!/usr/bin/env node' } }),
  // The dashboard suite drives Chromium through playwright-core, which must stay a runtime require.
  nodeBundle('scripts/bench/main.ts', 'bench.js', { external: toolExternal }),
  { ...browserOptions, ...output, entryPoints: ['webview/main.ts'], outfile: join(outdir, 'webview.js') },
];

/** The wasm backend loads its .wasm files from beside the bundle (see src/engine/backend.ts). */
function copyWasm() {
  mkdirSync(outdir, { recursive: true });
  const wasmDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  for (const f of readdirSync(wasmDir)) if (f.endsWith('.wasm')) copyFileSync(join(wasmDir, f), join(outdir, f));
}

copyWasm();
if (watch) {
  const contexts = await Promise.all(builds.map((b) => esbuild.context(b)));
  await Promise.all(contexts.map((c) => c.watch()));
  console.log('[watch] build finished, watching for changes...');
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  // dist/cli.js is the package's `sculpt` bin: executable, so that `npx sculpt` runs it however it is linked.
  chmodSync(join(outdir, 'cli.js'), 0o755);
}
