/**
 * The torch engine's probe (src/trainer/torch/probe.ts) against the project's .venv (npm run provision) and
 * against stand-in interpreters: shell scripts that answer as a Python with other packages or GPUs would. Every
 * problem is a ConfigError at the torch field concerned, saying what was found and the command that fixes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/protocol/errors';
import type { ResolvedTorch } from '../../src/protocol/config-resolved';
import {
  clearTorchProbeCache,
  describeEnvironment,
  probeTorch,
  resolvePython,
  type TorchProbe,
} from '../../src/trainer/torch/probe';
import { repoRoot } from '../helpers/paths';

const VENV_PYTHON = join(repoRoot, '.venv', 'bin', 'python');
const torchOf = (t: Partial<ResolvedTorch> = {}) => ({
  torch: {
    nprocPerNode: 1,
    nnodes: 1,
    nodeRank: 0,
    shard: 'auto',
    precision: 'fp32',
    device: 'auto',
    ...t,
  } as ResolvedTorch,
});
const pin = (name: string) =>
  readFileSync(join(repoRoot, 'python', 'requirements.txt'), 'utf8').match(new RegExp(`^${name}==(\\S+)`, 'm'))![1];

/** The ConfigError `fn` throws, with its issues as `path: message` lines. */
function refusal(fn: () => unknown): { error: ConfigError; lines: string[] } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `a ConfigError, got ${String(e)}`);
    return { error: e, lines: e.issues.map((i) => `${i.path}: ${i.message}`) };
  }
  assert.fail('the probe accepted it');
}

const dir = mkdtempSync(join(tmpdir(), 'sculpt-probe-'));

/** A stand-in interpreter that prints the probe's answer `found` (and counts its runs in `<name>.runs`). */
function fakePython(name: string, found: Record<string, unknown>): string {
  const file = join(dir, name);
  // The answer sits in a file beside the script, so that no shell quoting touches it.
  writeFileSync(`${file}.json`, `@sculpt-probe ${JSON.stringify({ executable: file, python: '3.12.1', ...found })}\n`);
  writeFileSync(
    file,
    `#!/bin/sh\necho x >> '${file}.runs'\necho 'some noise from a sitecustomize'\ncat '${file}.json'\n`,
  );
  chmodSync(file, 0o755);
  return file;
}
const runsOf = (python: string) =>
  existsSync(`${python}.runs`) ? readFileSync(`${python}.runs`, 'utf8').trim().split('\n').length : 0;

const CPU_TORCH = {
  torch: '2.13.0+cpu',
  transformers: '5.25.0',
  safetensors: '0.8.0',
  cuda: { available: false, version: null, devices: 0, names: [] },
  distributed: true,
  gloo: true,
  nccl: false,
  fullyShard: true,
};
const GPU_TORCH = {
  ...CPU_TORCH,
  torch: '2.13.0+cu128',
  cuda: { available: true, version: '12.8', devices: 1, names: ['NVIDIA H100 80GB HBM3'] },
  nccl: true,
};

test("without torch.python the project .venv is used; a relative torch.python is the config file's", () => {
  assert.equal(resolvePython(torchOf()), VENV_PYTHON, 'npm run provision makes .venv');
  assert.equal(
    resolvePython(torchOf({ python: 'envs/py/bin/python' }), '/work/exp/a.sculpt.json'),
    '/work/exp/envs/py/bin/python',
  );
  assert.equal(
    resolvePython(torchOf({ python: '/opt/py/bin/python' }), '/work/exp/a.sculpt.json'),
    '/opt/py/bin/python',
  );
  assert.equal(resolvePython(torchOf({ python: 'python3.12' }), '/work/exp/a.sculpt.json'), 'python3.12');
});

test('the .venv: torch, transformers and safetensors at their pinned versions, and what follows from them', () => {
  const p: TorchProbe = probeTorch(torchOf({ python: VENV_PYTHON }));
  assert.ok(p.torch.startsWith(pin('torch')), p.torch);
  assert.equal(p.transformers, pin('transformers'));
  assert.equal(p.safetensors, pin('safetensors'));
  assert.match(p.pythonVersion, /^3\.\d+\.\d+/);
  assert.ok(p.distributed && p.gloo, 'gloo, for DDP (and FSDP2) on the CPU');
  assert.ok(p.fullyShard, 'torch.distributed.fsdp.fully_shard');
  assert.equal(p.world, 1);
  assert.equal(p.shard, 'none');
  assert.equal(p.device, p.cuda.available ? 'cuda' : 'cpu');
  if (!p.cuda.available) {
    assert.equal(p.summary, `torch ${p.torch} (CPU only): DDP over gloo; FSDP2 available`);
    assert.equal(p.plan, '1 process on cpu, fp32');
  }
});

test('device "cuda" where torch sees no GPU: an error at torch.device saying what was found', () => {
  // Every GPU hidden, so that the check runs the same on a machine that has one.
  const saved = process.env.CUDA_VISIBLE_DEVICES;
  process.env.CUDA_VISIBLE_DEVICES = '';
  clearTorchProbeCache();
  try {
    const p = probeTorch(torchOf({ python: VENV_PYTHON }));
    assert.equal(p.cuda.available, false, 'no GPU is visible');
    const { error, lines } = refusal(() =>
      probeTorch(torchOf({ python: VENV_PYTHON, device: 'cuda' }), '/x/a.sculpt.json'),
    );
    assert.equal(lines.length, 1);
    assert.ok(
      lines[0].startsWith(`torch.device: is "cuda", but torch ${p.torch} at ${VENV_PYTHON} sees no CUDA GPU`),
      lines[0],
    );
    assert.match(lines[0], /set torch\.device to "auto" or "cpu"/);
    assert.match(error.message, /^\/x\/a\.sculpt\.json: torch\.device: /, 'the message names the config file');
  } finally {
    if (saved === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
    else process.env.CUDA_VISIBLE_DEVICES = saved;
    clearTorchProbeCache();
  }
});

test('a torch.python that does not exist: an error at torch.python naming it and how to get a Python', () => {
  const missing = join(dir, 'no-such', 'python');
  const { error, lines } = refusal(() => probeTorch(torchOf({ python: missing })));
  assert.deepEqual(lines, [
    `torch.python: ${missing} was not found; point torch.python at a Python with torch, or remove it and run \`npm run provision\` to make the project's .venv`,
  ]);
  assert.match(error.hint, /npm run provision/);
  const bare = refusal(() => probeTorch(torchOf({ python: 'sculpt-no-such-python' })));
  assert.match(bare.lines[0], /^torch\.python: sculpt-no-such-python \(on the PATH\) was not found/);
});

test('a Python without torch (or transformers): the pip command that installs the pinned packages into it', () => {
  const noTorch = fakePython('no-torch', {
    torchError: "ModuleNotFoundError: No module named 'torch'",
    transformersError: 'x',
  });
  const { error, lines } = refusal(() => probeTorch(torchOf({ python: noTorch })));
  const pip = `${noTorch} -m pip install torch==${pin('torch')} transformers==${pin('transformers')} safetensors==${pin('safetensors')}`;
  assert.deepEqual(lines, [
    `torch.python: ${noTorch}, Python 3.12.1, cannot import torch (ModuleNotFoundError: No module named 'torch'); run \`${pip}\``,
  ]);
  assert.equal(error.hint, `run \`${pip}\``);
  const { transformers: _, ...rest } = CPU_TORCH;
  const noTransformers = fakePython('no-transformers', {
    ...rest,
    transformersError: "ModuleNotFoundError: No module named 'transformers'",
  });
  assert.match(
    refusal(() => probeTorch(torchOf({ python: noTransformers }))).lines[0],
    /cannot import transformers \(ModuleNotFoundError/,
  );
});

test('something that is not a Python: an error at torch.python, not a crash', () => {
  const notPython = join(dir, 'not-python');
  writeFileSync(notPython, '#!/bin/sh\necho "usage: not-python" >&2\nexit 3\n');
  chmodSync(notPython, 0o755);
  const { lines } = refusal(() => probeTorch(torchOf({ python: notPython })));
  assert.deepEqual(lines, [
    `torch.python: ${notPython} is not a Python 3 that can run Sculpt's probe (exit 3: usage: not-python); point torch.python at a Python 3 with torch`,
  ]);
});

test('more processes than GPUs, and FSDP2 without fully_shard: errors at torch.nprocPerNode and torch.shard', () => {
  const gpu = fakePython('one-gpu', GPU_TORCH);
  const p = probeTorch(torchOf({ python: gpu }));
  assert.equal(
    p.summary,
    'torch 2.13.0+cu128 (CUDA 12.8, 1 GPU: NVIDIA H100 80GB HBM3): DDP over NCCL or gloo; FSDP2 available',
  );
  assert.deepEqual([p.device, p.shard, p.plan], ['cuda', 'none', '1 process on cuda, fp32']);
  const two = refusal(() => probeTorch(torchOf({ python: gpu, nprocPerNode: 2 })));
  assert.deepEqual(two.lines, [
    `torch.nprocPerNode: is 2, but torch 2.13.0+cu128 at ${gpu} sees 1 GPU (one process per GPU); set torch.nprocPerNode to at most 1 (or make more GPUs visible: CUDA_VISIBLE_DEVICES)`,
  ]);
  // Two nodes of one GPU each: auto means FSDP2 on CUDA, which this torch lacks.
  const old = fakePython('no-fully-shard', { ...GPU_TORCH, torch: '2.4.1+cu121', fullyShard: false });
  const torch = torchOf({ python: old, nnodes: 2, rdzvEndpoint: 'h:1' });
  const auto = refusal(() => probeTorch(torch));
  assert.equal(auto.lines.length, 1);
  assert.match(
    auto.lines[0],
    /^torch\.shard: is "auto", which is FSDP2 for several processes on CUDA, but torch 2\.4\.1\+cu121 at .* has no torch\.distributed\.fsdp\.fully_shard/,
  );
  assert.match(auto.lines[0], /set torch\.shard to "ddp"/);
  assert.equal(
    probeTorch(torchOf({ python: old, nnodes: 2, rdzvEndpoint: 'h:1', shard: 'ddp' })).plan,
    '2 processes (2 nodes × 1) on cuda, ddp, fp32',
  );
  // On the CPU, several processes need gloo.
  const noGloo = fakePython('no-gloo', { ...CPU_TORCH, gloo: false });
  assert.match(
    refusal(() => probeTorch(torchOf({ python: noGloo, nprocPerNode: 2 }))).lines[0],
    /^torch\.nprocPerNode: asks for 2 processes on cpu, but .* has no gloo process group/,
  );
});

test('one run of an interpreter per process: later probes of it reuse what it said', () => {
  const python = fakePython('counted', CPU_TORCH);
  probeTorch(torchOf({ python }));
  const p = probeTorch(torchOf({ python, nprocPerNode: 2, shard: 'fsdp2', precision: 'bf16' }));
  assert.equal(runsOf(python), 1);
  assert.equal(p.plan, '2 processes on cpu, fsdp2, bf16', 'the config-dependent part is decided each time');
  const one = probeTorch(torchOf({ python, shard: 'fsdp2' }));
  assert.deepEqual([one.shard, one.plan], ['none', '1 process on cpu, fp32'], 'one process shards nothing');
  clearTorchProbeCache();
  probeTorch(torchOf({ python }));
  assert.equal(runsOf(python), 2);
});

test('describeEnvironment: a CUDA build with no GPU visible, and a torch without torch.distributed', () => {
  const env = { ...GPU_TORCH, python: 'p', executable: 'p', pythonVersion: '3.12.1' };
  assert.equal(
    describeEnvironment({ ...env, cuda: { available: false, version: '12.8', devices: 0, names: [] } }),
    'torch 2.13.0+cu128 (CUDA 12.8 build, no GPU visible): DDP over gloo; FSDP2 available',
  );
  assert.equal(
    describeEnvironment({ ...env, distributed: false, gloo: false, nccl: false, fullyShard: false }),
    'torch 2.13.0+cu128 (CUDA 12.8, 1 GPU: NVIDIA H100 80GB HBM3): no torch.distributed: one process only; no FSDP2 (fully_shard)',
  );
});

test("the editor's checks reuse a recent probe of the same interpreter across processes; a failed one is not reused", () => {
  const python = fakePython('remembered', CPU_TORCH);
  const config = torchOf({ python });
  probeTorch(config, undefined, { reuseMs: 60_000 });
  // A new process: nothing in memory.
  clearTorchProbeCache();
  const again = probeTorch(config, undefined, { reuseMs: 60_000 });
  assert.equal(runsOf(python), 1, 'the second check read what the first found');
  assert.equal(again.torch, CPU_TORCH.torch);
  clearTorchProbeCache();
  probeTorch(config);
  assert.equal(runsOf(python), 2, 'without reuse (validate, run) the interpreter is asked again');

  const broken = fakePython('remembered-without-torch', { ...CPU_TORCH, torch: null });
  const brokenConfig = torchOf({ python: broken });
  refusal(() => probeTorch(brokenConfig, undefined, { reuseMs: 60_000 }));
  clearTorchProbeCache();
  refusal(() => probeTorch(brokenConfig, undefined, { reuseMs: 60_000 }));
  assert.equal(runsOf(broken), 2, 'a probe that found no torch is asked again, so an install shows at once');
});
