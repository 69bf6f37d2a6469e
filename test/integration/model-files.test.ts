/**
 * A corrupt model folder is found by `sculpt validate` and by `sculpt run` before any run folder exists: the
 * command exits 2 naming the file, and nothing is created. Needs `npm run build` first (npm test does it).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths';
import { tinyExperiment, writeExperiment } from '../helpers/experiment';
import { cli } from '../helpers/runs';

const work = mkdtempSync(join(tmpdir(), 'sculpt-model-files-'));
after(() => rmSync(work, { recursive: true, force: true }));

let count = 0;

/** A copy of the shipped tiny Llama, changed by `corrupt`, and a config that trains it. */
function experimentWith(corrupt: (modelDir: string) => void): { cfg: string; model: string; output: string } {
  const name = `m${count++}`;
  const model = join(work, name, 'model');
  cpSync(join(repoRoot, 'assets', 'models', 'tiny-llama'), model, { recursive: true });
  corrupt(model);
  const output = join(work, name, 'runs');
  const cfg = writeExperiment(join(work, name), tinyExperiment({ name, model, output }));
  return { cfg, model, output };
}

function setHeaderLength(file: string, delta: number): void {
  const bytes = readFileSync(file);
  bytes.writeBigUInt64LE(bytes.readBigUInt64LE(0) + BigInt(delta), 0);
  writeFileSync(file, bytes);
}

/** validate and run both exit 2 with `pattern` in their message, and run creates no run folder. */
function refused(corrupt: (modelDir: string) => void, pattern: (model: string) => RegExp): void {
  const { cfg, model, output } = experimentWith(corrupt);
  const v = cli('validate', cfg);
  assert.equal(v.status, 2, v.stdout + v.stderr);
  assert.match(v.stderr, pattern(model));
  assert.equal(v.stdout, '');
  const r = cli('run', cfg);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, pattern(model));
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack frames');
  assert.ok(!existsSync(output) || readdirSync(output).length === 0, `no run folder in ${output}`);
}

const quoted = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('an intact model folder passes validate, which names the model it checked', () => {
  const { cfg } = experimentWith(() => {});
  const v = cli('validate', cfg);
  assert.equal(v.status, 0, v.stderr);
  assert.match(
    v.stdout,
    /valid \(2 tasks; 1 method × 1 order × 1 seed = 1 run; model llama, \d+ tensors in model\.safetensors\)/,
  );
});

test('a header length one byte short: validate and run exit 2 naming the file, and no run folder is made', () => {
  refused(
    (m) => setHeaderLength(join(m, 'model.safetensors'), -1),
    (m) => new RegExp(`${quoted(join(m, 'model.safetensors'))}: the data buffer holds .* leaving 1 byte at its end`),
  );
});

test('bytes appended after the last tensor, and a truncated file, are refused before the run', () => {
  refused(
    (m) => appendFileSync(join(m, 'model.safetensors'), Buffer.from('garbage')),
    (m) => new RegExp(`${quoted(join(m, 'model.safetensors'))}: .*leaving 7 bytes at its end that no tensor owns`),
  );
  refused(
    (m) => {
      const f = join(m, 'model.safetensors');
      writeFileSync(f, readFileSync(f).subarray(0, -100));
    },
    (m) => new RegExp(`${quoted(join(m, 'model.safetensors'))}: tensor ".*": data_offsets .* run past the end`),
  );
});

test('a header that is not JSON, and a config.json that is not, name their file', () => {
  refused(
    (m) => {
      const f = join(m, 'model.safetensors');
      const bytes = readFileSync(f);
      bytes[8 + 1] = 0xff;
      writeFileSync(f, bytes);
    },
    (m) => new RegExp(`${quoted(join(m, 'model.safetensors'))}: header is not valid (UTF-8|JSON)`),
  );
  refused(
    (m) => writeFileSync(join(m, 'config.json'), '{"model_type": "llama",'),
    (m) => new RegExp(`${quoted(join(m, 'config.json'))}: not valid JSON`),
  );
});

test('weights whose shapes disagree with config.json are named before the run', () => {
  refused(
    (m) => {
      const f = join(m, 'config.json');
      const raw = JSON.parse(readFileSync(f, 'utf8')) as Record<string, number>;
      writeFileSync(f, JSON.stringify({ ...raw, vocab_size: raw.vocab_size + 1 }));
    },
    (m) =>
      new RegExp(
        `${quoted(m)}: the weights do not match the llama model that config.json describes:[^]*embed_tokens\\.weight: expected \\[\\d+, \\d+\\], found`,
      ),
  );
});

test('a model file that is a FIFO is refused at once, not waited on', { skip: process.platform === 'win32' }, () => {
  refused(
    (m) => {
      const f = join(m, 'model.safetensors');
      rmSync(f);
      assert.equal(spawnSync('mkfifo', [f]).status, 0);
    },
    (m) => new RegExp(`${quoted(join(m, 'model.safetensors'))}: is a pipe, not a regular file`),
  );
});
