/**
 * The fused cross-entropy kernel against `meanNll(tf.logSoftmax(logits), targets)` on the cpu backend: the
 * loss and dlogits under a random upstream gradient, within relative error 1e-4 (relError: max abs difference
 * over max abs reference). Vocabularies below and above the 256 threads of a row workgroup, not multiples of
 * 4, GPT-2's 50257, rows with ignored targets (-100) and a batch where every target is ignored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { fusedCrossEntropy } from '../../../src/engine/kernels/webgpu/cross-entropy';
import { meanNll } from '../../../src/engine/models/layers';
import { download, onCpu, relError, seededValues, useSoftwareWebGpu } from '../../helpers/webgpu';

const TOL = 1e-4;

interface Case {
  name: string;
  rows: number;
  vocab: number;
  /** Logit scale: large values check the max subtraction. */
  scale: number;
  /** Target of row i. */
  target: (i: number) => number;
}

const CASES: Case[] = [
  { name: 'all rows labelled, vocab below the workgroup', rows: 23, vocab: 97, scale: 3, target: (i) => (i * 31) % 97 },
  {
    name: 'ignored rows, vocab 601 with large logits',
    rows: 41,
    vocab: 601,
    scale: 40,
    target: (i) => (i % 3 === 1 ? -100 : (i * 97 + 5) % 601),
  },
  { name: 'targets at both ends of the vocabulary', rows: 10, vocab: 258, scale: 5, target: (i) => (i % 2 ? 0 : 257) },
  { name: 'every target ignored', rows: 12, vocab: 130, scale: 2, target: () => -100 },
  { name: 'GPT-2 vocabulary', rows: 3, vocab: 50257, scale: 8, target: (i) => [50256, -100, 17][i] },
];

for (const c of CASES) {
  test(`fusedCrossEntropy matches meanNll(logSoftmax) forward and backward: ${c.name} (${c.rows}x${c.vocab})`, async () => {
    await useSoftwareWebGpu();
    const lv = seededValues(c.rows * c.vocab, c.rows + c.vocab, -c.scale, c.scale);
    const tv = Array.from({ length: c.rows }, (_, i) => c.target(i));
    const dy = 0.7;
    const run = (loss: (l: tf.Tensor2D, t: tf.Tensor1D) => tf.Scalar) => () => {
      const logits = tf.tensor2d(lv, [c.rows, c.vocab]);
      const targets = tf.tensor1d(tv, 'int32');
      const value = loss(logits, targets);
      const [dl] = tf.grads((l) => loss(l as tf.Tensor2D, targets))([logits], tf.scalar(dy));
      return [value, dl];
    };
    const want = await onCpu(run((l, t) => meanNll(tf.logSoftmax(l), t)));
    const outs = tf.tidy(run(fusedCrossEntropy));
    const got = await download(outs);
    if (tv.every((t) => t === -100)) {
      assert.equal(got[0][0], 0, 'loss is 0 without labelled rows');
      assert.ok(
        got[1].every((v) => v === 0),
        'no gradient without labelled rows',
      );
    }
    const lossErr = Math.abs(got[0][0] - want[0][0]) / Math.max(Math.abs(want[0][0]), 1e-6);
    assert.ok(lossErr <= TOL, `loss ${got[0][0]} vs ${want[0][0]} (relative ${lossErr.toExponential(2)})`);
    const gradErr = relError(got[1], want[1]);
    assert.ok(gradErr <= TOL, `dlogits: relative error ${gradErr.toExponential(2)} > ${TOL}`);
    // Ignored rows have exactly zero gradient.
    tv.forEach((t, i) => {
      if (t === -100) for (let j = 0; j < c.vocab; j++) assert.equal(got[1][i * c.vocab + j], 0, `row ${i} col ${j}`);
    });
  });
}
