/**
 * `sculpt join` (src/cli/join.ts) and node 0's launch record (src/trainer/torch/launch.ts), without torch: which
 * runs and node ranks can join (errors naming the field or folder), node R's torchrun line (node 0's with its own
 * rank, the launch's rendezvous id and checkpoint), the launch record's numbering and liveness, and the wait for
 * node 0 ending with a message that says what to check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExperimentConfig, TorchConfig } from '../../src/protocol/config';
import { validateConfig, type ResolvedConfig } from '../../src/protocol/config-validate';
import { ConfigError, UsageError } from '../../src/protocol/errors';
import { createExperiment } from '../../src/runs/experiment-dir';
import { EVENTS_FILE, createRunFolder, writePidFile } from '../../src/runs/run-dir';
import { EventWriter } from '../../src/trainer/event-writer';
import {
  LAUNCH_FILE,
  LaunchFileError,
  launchLive,
  nextLaunch,
  readLaunch,
  writeLaunch,
} from '../../src/trainer/torch/launch';
import { workerCommand } from '../../src/trainer/torch/worker-command';
import { acrossMachines, checkJoinable, joinCommand, joinCommandLine, joinTargets } from '../../src/cli/join';
import { tinyExperiment } from '../helpers/experiment';
import { runCommand } from '../helpers/console';
import { readLogEvents } from '../../src/supervisor/run-files';

const work = mkdtempSync(join(tmpdir(), 'sculpt-join-'));
const ENDPOINT = '10.0.0.1:29500';

function resolved(torch: TorchConfig | undefined, extra: Partial<ExperimentConfig> = {}): ResolvedConfig {
  const { config, issues } = validateConfig(
    tinyExperiment({ name: 'join', backend: undefined, engine: 'torch', torch, output: work, ...extra }),
  );
  assert.deepEqual(issues, [], 'the test config is valid');
  return config!;
}
const twoNodes = (torch: TorchConfig = {}) =>
  resolved({ python: 'py', nnodes: 2, nprocPerNode: 4, rdzvEndpoint: ENDPOINT, ...torch });

let folders = 0;
const runFolder = (config: ResolvedConfig) =>
  createRunFolder(work, `run-${++folders}`, config, { methodIndex: 0, order: 0, seed: config.seed });

const issuePath = (path: string) => (e: unknown) =>
  e instanceof ConfigError && e.issues.length === 1 && e.issues[0].path === path;

test('only a torch run over several machines can be joined, by a node rank from 1 to nnodes - 1', () => {
  const file = '/runs/x/config.json';
  assert.doesNotThrow(() => checkJoinable(twoNodes(), file, 1));
  const tfjs = { ...twoNodes(), engine: 'tfjs' } as ResolvedConfig;
  assert.throws(() => checkJoinable(tfjs, file, 1), issuePath('engine'));
  assert.throws(() => checkJoinable(tfjs, file, 1), /config\.json: engine: is "tfjs", expected "torch"/);
  assert.throws(() => checkJoinable(resolved({ nprocPerNode: 2 }), file, 1), issuePath('torch.nnodes'));
  assert.throws(
    () => checkJoinable(resolved({ nprocPerNode: 2 }), file, 1),
    /torch\.nnodes: is 1, expected more than 1: this run uses one machine/,
  );
  assert.throws(
    () => checkJoinable(twoNodes(), file, 0),
    (e: unknown) =>
      e instanceof UsageError &&
      /--node-rank is 0, expected an integer from 1 to 1: node 0 is the machine/.test(e.message),
  );
  assert.throws(
    () => checkJoinable(twoNodes(), file, 2),
    (e: unknown) =>
      e instanceof UsageError &&
      e.message === `--node-rank is 2, expected an integer from 1 to 1: torch.nnodes is 2 in ${file}`,
  );
  const three = twoNodes({ nnodes: 3 });
  assert.doesNotThrow(() => checkJoinable(three, file, 2));
  assert.throws(() => checkJoinable(three, file, 3), /from 1 to 2/);
});

test('join targets: a run folder, or the runs of an experiment folder in their run order; errors name the folder', () => {
  const missing = join(work, 'nowhere');
  assert.throws(
    () => joinTargets(missing, 1),
    (e: unknown) =>
      e instanceof UsageError && e.message.startsWith(`${missing} does not exist: expected the run folder`),
  );
  const empty = mkdtempSync(join(work, 'empty-'));
  assert.throws(
    () => joinTargets(empty, 1),
    (e: unknown) => e instanceof UsageError && /is not a usable run folder: config\.json is missing/.test(e.message),
  );
  const one = runFolder(resolved({ nnodes: 1 }));
  assert.throws(
    () => joinTargets(one, 1),
    (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${join(one, 'config.json')}: torch.nnodes: is 1`),
  );
  const dir = runFolder(twoNodes());
  assert.deepEqual(
    joinTargets(dir, 1).map((r) => [r.dir, r.config.torch.nnodes]),
    [[dir, 2]],
  );
  assert.throws(() => joinTargets(dir, 2), UsageError);

  const exp = createExperiment(twoNodes(), { now: new Date(2026, 0, 1) });
  const grid = resolved({ nnodes: 2, rdzvEndpoint: ENDPOINT }, { seeds: [0, 1] });
  const exp2 = createExperiment(grid, { now: new Date(2026, 0, 2) });
  assert.deepEqual(
    joinTargets(exp.dir, 1).map((r) => r.dir),
    exp.cells,
  );
  assert.deepEqual(
    joinTargets(exp2.dir, 1).map((r) => [r.dir, r.config.seed]),
    exp2.cells.map((c, i) => [c, i]),
    'seed by seed, as sculpt run runs them',
  );
  assert.equal(acrossMachines(exp2.cells[0]), true);
  assert.equal(acrossMachines(one), false);
  assert.equal(acrossMachines(missing), false);
});

test("node R's launch line: node 0's with --node-rank R, static rendezvous at the endpoint, the launch's id and checkpoint", () => {
  const config = twoNodes();
  const dir = runFolder(config);
  const run = { dir, config };
  const launch = { rdzvId: 'sculpt-0123456789ab', resume: 'checkpoints/torch-8-stop' };
  const env = { PATH: '/usr/bin' };
  const mine = joinCommandLine(run, launch, 1, '/repo/python', env);
  const checkpoint = join(dir, 'checkpoints', 'torch-8-stop');
  assert.equal(mine.command, 'py');
  assert.equal(mine.world, 8);
  assert.deepEqual(mine.args, [
    '-m',
    'torch.distributed.run',
    '--nproc-per-node',
    '4',
    '--nnodes',
    '2',
    '--node-rank',
    '1',
    '--rdzv-endpoint',
    ENDPOINT,
    '--rdzv-backend',
    'static',
    '--rdzv-id',
    'sculpt-0123456789ab',
    '-m',
    'sculpt_torch',
    dir,
    '--resume',
    checkpoint,
  ]);
  // Node 0's trainer launches the same line with its own rank (config.json's nodeRank, 0).
  const node0 = workerCommand({
    torch: config.torch,
    runDir: dir,
    resume: checkpoint,
    rdzvId: launch.rdzvId,
    pythonDir: '/repo/python',
    repo: '/repo',
    env,
  });
  assert.deepEqual(
    node0.args.map((a, i) => (node0.args[i - 1] === '--node-rank' ? '1' : a)),
    mine.args,
  );
  assert.equal(node0.args[node0.args.indexOf('--node-rank') + 1], '0');
  assert.equal(mine.env.SCULPT_PARENT_STDIN, '1', 'the workers here leave when join is gone');
  assert.equal(
    joinCommandLine(run, { ...launch, resume: null }, 1, '/repo/python', env).args.includes('--resume'),
    false,
    'a fresh start passes no checkpoint',
  );
});

test('the launch record: numbered per session, the checkpoint node 0 resumes from carried over to node R', () => {
  const config = twoNodes();
  const dir = runFolder(config);
  assert.equal(readLaunch(dir), null);
  const first = nextLaunch(dir, { torch: config.torch, resume: null, log: [] });
  assert.equal(first.launch, 1);
  assert.equal(first.eventsFrom, 1);
  assert.equal(first.resume, null);
  assert.match(first.rdzvId, /^sculpt-[0-9a-f]{12}$/);
  writeLaunch(dir, first);
  assert.deepEqual(readLaunch(dir), first);

  // A resume (as bridge.ts makes it): resume.ts gives the checkpoint's absolute folder; the record holds it
  // relative to the run folder, and node R's line names the same folder.
  const writer = new EventWriter(join(dir, EVENTS_FILE), 'run', 0);
  for (let i = 0; i < 4; i++) writer.emit({ type: 'warning', message: `event ${i + 1}` });
  const checkpoint = join(dir, 'checkpoints', 'torch-12-stop');
  const second = nextLaunch(dir, { torch: config.torch, resume: checkpoint, log: readLogEvents(dir) });
  assert.equal(second.launch, 2);
  assert.equal(second.eventsFrom, 5);
  assert.equal(second.resume, join('checkpoints', 'torch-12-stop'));
  assert.notEqual(second.rdzvId, first.rdzvId, 'each launch meets under its own id');
  writeLaunch(dir, second);
  const line = joinCommandLine({ dir, config }, readLaunch(dir)!, 1, '/repo/python', {}).args;
  assert.deepEqual(line.slice(line.indexOf('--resume')), ['--resume', checkpoint]);
  assert.equal(line[line.indexOf('--rdzv-id') + 1], second.rdzvId);

  writeFileSync(join(dir, LAUNCH_FILE), '{"format": 1, "launch": "two"}');
  assert.throws(
    () => readLaunch(dir),
    (e: unknown) =>
      e instanceof LaunchFileError && e.message.startsWith(`${join(dir, LAUNCH_FILE)}: expected format 1`),
  );
  assert.equal(
    nextLaunch(dir, { torch: config.torch, resume: null, log: [] }).launch,
    1,
    'a damaged record is replaced',
  );
});

test('a launch is live while its trainer holds the folder and the log has no final event of it', () => {
  const config = twoNodes();
  const dir = runFolder(config);
  const writer = new EventWriter(join(dir, EVENTS_FILE), 'run', 0);
  writer.emit({ type: 'warning', message: 'an earlier session' });
  writer.emit({ type: 'error', message: 'the earlier session failed' });
  const launch = nextLaunch(dir, { torch: config.torch, resume: null, log: readLogEvents(dir) });
  assert.equal(launch.pid, process.pid);
  assert.equal(launch.host, hostname());
  assert.equal(launchLive(dir, launch, readLogEvents(dir)), false, 'no trainer.pid: the trainer is gone');
  writePidFile(dir, process.pid);
  assert.equal(launchLive(dir, launch, readLogEvents(dir)), true, "the earlier session's error does not count");
  assert.equal(launchLive(dir, { ...launch, pid: process.pid + 1 }, readLogEvents(dir)), false, 'another trainer');
  writer.emit({ type: 'stopped', task: 0, step: 3 });
  assert.equal(launchLive(dir, launch, readLogEvents(dir)), false, 'its session ended');
});

test('join waits for node 0: a clear message when no launch comes, and a run that fails before launching ends it', async () => {
  const config = twoNodes();
  const dir = runFolder(config);
  const waited = await runCommand(() => joinCommand(dir, { nodeRank: 1, json: false, timeoutS: 0.3 }), []);
  assert.equal(waited.code, 1);
  assert.match(
    waited.err,
    new RegExp(
      `no launch of ${dir} by node 0 within 0\\.3 s \\(node 0's trainer writes ${join(dir, LAUNCH_FILE)} once it has prepared the run's data\\).*--timeout <seconds> waits longer`,
    ),
  );

  // Node 0's trainer fails before it starts its workers (an input error): join ends with the run, failed.
  const pending = runCommand(() => joinCommand(dir, { nodeRank: 1, json: false, timeoutS: 30 }), []);
  setTimeout(() => {
    new EventWriter(join(dir, EVENTS_FILE), 'run', 0).emit({ type: 'error', message: 'torch.python: not found' });
  }, 300);
  const failed = await pending;
  assert.equal(failed.code, 1, failed.err);
  assert.match(failed.err, /: failed on node 0 before it launched workers to join/);
  assert.match(failed.err, new RegExp(`^failed: ${dir}$`, 'm'));
});

test('cleanup', () => rmSync(work, { recursive: true, force: true }));
