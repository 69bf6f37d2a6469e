/**
 * The PyTorch worker's own tests (python/tests, unittest) as part of this suite: the worker end to end on
 * hand-written prepared data, its numerics against the reference fixtures, stop/resume and torchrun runs on CPU.
 * They need the project's Python environment (.venv, made by `npm run provision`); without it this test fails,
 * naming the command, instead of skipping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths';

const python = join(repoRoot, '.venv', 'bin', 'python');

/** The tests unittest reports as failed or in error (its `FAIL: name (module.Class.name)` headers). */
function failingTests(output: string): string[] {
  return [...output.matchAll(/^(?:FAIL|ERROR): (.+)$/gm)].map((m) => m[1].trim());
}

test('python/tests pass under the project venv (unittest)', { timeout: 20 * 60_000 }, () => {
  assert.ok(
    existsSync(python),
    `no Python environment at ${python}: run \`npm run provision\` (scripts/provision/python.sh makes .venv with python/requirements.txt)`,
  );
  const r = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'python/tests', '-t', 'python', '-v'], {
    cwd: repoRoot,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    // No __pycache__ in the checkout; one BLAS thread per process, as the torchrun tests start two at once.
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', OMP_NUM_THREADS: '1' },
  });
  if (r.error) assert.fail(`could not run ${python}: ${r.error.message}`);
  const output = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) {
    const failing = failingTests(output);
    assert.fail(
      `python tests failed (exit ${r.status ?? r.signal}): ${failing.length ? failing.join(', ') : 'see the output'}\n` +
        output.slice(-20_000),
    );
  }
  assert.match(output, /^OK/m, output.slice(-2000));
});
