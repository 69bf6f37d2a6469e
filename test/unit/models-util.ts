// Shared by the models*, tokenizer* and inspect* tests.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { readSafetensors, writeSafetensors, type StTensor } from '../../src/engine/io/safetensors';
import { fixture } from '../helpers/paths';

/** Norm-wise relative error ||a - b|| / ||b|| (float64 sums); the backend-parity check uses the same. */
export { normRelError as relErr } from '../../scripts/bench/parity';

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary folder, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `sculpt-${prefix}-`));
  made.push(dir);
  return dir;
}

/** A copy of fixture folder `name` whose tensors (and optionally config) went through `edit`. */
export function editedFixture(
  name: string,
  edit: (t: Map<string, StTensor>) => void,
  config?: (c: Record<string, unknown>) => void,
): string {
  const src = fixture('hf-reference', name);
  const dir = tempDir(name);
  const cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  config?.(cfg);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  const { tensors } = readSafetensors(join(src, 'model.safetensors'));
  edit(tensors);
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return dir;
}

/** Loading `dir` fails with a message matching every pattern. */
export const rejectsLoad = (dir: string, ...patterns: RegExp[]): void =>
  assert.throws(
    () => loadPretrained(dir),
    (e: Error) => {
      for (const p of patterns) assert.match(e.message, p);
      return true;
    },
  );
