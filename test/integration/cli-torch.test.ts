/**
 * `sculpt validate` (the built CLI) on configs for the torch engine: the Python found and what the config gets
 * from it, in the text output and in `--json` (which the editor's diagnostics read); the probe's problems as
 * errors at the torch field concerned; the engines' warnings; and no Python started for a tfjs config. Uses
 * the project's .venv (npm run provision). Needs `npm run build` first (npm test does it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExperimentConfig } from '../../src/protocol/config';
import type { ValidateReport } from '../../src/cli/validate-report';
import { tinyExperiment, writeExperiment } from '../helpers/experiment';
import { repoRoot } from '../helpers/paths';
import { CLI, RUN_ENV } from '../helpers/runs';

const VENV_PYTHON = join(repoRoot, '.venv', 'bin', 'python');
const dir = mkdtempSync(join(tmpdir(), 'sculpt-cli-torch-'));

function validate(config: ExperimentConfig, ...flags: string[]) {
  return validateIn(RUN_ENV, config, ...flags);
}
function validateIn(env: NodeJS.ProcessEnv, config: ExperimentConfig, ...flags: string[]) {
  const file = writeExperiment(dir, config);
  const r = spawnSync(process.execPath, [CLI, 'validate', ...flags, file], { encoding: 'utf8', env });
  return { ...r, file };
}
const json = (stdout: string) => JSON.parse(stdout.trim()) as ValidateReport;
/** The findings about the engine (the tiny tasks share some test examples: a data warning of their own). */
const engineFindings = (r: ValidateReport) =>
  r.findings.filter((f) => f.path === 'backend' || f.path === 'torch' || f.path.startsWith('torch.'));
const torchConfig = (name: string, extra: Partial<ExperimentConfig> = {}) =>
  tinyExperiment({ name, backend: undefined, output: 'runs', engine: 'torch', ...extra });

test('validate, engine torch: says which torch it found and what the config gets, in text and in --json', () => {
  const r = validate(torchConfig('found', { torch: { python: VENV_PYTHON } }));
  assert.equal(r.status, 0, `${r.stderr} (run npm run build first)`);
  const [valid, engine] = r.stdout.trim().split('\n');
  assert.match(valid, /found\.sculpt\.json: valid \(2 tasks; /);
  assert.match(engine, /found\.sculpt\.json: engine torch 2\.13\.0\S* \((CPU only|CUDA [^)]*)\): DDP over \S+/);
  assert.match(engine, /FSDP2 available; 1 process on (cpu|cuda), fp32 \(python \S*python\S*\)$/);

  const report = json(validate(torchConfig('found', { torch: { python: VENV_PYTHON } }), '--json').stdout);
  assert.equal(report.valid, true);
  assert.deepEqual(engineFindings(report), []);
  assert.equal(report.engine, engine.replace(/^.*: engine /, ''));
  assert.match(report.summary ?? '', /^2 tasks; /, 'the summary stays as it was');
});

test('validate, engine torch: a missing Python or a GPU it lacks is an error at the torch field, exit 2', () => {
  const missing = join(dir, 'nowhere', 'python');
  const gone = validate(torchConfig('gone', { torch: { python: 'nowhere/python' } }));
  assert.equal(gone.status, 2, gone.stderr);
  assert.ok(gone.stderr.includes(`${gone.file}: torch.python: ${missing} was not found; `), gone.stderr);
  const report = json(validate(torchConfig('gone', { torch: { python: 'nowhere/python' } }), '--json').stdout);
  assert.equal(report.valid, false);
  assert.deepEqual(
    engineFindings(report).map((f) => [f.severity, f.path]),
    [['error', 'torch.python']],
  );
  assert.match(engineFindings(report)[0].message, /npm run provision/);

  // With every GPU hidden, so that the check runs the same on a machine that has one.
  const noGpu = { ...RUN_ENV, CUDA_VISIBLE_DEVICES: '' };
  const cuda = json(
    validateIn(noGpu, torchConfig('cuda', { torch: { python: VENV_PYTHON, device: 'cuda' } }), '--json').stdout,
  );
  assert.deepEqual(
    engineFindings(cuda).map((f) => [f.severity, f.path]),
    [['error', 'torch.device']],
  );
  assert.match(engineFindings(cuda)[0].message, /^is "cuda", but torch \S+ at \S+ sees no CUDA GPU/);
});

test('validate: engine torch with a backend warns at backend; the torch rules are errors at their paths', () => {
  const r = validate(torchConfig('backend', { backend: 'wasm', torch: { python: VENV_PYTHON } }), '--json');
  const report = json(r.stdout);
  assert.equal(report.valid, true, r.stdout);
  assert.deepEqual(
    engineFindings(report).map((f) => [f.severity, f.path, f.code]),
    [['warning', 'backend', 'backend-unused']],
  );
  const nodes = validate(torchConfig('nodes', { torch: { python: VENV_PYTHON, nnodes: 2, nodeRank: 3 } }));
  assert.equal(nodes.status, 2);
  assert.ok(nodes.stderr.includes(`${nodes.file}: torch.rdzvEndpoint: is needed when torch.nnodes is 2`), nodes.stderr);
  assert.ok(nodes.stderr.includes(`${nodes.file}: torch.nodeRank: must be below torch.nnodes (2)`), nodes.stderr);
});

test('validate, engine tfjs: no Python is started; torch settings are a warning', () => {
  const python = join(dir, 'counting-python');
  const ran = `${python}.ran`;
  writeFileSync(python, `#!/bin/sh\ntouch '${ran}'\nexit 1\n`);
  chmodSync(python, 0o755);
  const config = tinyExperiment({ name: 'tfjs', output: 'runs', torch: { python, nprocPerNode: 2 } });
  const text = validate(config);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stderr, /warning: torch: sets python, nprocPerNode, which only the torch engine uses/);
  assert.doesNotMatch(text.stdout, /engine/);
  const report = json(validate(config, '--json').stdout);
  assert.deepEqual(
    engineFindings(report).map((f) => [f.severity, f.path, f.code]),
    [['warning', 'torch', 'torch-unused']],
  );
  assert.equal(report.engine, undefined);
  assert.equal(existsSync(ran), false, 'the tfjs engine needs no Python');
});
