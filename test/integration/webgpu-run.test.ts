/**
 * A whole run on the webgpu backend (SwiftShader, see test/helpers/webgpu.ts), in process through the trainer's
 * entry (runFolder): the tiny model on two tiny tasks with seqft and adaptive SVD (whose calibration captures
 * activations), rank and greedy-generation evaluation, and a checkpoint. webgpu has no synchronous readback in
 * Node (tensor.dataSync() throws), so this fails if any read on the run path is synchronous. Kept small:
 * SwiftShader is slow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExperimentConfig } from '../../src/protocol/config';
import { validateConfig } from '../../src/protocol/config-validate';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import { createRunDir, EVENTS_FILE } from '../../src/runs/run-dir';
import { runFolder } from '../../src/trainer/run';
import { TINY_TASKS, tinyExperiment, tinyTasks, tinyTraining } from '../helpers/experiment';
import { repoRoot } from '../helpers/paths';
import { useSoftwareWebGpu } from '../helpers/webgpu';

function resolvedConfig(output: string, changes: Partial<ExperimentConfig> = {}) {
  const raw = tinyExperiment({
    name: 'webgpu',
    backend: 'webgpu',
    tasks: tinyTasks(TINY_TASKS, { trainLimit: 16, testLimit: 6 }),
    methods: [{ method: 'seqft' }, { method: 'adaptive-svd', calibrationSamples: 8 }],
    training: tinyTraining({ epochs: 1, batchSize: 8, evalBatchSize: 8 }),
    eval: { modes: ['rank', 'generate'], maxNewTokens: 2 },
    checkpoint: { every: 'task', keep: 2 },
    output,
    ...changes,
  });
  const { config, issues } = validateConfig(raw, {
    file: path.join(output, 'webgpu.sculpt.json'),
    path,
    exists: existsSync,
  });
  assert.deepEqual(issues, []);
  return config!;
}

test(
  'a run on webgpu: seqft and adaptive SVD finish with a finite T x T matrix and a checkpoint',
  { timeout: 180_000 },
  async () => {
    process.env.SCULPT_ASSETS ??= path.join(repoRoot, 'assets');
    await useSoftwareWebGpu();
    const work = mkdtempSync(path.join(tmpdir(), 'sculpt-webgpu-run-'));
    try {
      const config = resolvedConfig(work);
      for (let methodIndex = 0; methodIndex < config.methods.length; methodIndex++) {
        const dir = createRunDir(config, { methodIndex, order: 0 });
        const outcome = await runFolder(dir, { shouldStop: () => false });
        const events: SculptEvent[] = parseEventLog(readFileSync(path.join(dir, EVENTS_FILE), 'utf8')).events;
        const error = events.find((e) => e.type === 'error');
        assert.equal(
          outcome,
          'finished',
          error?.type === 'error' ? `${error.message} at ${error.where}` : 'no error event',
        );
        const label = config.methods[methodIndex].method;
        const started = events.find((e) => e.type === 'run-started');
        assert.ok(
          started?.type === 'run-started' && started.backend.name === 'webgpu',
          `${label}: the run started on webgpu`,
        );
        const fin = events.find((e) => e.type === 'run-finished');
        assert.ok(fin?.type === 'run-finished');
        assert.equal(fin.matrix.length, TINY_TASKS.length, `${label}: one row per task`);
        for (const row of fin.matrix) {
          assert.equal(row.length, TINY_TASKS.length);
          assert.ok(
            row.every((a) => Number.isFinite(a) && a >= 0 && a <= 100),
            `${label}: accuracies ${JSON.stringify(row)}`,
          );
        }
        const steps = events.filter((e) => e.type === 'step');
        assert.ok(
          steps.length > 0 && steps.every((e) => e.type === 'step' && Number.isFinite(e.loss)),
          `${label}: finite step losses`,
        );
        assert.ok(
          events.some((e) => e.type === 'eval' && e.mode === 'generate'),
          `${label}: greedy generation was evaluated`,
        );
        const cp = events.find((e) => e.type === 'checkpoint');
        assert.ok(
          cp?.type === 'checkpoint' && existsSync(path.join(cp.path, 'model.safetensors')),
          `${label}: a checkpoint was written`,
        );
        if (label === 'adaptive-svd')
          assert.ok(
            events.some((e) => e.type === 'ranks'),
            'adaptive SVD chose ranks from calibration',
          );
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
);

test(
  'every other method, and a T5 model, train and evaluate on webgpu (finite matrices)',
  { timeout: 300_000 },
  async () => {
    process.env.SCULPT_ASSETS ??= path.join(repoRoot, 'assets');
    await useSoftwareWebGpu();
    const work = mkdtempSync(path.join(tmpdir(), 'sculpt-webgpu-methods-'));
    const small: Partial<ExperimentConfig> = {
      tasks: tinyTasks(TINY_TASKS, { trainLimit: 8, testLimit: 4 }),
      eval: { modes: ['rank'] },
      checkpoint: { every: 'task', keep: 1 },
    };
    const configs = [
      resolvedConfig(work, {
        ...small,
        methods: [
          { method: 'o-lora', r: 2 },
          { method: 'ewc' },
          { method: 'replay' },
          { method: 'lwf' },
          { method: 'mtl' },
          { method: 'per-task' },
        ],
      }),
      resolvedConfig(work, {
        ...small,
        name: 'webgpu-t5',
        model: 'builtin:tiny-t5',
        methods: [{ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', ratio: 0.5 } }],
      }),
    ];
    try {
      for (const config of configs) {
        for (let methodIndex = 0; methodIndex < config.methods.length; methodIndex++) {
          const label = `${config.model} ${config.methods[methodIndex].method}`;
          const dir = createRunDir(config, { methodIndex, order: 0 });
          const outcome = await runFolder(dir, { shouldStop: () => false });
          const events: SculptEvent[] = parseEventLog(readFileSync(path.join(dir, EVENTS_FILE), 'utf8')).events;
          const error = events.find((e) => e.type === 'error');
          assert.equal(
            outcome,
            'finished',
            `${label}: ${error?.type === 'error' ? `${error.message} at ${error.where}` : 'no error event'}`,
          );
          const fin = events.find((e) => e.type === 'run-finished');
          assert.ok(fin?.type === 'run-finished', `${label}: finished`);
          assert.ok(
            fin.matrix.flat().every((a) => Number.isFinite(a) && a >= 0 && a <= 100),
            `${label}: accuracies ${JSON.stringify(fin.matrix)}`,
          );
          assert.ok(
            events.every((e) => e.type !== 'step' || Number.isFinite(e.loss)),
            `${label}: finite step losses`,
          );
        }
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
);
