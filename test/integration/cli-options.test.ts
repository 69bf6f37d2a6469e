/**
 * The built CLI with the arguments a new user gets wrong: an option a command does not take, a value option
 * without its value, report formats together, a builtin model to inspect, a report path whose folder does not
 * exist yet, a run folder that does not exist, `--stdin` without the config's path and a misspelt --baseline.
 * Each is refused with exit code 2 and a message that says what to do, or does what the user meant. Needs
 * `npm run build` first (npm test does it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyExperiment, writeExperiment } from '../helpers/experiment';
import { fixture } from '../helpers/paths';
import { CLI, RUN_ENV, runDirs } from '../helpers/runs';

/** The built CLI, killed after `timeout` ms: a refusal must come before any run starts. */
function sculpt(args: string[], input?: string, timeout = 60_000) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: RUN_ENV,
    input,
    timeout,
    killSignal: 'SIGKILL',
  });
}

const fresh = () => mkdtempSync(join(tmpdir(), 'sculpt-cli-options-'));
const RUNS = ['tiny-seqft-20261127-031550', 'tiny-adaptive-svd-20261127-031550'].map((d) =>
  fixture('extension', 'runs', d),
);

test('run, validate and report refuse an option they do not take: exit 2 naming it and the likely one', () => {
  const dir = fresh();
  const cfg = writeExperiment(dir, tinyExperiment({ output: join(dir, 'runs') }));
  const run = sculpt(['run', cfg, '--bogus']);
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /sculpt run: unknown option '--bogus'; run's options are --backend <backend>, --out/);
  assert.deepEqual(runDirs(join(dir, 'runs')), [], 'no run was started');
  const validate = sculpt(['validate', cfg, '--jsn']);
  assert.equal(validate.status, 2, validate.stderr);
  assert.match(validate.stderr, /unknown option '--jsn' \(did you mean '--json'\?\); validate's options are --json/);
  assert.equal(validate.stdout, '');
  const report = sculpt(['report', ...RUNS, '--htm']);
  assert.equal(report.status, 2, report.stderr);
  assert.match(report.stderr, /sculpt report: unknown option '--htm' \(did you mean '--html'\?\)/);
  assert.equal(report.stdout, '', 'no Markdown report instead');
  // An option of another command is as unknown: resume continues a run as it was configured.
  const resume = sculpt(['resume', RUNS[0], '--backend', 'wasm']);
  assert.equal(resume.status, 2, resume.stderr);
  assert.match(resume.stderr, /unknown option '--backend'; resume's options are --jobs N, --json/);
});

test('report: two formats, or a value option without its value, are exit 2', () => {
  for (const formats of [
    ['--csv', '--html'],
    ['--csv', '--json'],
  ]) {
    const r = sculpt(['report', ...RUNS, ...formats]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`${formats.join(' and ')} cannot go together`), r.stderr);
    assert.equal(r.stdout, '');
  }
  for (const [cmd, option, placeholder] of [
    ['report', '--out', '<file>'],
    ['report', '--baseline', '<method>'],
    ['run', '--backend', '<backend>'],
    ['run', '--jobs', 'N'],
    ['resume', '--jobs', 'N'],
    ['join', '--node-rank', 'R'],
    ['join', '--timeout', 'S'],
    ['inspect', '--input', '<in.safetensors>'],
  ]) {
    const r = sculpt([cmd, RUNS[0], option]);
    assert.equal(r.status, 2, `${cmd} ${option}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${option} needs a value (${option} ${placeholder})`), r.stderr);
  }
  const next = sculpt(['report', ...RUNS, '--out', '--json']);
  assert.equal(next.status, 2, next.stderr);
  assert.match(next.stderr, /--out needs a value \(--out <file>\), got the option '--json'/);
});

test('inspect takes a builtin model by the name a config gives it', () => {
  const r = sculpt(['inspect', 'builtin:sculpt-base']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^checkpoint {4}builtin:sculpt-base \(.*sculpt-base\)\narchitecture {2}llama/);
  const typo = sculpt(['inspect', 'builtin:sculpt-bas']);
  assert.equal(typo.status, 2, typo.stderr);
  assert.match(typo.stderr, /unknown builtin model 'sculpt-bas' \(did you mean 'sculpt-base'\?\)/);
});

test('report --out creates the folders above its file; a path it cannot write is exit 2 naming it', () => {
  const dir = fresh();
  const out = join(dir, 'no', 'such', 'folder', 'report.html');
  const r = sculpt(['report', ...RUNS, '--html', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(readFileSync(out, 'utf8'), /^<!doctype html>/i);
  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  const under = sculpt(['report', ...RUNS, '--out', join(file, 'report.md')]);
  assert.equal(under.status, 2, under.stderr);
  assert.ok(under.stderr.includes(`cannot write ${join(file, 'report.md')}: a folder above it is a file`));
  const folder = sculpt(['report', ...RUNS, '--out', dir]);
  assert.equal(folder.status, 2, folder.stderr);
  assert.ok(folder.stderr.includes(`cannot write ${dir}: it is a folder`), folder.stderr);
});

test('report and resume of a folder that does not exist say so', () => {
  const missing = join(fresh(), 'runs', 'nonexistent');
  for (const cmd of ['report', 'resume']) {
    const r = sculpt([cmd, missing]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`${missing} does not exist (give a run folder or an experiment folder)`), r.stderr);
    assert.ok(!r.stderr.includes('config.json is missing'), r.stderr);
  }
  assert.equal(existsSync(missing), false);
});

test('validate --json --stdin without a path says that the path is needed, and why', () => {
  const r = sculpt(['validate', '--json', '--stdin'], '{}');
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--stdin needs the config's path too \(relative paths in the text read resolve against it\)/);
  assert.doesNotMatch(r.stderr, /give one or more/);
});

test('report --baseline with a typo suggests the method that ran, as a config typo does', () => {
  const r = sculpt(['report', ...RUNS, '--baseline', 'adaptive_svd']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    /unknown baseline method "adaptive_svd": the runs' methods are seqft, adaptive-svd \(did you mean 'adaptive-svd'\?\)/,
  );
  const far = sculpt(['report', ...RUNS, '--baseline', 'lora']);
  assert.equal(far.status, 2, far.stderr);
  assert.doesNotMatch(far.stderr, /did you mean/);
});
