// Attention on the BLAS for the wasm backend (src/engine/kernels/blas-attention.ts) against the tf ops of
// layers.ts (SCULPT_WASM_UNFUSED=attention): outputs and the gradients of q, k and v within float32 rounding, with
// grouped-query heads, left and right padding, a sequence whose every key is padding (a fully masked row), lengths
// on and off the SIMD lanes; the same bits on 1, 2 or 3 threads. Provisioning installs OpenBLAS; without it the
// tests fail naming what is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { blasProducts, useBlasProducts } from '../../src/engine/kernels/blas-matmul';
import { blasAttention, blasAttentionServed } from '../../src/engine/kernels/blas-attention';
import { MASKED } from '../../src/engine/kernels/masked';
import { onThreads, requireBlas } from './blas-util';
import { attention, type AttentionContext } from '../../src/engine/models/layers';

interface Case {
  name: string;
  B: number;
  T: number;
  H: number;
  KV: number;
  hd: number;
  /** [B, T] 1 = token, 0 = padding; null = no padding. */
  mask: number[][] | null;
}

const CASES: Case[] = [
  { name: 'no padding, T on the lanes', B: 2, T: 16, H: 4, KV: 4, hd: 8, mask: null },
  { name: 'grouped queries, T off the lanes', B: 2, T: 7, H: 4, KV: 2, hd: 6, mask: null },
  {
    name: 'left and right padding, one sequence all padding',
    B: 3,
    T: 8,
    H: 2,
    KV: 1,
    hd: 4,
    mask: [
      [0, 0, 0, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 0, 0, 0],
      [0, 0, 0, 0, 0, 0, 0, 0],
    ],
  },
];

/** The decoder's bias: MASKED after the query, MASKED on padded keys (layers.ts's AttentionContext contract). */
function context(c: Case): AttentionContext {
  const causal = Array.from({ length: c.T * c.T }, (_, i) => (i % c.T > Math.floor(i / c.T) ? MASKED : 0));
  let bias: tf.Tensor = tf.tensor4d(causal, [1, 1, c.T, c.T]);
  let keyValid: tf.Tensor2D | null = null;
  if (c.mask) {
    keyValid = tf.tensor2d(c.mask, [c.B, c.T]);
    bias = bias.add(tf.scalar(1).sub(keyValid).mul(MASKED).reshape([c.B, 1, 1, c.T]));
  }
  return { B: c.B, T: c.T, past: 0, bias, keyValid, cache: null };
}

/** Output and gradients of Σ out ⊙ r on one path; `fused` false = the tf ops. */
function run(
  c: Case,
  fused: boolean,
  unfused = fused ? undefined : 'attention',
): { out: Float32Array; grads: Float32Array[]; served: number } {
  if (unfused) process.env.SCULPT_WASM_UNFUSED = unfused;
  const before = blasAttentionServed.count;
  try {
    return tf.tidy(() => {
      const q = tf.randomNormal([c.B, c.T, c.H, c.hd], 0, 1, 'float32', 1) as tf.Tensor4D;
      const k = tf.randomNormal([c.B, c.T, c.KV, c.hd], 0, 1, 'float32', 2) as tf.Tensor4D;
      const v = tf.randomNormal([c.B, c.T, c.KV, c.hd], 0, 1, 'float32', 3) as tf.Tensor4D;
      const r = tf.randomNormal([c.B * c.T, c.H * c.hd], 0, 1, 'float32', 4);
      const ctx = context(c);
      const scale = 1 / Math.sqrt(c.hd);
      const out = attention(q, k, v, ctx, 0, scale);
      const grads = tf.grads((a, b, d) =>
        attention(a as tf.Tensor4D, b as tf.Tensor4D, d as tf.Tensor4D, ctx, 0, scale)
          .mul(r)
          .sum(),
      )([q, k, v]);
      return {
        out: out.dataSync() as Float32Array,
        grads: grads.map((g) => g.dataSync() as Float32Array),
        served: blasAttentionServed.count - before,
      };
    });
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

for (const c of CASES)
  test(`attention on the BLAS equals the tf ops, outputs and gradients (${c.name})`, async () => {
    requireBlas();
    await selectBackend('wasm');
    const ops = run(c, false);
    const blas = run(c, true);
    assert.equal(ops.served, 0);
    assert.ok(blas.served >= 2, 'the BLAS path served the forward and the gradient forward');
    // Inputs O(1), sums of <= 16 products: 1e-5 is a few float32 ulps of the values compared.
    assert.ok(maxAbsDiff(blas.out, ops.out) <= 1e-5, `output: ${maxAbsDiff(blas.out, ops.out)}`);
    ['q', 'k', 'v'].forEach((name, i) => {
      const d = maxAbsDiff(blas.grads[i], ops.grads[i]);
      assert.ok(d <= 2e-5, `d${name}: ${d}`);
    });
  });

test('attention on the BLAS: the softmax blocks in the SIMD module and the TypeScript rows agree', async () => {
  requireBlas();
  await selectBackend('wasm');
  // Only the cases on the lanes take the SIMD blocks (causalSoftmax, causalSoftmaxGrad); with padding, rows of
  // every key masked take the full-row branch of the gradient.
  for (const c of CASES.filter((x) => x.T % 4 === 0)) {
    const simd = run(c, true);
    const rows = run(c, true, 'simd');
    assert.ok(simd.served >= 2 && rows.served >= 2, `${c.name}: the BLAS path served both`);
    // The module's exponential is within about 2 float32 ulps of Math.exp (wasm-simd.test.ts), the gradient's row
    // dot summed in float64 in another order: outputs and gradients O(1) agree to a few ulps.
    assert.ok(maxAbsDiff(simd.out, rows.out) <= 1e-6, `${c.name}: output ${maxAbsDiff(simd.out, rows.out)}`);
    ['q', 'k', 'v'].forEach((name, i) => {
      const d = maxAbsDiff(simd.grads[i], rows.grads[i]);
      assert.ok(d <= 1e-6, `${c.name}: d${name} ${d}`);
    });
  }
});

test('attention on the BLAS: the same bits on 1, 2 or 3 threads', async () => {
  requireBlas();
  await selectBackend('wasm');
  const all = () => CASES.map((c) => run(c, true));
  const results = [await onThreads(1, all), await onThreads(2, all), await onThreads(3, all)];
  await selectBackend('wasm');
  for (const t of [1, 2])
    results[t].forEach((r, i) => {
      assert.deepEqual(r.out, results[0][i].out, `${CASES[i].name}: ${t + 1} threads`);
      r.grads.forEach((g, j) => assert.deepEqual(g, results[0][i].grads[j], `${CASES[i].name}: grad ${j}`));
    });
});

test('attention without a BLAS: the tf ops serve, with the same numbers as when switched off', async () => {
  requireBlas();
  await selectBackend('wasm');
  const products = blasProducts();
  try {
    useBlasProducts(null);
    for (const c of CASES) {
      const none = run(c, true);
      assert.equal(none.served, 0, `${c.name}: the BLAS path did not serve`);
      const off = run(c, false);
      assert.deepEqual(none.out, off.out, c.name);
      none.grads.forEach((g, i) => assert.deepEqual(g, off.grads[i], `${c.name}: grad ${i}`));
    }
  } finally {
    useBlasProducts(products);
  }
});

test('attention on the BLAS: mismatched heads, shapes or key mask are refused naming the shapes', async () => {
  requireBlas();
  await selectBackend('wasm');
  const q = tf.zeros([2, 4, 4, 8]) as tf.Tensor4D;
  const kv = tf.zeros([2, 4, 2, 8]) as tf.Tensor4D;
  assert.throws(
    () => blasAttention(q, tf.zeros([2, 4, 3, 8]) as tf.Tensor4D, tf.zeros([2, 4, 3, 8]) as tf.Tensor4D, null, 1),
    /attention: q \[2,4,4,8\] with k \[2,4,3,8\] and v \[2,4,3,8\]/,
  );
  assert.throws(() => blasAttention(q, kv, tf.zeros([2, 4, 2, 4]) as tf.Tensor4D, null, 1), /and v \[2,4,2,4\]/);
  assert.throws(
    () => blasAttention(q, kv, kv, tf.ones([2, 5]) as tf.Tensor2D, 1),
    /attention: key mask \[2,5\] for a batch \[2, 4\]/,
  );
});
