/**
 * The PyTorch worker's command line (src/trainer/torch/worker-command.ts): the interpreter chosen, one process
 * or torchrun, the package on PYTHONPATH.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { delimiter, join } from 'node:path';
import type { ResolvedTorch } from '../../src/protocol/config-resolved';
import { ConfigError } from '../../src/protocol/errors';
import { choosePython, findPythonDir, workerCommand } from '../../src/trainer/torch/worker-command';
import { repoRoot } from '../helpers/paths';

const TORCH: ResolvedTorch = {
  nprocPerNode: 1,
  nnodes: 1,
  nodeRank: 0,
  shard: 'auto',
  precision: 'fp32',
  device: 'auto',
};
const base = {
  runDir: '/runs/exp/seqft-o0-s0',
  pythonDir: '/repo/python',
  repo: '/repo',
  env: { PATH: '/usr/bin', PYTHONPATH: '/site/extra' },
  exists: () => false,
};

test('one process: <python> -m sculpt_torch <runDir> [--resume <checkpoint>], python/ first on PYTHONPATH, unbuffered', () => {
  const c = workerCommand({ ...base, torch: { ...TORCH, python: '/opt/py/bin/python' } });
  assert.equal(c.command, '/opt/py/bin/python');
  assert.deepEqual(c.args, ['-m', 'sculpt_torch', '/runs/exp/seqft-o0-s0']);
  assert.equal(c.env.PYTHONPATH, ['/repo/python', '/site/extra'].join(delimiter));
  assert.equal(c.env.PYTHONUNBUFFERED, '1');
  // The worker watches its stdin pipe (python/sculpt_torch/orphan.py) and leaves when the trainer is gone.
  assert.equal(c.env.SCULPT_PARENT_STDIN, '1');
  assert.equal(c.env.PATH, '/usr/bin');
  assert.equal(c.world, 1);
  const r = workerCommand({ ...base, torch: TORCH, resume: '/runs/exp/seqft-o0-s0/checkpoints/torch-40-stop' });
  assert.deepEqual(r.args, [
    '-m',
    'sculpt_torch',
    '/runs/exp/seqft-o0-s0',
    '--resume',
    '/runs/exp/seqft-o0-s0/checkpoints/torch-40-stop',
  ]);
  assert.equal(workerCommand({ ...base, env: {}, torch: TORCH }).env.PYTHONPATH, '/repo/python');
});

test('the interpreter: torch.python, else the project .venv when it exists, else python3 on the PATH', () => {
  const venv = join('/repo', '.venv', 'bin', 'python');
  assert.deepEqual(
    choosePython({ python: '/x/python' }, '/repo', () => true),
    { python: '/x/python', from: 'torch.python' },
  );
  assert.deepEqual(
    choosePython({}, '/repo', (f) => f === venv),
    { python: venv, from: '.venv' },
  );
  assert.deepEqual(
    choosePython({}, '/repo', () => false),
    { python: 'python3', from: 'PATH' },
  );
  assert.deepEqual(choosePython({}, null), { python: 'python3', from: 'PATH' });
});

test('several processes on one machine: torchrun --standalone', () => {
  const c = workerCommand({ ...base, torch: { ...TORCH, python: 'py', nprocPerNode: 4 } });
  assert.equal(c.command, 'py');
  assert.equal(c.world, 4);
  assert.deepEqual(c.args, [
    '-m',
    'torch.distributed.run',
    '--nproc-per-node',
    '4',
    '--nnodes',
    '1',
    '--node-rank',
    '0',
    '--standalone',
    '-m',
    'sculpt_torch',
    '/runs/exp/seqft-o0-s0',
  ]);
});

test('several machines: torchrun with the static rendezvous at torch.rdzvEndpoint, which is required', () => {
  const torch = { ...TORCH, python: 'py', nprocPerNode: 8, nnodes: 2, nodeRank: 1, rdzvEndpoint: '10.0.0.1:29500' };
  const c = workerCommand({ ...base, torch, resume: '/ck' });
  assert.equal(c.world, 16);
  assert.deepEqual(c.args, [
    '-m',
    'torch.distributed.run',
    '--nproc-per-node',
    '8',
    '--nnodes',
    '2',
    '--node-rank',
    '1',
    '--rdzv-endpoint',
    '10.0.0.1:29500',
    '--rdzv-backend',
    'static',
    '-m',
    'sculpt_torch',
    '/runs/exp/seqft-o0-s0',
    '--resume',
    '/ck',
  ]);
  // One process per machine on two machines still goes through torchrun.
  assert.equal(workerCommand({ ...base, torch: { ...torch, nprocPerNode: 1 } }).args[1], 'torch.distributed.run');
  assert.throws(
    () => workerCommand({ ...base, torch: { ...torch, rdzvEndpoint: undefined } }),
    (e: unknown) => e instanceof ConfigError && e.issues[0].path === 'torch.rdzvEndpoint',
  );
});

test("the worker's package: the repository's python/ above the running code, or SCULPT_PYTHON_DIR", () => {
  assert.equal(findPythonDir(join(repoRoot, 'dist'), {}), join(repoRoot, 'python'));
  assert.equal(findPythonDir('/anywhere', { SCULPT_PYTHON_DIR: '/opt/sculpt/python' }), '/opt/sculpt/python');
  assert.throws(() => findPythonDir('/', {}), /python\/sculpt_torch\) was not found above \/; set SCULPT_PYTHON_DIR/);
});

test("the trainer's share of the cores is split among its local worker processes; the user's OMP_NUM_THREADS wins", () => {
  const threads = (env: NodeJS.ProcessEnv, nprocPerNode: number) =>
    workerCommand({ ...base, env, torch: { ...TORCH, nprocPerNode } }).env.OMP_NUM_THREADS;
  assert.equal(threads({ SCULPT_WASM_THREADS: '8' }, 1), '8');
  assert.equal(threads({ SCULPT_WASM_THREADS: '8' }, 2), '4');
  assert.equal(threads({ SCULPT_WASM_THREADS: '2' }, 4), '1', 'never fewer than one thread');
  assert.equal(threads({ SCULPT_WASM_THREADS: '8', OMP_NUM_THREADS: '3' }, 2), '3');
  assert.equal(threads({}, 2), undefined, 'no share given: torch (and torchrun) decide');
});
