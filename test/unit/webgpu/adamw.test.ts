import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { Optimizer } from '../../../src/engine/optim';
import { relError, seededValues, useSoftwareWebGpu } from '../../helpers/webgpu';

// Tolerance: the fused shader and the tfjs-op composition round differently in fp32 (same formula, different
// operation order); after 3 steps the parameters agree to ~1e-7 relative, 1e-5 leaves room.
const TOL = 1e-5;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

const SHAPES: Record<string, number[]> = { 'a.weight': [7, 5], 'b.bias': [13], 'c.weight': [3, 4, 2] };

/** Runs `steps` AdamW steps on the active backend; returns params and moments as arrays. */
async function run(steps: number, names = Object.keys(SHAPES)): Promise<Map<string, number[]>> {
  const vars = new Map(
    Object.entries(SHAPES).map(([n, s], i) => [
      n,
      tf.variable(tf.tensor(seededValues(size(s), i + 1), s), true, `${n}.${tf.getBackend()}.${Math.random()}`),
    ]),
  );
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0.1 });
  for (let step = 0; step < steps; step++) {
    const grads = new Map(
      names.map((n, i) => [n, tf.tensor(seededValues(size(SHAPES[n]), 100 * step + i + 7), SHAPES[n])]),
    );
    opt.apply(grads, vars, 0.01 * (step + 1));
    tf.dispose([...grads.values()]);
  }
  const out = new Map<string, number[]>();
  for (const [n, v] of vars) out.set(n, Array.from(await v.data()));
  for (const [k, t] of opt.state().slots) out.set(k, Array.from(await t.data()));
  opt.dispose();
  tf.dispose([...vars.values()]);
  return out;
}

test('fused AdamW on webgpu matches the tfjs-op AdamW on cpu: parameters and moments after 3 steps', async () => {
  await tf.setBackend('cpu');
  const ref = await run(3);
  await useSoftwareWebGpu();
  const got = await run(3);
  assert.deepEqual([...got.keys()].sort(), [...ref.keys()].sort());
  for (const [k, r] of ref) assert.ok(relError(got.get(k)!, r) <= TOL, `${k}: rel error ${relError(got.get(k)!, r)}`);
  // Sanity: the parameters did move (a no-op optimizer would fail above only through the moments).
  const init = seededValues(size(SHAPES['a.weight']), 1);
  assert.ok(relError(got.get('a.weight')!, Array.from(init)) > 1e-3);
});

test('fused AdamW: a clone taken before the step keeps its values (copy-on-write), and state survives a relayout', async () => {
  await useSoftwareWebGpu();
  const w = tf.variable(tf.ones([4, 4]), true, 'cow.w');
  const b = tf.variable(tf.zeros([4]), true, 'cow.b');
  const vars = new Map<string, tf.Variable>([
    ['w', w],
    ['b', b],
  ]);
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0 });
  const before = w.clone();
  const g1 = new Map<string, tf.Tensor>([
    ['w', tf.fill([4, 4], 2)],
    ['b', tf.fill([4], -1)],
  ]);
  opt.apply(g1, vars, 0.1);
  assert.deepEqual(Array.from(await before.data()), new Array(16).fill(1));
  // Adam's first step moves every element by lr (up to eps) against the gradient's sign.
  for (const x of await w.data()) assert.ok(Math.abs(x - 0.9) < 1e-5, `w after step ${x}`);
  for (const x of await b.data()) assert.ok(Math.abs(x - 0.1) < 1e-5, `b after step ${x}`);
  // Only w next: the layout changes, b's moments are parked and come back intact.
  const g2 = new Map<string, tf.Tensor>([['w', tf.fill([4, 4], 2)]]);
  opt.apply(g2, vars, 0.1);
  const slots = opt.state().slots;
  for (const x of await slots.get('m/b')!.data()) assert.ok(Math.abs(x - -0.1) < 1e-6, `m/b ${x}`);
  for (const x of await slots.get('m/w')!.data()) assert.ok(Math.abs(x - (0.9 * 0.2 + 0.2)) < 1e-6, `m/w ${x}`);
  // Restoring that state into a fresh optimizer continues identically.
  const copy = new Map([...slots].map(([k, t]) => [k, t.clone()]));
  const opt2 = new Optimizer({ name: 'adamw', weightDecay: 0 });
  opt2.load({ name: 'adamw', step: 2, slots: copy });
  const w2 = tf.variable(w.clone(), true, 'cow.w2');
  const g3 = () => new Map<string, tf.Tensor>([['w', tf.fill([4, 4], 0.5)]]);
  opt.apply(g3(), vars, 0.05);
  opt2.apply(g3(), new Map([['w', w2]]), 0.05);
  assert.ok(relError(await w2.data(), await w.data()) < 1e-7);
  tf.dispose([w, b, before, w2, ...g1.values(), ...g2.values(), ...copy.values()]);
  opt.dispose();
  opt2.dispose();
});
