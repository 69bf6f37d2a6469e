// The esbuild settings shared by every bundle this repository makes: the product (esbuild.mjs), the tests
// (scripts/run-tests.mjs) and the TypeScript scripts (scripts/run-ts.mjs). Each caller adds only its entry
// points, output and source-map choice, so tests and scripts run the code the way the product bundles it.
import { readFileSync } from 'node:fs';
import { wasmThreadsPlugin } from './wasm-threads.mjs';

export { wasmThreadsPlugin };

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

/**
 * Never bundled into a Node bundle: `vscode` is the host's, `webgpu` carries dawn.node, `koffi` is native, and
 * the tfjs-node packages are optional peers that only exist when the user installed them.
 */
export const nodeExternal = ['vscode', 'webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'koffi'];

/** Tools the tests, scripts and benchmarks load at run time (the dashboard benchmark drives Chromium). */
export const toolExternal = [...nodeExternal, 'playwright-core', 'esbuild'];

/** Compile-time constants (src/protocol/version.ts reads the version). */
export const define = { __SCULPT_VERSION__: JSON.stringify(pkg.version) };

/** What every bundle shares, Node or browser. */
export const commonOptions = {
  bundle: true,
  logLevel: 'warning',
  define,
};

/** A Node bundle: CommonJS for Node 20 with tfjs bundled once and its wasm backend able to start threads. */
export const nodeOptions = {
  ...commonOptions,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: nodeExternal,
  // Prefer ESM entry points so tfjs-core is bundled once (its CJS and ESM builds would be two instances, and
  // its deep ESM imports do not load in plain Node).
  mainFields: ['module', 'main'],
  // Lets the tfjs wasm backend start its worker threads under Node (see the plugin).
  plugins: [wasmThreadsPlugin],
};

/** The dashboard webview's bundle: one script for the browser. */
export const browserOptions = {
  ...commonOptions,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
};
