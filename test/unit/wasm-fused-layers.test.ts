/**
 * The wasm backend's fused layer kernels (src/engine/kernels/wasm-rope.ts, wasm-norm.ts, wasm-activation.ts)
 * against the tf-op formulas they replace in layers.ts (what SCULPT_WASM_UNFUSED=rope,norm,activation runs),
 * both on the wasm backend: the forward and the gradients of every input under sum(y · r), r random.
 *
 * Tolerance: |fused - unfused| <= ABS + REL · s (REL 1e-5, ABS 1e-6), where s is the scale an entry's rounding
 * error goes with: |unfused| element by element for the activations; the largest |unfused| of the row for a
 * norm's y and dx and of the head vector (D) for the rotary embedding's y and dx (an entry there is a sum or a
 * difference of terms of the row's scale, so where they cancel it carries their rounding, not its own size);
 * and the largest |unfused| of the whole tensor for dw, db and the rotary embedding's dcos, dsin (sums over
 * rows). The kernels compute in float64 and round once; the tf ops round after every op, so the two differ by
 * a few float32 ulps (6e-8 relative each). The largest differences measured are printed (`# ...`).
 * Whole models: the loss and every parameter's gradient of sculpt-base (the shipped base model, one training
 * batch) and of the tiny GPT-2 / LLaMA / T5 fixtures, fused against unfused, within MODEL_REL in norm
 * (‖g_fused - g_unfused‖ / ‖g_unfused‖) per parameter. test/unit/models.test.ts compares the same fixtures with
 * Hugging Face's outputs on wasm with the kernels on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { activation, applyRope, gatedActivation, layerNorm, rmsNorm } from '../../src/engine/models/layers';
import { useWasmFused, WASM_FUSED_KERNELS } from '../../src/engine/kernels/webgpu/switches';
import { wasmGated } from '../../src/engine/kernels/wasm-activation';
import { fixture, repoRoot } from '../helpers/paths';
import { seededValues } from '../helpers/webgpu';

const REL = 1e-5;
const ABS = 1e-6;
const MODEL_REL = 1e-5;
const LAYER_KERNELS = 'rope,norm,activation';

/** Runs f with the layer kernels switched off (unfused), on, or with SCULPT_WASM_UNFUSED set to a given list. */
function withPath<T>(unfused: boolean | string, f: () => T): T {
  if (typeof unfused === 'string') process.env.SCULPT_WASM_UNFUSED = unfused;
  else if (unfused) process.env.SCULPT_WASM_UNFUSED = LAYER_KERNELS;
  else delete process.env.SCULPT_WASM_UNFUSED;
  try {
    return f();
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
}

interface Outputs {
  /** y, then the gradient of sum(y · r) for each input, as plain arrays. */
  arrays: Float32Array[];
  kernels: Set<string>;
}

/**
 * y = f(inputs) and the gradients of sum(y · r) with respect to the inputs listed in `wrt` (indices), read back
 * after the tidy; the kernels that ran, by name.
 */
async function run(
  unfused: boolean | string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: { data: Float32Array; shape: number[] }[],
  wrt: number[],
): Promise<Outputs> {
  let arrays: Float32Array[] = [];
  const before = tf.memory().numTensors;
  const profile = await tf.profile(() =>
    withPath(unfused, () => {
      const outs = tf.tidy(() => {
        const xs = inputs.map((i) => tf.tensor(i.data, i.shape));
        const y = f(...xs);
        const r = tf.tensor(seededValues(y.size, y.size + 5, -1, 1), y.shape);
        const grads = tf.grads((...ws: tf.Tensor[]) => {
          const all = xs.map((x, i) => (wrt.includes(i) ? ws[wrt.indexOf(i)] : x));
          return f(...all)
            .mul(r)
            .sum();
        })(wrt.map((i) => xs[i]));
        return [y, ...grads];
      });
      arrays = outs.map((t) => t.dataSync() as Float32Array);
      tf.dispose(outs);
    }),
  );
  assert.equal(tf.memory().numTensors, before, 'no tensor outlives the forward and its gradients');
  return { arrays, kernels: new Set(profile.kernelNames) };
}

/**
 * The largest |got - want| / (ABS + REL · scale) over the elements (≤ 1 passes), scale as the header says:
 * per element (`rowLen` 1), per row of `rowLen`, or over everything (`rowLen` = length). Also the largest
 * absolute and scaled-relative differences, for the record.
 */
function excess(got: Float32Array, want: Float32Array, rowLen: number): { ratio: number; abs: number; rel: number } {
  assert.equal(got.length, want.length);
  let ratio = 0;
  let abs = 0;
  let rel = 0;
  for (let base = 0; base < want.length; base += rowLen) {
    let scale = 0;
    for (let j = base; j < base + rowLen; j++) scale = Math.max(scale, Math.abs(want[j]));
    for (let j = base; j < base + rowLen; j++) {
      const s = rowLen === 1 ? Math.abs(want[j]) : scale;
      const d = Math.abs(got[j] - want[j]);
      // A NaN fails.
      ratio = Math.max(ratio, Number.isNaN(d) ? Infinity : d / (ABS + REL * s));
      abs = Math.max(abs, d);
      if (s > 0) rel = Math.max(rel, d / s);
    }
  }
  return { ratio, abs, rel };
}

function assertClose(what: string, got: Float32Array, want: Float32Array, rowLen: number): void {
  const e = excess(got, want, rowLen);
  console.log(`# ${what}: max abs ${e.abs.toExponential(2)}, max rel ${e.rel.toExponential(2)}`);
  assert.ok(e.ratio <= 1, `${what}: a difference ${e.ratio.toFixed(2)}x the tolerance`);
}

// ------------------------------------------------------------------------------------------- rotary embedding

interface RopeCase {
  name: string;
  x: [number, number, number, number];
  /** cos/sin shape. */
  cs: number[];
}

const ROPE_CASES: RopeCase[] = [
  { name: 'sculpt-base, no position ids', x: [16, 64, 4, 32], cs: [1, 64, 1, 32] },
  { name: 'sculpt-base, position ids', x: [16, 64, 4, 32], cs: [16, 64, 1, 32] },
  { name: 'odd sizes', x: [3, 5, 3, 6], cs: [1, 5, 1, 6] },
  { name: 'odd sizes, per-row positions', x: [2, 7, 5, 10], cs: [2, 7, 1, 10] },
  { name: 'one head of width 2', x: [1, 3, 1, 2], cs: [1, 3, 1, 2] },
  { name: 'cos/sin per head', x: [2, 3, 4, 8], cs: [1, 3, 4, 8] },
];

/** The tf-op rotary embedding, as layers.ts writes it (the reference whatever the switches say). */
function ropeOps(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const [x1, x2] = tf.split(x, 2, 3);
  return x.mul(cos).add(tf.concat([x2.neg(), x1], 3).mul(sin));
}

const size = (shape: number[]): number => shape.reduce((a, d) => a * d, 1);

function ropeInputs(c: RopeCase): { data: Float32Array; shape: number[] }[] {
  // cos and sin arbitrary values, their halves unrelated: a kernel that paired the wrong halves would show.
  return [
    { data: seededValues(size(c.x), 1, -3, 3), shape: c.x },
    { data: seededValues(size(c.cs), 2, -1, 1), shape: c.cs },
    { data: seededValues(size(c.cs), 3, -1, 1), shape: c.cs },
  ];
}

for (const c of ROPE_CASES) {
  test(`wasm fused rotary embedding matches the tf ops, forward and dx: ${c.name} x [${c.x}], cos/sin [${c.cs}]`, async () => {
    await selectBackend('wasm');
    const inputs = ropeInputs(c);
    const rope = (x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor) => applyRope(x as tf.Tensor4D, cos, sin);
    const got = await run(false, rope, inputs, [0]);
    const want = await run(true, rope, inputs, [0]);
    assert.ok(got.kernels.has('SculptRope') && got.kernels.has('SculptRopeGrad'), 'the kernels ran');
    // Only dx was asked for: the cos/sin gradients (tf ops) are not built.
    assert.ok(!got.kernels.has('SplitV') && !got.kernels.has('Concat'), `no tf-op rotation: ${[...got.kernels]}`);
    assert.ok(want.kernels.has('SplitV') && !want.kernels.has('SculptRope'), 'SCULPT_WASM_UNFUSED=rope');
    assertClose(`rope ${c.name}: y`, got.arrays[0], want.arrays[0], c.x[3]);
    assertClose(`rope ${c.name}: dx`, got.arrays[1], want.arrays[1], c.x[3]);
  });
}

test('wasm fused rotary embedding: gradients for cos and sin too, when asked for', async () => {
  await selectBackend('wasm');
  for (const c of [ROPE_CASES[2], ROPE_CASES[3], ROPE_CASES[5]]) {
    const inputs = ropeInputs(c);
    const rope = (x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor) => applyRope(x as tf.Tensor4D, cos, sin);
    const got = await run(false, rope, inputs, [0, 1, 2]);
    const want = await run(false, ropeOps, inputs, [0, 1, 2]);
    assert.ok(got.kernels.has('SculptRope'));
    ['y', 'dx', 'dcos', 'dsin'].forEach((what, i) =>
      // dcos, dsin: sums over the broadcast axes, compared at the scale of the whole tensor.
      assertClose(`rope ${c.name}: ${what}`, got.arrays[i], want.arrays[i], i < 2 ? c.x[3] : got.arrays[i].length),
    );
  }
});

test('wasm fused rotary embedding: operands it does not take stay with the tf ops', async () => {
  await selectBackend('wasm');
  // cos/sin [T, D] (rank 2, broadcast from the right) and float32 only.
  const x = { data: seededValues(2 * 3 * 2 * 4, 7), shape: [2, 3, 2, 4] };
  const cs = [3, 1, 4];
  const inputs = [x, { data: seededValues(12, 8), shape: cs }, { data: seededValues(12, 9), shape: cs }];
  const rope = (a: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor) => applyRope(a as tf.Tensor4D, cos, sin);
  const got = await run(false, rope, inputs, [0]);
  assert.ok(!got.kernels.has('SculptRope'), 'rank-3 cos falls back');
  const want = await run(false, ropeOps, inputs, [0]);
  assertClose('rope fallback: y', got.arrays[0], want.arrays[0], 4);
});

// ---------------------------------------------------------------------------------------------------- norms

interface NormCase {
  name: string;
  rows: number;
  d: number;
  /** Scale of row i. */
  scale: (i: number) => number;
}

const NORM_CASES: NormCase[] = [
  { name: 'sculpt-base activations', rows: 1024, d: 128, scale: () => 1 },
  { name: 'rows from 1e-3 to 1e3', rows: 35, d: 128, scale: (i) => 10 ** ((i % 7) - 3) },
  { name: 'odd width, rows 1e-2 to 1e4 with an offset', rows: 13, d: 37, scale: (i) => 10 ** ((i % 4) * 2 - 2) },
  { name: 'one element', rows: 1, d: 1, scale: () => 2 },
  { name: 'one row', rows: 1, d: 64, scale: () => 0.5 },
];

function normInputs(c: NormCase, withBias: boolean): { data: Float32Array; shape: number[] }[] {
  const x = seededValues(c.rows * c.d, c.rows + c.d, -1, 1);
  // An offset per row (LayerNorm subtracts it), at the row's scale.
  for (let i = 0; i < x.length; i++) {
    const r = Math.floor(i / c.d);
    x[i] = (x[i] + (r % 3) - 1) * c.scale(r);
  }
  const out = [
    { data: x, shape: [c.rows, c.d] },
    { data: seededValues(c.d, 11, 0.5, 1.5), shape: [c.d] },
  ];
  if (withBias) out.push({ data: seededValues(c.d, 12, -0.5, 0.5), shape: [c.d] });
  return out;
}

for (const c of NORM_CASES) {
  for (const kind of ['rms', 'layer'] as const) {
    test(`wasm fused ${kind === 'rms' ? 'RMSNorm' : 'LayerNorm'} matches the tf ops, forward and every gradient: ${c.name} [${c.rows}, ${c.d}]`, async () => {
      await selectBackend('wasm');
      const eps = kind === 'rms' ? 1e-6 : 1e-5;
      const inputs = normInputs(c, kind === 'layer');
      const f =
        kind === 'rms'
          ? (x: tf.Tensor, w: tf.Tensor) => rmsNorm(x as tf.Tensor2D, w, eps)
          : (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => layerNorm(x as tf.Tensor2D, w, b, eps);
      const wrt = kind === 'rms' ? [0, 1] : [0, 1, 2];
      const got = await run(false, f, inputs, wrt);
      const want = await run(true, f, inputs, wrt);
      const fwd = kind === 'rms' ? 'SculptRmsNorm' : 'SculptLayerNorm';
      for (const k of [fwd, 'SculptNormInputGrad', 'SculptNormWeightGrad']) assert.ok(got.kernels.has(k), `${k} ran`);
      assert.equal(got.kernels.has('SculptColumnSum'), kind === 'layer', 'db by its kernel for LayerNorm only');
      assert.ok(!want.kernels.has(fwd), 'SCULPT_WASM_UNFUSED=norm');
      assertClose(`${kind} ${c.name}: y`, got.arrays[0], want.arrays[0], c.d);
      assertClose(`${kind} ${c.name}: dx`, got.arrays[1], want.arrays[1], c.d);
      assertClose(`${kind} ${c.name}: dw`, got.arrays[2], want.arrays[2], c.d);
      if (kind === 'layer') assertClose(`${kind} ${c.name}: db`, got.arrays[3], want.arrays[3], c.d);
    });
  }
}

test('wasm fused norms: only the gradients asked for are computed', async () => {
  await selectBackend('wasm');
  const c = NORM_CASES[2];
  const rms = (x: tf.Tensor, w: tf.Tensor) => rmsNorm(x as tf.Tensor2D, w, 1e-6);
  const onlyX = await run(false, rms, normInputs(c, false), [0]);
  assert.ok(onlyX.kernels.has('SculptNormInputGrad') && !onlyX.kernels.has('SculptNormWeightGrad'));
  const onlyW = await run(false, rms, normInputs(c, false), [1]);
  assert.ok(!onlyW.kernels.has('SculptNormInputGrad') && onlyW.kernels.has('SculptNormWeightGrad'));
  const ln = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => layerNorm(x as tf.Tensor2D, w, b, 1e-5);
  const onlyB = await run(false, ln, normInputs(c, true), [2]);
  assert.deepEqual(
    [...onlyB.kernels].filter((k) => k.startsWith('Sculpt')),
    ['SculptLayerNorm', 'SculptColumnSum'],
  );
});

test('wasm fused norms: parameters of shape [1, d] get gradients of that shape; a 3-D input falls back', async () => {
  await selectBackend('wasm');
  const c = NORM_CASES[2];
  const [x, w, b] = normInputs(c, true);
  const wide = [{ ...x }, { ...w, shape: [1, c.d] }, { ...b, shape: [1, c.d] }];
  const ln = (a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => layerNorm(a as tf.Tensor2D, ww, bb, 1e-5);
  const got = await run(false, ln, wide, [0, 1, 2]);
  const want = await run(true, ln, wide, [0, 1, 2]);
  assert.ok(got.kernels.has('SculptLayerNorm'));
  got.arrays.forEach((a, i) => assertClose(`layer [1, d] parameters: output ${i}`, a, want.arrays[i], c.d));
  // A 3-D input is not the kernels' (the models keep activations 2-D): the tf ops run.
  const three = await run(false, ln, [{ ...x, shape: [1, c.rows, c.d] }, w, b], [0]);
  assert.ok(!three.kernels.has('SculptLayerNorm'), 'rank 3 falls back');
});

// ---------------------------------------------------------------------------------------------- activations

const ACT_SHAPES: number[][] = [[7], [13, 29], [1024, 344]];

function activationInput(shape: number[]): { data: Float32Array; shape: number[] } {
  const data = seededValues(size(shape), size(shape), -12, 12);
  // The branch points and the tails: 0, ±tiny, where exp underflows, and large magnitudes.
  const special = [0, -0, 1e-30, -1e-30, 1e-4, -1e-4, -20, 20, -90, 90, -120, 1e4, -1e4, 0.5, -0.75];
  special.forEach((v, i) => i < data.length && (data[i] = v));
  return { data, shape };
}

for (const name of ['silu', 'gelu_new', 'swish', 'gelu_pytorch_tanh'] as const) {
  for (const shape of ACT_SHAPES) {
    if (name.length > 8 && shape.length > 1 && shape[0] > 100) continue; // the aliases on small shapes only
    test(`wasm fused ${name} matches the tf ops, forward and gradient: [${shape}]`, async () => {
      await selectBackend('wasm');
      const f = activation(name, 'test');
      const act = (x: tf.Tensor) => f(x as tf.Tensor2D);
      const input = activationInput(shape);
      const got = await run(false, act, [input], [0]);
      const want = await run(true, act, [input], [0]);
      const kernels =
        name === 'silu' || name === 'swish' ? ['SculptSiluGrad'] : ['SculptGeluNewArg', 'SculptGeluNewGrad'];
      for (const k of kernels) assert.ok(got.kernels.has(k), `${k} ran`);
      // gelu_new's tanh is σ(2u) in the fused path.
      assert.ok(!got.kernels.has('Tanh'), 'no Tanh kernel');
      assert.ok(!want.kernels.has(kernels[0]), 'SCULPT_WASM_UNFUSED=activation');
      assertClose(`${name} [${shape}]: y`, got.arrays[0], want.arrays[0], 1);
      assertClose(`${name} [${shape}]: dx`, got.arrays[1], want.arrays[1], 1);
    });
  }
}

test('wasm fused norms: a row whose squares overflow float32 comes out as the tf ops have it (zeros)', async () => {
  // Blown-up weights give rows like these; float32 sums their squares to Infinity, so rstd is 0 and the row is all
  // zeros, the uniform guess the divergence check names as a collapse. A finite row beside it is unaffected.
  await selectBackend('wasm');
  const d = 8;
  const data = new Float32Array(2 * d);
  for (let j = 0; j < d; j++) {
    data[j] = (j % 2 ? -3 : 2) * 1e19;
    data[d + j] = j - 3.5;
  }
  const w = { data: Float32Array.from({ length: d }, (_, j) => 1 + j / 8), shape: [d] };
  const x = { data, shape: [2, d] };
  const rms = (a: tf.Tensor, b: tf.Tensor) => rmsNorm(a as tf.Tensor2D, b, 1e-6);
  const [y, dx] = (await run(false, rms, [x, w], [0, 1])).arrays;
  const [want, wantDx] = (await run(true, rms, [x, w], [0, 1])).arrays;
  // Its gradient too: 0 · (Σ g·x) is 0 while that sum stays finite in float32, as here.
  for (let j = 0; j < d; j++) assert.ok(Object.is(dx[j] + 0, wantDx[j] + 0), `dx ${j}: ${dx[j]} vs ${wantDx[j]}`);
  for (let j = 0; j < d; j++) assert.equal(Math.abs(y[j]), 0, `overflowed row, element ${j}: ${y[j]}`);
  assert.deepEqual(
    Array.from(y.subarray(0, d), Math.abs),
    Array.from(want.subarray(0, d), Math.abs),
    'as the tf ops give',
  );
  for (let j = 0; j < d; j++)
    assert.ok(Math.abs(y[d + j] - want[d + j]) <= 1e-6 * Math.abs(want[d + j]) + 1e-7, `finite row, element ${j}`);
});

test('wasm fused activations: NaN stays NaN, ±Infinity as the tf ops', async () => {
  await selectBackend('wasm');
  for (const name of ['silu', 'gelu_new']) {
    const f = activation(name, 'test');
    const input = { data: Float32Array.from([NaN, Infinity, -Infinity, 1]), shape: [4] };
    const act = (x: tf.Tensor) => f(x as tf.Tensor2D);
    const [y] = (await run(false, act, [input], [0])).arrays;
    const [want] = (await run(true, act, [input], [0])).arrays;
    assert.ok(Number.isNaN(y[0]), `${name}(NaN)`);
    for (let i = 1; i < 4; i++)
      assert.ok(Object.is(y[i], want[i]) || y[i] === want[i], `${name}(${input.data[i]}): ${y[i]} vs ${want[i]}`);
  }
});

test("wasm gated activations: act(gate)·up in one kernel each way, bit for bit the fused activation's and a tf Mul's", async () => {
  await selectBackend('wasm');
  const grads = { silu: 'SculptGatedSiluGrad', gelu_new: 'SculptGatedGeluNewGrad' };
  for (const simd of [true, false])
    for (const shape of [
      [1024, 344],
      [13, 29],
    ])
      for (const name of ['silu', 'gelu_new'] as const) {
        const gateData = seededValues(shape[0] * shape[1], 7, -6, 6);
        gateData[3] = NaN;
        gateData[5] = Infinity;
        gateData[6] = -Infinity;
        const inputs = [
          { data: gateData, shape },
          { data: seededValues(shape[0] * shape[1], 8, -2, 2), shape },
        ];
        const gated = gatedActivation(name, 'test');
        const act = activation(name, 'test');
        const fused = (g: tf.Tensor, u: tf.Tensor) => gated(g as tf.Tensor2D, u as tf.Tensor2D);
        const ops = (g: tf.Tensor, u: tf.Tensor) => act(g as tf.Tensor2D).mul(u);
        // SCULPT_WASM_UNFUSED=simd: the kernels' TypeScript instead of the SIMD module, on both sides.
        const path = simd ? false : 'simd';
        const a = await run(path, fused, inputs, [0, 1]);
        const b = await run(path, ops, inputs, [0, 1]);
        const what = `${name} [${shape}]${simd ? '' : ', TypeScript kernels'}`;
        assert.ok(a.kernels.has('SculptGated') && a.kernels.has(grads[name]), `${what}: the gated kernels ran`);
        assert.ok(!b.kernels.has('SculptGated'), `${what}: the reference is the activation and a Mul`);
        ['h', 'dgate', 'dup'].forEach((out, k) => {
          for (let i = 0; i < b.arrays[k].length; i++)
            assert.ok(
              Object.is(a.arrays[k][i], b.arrays[k][i]),
              `${what}, ${out}[${i}]: ${a.arrays[k][i]} vs ${b.arrays[k][i]}`,
            );
        });
      }
  // A gate and an up of different shapes (a config whose projections disagree) is an error naming both.
  const gate = tf.zeros([4, 6]);
  const up = tf.zeros([4, 5]);
  assert.throws(() => wasmGated('silu', gate, up), /wasmGated: gate \[4,6\] and up \[4,5\] differ in shape/);
  tf.dispose([gate, up]);
});

test('SCULPT_WASM_UNFUSED names rope, norm and activation', async () => {
  await selectBackend('wasm');
  try {
    for (const k of ['rope', 'norm', 'activation'] as const) {
      assert.ok(WASM_FUSED_KERNELS.includes(k));
      assert.equal(useWasmFused(k), true, `${k} on by default`);
      process.env.SCULPT_WASM_UNFUSED = k;
      assert.equal(useWasmFused(k), false);
      assert.equal(useWasmFused('xent'), true, 'the others stay on');
    }
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
});

// ---------------------------------------------------------------------------------------------- whole models

interface ModelResult {
  loss: number;
  grads: Map<string, Float32Array>;
  kernels: Set<string>;
}

async function modelLossAndGrads(
  dir: string,
  unfused: boolean,
  B: number,
  T: number,
  withMask: boolean,
): Promise<ModelResult> {
  const model = loadPretrained(dir);
  const V = model.config.vocabSize;
  const idsData = Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % V);
  const ids = tf.tensor2d(idsData, [B, T], 'int32');
  // Some positions unlabelled, as in instruction batches.
  const labels = tf.tensor2d(
    idsData.map((id, i) => (i % T < 3 ? -100 : id)),
    [B, T],
    'int32',
  );
  const mask = withMask ? tf.onesLike(ids) : undefined;
  const out: ModelResult = { loss: NaN, grads: new Map(), kernels: new Set() };
  try {
    const profile = await tf.profile(() =>
      withPath(unfused, () => {
        const { value, grads } = tf.variableGrads(
          () => model.loss(ids, labels, mask as tf.Tensor2D | undefined),
          [...model.params.values()],
        );
        out.loss = value.dataSync()[0];
        for (const [n, v] of model.params) out.grads.set(n, grads[v.name].dataSync() as Float32Array);
        tf.dispose([value, ...Object.values(grads)]);
      }),
    );
    out.kernels = new Set(profile.kernelNames);
  } finally {
    tf.dispose([ids, labels, ...(mask ? [mask] : [])]);
    model.dispose();
  }
  return out;
}

function normRel(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] * b[i];
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-30);
}

const MODELS: { name: string; dir: string; B: number; T: number; mask: boolean; expect: string[] }[] = [
  {
    name: 'sculpt-base, a 16 x 64 training batch with its mask',
    dir: join(repoRoot, 'assets', 'models', 'sculpt-base'),
    B: 16,
    T: 64,
    mask: true,
    expect: ['SculptRope', 'SculptRopeGrad', 'SculptRmsNorm', 'SculptNormInputGrad', 'SculptNormWeightGrad'],
  },
  {
    name: 'sculpt-base without a mask',
    dir: join(repoRoot, 'assets', 'models', 'sculpt-base'),
    B: 2,
    T: 33,
    mask: false,
    expect: ['SculptRope', 'SculptGated', 'SculptGatedSiluGrad'],
  },
  {
    name: 'llama-tiny',
    dir: fixture('hf-reference', 'llama-tiny'),
    B: 3,
    T: 11,
    mask: true,
    expect: ['SculptRope', 'SculptRmsNorm', 'SculptGated', 'SculptGatedSiluGrad'],
  },
  {
    name: 'gpt2-tiny',
    dir: fixture('hf-reference', 'gpt2-tiny'),
    B: 3,
    T: 11,
    mask: true,
    expect: ['SculptLayerNorm', 'SculptColumnSum', 'SculptGeluNewArg', 'SculptGeluNewGrad'],
  },
  { name: 't5-tiny', dir: fixture('hf-reference', 't5-tiny'), B: 3, T: 11, mask: false, expect: ['SculptRmsNorm'] },
];

for (const m of MODELS) {
  test(`${m.name}: loss and every parameter gradient with the wasm fused layers match SCULPT_WASM_UNFUSED=${LAYER_KERNELS}`, async () => {
    await selectBackend('wasm');
    const want = await modelLossAndGrads(m.dir, true, m.B, m.T, m.mask);
    const got = await modelLossAndGrads(m.dir, false, m.B, m.T, m.mask);
    for (const k of m.expect) assert.ok(got.kernels.has(k), `${k} ran`);
    assert.ok(![...want.kernels].some((k) => /^Sculpt(Rope|RmsNorm|LayerNorm|Silu|GeluNew|Gated)/.test(k)), 'all off');
    const lossErr = Math.abs(got.loss - want.loss) / Math.abs(want.loss);
    let worst = { name: '', err: 0 };
    assert.equal(got.grads.size, want.grads.size);
    for (const [param, g] of want.grads) {
      const err = normRel(got.grads.get(param)!, g);
      if (err > worst.err) worst = { name: param, err };
    }
    console.log(
      `# ${m.name}: loss ${got.loss} vs ${want.loss} (relative ${lossErr.toExponential(2)}), worst gradient ${worst.err.toExponential(2)} (${worst.name})`,
    );
    assert.ok(lossErr <= 1e-5, `loss relative error ${lossErr.toExponential(2)}`);
    assert.ok(worst.err <= MODEL_REL, `${worst.name}: gradient relative error ${worst.err.toExponential(2)}`);
  });
}
