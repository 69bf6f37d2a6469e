import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { loadTokenizer } from '../../src/engine/io/tokenizer';
import { rankAccuracy } from '../../src/engine/evaluate';
import { tinyTask } from '../../src/runs/builtin/tiny-tasks';
import { answerText, encodeExample } from '../../src/engine/data/batches';
import { repoRoot } from '../helpers/paths';

const TINY = join(repoRoot, 'assets', 'models', 'tiny-llama');

test('next-token log-probs equal single-token continuation scores, and rank classification over single-token labels uses them', async () => {
  await selectBackend('cpu');
  const model = loadPretrained(TINY);
  const tok = loadTokenizer(TINY);
  const prompts = [
    [1, 5, 9, 20],
    [1, 7],
    [1, 30, 31, 32, 33, 34],
  ];
  const candidates = [10, 11, 12];
  const next = await model.nextTokenLogProbs!(prompts, candidates, 2);
  const cont = await model.continuationLogProbs(
    prompts.flatMap((p) => candidates.map(() => p)),
    prompts.flatMap(() => candidates.map((c) => [c])),
    4,
  );
  prompts.forEach((_, i) =>
    candidates.forEach((_, j) =>
      assert.ok(Math.abs(next[i][j] - cont[i * 3 + j]) < 1e-5, `prompt ${i} candidate ${j}`),
    ),
  );
  // rankAccuracy's fast path equals ranking by single-token continuation scores computed independently.
  const task = { ...tinyTask('tiny/topic')!, labels: ['animal', 'food', 'place'], template: '{input}\nAnswer:' };
  const fast = await rankAccuracy(model, tok, task, { maxSeqLen: 16, batchSize: 8, maxNewTokens: 2 });
  const labelTok = task.labels.map((l) => tok.encode(answerText(l)));
  assert.ok(
    labelTok.every((t) => t.length === 1),
    'tiny labels are single tokens',
  );
  let hits = 0;
  for (const ex of task.test) {
    const prompt = encodeExample(tok, task.template, { ...ex, output: '' }, 16, false).prompt;
    const scores = await model.continuationLogProbs(
      labelTok.map(() => prompt),
      labelTok,
      8,
    );
    if (task.labels[scores.indexOf(Math.max(...scores))] === ex.output) hits++;
  }
  assert.equal(fast, (100 * hits) / task.test.length);
  model.dispose();
});
