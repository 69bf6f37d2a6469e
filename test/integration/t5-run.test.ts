/** A continual run with an encoder-decoder model (the builtin tiny T5) through the built CLI. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEventLog } from '../../src/protocol/events';
import { SchemaChecker, type JsonSchema } from '../../src/protocol/schema-check';
import { metricsAfter } from '../../src/runs/metrics';
import { repoRoot } from '../helpers/paths';

test('a tiny T5 on two tiny tasks: events, a 2 x 2 matrix, metrics and rank statistics of encoder and decoder', () => {
  const work = mkdtempSync(join(tmpdir(), 'sculpt-t5-'));
  const cfg = join(work, 't5.sculpt.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      name: 't5',
      model: 'builtin:tiny-t5',
      backend: 'wasm',
      tasks: [
        { name: 'sentiment', source: { builtin: 'tiny/sentiment' } },
        { name: 'topic', source: { builtin: 'tiny/topic' } },
      ],
      methods: [{ method: 'adaptive-svd', rank: { policy: 'adaptive', importance: 'block', normalisation: 'minmax' } }, { method: 'lwf' }],
      training: { epochs: 2, batchSize: 16, lr: 0.005, maxSeqLen: 16 },
      output: join(work, 'runs'),
    }),
  );
  const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'cli.js'), 'run', cfg, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const checker = new SchemaChecker(JSON.parse(readFileSync(join(repoRoot, 'schemas', 'events.schema.json'), 'utf8')) as JsonSchema);
  for (const dir of readdirSync(join(work, 'runs'))) {
    const events = parseEventLog(readFileSync(join(work, 'runs', dir, 'events.jsonl'), 'utf8')).events;
    events.forEach((e) => assert.deepEqual(checker.check(structuredClone(e)), [], `${dir}: event ${e.seq}`));
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
      assert.ok(names.some((n) => n.startsWith('encoder.block.')) && names.some((n) => n.startsWith('decoder.block.')), 'encoder and decoder matrices are constrained');
      assert.ok(!names.some((n) => n.includes('EncDecAttention')), 'cross-attention is left free by default');
      ranks.matrices.forEach((m) => assert.ok(m.k >= 1 && m.k <= m.minDim && Number.isFinite(m.importance!)));
    }
  }
});
