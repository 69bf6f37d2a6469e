// Projection terms (ParamStore.project, CausalLM.withTerms): a term x ↦ x Mᵀ on a weight's projection is the same
// function as the weight replaced by W + M (W + Mᵀ in GPT-2's Conv1D layout [in, out]), loss and gradients, on
// every attention and MLP projection of the tiny GPT-2, LLaMA and T5 fixtures at once (T5's cross-attention reads
// the encoder's states: its k and v terms take those as input). A call site that skipped its term would leave
// that weight's M out of the loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import type { ProjectionTerm } from '../../src/engine/models/params';
import { fixture } from '../helpers/paths';
import { seededValues } from '../helpers/webgpu';

const B = 2;
const T = 6;
const IDS = Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % 50);

for (const name of ['gpt2-tiny', 'llama-tiny', 't5-tiny'])
  test(`${name}: a projection term x Mᵀ equals the weight replaced by W + M, loss and gradients`, async () => {
    await selectBackend('cpu');
    const model = loadPretrained(fixture('hf-reference', name));
    const ids = tf.tensor2d(IDS, [B, T], 'int32');
    const targets = model.inventory.targets;
    assert.ok(targets.length >= 4, `${name}: targets`);
    // M per target, [d_out, d_in], small against the weights.
    const Ms = targets.map((t, i) =>
      tf.variable(tf.tensor2d(seededValues(t.dOut * t.dIn, 100 + i, -0.05, 0.05), [t.dOut, t.dIn])),
    );
    const merged = () =>
      model.withWeights(
        new Map(
          targets.map((t, i) => [
            t.name,
            model.params.get(t.name)!.add(t.orientation === 'out_in' ? Ms[i] : Ms[i].transpose()),
          ]),
        ),
        () => model.loss(ids, ids),
      );
    const terms = new Map<string, ProjectionTerm>(
      targets.map((t, i) => [t.name, (x: tf.Tensor2D) => x.matMul(Ms[i], false, true) as tf.Tensor2D]),
    );
    const viaTerms = () => model.withTerms(terms, () => model.loss(ids, ids));
    const plain = model.loss(ids, ids).dataSync()[0];
    const a = tf.variableGrads(merged as () => tf.Scalar, Ms);
    const b = tf.variableGrads(viaTerms as () => tf.Scalar, Ms);
    const [la, lb] = [a.value.dataSync()[0], b.value.dataSync()[0]];
    assert.ok(Math.abs(la - plain) > 1e-4, `${name}: the M's change the loss (${la} vs ${plain})`);
    assert.ok(Math.abs(la - lb) <= 1e-5 * Math.abs(la), `${name}: loss ${lb} via terms, ${la} merged`);
    targets.forEach((t, i) => {
      const ga = a.grads[Ms[i].name].dataSync();
      const gb = b.grads[Ms[i].name].dataSync();
      let scale = 0;
      let diff = 0;
      for (let j = 0; j < ga.length; j++) {
        scale = Math.max(scale, Math.abs(ga[j]));
        diff = Math.max(diff, Math.abs(ga[j] - gb[j]));
      }
      assert.ok(scale > 0, `${name}: ${t.name} reaches the loss`);
      assert.ok(diff <= 1e-4 * scale, `${name}: d/dM of ${t.name}: ${diff} against ${scale}`);
    });
    // The terms end with the call: the model is itself again.
    assert.equal(model.loss(ids, ids).dataSync()[0], plain);
    assert.throws(() => model.withTerms(new Map([['no.such.weight', (x) => x]]), () => 0), /no\.such\.weight/);
    tf.dispose([a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads), ids, ...Ms]);
    model.dispose();
  });
