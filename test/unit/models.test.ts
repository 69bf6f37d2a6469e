// Parity with Hugging Face transformers on the reference fixtures: logits, loss and every parameter's
// gradient, on the cpu and wasm backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { readSafetensors } from '../../src/engine/io/safetensors';
import { namedGrads } from '../../src/engine/models/grads';
import { fixture } from '../helpers/paths';
import { fixtureOutputs } from '../../scripts/bench/parity';
import { relErr } from './models-util';

const FIXTURES = ['gpt2-tiny', 'llama-tiny'];
const BACKENDS = ['cpu', 'wasm'] as const;

for (const backend of BACKENDS) {
  for (const name of FIXTURES) {
    test(`${name} on ${backend}: logits, loss and gradients match transformers`, async () => {
      await selectBackend(backend);
      assert.equal(tf.getBackend(), backend);
      const dir = fixture('hf-reference', name);
      const ref = readSafetensors(fixture('hf-reference', name, 'reference.safetensors')).tensors;
      const out = await fixtureOutputs(dir);
      const eLogits = relErr(out.logits, ref.get('logits')!.data as Float32Array);
      const eLoss = relErr(out.loss, ref.get('loss')!.data as Float32Array);
      let worst = { name: '', err: 0 };
      const refGrads = [...ref.keys()].filter((k) => k.startsWith('grad.'));
      assert.equal(out.grads.size, refGrads.length, 'one gradient per reference parameter');
      for (const key of refGrads) {
        const g = out.grads.get(key.slice(5));
        assert.ok(g, `no gradient for ${key.slice(5)}`);
        const err = relErr(g, ref.get(key)!.data as Float32Array);
        if (err > worst.err) worst = { name: key.slice(5), err };
      }
      console.log(
        `# ${name}/${backend}: logits ${eLogits.toExponential(2)}, loss ${eLoss.toExponential(2)}, worst grad ${worst.err.toExponential(2)} (${worst.name})`,
      );
      assert.ok(eLogits <= 1e-4, `logits rel err ${eLogits}`);
      assert.ok(eLoss <= 1e-5, `loss rel err ${eLoss}`);
      assert.ok(worst.err <= 1e-4, `gradient of ${worst.name}: rel err ${worst.err}`);
    });
  }
}

test('memory: the tensor count is flat across SGD training steps', async () => {
  await selectBackend('cpu');
  const model = loadPretrained(fixture('hf-reference', 'llama-tiny'));
  const ids = tf.tensor2d(
    [
      [1, 5, 9, 3, 7, 2, 0, 0],
      [4, 4, 8, 1, 6, 3, 2, 9],
    ],
    [2, 8],
    'int32',
  );
  const labels = tf.tensor2d(
    [
      [1, 5, 9, 3, 7, 2, -100, -100],
      [4, 4, 8, 1, 6, 3, 2, 9],
    ],
    [2, 8],
    'int32',
  );
  const mask = tf.tensor2d(
    [
      [1, 1, 1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1, 1, 1],
    ],
    [2, 8],
    'int32',
  );
  const step = (): number =>
    tf.tidy(() => {
      const { value, grads } = namedGrads(model, () => model.loss(ids, labels, mask));
      for (const [n, g] of grads) model.params.get(n)!.assign(model.params.get(n)!.sub(g.mul(0.1)));
      return value.dataSync()[0];
    });
  const first = step();
  const after1 = tf.memory().numTensors;
  let last = first;
  for (let i = 0; i < 19; i++) last = step();
  assert.equal(tf.memory().numTensors, after1);
  assert.ok(last < first, `SGD lowers the loss (${first} -> ${last})`);
  ids.dispose();
  labels.dispose();
  mask.dispose();
  model.dispose();
});
