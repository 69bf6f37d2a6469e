/**
 * The wasm backend's fused optimizer kernels (src/engine/kernels/wasm-adamw.ts) against the tf-op path they
 * replace (SCULPT_WASM_UNFUSED=adamw / clip), both on the wasm backend.
 *
 * Tolerance, element by element: |fused - unfused| <= 1e-7 + 1e-6 |unfused|. The kernel computes in float64 and
 * rounds each output once; the tf ops round after every op (about ten per update), so the two differ by a few
 * float32 ulps (6e-8 relative each), plus an absolute term for values near 0 where b1 m and (1-b1) g cancel.
 * The norm: 1e-6 relative (the unfused one sums in float32).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { Optimizer, clipByGlobalNorm, type OptimizerName } from '../../src/engine/optim';
import { wasmAdamW, wasmGlobalNorm } from '../../src/engine/kernels/wasm-adamw';
import { useWasmFused, WASM_FUSED_KERNELS } from '../../src/engine/kernels/webgpu/switches';
import { seededValues } from '../helpers/webgpu';

const REL = 1e-6;
const ABS = 1e-7;

/** Sizes 1 and odd ones, so the kernels' loops get no help from a multiple of 4. */
const SHAPES: Record<string, number[]> = {
  one: [1],
  odd: [7],
  matrix: [13, 5],
  wide: [64, 33],
};

interface Diff {
  abs: number;
  rel: number;
  /** The largest relative difference where |want| >= 1e-3 (away from the cancellations ABS covers). */
  relLarge: number;
  /** Elements outside ABS + REL |want|. */
  bad: string[];
}

function compare(got: ArrayLike<number>, want: ArrayLike<number>, what: string, into: Diff): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    into.abs = Math.max(into.abs, d);
    if (want[i] !== 0) into.rel = Math.max(into.rel, d / Math.abs(want[i]));
    if (Math.abs(want[i]) >= 1e-3) into.relLarge = Math.max(into.relLarge, d / Math.abs(want[i]));
    if (!(d <= ABS + REL * Math.abs(want[i])) && into.bad.length < 5)
      into.bad.push(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

const newDiff = (): Diff => ({ abs: 0, rel: 0, relLarge: 0, bad: [] });

/** p, m, v of every variable after each listed step, as plain arrays. */
type Snapshot = Map<string, Float32Array>;

interface Run {
  /** By step (1-based) in `keep`: `p/<name>`, `m/<name>`, `v/<name>`. */
  at: Map<number, Snapshot>;
  kernels: Set<string>;
}

/** Gradients of step s for variable `name`: seeded, of varying scale, the same for every run. */
function gradOf(name: string, shape: number[], s: number): tf.Tensor {
  const n = shape.reduce((a, d) => a * d, 1);
  const scale = [1, 0.3, 2, 0.05, 1.5, 0.7, 1][s % 7];
  return tf.tensor(seededValues(n, 1000 * s + n + name.length, -scale, scale), shape);
}

function snapshot(opt: Optimizer, vars: Map<string, tf.Variable>): Snapshot {
  const out: Snapshot = new Map();
  for (const [n, p] of vars) out.set(`p/${n}`, p.dataSync().slice() as Float32Array);
  for (const [k, t] of opt.state().slots) out.set(k, t.dataSync().slice() as Float32Array);
  return out;
}

/** `steps` updates of fresh variables (seeded), recording the state after the steps in `keep`. */
async function train(
  unfused: string | null,
  name: OptimizerName,
  weightDecay: number,
  steps: number,
  keep: number[],
  lr = 0.01,
): Promise<Run> {
  if (unfused) process.env.SCULPT_WASM_UNFUSED = unfused;
  else delete process.env.SCULPT_WASM_UNFUSED;
  const vars = new Map<string, tf.Variable>();
  for (const [n, shape] of Object.entries(SHAPES)) {
    const size = shape.reduce((a, d) => a * d, 1);
    vars.set(n, tf.variable(tf.tensor(seededValues(size, size + 7, -2, 2), shape), true));
  }
  const opt = new Optimizer({ name, weightDecay });
  const run: Run = { at: new Map(), kernels: new Set() };
  try {
    for (let s = 1; s <= steps; s++) {
      const grads = new Map([...vars].map(([n, p]) => [n, gradOf(n, p.shape, s)]));
      const profile = await tf.profile(() => opt.apply(grads, vars, lr));
      for (const k of profile.kernelNames) run.kernels.add(k);
      tf.dispose([...grads.values()]);
      if (keep.includes(s)) run.at.set(s, snapshot(opt, vars));
    }
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
    opt.dispose();
    tf.dispose([...vars.values()]);
  }
  return run;
}

const CONFIGS: { name: OptimizerName; weightDecay: number }[] = [
  { name: 'adamw', weightDecay: 0 },
  { name: 'adamw', weightDecay: 0.01 },
  { name: 'adam', weightDecay: 0 },
];

for (const c of CONFIGS) {
  test(`wasm fused ${c.name} (weight decay ${c.weightDecay}) matches the tf ops in p, m and v at steps 1 and 5`, async (t) => {
    await selectBackend('wasm');
    const keep = [1, 5, 8];
    const want = await train('adamw', c.name, c.weightDecay, 8, keep);
    const got = await train(null, c.name, c.weightDecay, 8, keep);
    assert.ok(got.kernels.has('SculptAdamW'), 'the fused kernel ran');
    assert.ok(!got.kernels.has('Sqrt'), 'no tf-op update beside it');
    assert.ok(!want.kernels.has('SculptAdamW') && want.kernels.has('Sqrt'), 'SCULPT_WASM_UNFUSED=adamw: tf ops');
    const diff = newDiff();
    for (const s of keep) {
      const w = want.at.get(s)!;
      const g = got.at.get(s)!;
      assert.deepEqual([...g.keys()].sort(), [...w.keys()].sort(), 'the same slots');
      for (const [k, arr] of w) compare(g.get(k)!, arr, `step ${s} ${k}`, diff);
    }
    const rel = `max rel ${diff.rel.toExponential(2)} (${diff.relLarge.toExponential(2)} where |x| >= 1e-3)`;
    t.diagnostic(`max abs ${diff.abs.toExponential(2)}, ${rel}`);
    assert.deepEqual(diff.bad, [], `outside ${ABS} + ${REL} |x|`);
  });
}

test('wasm fused AdamW equals a float64 AdamW (PyTorch’s rule) at steps 1 and 5, so the bias corrections are right', async () => {
  // Independent of the tf ops: the reference keeps m and v in float64, the kernel rounds them to float32 each
  // step, which stays within the same ABS + REL |x|.
  await selectBackend('wasm');
  const [lr, wd, b1, b2, eps] = [0.05, 0.1, 0.9, 0.999, 1e-8];
  const n = 9;
  const p0 = seededValues(n, 5, -1, 1);
  const gs = [1, 2, 3, 4, 5].map((s) => seededValues(n, 50 + s, -1, 1));
  let p: tf.Tensor = tf.tensor1d(p0);
  let m: tf.Tensor = tf.zeros([n]);
  let v: tf.Tensor = tf.zeros([n]);
  const rp = Float64Array.from(p0);
  const rm = new Float64Array(n);
  const rv = new Float64Array(n);
  for (let s = 1; s <= 5; s++) {
    const g = tf.tensor1d(gs[s - 1]);
    const out = wasmAdamW(p, g, m, v, { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, step: s });
    tf.dispose([p, m, v, g]);
    [p, m, v] = out;
    for (let i = 0; i < n; i++) {
      rp[i] *= 1 - lr * wd;
      rm[i] = b1 * rm[i] + (1 - b1) * gs[s - 1][i];
      rv[i] = b2 * rv[i] + (1 - b2) * gs[s - 1][i] ** 2;
      rp[i] -= ((lr / (1 - b1 ** s)) * rm[i]) / (Math.sqrt(rv[i] / (1 - b2 ** s)) + eps);
    }
    if (s === 1 || s === 5) {
      const diff = newDiff();
      compare(p.dataSync(), rp, `p step ${s}`, diff);
      compare(m.dataSync(), rm, `m step ${s}`, diff);
      compare(v.dataSync(), rv, `v step ${s}`, diff);
      assert.deepEqual(diff.bad, []);
    }
  }
  tf.dispose([p, m, v]);
});

test('wasm fused AdamW does not write the variable in place: a clone taken before the step keeps its values', async () => {
  await selectBackend('wasm');
  const w = tf.variable(tf.tensor1d([1, -2, 3]), true);
  const before = w.clone();
  const opt = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
  const g = tf.tensor1d([0.5, 0.5, -0.5]);
  const tensors = tf.memory().numTensors;
  opt.apply(new Map([['w', g]]), new Map([['w', w]]), 0.1);
  assert.equal(tf.memory().numTensors, tensors + 2, 'only the two new moment slots stay');
  for (let i = 0; i < 5; i++) opt.apply(new Map([['w', g]]), new Map([['w', w]]), 0.1);
  assert.equal(tf.memory().numTensors, tensors + 2, 'no tensor leaks per step');
  assert.deepEqual(Array.from(before.dataSync()), [1, -2, 3]);
  assert.notDeepEqual(Array.from(w.dataSync()), [1, -2, 3]);
  tf.dispose([w, before, g]);
  opt.dispose();
});

test('wasm fused AdamW: optimizer state round-trips, and a restored optimizer continues identically', async () => {
  await selectBackend('wasm');
  const run = (restoreAfter: number | null, restoreUnfused = false): Float32Array[] => {
    const vars = new Map<string, tf.Variable>([
      ['a', tf.variable(tf.tensor(seededValues(65, 3, -1, 1), [13, 5]), true)],
      ['b', tf.variable(tf.tensor1d([0.25]), true)],
    ]);
    let opt = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
    try {
      for (let s = 1; s <= 6; s++) {
        if (s === restoreAfter) {
          const st = opt.state();
          assert.deepEqual([...st.slots.keys()].sort(), ['m/a', 'm/b', 'v/a', 'v/b']);
          const copy = { ...st, slots: new Map([...st.slots].map(([k, v]) => [k, v.clone()])) };
          opt.dispose();
          opt = new Optimizer({ name: 'adamw', weightDecay: 0.01 });
          opt.load(copy);
          copy.slots.forEach((t) => t.dispose());
          assert.equal(opt.step, s - 1);
          if (restoreUnfused) process.env.SCULPT_WASM_UNFUSED = 'adamw';
        }
        const grads = new Map([...vars].map(([n, p]) => [n, gradOf(n, p.shape, s)]));
        opt.apply(grads, vars, 0.02);
        tf.dispose([...grads.values()]);
      }
      return [...vars.values()].map((p) => p.dataSync().slice() as Float32Array);
    } finally {
      delete process.env.SCULPT_WASM_UNFUSED;
      opt.dispose();
      tf.dispose([...vars.values()]);
    }
  };
  const straight = run(null);
  assert.deepEqual(run(4), straight, 'restored fused training is bit-identical');
  // The state is the same whichever path wrote it: the tf ops continue from the kernel's moments.
  const mixed = run(4, true);
  const diff = newDiff();
  mixed.forEach((p, i) => compare(straight[i], p, `var ${i}`, diff));
  assert.deepEqual(diff.bad, []);
});

// ---------------------------------------------------------------------------------------------- clipping

interface Clipped {
  norm: number;
  grads: Float32Array[];
  kernels: Set<string>;
}

async function clip(unfused: boolean, values: Float32Array[], shapes: number[][], maxNorm: number): Promise<Clipped> {
  if (unfused) process.env.SCULPT_WASM_UNFUSED = 'clip';
  else delete process.env.SCULPT_WASM_UNFUSED;
  const grads = new Map(values.map((v, i) => [`g${i}`, tf.tensor(v, shapes[i])]));
  const out: Clipped = { norm: NaN, grads: [], kernels: new Set() };
  try {
    const before = tf.memory().numTensors;
    const profile = await tf.profile(() => {
      const r = clipByGlobalNorm(grads, maxNorm);
      // As train-step.ts does: the raw gradients go, the clipped ones must stand on their own.
      tf.dispose([...grads.values()]);
      out.norm = r.norm!.dataSync()[0];
      out.grads = [...r.grads.values()].map((g) => g.dataSync().slice() as Float32Array);
      assert.equal(tf.memory().numTensors, before - grads.size + r.grads.size + 1, 'no tensor leaks');
      tf.dispose([r.norm!, ...r.grads.values()]);
    });
    out.kernels = new Set(profile.kernelNames);
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
  return out;
}

const CLIP_SHAPES = [[1], [7], [13, 5], [0, 4], [300, 41]];

for (const [label, maxNorm] of [
  ['clipping applies', 1],
  ['within the limit', 1e4],
] as const) {
  test(`wasm fused gradient clipping matches the tf ops: ${label}`, async (t) => {
    await selectBackend('wasm');
    const values = CLIP_SHAPES.map((s, i) =>
      seededValues(
        s.reduce((a, d) => a * d, 1),
        70 + i,
        -3,
        3,
      ),
    );
    const want = await clip(true, values, CLIP_SHAPES, maxNorm);
    const got = await clip(false, values, CLIP_SHAPES, maxNorm);
    assert.ok(got.kernels.has('SculptGlobalNorm') && !got.kernels.has('Square'), 'the fused norm ran, alone');
    assert.ok(!want.kernels.has('SculptGlobalNorm'), 'SCULPT_WASM_UNFUSED=clip: tf ops');
    const normRel = Math.abs(got.norm - want.norm) / want.norm;
    t.diagnostic(`norm ${got.norm} vs ${want.norm}, relative ${normRel.toExponential(2)}`);
    assert.ok(normRel <= REL, `norm ${got.norm} vs ${want.norm}`);
    const diff = newDiff();
    got.grads.forEach((g, i) => compare(g, want.grads[i], `grad ${i}`, diff));
    t.diagnostic(`grads: max abs ${diff.abs.toExponential(2)}, max rel ${diff.rel.toExponential(2)}`);
    assert.deepEqual(diff.bad, []);
    if (maxNorm > want.norm) {
      // Scale 1: the very values, without a multiply.
      got.grads.forEach((g, i) => assert.deepEqual(g, values[i]));
      assert.ok(!got.kernels.has('Multiply'));
    } else {
      assert.ok(got.norm > maxNorm * 10, 'the case clips substantially');
      let sq = 0;
      for (const g of got.grads) for (const x of g) sq += x * x;
      assert.ok(Math.abs(Math.sqrt(sq) - maxNorm) < 1e-5, `clipped norm ${Math.sqrt(sq)}`);
    }
  });
}

test('wasm fused global norm: float64 sum of squares over all tensors; none at all is 0', async () => {
  await selectBackend('wasm');
  const values = [seededValues(1001, 9, -1, 1), seededValues(3, 10, -1e3, 1e3)];
  const ts = values.map((v) => tf.tensor1d(v));
  let sq = 0;
  for (const v of values) for (const x of v) sq += x * x;
  const norm = wasmGlobalNorm(ts);
  assert.equal(norm.dataSync()[0], Math.fround(Math.sqrt(sq)));
  const empty = wasmGlobalNorm([]);
  assert.equal(empty.dataSync()[0], 0);
  tf.dispose([...ts, norm, empty]);
});

// ---------------------------------------------------------------------------------------------- switches

test('SCULPT_WASM_UNFUSED names adamw and clip; `all` turns every wasm kernel off; unknown names are errors', async () => {
  await selectBackend('wasm');
  try {
    assert.ok(WASM_FUSED_KERNELS.includes('adamw') && WASM_FUSED_KERNELS.includes('clip'));
    assert.ok(useWasmFused('adamw') && useWasmFused('clip'), 'on by default');
    process.env.SCULPT_WASM_UNFUSED = 'adamw';
    assert.ok(!useWasmFused('adamw') && useWasmFused('clip') && useWasmFused('xent'));
    process.env.SCULPT_WASM_UNFUSED = 'clip, xent';
    assert.ok(useWasmFused('adamw') && !useWasmFused('clip') && !useWasmFused('xent'));
    process.env.SCULPT_WASM_UNFUSED = 'all';
    assert.ok(WASM_FUSED_KERNELS.every((k) => !useWasmFused(k)));
    // The optimizer's name is not a kernel's.
    process.env.SCULPT_WASM_UNFUSED = 'adam';
    assert.throws(() => useWasmFused('adamw'), /SCULPT_WASM_UNFUSED: unknown kernel 'adam'; expected 'all' or names/);
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
  await selectBackend('cpu');
  assert.ok(!useWasmFused('adamw') && !useWasmFused('clip'), 'wasm only');
});

test('wasm: SGD takes no fused kernel, and SCULPT_WASM_UNFUSED=adamw keeps the kernel from running', async () => {
  await selectBackend('wasm');
  const sgd = await train(null, 'sgd', 0, 2, []);
  assert.ok(!sgd.kernels.has('SculptAdamW'));
  const off = await train('adamw', 'adamw', 0.01, 2, []);
  assert.ok(!off.kernels.has('SculptAdamW'));
  const on = await train(null, 'adamw', 0.01, 2, []);
  assert.ok(on.kernels.has('SculptAdamW'));
});
