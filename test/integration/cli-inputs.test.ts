/**
 * The built CLI with inputs it must refuse quickly and cleanly: an output that is a device or under /proc, a
 * FIFO as a data file or as the config, a config over the size limit. Each is exit code 2 with a message naming
 * the path, within seconds, and no run folder is left. Needs `npm run build` first (npm test does it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tinyExperiment, writeExperiment } from '../helpers/experiment';
import { CLI, RUN_ENV, runDirs } from '../helpers/runs';

/** The built CLI, killed after `timeout` ms: a refusal must never wait on its input. */
function sculpt(args: string[], env: NodeJS.ProcessEnv = {}, timeout = 30_000) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...RUN_ENV, ...env },
    timeout,
    killSignal: 'SIGKILL',
  });
  return { ...r, ms: Date.now() - started };
}

const fresh = () => mkdtempSync(join(tmpdir(), 'sculpt-cli-inputs-'));

test('run: output /dev/null or under /proc is exit 2 naming the path, before anything is written', () => {
  for (const output of ['/dev/null', '/proc/sculpt-runs']) {
    const dir = fresh();
    const cfg = writeExperiment(dir, tinyExperiment({ output }));
    const r = sculpt(['run', cfg]);
    assert.equal(r.status, 2, `${output}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${cfg}: output: output folder ${output}`), r.stderr);
    assert.match(r.stderr, /set `output` in the config \(or pass --out\)/);
    assert.ok(r.ms < 20_000, `${output}: took ${r.ms} ms`);
    assert.equal(existsSync('/proc/sculpt-runs'), false);
  }
  // --out is checked the same way.
  const dir = fresh();
  const cfg = writeExperiment(dir, tinyExperiment({ output: join(dir, 'runs') }));
  const r = sculpt(['run', cfg, '--out', '/dev/null']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /\/dev\/null is a device, not a folder/);
  assert.deepEqual(runDirs(join(dir, 'runs')), []);
});

test('run: a FIFO as a data file is exit 2 naming it, without waiting for a writer; no run folder', () => {
  const dir = fresh();
  const pipe = join(dir, 'train.jsonl');
  execFileSync('mkfifo', [pipe]);
  const test = join(dir, 'test.jsonl');
  writeFileSync(test, '{"input":"a","output":"x"}\n{"input":"b","output":"y"}\n');
  const out = join(dir, 'runs');
  const cfg = writeExperiment(
    dir,
    tinyExperiment({ output: out, tasks: [{ name: 'piped', source: { train: pipe, test } }] }),
  );
  const r = sculpt(['run', cfg]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /tasks\[0\]\.source/);
  assert.ok(r.stderr.includes(`${pipe} is a named pipe (FIFO), not a regular file`), r.stderr);
  assert.ok(r.ms < 20_000, `took ${r.ms} ms`);
  assert.deepEqual(runDirs(out), []);
});

test('run and validate: a FIFO or an oversized config is refused naming the file', () => {
  const dir = fresh();
  const pipe = join(dir, 'pipe.sculpt.json');
  execFileSync('mkfifo', [pipe]);
  for (const cmd of ['run', 'validate']) {
    const r = sculpt([cmd, pipe]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`config file ${pipe} is a named pipe (FIFO)`), r.stderr);
    assert.ok(r.ms < 20_000);
  }
  const cfg = writeExperiment(dir, tinyExperiment({ output: join(dir, 'runs') }));
  const big = sculpt(['validate', cfg], { SCULPT_MAX_CONFIG_BYTES: '100' });
  assert.equal(big.status, 2, big.stderr);
  assert.match(big.stderr, /over the limit of 100 bytes; .*SCULPT_MAX_CONFIG_BYTES/);
});

test('validate: says where run folders go and warns about train/test overlap', () => {
  const dir = fresh();
  const data = join(dir, 'all.jsonl');
  // Words and labels of the tiny model's vocabulary: the overlap is the only thing to say.
  writeFileSync(data, '{"input":"good cat","output":"happy"}\n{"input":"bad dog","output":"sad"}\n');
  const cfg = writeExperiment(
    dir,
    tinyExperiment({ output: 'runs', tasks: [{ name: 'same', source: { train: data, test: data } }] }),
  );
  const r = sculpt(['validate', cfg]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stderr.includes(`run folders go in ${join(dir, 'runs')}`), r.stderr);
  assert.match(r.stderr, /warning: task 'same': train and test are the same file/);
  assert.equal(existsSync(join(dir, 'runs')), false);
});

test('validate and run: a rank pattern that matches no target, or a fraction outside (0, 1], is exit 2 at its JSON path', () => {
  const dir = fresh();
  const withRank = (file: string, rankPattern: Record<string, number>) =>
    writeExperiment(
      dir,
      tinyExperiment({
        output: join(dir, 'runs'),
        methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', rankPattern } }],
      }),
      file,
    );
  // Known only once the model's names are read (config.json, no weights): at validate, and before run creates a folder.
  const nowhere = withRank('nowhere.sculpt.json', { q_proj$: 0.25, 'layers\\.9\\.': 4 });
  for (const cmd of ['validate', 'run']) {
    const r = sculpt([cmd, nowhere]);
    assert.equal(r.status, 2, `${cmd}: ${r.stderr}`);
    assert.ok(
      r.stderr.includes(`${nowhere}: methods[1].rank.rankPattern["layers\\\\.9\\\\."]: matches none of the`),
      r.stderr,
    );
    assert.ok(!r.stderr.includes('q_proj$'), 'the pattern that matches is not named');
  }
  assert.deepEqual(runDirs(join(dir, 'runs')), []);
  const fraction = withRank('fraction.sculpt.json', { q_proj$: 1.5 });
  const f = sculpt(['validate', fraction]);
  assert.equal(f.status, 2, f.stderr);
  assert.ok(
    f.stderr.includes(
      `methods[1].rank.rankPattern["q_proj$"]: a fraction must lie in (0, 1] (ranks above 1 are integers), got 1.5`,
    ),
    f.stderr,
  );
  const fine = withRank('fine.sculpt.json', { q_proj$: 0.25, 'layers\\.0\\.mlp': 2 });
  const ok = sculpt(['validate', fine]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /fine\.sculpt\.json: valid/);
});
