/**
 * The built CLI (dist/cli.js) as a user runs it: its version, its subcommands wired, and exit code 2 for a
 * command it does not know. Needs `npm run build` first (npm test does it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, repoRoot } from '../helpers/paths';
import { RUN_ENV, cli } from '../helpers/runs';

test('--version prints the package version; an unknown command exits 2 naming it', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const version = cli('--version');
  assert.equal(version.status, 0, `${version.stderr} (run npm run build first)`);
  assert.equal(version.stdout.trim(), pkg.version);
  const bad = cli('frobnicate');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown command 'frobnicate'/);
});

test('the built CLI wires the inspect subcommand', () => {
  const ok = cli('inspect', fixture('hf-reference', 'gpt2-tiny'));
  assert.equal(ok.status, 0, `${ok.stderr} (run npm run build first)`);
  assert.match(ok.stdout, /target matrices \(8\)/);
  const bad = cli('inspect');
  assert.equal(bad.status, 2);
});

test('`npx sculpt` runs the package bin (npm install builds dist/ in its prepare step)', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    scripts: Record<string, string>;
  };
  assert.equal(pkg.bin.sculpt, 'dist/cli.js');
  assert.match(pkg.scripts.prepare, /esbuild\.mjs/, 'npm install builds the CLI');
  assert.match(readFileSync(join(repoRoot, pkg.bin.sculpt), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  assert.ok(statSync(join(repoRoot, pkg.bin.sculpt)).mode & 0o100, 'the bin is executable');
  // --offline: the bin is the project's own, nothing is fetched.
  const r = spawnSync('npx', ['--offline', 'sculpt', 'help'], { cwd: repoRoot, encoding: 'utf8', env: RUN_ENV });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^sculpt \d+\.\d+\.\d+: continual fine-tuning experiments/);
});
