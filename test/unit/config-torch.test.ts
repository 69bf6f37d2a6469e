/**
 * The torch section's checks (src/protocol/config-validate.ts): rules between its fields as errors at their
 * JSON paths, settings of the engine a config does not use as warnings, and `torch.python` resolved against the
 * config file's folder like every other path in it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { configWarnings, validateConfig } from '../../src/protocol/config-validate';
import type { ExperimentConfig, TorchConfig } from '../../src/protocol/config';
import { tinyExperiment } from '../helpers/experiment';

const config = (torch?: TorchConfig, extra: Partial<ExperimentConfig> = {}) =>
  tinyExperiment({ name: 'torch', backend: undefined, engine: 'torch', torch, ...extra });

const issuesOf = (c: ExperimentConfig) => validateConfig(c).issues.map((i) => `${i.path}: ${i.message}`);

test('torch defaults: one process on this machine, auto shard and device, fp32', () => {
  const { config: c, issues } = validateConfig(config());
  assert.deepEqual(issues, []);
  assert.deepEqual(c?.torch, {
    nprocPerNode: 1,
    nnodes: 1,
    nodeRank: 0,
    shard: 'auto',
    precision: 'fp32',
    device: 'auto',
  });
  assert.deepEqual(configWarnings(c!), []);
});

test('several nodes need a rendezvous endpoint, named at torch.rdzvEndpoint', () => {
  const issues = issuesOf(config({ nnodes: 2 }));
  assert.equal(issues.length, 1, issues.join('\n'));
  assert.match(issues[0], /^torch\.rdzvEndpoint: is needed when torch\.nnodes is 2: the host:port/);
  assert.deepEqual(issuesOf(config({ nnodes: 2, rdzvEndpoint: '10.0.0.1:29500' })), []);
  assert.deepEqual(issuesOf(config({ nnodes: 1 })), [], 'one machine needs none');
  // torchrun wants host:port and fails only once the run has started: refused here, naming the field.
  for (const bad of ['notaport', '10.0.0.1:', ':29500', 'host:port', 'a b:1', '::1:29500']) {
    const found = issuesOf(config({ nnodes: 2, rdzvEndpoint: bad }));
    assert.equal(found.length, 1, `${bad}: ${found.join('\n')}`);
    assert.match(found[0], /^torch\.rdzvEndpoint: must be host:port/, bad);
  }
  for (const good of ['h:1', 'node-0.cluster:29500', '[::1]:29500', '127.0.0.1:0'])
    assert.deepEqual(issuesOf(config({ nnodes: 2, rdzvEndpoint: good })), [], good);
});

test('torch.nodeRank must be below torch.nnodes', () => {
  assert.deepEqual(issuesOf(config({ nnodes: 2, nodeRank: 2, rdzvEndpoint: 'h:1' })), [
    'torch.nodeRank: must be below torch.nnodes (2): nodes are numbered 0 to 1, got 2',
  ]);
  assert.deepEqual(issuesOf(config({ nodeRank: 1 })), [
    'torch.nodeRank: must be below torch.nnodes (1): nodes are numbered 0 to 0, got 1',
  ]);
  assert.deepEqual(issuesOf(config({ nnodes: 3, nodeRank: 2, rdzvEndpoint: 'h:1' })), []);
});

test('the torch rules hold whatever the engine: a config switched to torch later keeps its verdict', () => {
  const tfjs = tinyExperiment({ torch: { nnodes: 2 } });
  assert.deepEqual(
    validateConfig(tfjs).issues.map((i) => i.path),
    ['torch.rdzvEndpoint'],
  );
});

test('fsdp2 on the CPU is valid without a warning (fully_shard runs over gloo)', () => {
  const { config: c, issues } = validateConfig(config({ shard: 'fsdp2', device: 'cpu', nprocPerNode: 2 }));
  assert.deepEqual(issues, []);
  assert.deepEqual(configWarnings(c!), []);
});

test('engine torch with a backend other than auto: a warning at backend that it is not used', () => {
  const { config: c } = validateConfig(config(undefined, { backend: 'wasm' }));
  const warnings = configWarnings(c!);
  assert.deepEqual(
    warnings.map((w) => [w.path, w.code]),
    [['backend', 'backend-unused']],
  );
  assert.match(warnings[0].message, /is 'wasm', but backend picks the tfjs engine's device/);
  assert.deepEqual(configWarnings(validateConfig(config(undefined, { backend: 'auto' })).config!), []);
});

test('torch settings under engine tfjs: a warning naming those that differ from the defaults', () => {
  const { config: c } = validateConfig(
    tinyExperiment({ torch: { nprocPerNode: 2, precision: 'fp32', python: '/opt/py/bin/python' } }),
  );
  const warnings = configWarnings(c!);
  assert.deepEqual(
    warnings.map((w) => [w.path, w.code]),
    [['torch', 'torch-unused']],
  );
  assert.match(warnings[0].message, /^sets python, nprocPerNode, which only the torch engine uses/);
  assert.doesNotMatch(warnings[0].message, /precision/, 'a default written out is not a setting');
  // The default backend of tinyExperiment is wasm: no warning about it under tfjs.
  assert.deepEqual(configWarnings(validateConfig(tinyExperiment({ torch: {} })).config!), []);
  assert.deepEqual(configWarnings(validateConfig(tinyExperiment()).config!), []);
});

test('torch.python: a relative path resolves against the config file, a bare command stays for the PATH', () => {
  const file = path.join(path.sep, 'work', 'exp', 'a.sculpt.json');
  const resolve = (python: string) => validateConfig(config({ python }), { file, path }).config?.torch.python;
  assert.equal(resolve('.venv/bin/python'), path.join(path.sep, 'work', 'exp', '.venv', 'bin', 'python'));
  assert.equal(resolve('../envs/t/bin/python'), path.join(path.sep, 'work', 'envs', 't', 'bin', 'python'));
  assert.equal(resolve('/opt/conda/bin/python'), '/opt/conda/bin/python');
  assert.equal(resolve('python3'), 'python3');
  // Resolving again (a run folder's config on resume) changes nothing.
  const once = validateConfig(config({ python: 'py/bin/python' }), { file, path }).config!;
  assert.equal(validateConfig(once, { file: '/elsewhere/x.json', path }).config?.torch.python, once.torch.python);
});

test('one process with torch.shard ddp or fsdp2 is a warning (nothing is sharded), as the worker says at its start', () => {
  for (const shard of ['ddp', 'fsdp2'] as const) {
    const { config: c } = validateConfig(config({ shard }));
    const w = configWarnings(c!);
    assert.deepEqual(
      w.map((x) => [x.path, x.code]),
      [['torch.shard', 'torch-shard']],
    );
    assert.match(w[0].message, new RegExp(`^is '${shard}', but the run has one process .*: nothing is sharded$`));
  }
  const { config: two } = validateConfig(config({ shard: 'ddp', nprocPerNode: 2 }));
  assert.deepEqual(configWarnings(two!), []);
});
