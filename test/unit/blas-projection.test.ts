// Adaptive SVD's batched two-sided projection on the BLAS (src/engine/kernels/blas-projection.ts) against the
// projection as tf ops (projectTwoSided, SCULPT_WASM_UNFUSED=projection): the same matrices within float32
// rounding, for gradients and for post-step updates (old + proj(W - old)), on every shape the engine meets
// (tall, wide, one side unconstrained, lengths off the SIMD lanes), the same bits on 1, 2 or 3 threads, the
// projection's properties, and the tf ops without a BLAS. Provisioning installs OpenBLAS; without it the tests
// fail naming what is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { blasProducts, useBlasProducts } from '../../src/engine/kernels/blas-matmul';
import { blasProjectionServed } from '../../src/engine/kernels/blas-projection';
import { onThreads, requireBlas } from './blas-util';
import {
  projectTwoSided,
  projectTwoSidedMany,
  protectedSubspace,
  type TwoSidedItem,
} from '../../src/engine/linalg/projection';

/** [m, n, k1, k2]: tall, wide, square at full rank, one side unconstrained, odd sizes (off the SIMD lanes). */
const SHAPES: [number, number, number, number][] = [
  [128, 128, 64, 64],
  [344, 128, 64, 64],
  [128, 344, 64, 64],
  [40, 40, 40, 40],
  [37, 21, 5, 0],
  [24, 33, 0, 9],
  [30, 18, 0, 0],
];

/** Items with real singular subspaces (orthonormal columns), X and `old` seeded per item. */
function items(update: boolean): TwoSidedItem[] {
  return SHAPES.map(([m, n, k1, k2], i) => {
    const W = tf.randomNormal([m, n], 0, 1, 'float32', 100 + i) as tf.Tensor2D;
    const sub = protectedSubspace(W, Math.max(k1, k2));
    const Uh = sub.Uh.slice([0, 0], [-1, k1]) as tf.Tensor2D;
    const Vh = sub.Vh.slice([0, 0], [-1, k2]) as tf.Tensor2D;
    tf.dispose([sub.Uh, sub.Vh]);
    const X = tf.randomNormal([m, n], 0, 1, 'float32', 200 + i) as tf.Tensor2D;
    // An update: the weights after a step, a small move from the weights before it.
    const old = update ? (X.sub(tf.randomNormal([m, n], 0, 1e-3, 'float32', 300 + i)) as tf.Tensor2D) : undefined;
    W.dispose();
    return { X, Uh, Vh, old };
  });
}

/** What the tf ops give: proj(X), or old + proj(X - old). */
function reference({ X, Uh, Vh, old }: TwoSidedItem): Float32Array {
  return tf.tidy(() =>
    (old ? old.add(projectTwoSided(X.sub(old) as tf.Tensor2D, Uh, Vh)) : projectTwoSided(X, Uh, Vh)).dataSync(),
  ) as Float32Array;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function fused(list: TwoSidedItem[]): Float32Array[] {
  const before = blasProjectionServed.count;
  const out = projectTwoSidedMany(list);
  assert.equal(blasProjectionServed.count - before, list.length, 'the batched kernel served every matrix');
  const values = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  return values;
}

test('projection on the BLAS: gradients and updates equal the tf ops within float32 rounding', async () => {
  requireBlas();
  await selectBackend('wasm');
  for (const update of [false, true]) {
    const list = items(update);
    const got = fused(list);
    list.forEach((it, i) => {
      const want = reference(it);
      // Entries of X are O(1), products sum <= 344 terms: 2e-5 is a few float32 ulps of the largest partial sums.
      // An update's difference is O(1e-3): compared on the move, old + P - old.
      const err = maxAbsDiff(got[i], want);
      assert.ok(err <= (update ? 2e-6 : 2e-5), `${update ? 'update' : 'gradient'} ${SHAPES[i].join('x')}: ${err}`);
    });
    tf.dispose(list.flatMap((it) => [it.X, it.Uh, it.Vh, ...(it.old ? [it.old] : [])]));
  }
});

test('projection on the BLAS: the result is orthogonal to both subspaces, and projecting again changes nothing', async () => {
  requireBlas();
  await selectBackend('wasm');
  const list = items(false);
  const out = projectTwoSidedMany(list);
  const again = projectTwoSidedMany(list.map((it, i) => ({ ...it, X: out[i] })));
  list.forEach(({ Uh, Vh }, i) => {
    const [m, n, k1, k2] = SHAPES[i];
    const P = out[i];
    // Uhᵀ P and P Vh vanish up to float32 rounding of sums of m (or n) terms; the orthonormal columns came from a
    // float64 SVD rounded to float32.
    if (k1 > 0)
      assert.ok(tf.tidy(() => tf.matMul(Uh, P, true, false).abs().max().dataSync()[0]) < 1e-4, `Uhᵀ P, ${m}x${n}`);
    if (k2 > 0) assert.ok(tf.tidy(() => tf.matMul(P, Vh).abs().max().dataSync()[0]) < 1e-4, `P Vh, ${m}x${n}`);
    assert.ok(maxAbsDiff(again[i].dataSync(), P.dataSync()) < 1e-4, `idempotent, ${m}x${n}`);
    if (k1 === 0 && k2 === 0) assert.deepEqual(P.dataSync(), list[i].X.dataSync(), 'nothing constrained: X itself');
  });
  tf.dispose([...out, ...again, ...list.flatMap((it) => [it.X, it.Uh, it.Vh])]);
});

test('projection on the BLAS: the same bits on 1, 2 or 3 threads (each matrix a chain on one thread)', async () => {
  requireBlas();
  await selectBackend('wasm');
  const both = () =>
    [false, true].map((update) => {
      const list = items(update);
      const got = fused(list);
      tf.dispose(list.flatMap((it) => [it.X, it.Uh, it.Vh, ...(it.old ? [it.old] : [])]));
      return got;
    });
  const results = [await onThreads(1, both), await onThreads(2, both), await onThreads(3, both)];
  await selectBackend('wasm');
  for (const t of [1, 2])
    for (const u of [0, 1])
      results[t][u].forEach((r, i) => assert.deepEqual(r, results[0][u][i], `${t + 1} threads, item ${i}`));
});

test('projection without a BLAS or with the kernel switched off: the tf ops, the same matrices', async () => {
  requireBlas();
  await selectBackend('wasm');
  const list = items(true);
  const products = blasProducts();
  // The tf ops under the same products as the call, so the two agree bit for bit.
  const check = (label: string) => {
    const want = list.map(reference);
    const before = blasProjectionServed.count;
    const out = projectTwoSidedMany(list);
    assert.equal(blasProjectionServed.count, before, `${label}: the kernel did not serve`);
    out.forEach((t, i) => assert.deepEqual(t.dataSync(), want[i], label));
    tf.dispose(out);
  };
  try {
    useBlasProducts(null);
    check('no BLAS');
  } finally {
    useBlasProducts(products);
  }
  process.env.SCULPT_WASM_UNFUSED = 'projection';
  try {
    check('SCULPT_WASM_UNFUSED=projection');
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
  tf.dispose(list.flatMap((it) => [it.X, it.Uh, it.Vh, it.old!]));
});

test('projection: a mismatched subspace or pre-step weight is refused naming the shapes', async () => {
  await selectBackend('wasm');
  const X = tf.zeros([6, 4]) as tf.Tensor2D;
  const Uh = tf.zeros([6, 2]) as tf.Tensor2D;
  const Vh = tf.zeros([4, 2]) as tf.Tensor2D;
  assert.throws(
    () => projectTwoSidedMany([{ X, Uh: Vh, Vh }]),
    /gradient \[6, 4\] needs Uh \[6, k\] and Vh \[4, k\], got Uh \[4, 2\]/,
  );
  assert.throws(
    () => projectTwoSidedMany([{ X, Uh, Vh, old: tf.zeros([4, 6]) as tf.Tensor2D }]),
    /weights before the step \[4,6\] for an update \[6,4\]/,
  );
  assert.throws(
    () =>
      projectTwoSidedMany([
        { X, Uh, Vh, old: X },
        { X, Uh, Vh },
      ]),
    /mixed/,
  );
  tf.dispose([X, Uh, Vh]);
});

test("projection's update: the SIMD module's difference and sum give the TypeScript loops' bits", async () => {
  requireBlas();
  await selectBackend('wasm');
  const run = (unfused: string) => {
    process.env.SCULPT_WASM_UNFUSED = unfused;
    try {
      const list = items(true);
      const got = fused(list);
      tf.dispose(list.flatMap((it) => [it.X, it.Uh, it.Vh, it.old!]));
      return got;
    } finally {
      delete process.env.SCULPT_WASM_UNFUSED;
    }
  };
  const simd = run('');
  const ts = run('simd');
  simd.forEach((r, i) => assert.deepEqual(r, ts[i], `item ${i}`));
});
