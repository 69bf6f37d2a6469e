import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/data/rng';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import {
  projectGradient,
  projectPaper,
  projectTwoSided,
  protectedSubspace,
  protectedSubspaces,
} from '../../src/engine/linalg';

function gaussian(rng: Rng, n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  return x;
}

/** Dense float64 m x n from a tensor. */
function dense(t: tf.Tensor2D): Float64Array {
  return Float64Array.from(t.dataSync());
}

function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let l = 0; l < k; l++) for (let j = 0; j < n; j++) c[i * n + j] += a[i * k + l] * b[l * n + j];
  return c;
}

function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/** The explicit d x d projector I - X Xᵀ for X (d x k). */
function complementProjector(x: Float64Array, d: number, k: number): Float64Array {
  const p = matmul(x, transpose(x, d, k), d, k, d);
  for (let i = 0; i < d * d; i++) p[i] = (i % (d + 1) === 0 ? 1 : 0) - p[i];
  return p;
}

function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** max |a - b| relative to the RMS entry of `scale` (default b). */
function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, scale: ArrayLike<number> = b): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / Math.max(norm(scale) / Math.sqrt(scale.length), 1e-30);
}

for (const backend of ['cpu', 'wasm'] as const) {
  test(`${backend}: two-sided projection removes the protected subspace on both sides, without leaks`, async () => {
    await selectBackend(backend);
    const rng = new Rng(backend === 'cpu' ? 3 : 4);
    for (const [m, n, k] of [
      [24, 16, 6],
      [16, 40, 8],
      [32, 32, 0],
      [20, 12, 12],
    ]) {
      const W = tf.tensor2d(gaussian(rng, m * n), [m, n]);
      const G = tf.tensor2d(gaussian(rng, m * n), [m, n]);
      const sub = protectedSubspace(W, k);
      assert.deepEqual(sub.Uh.shape, [m, k]);
      assert.deepEqual(sub.Vh.shape, [n, k]);
      assert.equal(sub.S.length, Math.min(m, n));
      const before = tf.memory().numTensors;
      const P = projectGradient(G, sub);
      assert.equal(tf.memory().numTensors, before + 1, 'only the result is new');
      const gn = norm(G.dataSync());
      // With k = min(m, n) one side's complement is empty and P vanishes up to rounding.
      const pn = k === Math.min(m, n) ? gn : norm(P.dataSync());
      if (k === Math.min(m, n)) assert.ok(norm(P.dataSync()) <= 1e-5 * gn, `${m}x${n} k=${k}: P should vanish`);
      const left = tf.matMul(sub.Uh, P, true, false);
      const right = tf.matMul(P, sub.Vh);
      assert.ok(
        norm(left.dataSync()) <= 1e-5 * pn,
        `${m}x${n} k=${k}: ||Uhᵀ P|| = ${norm(left.dataSync())}, ||P|| = ${pn}`,
      );
      assert.ok(norm(right.dataSync()) <= 1e-5 * pn, `${m}x${n} k=${k}: ||P Vh|| = ${norm(right.dataSync())}`);
      const PP = projectTwoSided(P, sub.Uh, sub.Vh);
      assert.ok(maxRelDiff(PP.dataSync(), P.dataSync(), G.dataSync()) <= 1e-5, `${m}x${n} k=${k}: not idempotent`);
      // Dense float64 reference from the same (float32) Uh, Vh.
      const u = dense(sub.Uh);
      const v = dense(sub.Vh);
      const g = dense(G);
      const ref = matmul(matmul(complementProjector(u, m, k), g, m, m, n), complementProjector(v, n, k), m, n, n);
      assert.ok(maxRelDiff(P.dataSync(), ref, g) <= 1e-5, `${m}x${n} k=${k}: differs from (I - UUᵀ) G (I - VVᵀ)`);
      tf.dispose([W, G, P, PP, left, right, sub.Uh, sub.Vh]);
      assert.equal(tf.memory().numTensors, before - 4, 'all tensors released');
    }
  });

  test(`${backend}: the paper's formula G - Uh Uhᵀ G Vh Vhᵀ, as an ablation`, async () => {
    await selectBackend(backend);
    const rng = new Rng(5);
    const [m, n, k] = [18, 26, 5];
    const sub = protectedSubspace({ rows: m, cols: n, data: gaussian(rng, m * n) }, k);
    const G = tf.tensor2d(gaussian(rng, m * n), [m, n]);
    const before = tf.memory().numTensors;
    const P = projectGradient(G, sub, 'paper');
    assert.equal(tf.memory().numTensors, before + 1);
    const u = dense(sub.Uh);
    const v = dense(sub.Vh);
    const g = dense(G);
    const core = matmul(matmul(transpose(u, m, k), g, k, m, n), v, k, n, k);
    const removed = matmul(matmul(u, core, m, k, k), transpose(v, n, k), m, k, n);
    const ref = g.map((x, i) => x - removed[i]);
    assert.ok(maxRelDiff(P.dataSync(), ref) <= 1e-5);
    // It keeps the high-low blocks the two-sided projection removes.
    const twoSided = projectTwoSided(G, sub.Uh, sub.Vh);
    assert.ok(norm(tf.tidy(() => tf.matMul(sub.Uh, P, true, false)).dataSync()) > 1e-3);
    const paperDirect = projectPaper(G, sub.Uh, sub.Vh);
    assert.deepEqual(paperDirect.dataSync(), P.dataSync());
    tf.dispose([G, P, twoSided, paperDirect, sub.Uh, sub.Vh]);
  });
}

test('protected subspaces in a batch match one at a time; bad inputs are named', async () => {
  await selectBackend('cpu');
  const rng = new Rng(9);
  const weights = [tf.tensor2d(gaussian(rng, 30 * 20), [30, 20]), tf.tensor2d(gaussian(rng, 12 * 40), [12, 40])];
  const subs = await protectedSubspaces(weights, [4, 12], { threads: 2 });
  for (let i = 0; i < weights.length; i++) {
    const one = protectedSubspace(weights[i], subs[i].Uh.shape[1]);
    assert.ok(maxRelDiff(one.S, subs[i].S) < 1e-12);
    // Same subspace: |Uh_batchᵀ Uh_one| is the identity up to signs.
    const m = tf.tidy(() => tf.abs(tf.matMul(subs[i].Uh, one.Uh, true, false)));
    const eye = tf.tidy(() => tf.eye(subs[i].Uh.shape[1]));
    assert.ok(maxRelDiff(m.dataSync(), eye.dataSync()) < 1e-4);
    tf.dispose([m, eye, one.Uh, one.Vh]);
  }
  assert.throws(() => protectedSubspace(weights[0], 21), /30 x 20 matrix: expected 0 <= k <= 20, got 21/);
  const G = tf.zeros([30, 21]) as tf.Tensor2D;
  assert.throws(() => projectGradient(G, subs[0]), /gradient \[30, 21\] needs Uh \[30, k\] and Vh \[21, k\]/);
  assert.throws(
    () => projectGradient(tf.zeros([30, 20]) as tf.Tensor2D, subs[0], 'oblique' as never),
    /unknown projection mode 'oblique'/,
  );
  await assert.rejects(protectedSubspaces(weights, [1]), /2 weights but 1 ranks/);
  tf.dispose([...weights, G, ...subs.flatMap((s) => [s.Uh, s.Vh])]);
});
