import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { repoRoot } from '../helpers/paths';

test('the committed JSON schema matches the config types', () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'gen-schema.mjs'), '--check'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
});
