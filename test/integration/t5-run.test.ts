/** A continual run with an encoder-decoder model (the builtin tiny T5) through the built CLI. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { metricsAfter } from '../../src/runs/metrics';
import { tinyExperiment, tinyTraining, writeExperiment } from '../helpers/experiment';
import { assertEventLog, cli, events as readEvents, runDirs } from '../helpers/runs';

test('a tiny T5 on two tiny tasks: events, a 2 x 2 matrix, metrics and rank statistics of encoder and decoder', () => {
  const work = mkdtempSync(join(tmpdir(), 'sculpt-t5-'));
  const cfg = writeExperiment(
    work,
    tinyExperiment({
      name: 't5',
      model: 'builtin:tiny-t5',
      methods: [
        { method: 'adaptive-svd', rank: { policy: 'adaptive', importance: 'block', normalisation: 'minmax' } },
        { method: 'lwf' },
      ],
      training: tinyTraining({ lr: 0.005 }),
      output: join(work, 'runs'),
    }),
  );
  const r = cli('run', cfg, '--json');
  assert.equal(r.status, 0, r.stderr);
  const dirs = runDirs(join(work, 'runs'));
  assert.equal(dirs.length, 2, 'one run folder per method');
  for (const path of dirs) {
    const dir = basename(path);
    const events = readEvents(path);
    assertEventLog(events, dir);
    const fin = events.find((e) => e.type === 'run-finished');
    assert.ok(fin && fin.type === 'run-finished', `${dir} finished`);
    assert.equal(fin.matrix.length, 2);
    assert.deepEqual(fin.metrics, metricsAfter(fin.matrix, fin.zeroShot));
    const started = events.find((e) => e.type === 'run-started');
    assert.ok(started && started.type === 'run-started' && started.model.arch === 't5');
    if (dir.includes('adaptive-svd')) {
      const ranks = events.find((e) => e.type === 'ranks');
      assert.ok(ranks && ranks.type === 'ranks');
      const names = ranks.matrices.map((m) => m.name);
      assert.ok(
        names.some((n) => n.startsWith('encoder.block.')) && names.some((n) => n.startsWith('decoder.block.')),
        'encoder and decoder matrices are constrained',
      );
      assert.ok(!names.some((n) => n.includes('EncDecAttention')), 'cross-attention is left free by default');
      ranks.matrices.forEach((m) => assert.ok(m.k >= 1 && m.k <= m.minDim && Number.isFinite(m.importance!)));
    }
  }
});
