import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The repository root: set by scripts/run-tests.mjs, else found by walking up to package.json. */
export const repoRoot: string = (() => {
  if (process.env.SCULPT_REPO_ROOT) return process.env.SCULPT_REPO_ROOT;
  let dir = resolve(__dirname);
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();

export const fixture = (...parts: string[]): string => join(repoRoot, 'test', 'fixtures', ...parts);
