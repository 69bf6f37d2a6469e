/**
 * Blown-up runs through the built CLI and trainer (dist/): a learning rate far too high ends the run as failed,
 * with an error event naming the task and the step, and a corrupt weights file is reported as one. Needs `npm
 * run build` first (npm test does it).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExperimentConfig } from '../../src/protocol/config';
import type { SculptEvent } from '../../src/protocol/events';
import { readSafetensors, writeSafetensors } from '../../src/engine/io/safetensors';
import { tinyExperiment, tinyTraining, writeExperiment } from '../helpers/experiment';
import { assertEventLog, cli, events, runDirs } from '../helpers/runs';
import { repoRoot } from '../helpers/paths';

const work = mkdtempSync(join(tmpdir(), 'sculpt-divergence-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Runs `overrides` on the tiny experiment; the exit code and the events of its run folder. */
function run(name: string, overrides: Partial<ExperimentConfig>): { status: number | null; evs: SculptEvent[] } {
  const output = join(work, name);
  const r = cli('run', writeExperiment(work, tinyExperiment({ name, output, ...overrides })), '--json');
  const [dir] = runDirs(output);
  const evs = events(dir);
  assertEventLog(evs, name);
  return { status: r.status, evs };
}

function errorOf(evs: SculptEvent[]) {
  const err = evs.find((e) => e.type === 'error');
  assert.ok(err && err.type === 'error', 'an error event');
  assert.ok(!evs.some((e) => e.type === 'run-finished'), 'the run did not finish');
  return err;
}

test('AdamW at lr 1e3 fails at the spike, naming the task, the step and the values, with the learning rate as cause', () => {
  const { status, evs } = run('adamw', { training: tinyTraining({ lr: 1e3 }) });
  assert.equal(status, 1);
  const err = errorOf(evs);
  assert.match(
    err.message,
    /^training diverged: the loss rose to [\d.]+e\+\d+ at step 2 of task 'sentiment', over 10x/,
  );
  assert.match(err.message, /losses of steps 1-2: 4\.\d+, /);
  assert.equal(err.where, "task 'sentiment', step 2");
  assert.match(err.hint ?? '', /^Lower the learning rate: training\.lr = 1000 is likely too high for seqft\./);
  assert.ok(
    evs.some((e) => e.type === 'eval'),
    'the zero-shot evaluation is kept',
  );
});

test('the same run with the spike check relaxed fails as a collapse at ln(68) instead', () => {
  const training = tinyTraining({ lr: 1e3, divergence: { lossFactor: 1e12 } });
  const { status, evs } = run('collapse', { training });
  assert.equal(status, 1);
  const err = errorOf(evs);
  // Where the uniform plateau starts depends on the float32 rounding of a run at lr 1e3 (a kernel's summation
  // order moves it by a step or two); the window is 5 steps, and the error names its last.
  const m = err.message.match(
    /^training collapsed: the loss sat at 4\.22 = ln\(68\), a uniform guess over the vocabulary, for 5 steps up to step (\d+) of task 'sentiment' \(from step (\d+)\), after having been as low as 4\.\d+/,
  );
  assert.ok(m, err.message);
  assert.equal(Number(m[1]) - Number(m[2]), 4);
  assert.equal(err.where, `task 'sentiment', step ${m[1]}`);
  // With the checks off the collapsed run goes on to the end, as it did before they existed.
  const off = run('off', { training: tinyTraining({ lr: 1e3, divergence: { enabled: false } }) });
  assert.equal(off.status, 0);
  assert.ok(off.evs.some((e) => e.type === 'run-finished'));
});

test('O-LoRA at lr 1e6 fails when the next task starts from the blown-up adapters', () => {
  // O-LoRA trains at its own lr (a default of its own), so the hint names that field. Adapters on q and v only,
  // where the first task survives such a rate long enough to finish (with the MLP's too it collapses at once).
  const { status, evs } = run('olora', { methods: [{ method: 'o-lora', lr: 1e6, modules: ['q', 'v'] }] });
  assert.equal(status, 1);
  const err = errorOf(evs);
  assert.match(err.message, /^training diverged: the loss rose to [\d.]+e\+\d+ at step 1 of task 'topic'/);
  assert.equal(err.where, "task 'topic', step 1");
  assert.match(err.hint ?? '', /methods\[0\]\.lr = 1000000 is likely too high for o-lora/);
  // The first task's row was computed and is kept.
  assert.ok(evs.some((e) => e.type === 'task-finished' && e.task === 0));
});

test('a NaN in the pretrained weights is a corrupt file naming the tensor, not a learning-rate problem', () => {
  const model = join(work, 'models', 'nan-llama');
  cpSync(join(repoRoot, 'assets', 'models', 'tiny-llama'), model, { recursive: true });
  const file = join(model, 'model.safetensors');
  const { tensors, metadata } = readSafetensors(file);
  const name = [...tensors.keys()].find((k) => k.endsWith('mlp.up_proj.weight'))!;
  (tensors.get(name)!.data as Float32Array)[3] = NaN;
  writeSafetensors(file, tensors, metadata);
  const { status, evs } = run('nan-model', { model });
  assert.equal(status, 1);
  const err = errorOf(evs);
  assert.equal(err.message, `${file}: tensor "${name}": holds NaN or infinite values; the file is corrupt`);
  assert.equal(err.where, `${file}, tensor "${name}"`);
  assert.doesNotMatch(err.hint ?? '', /learning rate/);
  assert.ok(!evs.some((e) => e.type === 'step' || e.type === 'eval'), 'nothing ran on the corrupt weights');
});
