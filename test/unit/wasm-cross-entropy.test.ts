/**
 * The wasm backend's fused softmax cross-entropy (src/engine/kernels/wasm-cross-entropy.ts) against the tf-op
 * composition it replaces, `meanNll(tf.logSoftmax(logits), targets)`, on the wasm backend: the loss and dlogits
 * under an upstream gradient within relative error 1e-5 (loss: |a - b| / |b|; dlogits: max abs difference over
 * max abs reference). Sculpt-base's vocabulary and GPT-2's, ignored rows, no labelled row at all (exactly 0 and
 * no gradient), logits offset by ±1e4 (the max subtraction), and whole models: the loss and every parameter
 * gradient of the tiny GPT-2 / LLaMA (decoder.ts, labelled rows) and T5 (every position, padding ignored) fixtures
 * with the kernel and with SCULPT_WASM_UNFUSED=xent, within 1e-5 relative. Tighter, against float64 arithmetic:
 * the kernel's exponential, and dlogits entry by entry to float32 rounding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { expNonPositive, wasmCrossEntropy } from '../../src/engine/kernels/wasm-cross-entropy';
import { useWasmFused, WASM_FUSED_KERNELS } from '../../src/engine/kernels/webgpu/switches';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { meanNll } from '../../src/engine/models/layers';
import { fixture } from '../helpers/paths';
import { relError, seededValues } from '../helpers/webgpu';

const TOL = 1e-5;
const IGNORE = -100;

interface Case {
  name: string;
  rows: number;
  vocab: number;
  /** Logits uniform in [-scale, scale), plus offset(i) on row i. */
  scale: number;
  offset?: (i: number) => number;
  /** A column of row i set to 1200 (-1: none). */
  peak?: (i: number) => number;
  /** Target of row i. */
  target: (i: number) => number;
}

const CASES: Case[] = [
  {
    name: 'sculpt-base vocabulary, some rows ignored',
    rows: 37,
    vocab: 8192,
    scale: 8,
    target: (i) => (i % 5 === 2 ? IGNORE : (i * 1237 + 11) % 8192),
  },
  { name: 'GPT-2 vocabulary', rows: 5, vocab: 50257, scale: 10, target: (i) => [50256, IGNORE, 0, 17, 31337][i] },
  { name: 'every target ignored', rows: 9, vocab: 1000, scale: 4, target: () => IGNORE },
  {
    name: 'logits offset by ±1e4',
    rows: 12,
    vocab: 3001,
    scale: 6,
    offset: (i) => [1e4, -1e4, 2.5e4][i % 3],
    target: (i) => (i === 4 ? IGNORE : (i * 613) % 3001),
  },
  // Without the max subtraction exp would overflow even in float64 (log(MAX_VALUE) ≈ 709): a spread of 800, and
  // a peak 800 above the rest in the first or the last column.
  {
    name: 'logits spread over ±400, peaks at the ends of the rows',
    rows: 8,
    vocab: 100,
    scale: 400,
    peak: (i) => (i % 3 === 0 ? 0 : i % 3 === 1 ? 99 : -1),
    target: (i) => (i * 13) % 100,
  },
  { name: 'one row, vocabulary not a multiple of 4', rows: 1, vocab: 7, scale: 3, target: () => 6 },
];

type Loss = (logits: tf.Tensor2D, targets: tf.Tensor1D) => tf.Scalar;

const reference: Loss = (l, t) => meanNll(tf.logSoftmax(l), t);

/** The loss and dlogits of `loss` under an upstream gradient dy, as plain arrays. */
function lossAndGrad(loss: Loss, c: Case, lv: Float32Array, tv: number[], dy: number): Float32Array[] {
  // Tensors out of the tidy, read after it: tidy would walk a returned typed array element by element.
  const outs = tf.tidy(() => {
    const logits = tf.tensor2d(lv, [c.rows, c.vocab]);
    const targets = tf.tensor1d(tv, 'int32');
    const value = loss(logits, targets);
    const [dl] = tf.grads((l) => loss(l as tf.Tensor2D, targets))([logits], tf.scalar(dy));
    return [value, dl];
  });
  const arrays = outs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outs);
  return arrays;
}

for (const c of CASES) {
  test(`wasm fused cross-entropy matches meanNll(logSoftmax) forward and backward: ${c.name} (${c.rows}x${c.vocab})`, async () => {
    await selectBackend('wasm');
    const lv = seededValues(c.rows * c.vocab, c.rows * 7 + c.vocab, -c.scale, c.scale);
    if (c.offset) for (let i = 0; i < lv.length; i++) lv[i] += c.offset(Math.floor(i / c.vocab));
    for (let i = 0; c.peak && i < c.rows; i++) if (c.peak(i) >= 0) lv[i * c.vocab + c.peak(i)] = 1200;
    const tv = Array.from({ length: c.rows }, (_, i) => c.target(i));
    const dy = 0.7;
    const before = tf.memory().numTensors;
    const [gotLoss, gotGrad] = lossAndGrad(wasmCrossEntropy, c, lv, tv, dy);
    assert.equal(tf.memory().numTensors, before, 'no tensor outlives the loss and its gradient');
    const [wantLoss, wantGrad] = lossAndGrad(reference, c, lv, tv, dy);

    assert.ok(Number.isFinite(gotLoss[0]), `loss ${gotLoss[0]}`);
    assert.ok(
      gotGrad.every((v) => Number.isFinite(v)),
      'finite dlogits',
    );
    if (tv.every((t) => t === IGNORE)) {
      assert.equal(gotLoss[0], 0, 'loss is 0 without labelled rows');
      assert.ok(
        gotGrad.every((v) => v === 0),
        'no gradient without labelled rows',
      );
    } else {
      const lossErr = Math.abs(gotLoss[0] - wantLoss[0]) / Math.abs(wantLoss[0]);
      assert.ok(lossErr <= TOL, `loss ${gotLoss[0]} vs ${wantLoss[0]} (relative ${lossErr.toExponential(2)})`);
    }
    const gradErr = relError(gotGrad, wantGrad);
    assert.ok(gradErr <= TOL, `dlogits: relative error ${gradErr.toExponential(2)} > ${TOL}`);
    // Ignored rows have exactly zero gradient (the kernel writes them: the wasm heap is not zeroed).
    tv.forEach((t, i) => {
      if (t !== IGNORE) return;
      for (let j = 0; j < c.vocab; j++) if (gotGrad[i * c.vocab + j] !== 0) assert.fail(`row ${i} col ${j}`);
    });
  });
}

// Independent of tf ops, and tighter than the comparison with them (whose float32 log-softmax is itself off by
// ~1e-6): every dlogits entry is (p - onehot) · dy / count with p from a float64 softmax. The TypeScript kernel
// computes in float64 and rounds once, so within 2e-7 relative (float32's half ulp is 6e-8); the SIMD module's
// float32 exponential (about an ulp) and product (another rounding) within 1e-6. The loss: 2e-7 on both (its
// log-sum-exp is float64 either way).
for (const [impl, unfused, entryTol] of [
  ['TypeScript', 'simd', 2e-7],
  ['SIMD', '', 1e-6],
] as const) {
  test(`wasm fused cross-entropy (${impl}) equals a float64 softmax to float32 rounding, entry by entry`, async () => {
    await selectBackend('wasm');
    process.env.SCULPT_WASM_UNFUSED = unfused;
    const rows = 6;
    const vocab = 2000;
    const lv = seededValues(rows * vocab, 99, -5, 5);
    const tv = [3, IGNORE, 1999, 0, IGNORE, 25];
    const dy = 1.3;
    const count = tv.filter((t) => t !== IGNORE).length;
    const c = { name: '', rows, vocab, scale: 5, target: () => 0 };
    const [loss, grad] = lossAndGrad(wasmCrossEntropy, c, lv, tv, dy);
    delete process.env.SCULPT_WASM_UNFUSED;
    let worst = 0;
    const g = Math.fround(dy) / count;
    let total = 0;
    tv.forEach((t, i) => {
      const row = lv.subarray(i * vocab, (i + 1) * vocab);
      const got = grad.subarray(i * vocab, (i + 1) * vocab);
      if (t === IGNORE) return;
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      const lse = max + Math.log(sum);
      total += lse - row[t];
      for (let j = 0; j < vocab; j++) {
        const want = (Math.exp(row[j] - lse) - (j === t ? 1 : 0)) * g;
        const rel = Math.abs(got[j] - want) / Math.abs(want);
        worst = Math.max(worst, rel);
        if (!(rel <= entryTol)) assert.fail(`row ${i} col ${j}: ${got[j]} vs ${want}`);
      }
    });
    const want = total / count;
    console.log(`# ${impl}: worst dlogits relative error ${worst.toExponential(2)}`);
    assert.ok(Math.abs(loss[0] - want) <= 2e-7 * want, `loss ${loss[0]} vs ${want}`);
  });
}

test("the kernel's exponential is within 1e-8 relative of Math.exp on [-104, 0], 0 below, NaN for NaN", () => {
  let worst = 0;
  for (let i = 0; i <= 1_040_000; i++) {
    // A grid 1e-4 apart, each point jittered so the reduction's every branch point is crossed off the grid.
    const t = -i * 1e-4 - ((i * 0.6180339887) % 1) * 1e-4;
    if (t < -104) break;
    worst = Math.max(worst, Math.abs(expNonPositive(t) - Math.exp(t)) / Math.exp(t));
  }
  assert.ok(worst <= 1e-8, `relative error ${worst.toExponential(2)}`);
  assert.equal(expNonPositive(0), 1);
  assert.equal(expNonPositive(-0), 1);
  assert.equal(expNonPositive(-104.01), 0);
  assert.equal(expNonPositive(-Infinity), 0);
  assert.ok(Number.isNaN(expNonPositive(NaN)));
});

test('wasm fused cross-entropy: a NaN logit in a labelled row makes the loss NaN, as with tf ops', async () => {
  // The trainer's divergence checks look at the loss; the row max must not skip over the NaN.
  await selectBackend('wasm');
  for (const col of [0, 5, 9]) {
    const lv = seededValues(3 * 10, col, -2, 2);
    lv[10 + col] = NaN;
    const c = { name: '', rows: 3, vocab: 10, scale: 2, target: () => 0 };
    const [loss] = lossAndGrad(wasmCrossEntropy, c, lv, [1, 2, 3], 1);
    assert.ok(Number.isNaN(loss[0]), `NaN at column ${col}: loss ${loss[0]}`);
  }
});

test('SCULPT_WASM_UNFUSED switches the wasm kernels off, all of them with `all`, and rejects unknown names', async () => {
  await selectBackend('wasm');
  try {
    assert.equal(useWasmFused('xent'), true, 'on by default');
    process.env.SCULPT_WASM_UNFUSED = 'xent';
    assert.equal(useWasmFused('xent'), false);
    process.env.SCULPT_WASM_UNFUSED = 'all';
    assert.ok(WASM_FUSED_KERNELS.every((k) => !useWasmFused(k)));
    process.env.SCULPT_WASM_UNFUSED = 'xnet';
    assert.throws(() => useWasmFused('xent'), /SCULPT_WASM_UNFUSED: unknown kernel 'xnet'; expected 'all' or names/);
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
  await selectBackend('cpu');
  assert.equal(useWasmFused('xent'), false, 'wasm only');
});

// ---------------------------------------------------------------------------------------------- whole models

const B = 3;
const T = 11;
const VOCAB = 512;
const IDS = Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % VOCAB);
// Prompt positions and the last row's padding unlabelled, as in instruction batches.
const LABELS = IDS.map((id, i) => (i % T < 4 || (i >= 2 * T && i % T > 8) ? IGNORE : id));

interface Result {
  loss: number;
  grads: Map<string, Float32Array>;
  /** Kernels the loss ran, by name. */
  kernels: Set<string>;
}

async function modelLossAndGrads(name: string, unfused: boolean): Promise<Result> {
  if (unfused) process.env.SCULPT_WASM_UNFUSED = 'xent';
  else delete process.env.SCULPT_WASM_UNFUSED;
  const model = loadPretrained(fixture('hf-reference', name));
  const ids = tf.tensor2d(IDS, [B, T], 'int32');
  const labels = tf.tensor2d(LABELS, [B, T], 'int32');
  const out: Result = { loss: NaN, grads: new Map(), kernels: new Set() };
  try {
    const profile = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => model.loss(ids, labels), [...model.params.values()]);
      out.loss = value.dataSync()[0];
      for (const [n, v] of model.params) out.grads.set(n, grads[v.name].dataSync() as Float32Array);
      tf.dispose([value, ...Object.values(grads)]);
    });
    out.kernels = new Set(profile.kernelNames);
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
    tf.dispose([ids, labels]);
    model.dispose();
  }
  return out;
}

for (const name of ['gpt2-tiny', 'llama-tiny', 't5-tiny']) {
  test(`${name}: loss and parameter gradients with the wasm fused cross-entropy match SCULPT_WASM_UNFUSED=xent`, async () => {
    await selectBackend('wasm');
    const want = await modelLossAndGrads(name, true);
    const got = await modelLossAndGrads(name, false);
    assert.ok(got.kernels.has('SculptSoftmaxCrossEntropy'), 'the fused forward ran');
    assert.ok(got.kernels.has('SculptSoftmaxCrossEntropyGrad'), 'the fused backward ran');
    // The tf-op loss's one-hot pick (pickColumns' gradient) runs without the kernel only.
    assert.ok(want.kernels.has('OneHot') && !got.kernels.has('OneHot'), 'no tf-op loss beside the kernel');
    assert.ok(!want.kernels.has('SculptSoftmaxCrossEntropy'), 'SCULPT_WASM_UNFUSED=xent turns it off');
    const lossErr = Math.abs(got.loss - want.loss) / Math.abs(want.loss);
    assert.ok(lossErr <= TOL, `loss ${got.loss} vs ${want.loss} (relative ${lossErr.toExponential(2)})`);
    assert.equal(got.grads.size, want.grads.size);
    for (const [param, g] of want.grads) {
      const err = relError(got.grads.get(param)!, g);
      assert.ok(err <= TOL, `${param}: gradient relative error ${err.toExponential(2)} > ${TOL}`);
    }
  });
}
