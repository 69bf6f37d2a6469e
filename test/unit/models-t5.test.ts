// T5 parity with Hugging Face transformers on the t5-tiny reference fixture: logits, seq2seq loss and every
// parameter's gradient, on the cpu and wasm backends; relative position buckets against values worked out
// from the T5 formula by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { readSafetensors } from '../../src/engine/io/safetensors';
import { namedGrads } from '../../src/engine/models/grads';
import { relativePositionBucket } from '../../src/engine/models/t5-attention';
import { isSeq2Seq } from '../../src/engine/models/types';
import { fixture } from '../helpers/paths';
import { relErr } from './models-util';

const DIR = fixture('hf-reference', 't5-tiny');

for (const backend of ['cpu', 'wasm'] as const) {
  test(`t5-tiny on ${backend}: logits, loss and gradients match transformers`, async () => {
    await selectBackend(backend);
    assert.equal(tf.getBackend(), backend);
    const ref = readSafetensors(fixture('hf-reference', 't5-tiny', 'reference.safetensors')).tensors;
    const model = loadPretrained(DIR);
    assert.ok(isSeq2Seq(model), 'a T5 checkpoint loads as a seq2seq model');
    const idsT = ref.get('input.input_ids')!;
    const labT = ref.get('input.labels')!;
    const ids = tf.tensor2d(idsT.data as Int32Array, idsT.shape as [number, number], 'int32');
    const labels = tf.tensor2d(labT.data as Int32Array, labT.shape as [number, number], 'int32');
    try {
      const logits = model.labelLogits(ids, labels);
      assert.deepEqual(logits.shape, ref.get('logits')!.shape);
      const eLogits = relErr(logits.dataSync() as Float32Array, ref.get('logits')!.data as Float32Array);
      logits.dispose();
      const { value, grads } = namedGrads(model, () => model.loss(ids, labels));
      const eLoss = relErr(value.dataSync() as Float32Array, ref.get('loss')!.data as Float32Array);
      value.dispose();
      const refGrads = [...ref.keys()].filter((k) => k.startsWith('grad.'));
      assert.equal(grads.size, refGrads.length, 'one gradient per reference parameter');
      let worst = { name: '', err: 0 };
      for (const key of refGrads) {
        const g = grads.get(key.slice(5));
        assert.ok(g, `no gradient for ${key.slice(5)}`);
        const err = relErr(g.dataSync() as Float32Array, ref.get(key)!.data as Float32Array);
        if (err > worst.err) worst = { name: key.slice(5), err };
      }
      for (const g of grads.values()) g.dispose();
      console.log(
        `# t5-tiny/${backend}: logits ${eLogits.toExponential(2)}, loss ${eLoss.toExponential(2)}, worst grad ${worst.err.toExponential(2)} (${worst.name})`,
      );
      assert.ok(eLogits <= 1e-4, `logits rel err ${eLogits}`);
      assert.ok(eLoss <= 1e-5, `loss rel err ${eLoss}`);
      assert.ok(worst.err <= 1e-4, `gradient of ${worst.name}: rel err ${worst.err}`);
    } finally {
      ids.dispose();
      labels.dispose();
      model.dispose();
    }
  });
}

test('relative position buckets follow the T5 formula (exact near, logarithmic far, clamped)', () => {
  // Bidirectional, 32 buckets, max distance 128: 16 per direction, 8 exact, then 8 + floor(log(n/8)/log(16)·8).
  const bi = (r: number): number => relativePositionBucket(r, true, 32, 128);
  assert.deepEqual([0, 1, 7, -1, -7].map(bi), [0, 17, 23, 1, 7]);
  assert.equal(bi(-8), 8);
  assert.equal(bi(-16), 8 + Math.floor((Math.log(2) / Math.log(16)) * 8)); // 10
  assert.equal(bi(-127), 15);
  assert.equal(bi(-1000), 15, 'clamped to the last bucket');
  assert.equal(bi(1000), 31);
  // Causal: only non-positive relative positions (keys at or before the query); 16 exact of 32.
  const causal = (r: number): number => relativePositionBucket(r, false, 32, 128);
  assert.deepEqual([0, 3, 100].map(causal), [0, 0, 0], 'keys after the query share bucket 0');
  assert.deepEqual([-1, -15, -16, -32].map(causal), [1, 15, 16, 16 + Math.floor((Math.log(2) / Math.log(8)) * 16)]);
  assert.equal(causal(-5000), 31);
});
