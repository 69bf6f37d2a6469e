import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));

test('package.json is a VS Code extension that the offline test VS Code (1.100.3) accepts', () => {
  assert.equal(pkg.name, 'sculpt');
  assert.equal(pkg.main, './dist/extension.js');
  assert.deepEqual(pkg.bin, { sculpt: 'dist/cli.js' });
  const m = /^\^?(\d+)\.(\d+)\.(\d+)$/.exec(pkg.engines.vscode);
  assert.ok(m, `engines.vscode must be a plain version, got ${pkg.engines.vscode}`);
  assert.ok(Number(m[1]) === 1 && Number(m[2]) <= 100, `engines.vscode ${pkg.engines.vscode} is newer than 1.100`);
  for (const s of ['build', 'watch', 'typecheck', 'lint', 'test', 'demo', 'bench', 'package'])
    assert.ok(pkg.scripts[s], `script ${s}`);
});

test('tfjs-node packages are optional peers, never required', () => {
  for (const name of ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu']) {
    assert.equal(pkg.dependencies[name], undefined);
    assert.equal(pkg.peerDependenciesMeta[name]?.optional, true);
  }
});

test('dependency versions are pinned exactly', () => {
  for (const group of ['dependencies', 'optionalDependencies', 'devDependencies']) {
    for (const [name, v] of Object.entries<string>(pkg[group] ?? {}))
      assert.match(v, /^\d+\.\d+\.\d+$/, `${group}.${name} = ${v}`);
  }
});

test('the build produced the four bundles and the wasm files beside them', () => {
  for (const f of ['extension.js', 'trainer.js', 'cli.js', 'webview.js', 'tfjs-backend-wasm-simd.wasm']) {
    assert.ok(existsSync(join(repoRoot, 'dist', f)), `dist/${f} missing: run npm run build`);
  }
});
