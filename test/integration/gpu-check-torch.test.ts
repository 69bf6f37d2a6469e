/**
 * scripts/gpu-check-torch in its CPU dry run (`--quick --device cpu`): the PyTorch engine's GPU check end to end on
 * tiny shapes (the worker's training loop for each model, method and precision, and the logits of each checkpoint
 * on both engines), so the command a GPU machine runs in one go is known to work before a GPU is lent. It needs
 * the project's Python environment (.venv, made by `npm run provision`) and a build (dist/cli.js for the tfjs side
 * of the logits); without them this test fails, naming the command, instead of skipping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths';

const python = join(repoRoot, '.venv', 'bin', 'python');

interface RunRow {
  device: string;
  precision: string;
  world: number;
  model: string;
  method: string;
  status: string;
  tokensPerSecond: number | null;
  stepMs: number | null;
  svdSeconds: number | null;
  vsSeqft?: number | null;
  peakBytes: number | null;
}

interface ParityRow {
  model: string;
  backend: string;
  maxRelDiff?: number;
  error?: string;
  ok?: boolean;
}

interface Report {
  suite: string;
  quick: boolean;
  models: string[];
  rows: RunRow[];
  parity: ParityRow[];
  ok: boolean;
}

test(
  'scripts/gpu-check-torch --quick --device cpu: a row per model, method and precision; both engines give the same logits',
  { timeout: 5 * 60_000 },
  () => {
    assert.ok(
      existsSync(python),
      `no Python environment at ${python}: run \`npm run provision\` (scripts/provision/python.sh makes .venv with python/requirements.txt)`,
    );
    assert.ok(
      existsSync(join(repoRoot, 'dist', 'cli.js')),
      'dist/cli.js is missing (the tfjs side of the logits check): run `npm run build`',
    );
    const r = spawnSync(
      'bash',
      [join(repoRoot, 'scripts', 'gpu-check-torch'), '--quick', '--device', 'cpu', '--json'],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: 4 * 60_000,
        env: { ...process.env, SCULPT_PYTHON: python, PYTHONDONTWRITEBYTECODE: '1' },
      },
    );
    if (r.error) assert.fail(`could not run scripts/gpu-check-torch: ${r.error.message}`);
    const output = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, `scripts/gpu-check-torch exited ${r.status ?? r.signal}\n${output.slice(-8000)}`);

    const lines = r.stdout.trim().split('\n');
    const report = JSON.parse(lines[lines.length - 1]) as Report;
    assert.equal(report.suite, 'gpu-torch');
    assert.equal(report.quick, true);
    assert.deepEqual(report.models, ['gpt2-tiny-shape', 'qwen2-tiny-shape']);
    assert.ok(report.ok, 'the report says a run or the logits check failed');

    for (const model of report.models) {
      for (const method of ['seqft', 'adaptive-svd']) {
        for (const precision of ['fp32', 'bf16']) {
          const what = `${model} ${method} ${precision}`;
          const rows = report.rows.filter(
            (x) => x.model === model && x.method === method && x.precision === precision && x.world === 1,
          );
          assert.equal(rows.length, 1, `${what}: one row expected, got ${rows.length}`);
          const row = rows[0];
          assert.equal(row.status, 'ok', `${what}: ${row.status}`);
          assert.equal(row.device, 'cpu');
          assert.ok((row.tokensPerSecond ?? 0) > 0, `${what}: tokens/s ${row.tokensPerSecond}`);
          assert.ok((row.stepMs ?? 0) > 0, `${what}: step ms ${row.stepMs}`);
          assert.ok((row.peakBytes ?? 0) > 0, `${what}: peak memory ${row.peakBytes}`);
          if (method === 'adaptive-svd') {
            // The boundary SVD of task 1 was reported (a `ranks` message), and the step ratio was formed.
            assert.equal(typeof row.svdSeconds, 'number', `${what}: no task-boundary SVD time`);
            assert.ok((row.svdSeconds ?? -1) >= 0, `${what}: svd seconds ${row.svdSeconds}`);
            assert.ok((row.vsSeqft ?? 0) > 0, `${what}: no step ratio against seqft`);
          } else {
            assert.equal(row.svdSeconds, null, `${what}: seqft has no boundary SVD`);
          }
          // The same row in the Markdown table a person reads.
          assert.ok(
            r.stdout.includes(`| cpu | ${precision} | 1 (none) | ${model} | ${method} | 4x32 | `),
            `${what}: no Markdown row\n${r.stdout.slice(0, 4000)}`,
          );
        }
      }
      const parity = report.parity.filter((p) => p.model === model);
      assert.equal(parity.length, 1, `${model}: one logits parity row expected, got ${parity.length}`);
      const p = parity[0];
      assert.equal(p.error, undefined, `${model}: ${p.error}`);
      assert.equal(p.backend, 'wasm');
      assert.ok(
        typeof p.maxRelDiff === 'number' && p.maxRelDiff <= 1e-4,
        `${model}: logits differ by ${p.maxRelDiff} (relative) between the worker and the tfjs engine`,
      );
      assert.match(
        r.stdout,
        new RegExp(`\\| cpu \\| ${model} \\| wasm \\| 3x8 \\| [^|]+ \\| [^|]+ \\| <= 1e-04 \\| pass \\|`),
      );
    }
    assert.match(r.stdout, /^### elapsed$/m);
    assert.match(r.stdout, /^- total: [\d.]+ s$/m);
  },
);
