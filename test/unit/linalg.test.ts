import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/data/rng';
import {
  lapackStatus,
  resetLapackProbe,
  resolveSvdPath,
  svd,
  svdBatch,
  type DenseMatrix,
  type Svd,
  type SvdPath,
} from '../../src/engine/linalg';

// ------------------------------------------------------------------------------------------------ helpers

function gaussian(rng: Rng, rows: number, cols: number): Float64Array {
  const x = new Float64Array(rows * cols);
  for (let i = 0; i < x.length; i++)
    x[i] = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  return x;
}

/** rows x cols (rows >= cols) with orthonormal columns: modified Gram-Schmidt, twice for full precision. */
function orthonormalColumns(rng: Rng, rows: number, cols: number): Float64Array {
  const x = gaussian(rng, rows, cols);
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < cols; j++) {
      for (let l = 0; l < j; l++) {
        let dot = 0;
        for (let i = 0; i < rows; i++) dot += x[i * cols + l] * x[i * cols + j];
        for (let i = 0; i < rows; i++) x[i * cols + j] -= dot * x[i * cols + l];
      }
      let norm = 0;
      for (let i = 0; i < rows; i++) norm += x[i * cols + j] ** 2;
      norm = Math.sqrt(norm);
      for (let i = 0; i < rows; i++) x[i * cols + j] /= norm;
    }
  }
  return x;
}

/** Q1 diag(s) Q2ᵀ (m x n) with known singular values s (length <= min(m, n), the rest zero). */
function withSingularValues(rng: Rng, m: number, n: number, s: readonly number[]): Float64Array {
  const r = s.length;
  const q1 = orthonormalColumns(rng, m, r);
  const q2 = orthonormalColumns(rng, n, r);
  const w = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) for (let l = 0; l < r; l++) w[i * n + j] += q1[i * r + l] * s[l] * q2[j * r + l];
  return w;
}

function frobenius(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

/** ||W - U S Vᵀ||_F / ||W||_F (absolute when W = 0). */
function reconstructionError(a: DenseMatrix, r: Svd): number {
  const { rows: m, cols: n, data } = a;
  const k = r.k;
  let err = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let l = 0; l < k; l++) s += r.U[i * k + l] * r.S[l] * r.V[j * k + l];
      err += (data[i * n + j] - s) ** 2;
    }
  }
  const norm = frobenius(data);
  return Math.sqrt(err) / (norm > 0 ? norm : 1);
}

/** max |XᵀX - I| for X (rows x k). */
function orthogonalityError(x: Float64Array, rows: number, k: number): number {
  let worst = 0;
  for (let a = 0; a < k; a++) {
    for (let b = a; b < k; b++) {
      let dot = 0;
      for (let i = 0; i < rows; i++) dot += x[i * k + a] * x[i * k + b];
      worst = Math.max(worst, Math.abs(dot - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

function assertValidSvd(a: DenseMatrix, r: Svd, label: string, tol = 1e-10): void {
  const q = Math.min(a.rows, a.cols);
  assert.equal(r.S.length, q, `${label}: S length`);
  assert.equal(r.U.length, a.rows * r.k, `${label}: U size`);
  assert.equal(r.V.length, a.cols * r.k, `${label}: V size`);
  for (let i = 0; i < q; i++) {
    assert.ok(r.S[i] >= 0, `${label}: S[${i}] = ${r.S[i]} is negative`);
    if (i > 0) assert.ok(r.S[i] <= r.S[i - 1], `${label}: S not descending at ${i}`);
  }
  if (r.k === q) {
    const e = reconstructionError(a, r);
    assert.ok(e <= tol, `${label}: reconstruction error ${e}`);
  }
  const ou = orthogonalityError(r.U, a.rows, r.k);
  const ov = orthogonalityError(r.V, a.cols, r.k);
  assert.ok(ou <= tol, `${label}: ||UᵀU - I|| = ${ou}`);
  assert.ok(ov <= tol, `${label}: ||VᵀV - I|| = ${ov}`);
}

function assertValuesClose(actual: Float64Array, expected: readonly number[], tol: number, label: string): void {
  const want = [...expected].sort((x, y) => y - x);
  const scale = Math.max(want[0] ?? 0, Number.MIN_VALUE);
  for (let i = 0; i < actual.length; i++) {
    const e = want[i] ?? 0;
    assert.ok(Math.abs(actual[i] - e) <= tol * scale, `${label}: S[${i}] = ${actual[i]}, expected ${e}`);
  }
}

const paths: SvdPath[] = lapackStatus().available ? ['ts', 'lapack'] : ['ts'];

// -------------------------------------------------------------------------------------------------- tests

for (const path of paths) {
  test(`${path}: random shapes up to 256 (tall, wide, square) give a valid thin SVD`, () => {
    const rng = new Rng(path === 'ts' ? 101 : 202);
    const dims = [1, 2, 3, 5, 8, 17, 33, 64, 100, 160, 256];
    for (let c = 0; c < 80; c++) {
      // Mostly small, some up to 256, so the whole sweep stays fast.
      const big = c % 9 === 0;
      const m = big ? dims[7 + rng.int(4)] : dims[rng.int(8)] + rng.int(4);
      const n = big ? dims[rng.int(11)] : dims[rng.int(8)] + rng.int(4);
      const a = { rows: m, cols: n, data: gaussian(rng, m, n) };
      const r = svd(a, { path });
      assert.equal(r.path, path);
      assertValidSvd(a, r, `${m}x${n}`);
    }
  });

  test(`${path}: singular values match a known construction, also rank-deficient and repeated`, () => {
    const rng = new Rng(7);
    const cases: [number, number, number[]][] = [
      [5, 5, [3, 3, 3, 1, 1]],
      [40, 30, [...Array(10).fill(3), ...Array(10).fill(1)]], // repeated and rank 20 of 30
      [30, 70, [5, 4, 3, 2, 1, 1e-3, 1e-6]], // wide, rank 7
      [120, 40, Array.from({ length: 40 }, (_, i) => 2 ** -i)], // graded down to 2^-39
      [64, 64, [1, 1, 1, 1]],
    ];
    for (const [m, n, s] of cases) {
      const a = { rows: m, cols: n, data: withSingularValues(rng, m, n, s) };
      const r = svd(a, { path });
      assertValidSvd(a, r, `${m}x${n} s=${s.slice(0, 3)}...`);
      assertValuesClose(r.S, s, 1e-12, `${m}x${n}`);
    }
  });

  test(`${path}: products of thin factors (rank-deficient) still get complete orthonormal bases`, () => {
    const rng = new Rng(11);
    for (const [m, n, rank] of [
      [50, 40, 3],
      [40, 90, 1],
      [128, 128, 17],
      [200, 60, 59],
    ]) {
      const left = gaussian(rng, m, rank);
      const right = gaussian(rng, rank, n);
      const w = new Float64Array(m * n);
      for (let i = 0; i < m; i++)
        for (let l = 0; l < rank; l++)
          for (let j = 0; j < n; j++) w[i * n + j] += left[i * rank + l] * right[l * n + j];
      const a = { rows: m, cols: n, data: w };
      const r = svd(a, { path });
      assertValidSvd(a, r, `${m}x${n} rank ${rank}`);
      for (let i = rank; i < r.S.length; i++) assert.ok(r.S[i] <= 1e-12 * r.S[0], `rank ${rank}: S[${i}] = ${r.S[i]}`);
    }
  });

  test(`${path}: the zero matrix, single rows and columns, tiny and huge scales`, () => {
    const rng = new Rng(13);
    for (const [m, n] of [
      [1, 1],
      [7, 3],
      [3, 7],
    ]) {
      const a = { rows: m, cols: n, data: new Float64Array(m * n) };
      const r = svd(a, { path });
      assertValidSvd(a, r, `zero ${m}x${n}`);
      assert.ok(r.S.every((x) => x === 0));
    }
    for (const [m, n] of [
      [1, 9],
      [9, 1],
    ]) {
      const a = { rows: m, cols: n, data: gaussian(rng, m, n) };
      assertValidSvd(a, svd(a, { path }), `${m}x${n}`);
    }
    const base = withSingularValues(rng, 30, 20, [4, 2, 1, 0.5]);
    for (const scale of [1e-150, 1e-30, 1e30, 1e150]) {
      const a = { rows: 30, cols: 20, data: base.map((x) => x * scale) };
      const r = svd(a, { path });
      assertValidSvd(a, r, `scale ${scale}`);
      assertValuesClose(r.S, [4 * scale, 2 * scale, scale, 0.5 * scale], 1e-12, `scale ${scale}`);
    }
  });

  test(`${path}: leading k vectors span the same subspace as the full SVD's, with every singular value`, () => {
    const rng = new Rng(17);
    for (const [m, n, k] of [
      [60, 40, 10],
      [40, 60, 20],
      [200, 50, 25], // far from square: the QR-first route
      [50, 50, 1],
      [30, 20, 0],
    ]) {
      const s = Array.from({ length: Math.min(m, n) }, (_, i) => 10 / (1 + i));
      const a = { rows: m, cols: n, data: withSingularValues(rng, m, n, s) };
      const full = svd(a, { path });
      const top = svd(a, { path, vectors: k });
      assert.equal(top.k, k);
      assertValidSvd(a, top, `${m}x${n} k=${k}`);
      assertValuesClose(top.S, s, 1e-12, `${m}x${n} k=${k}`);
      // Distinct values: each vector is unique up to sign.
      for (let l = 0; l < k; l++) {
        let du = 0;
        let dv = 0;
        for (let i = 0; i < m; i++) du += top.U[i * k + l] * full.U[i * full.k + l];
        for (let j = 0; j < n; j++) dv += top.V[j * k + l] * full.V[j * full.k + l];
        assert.ok(
          Math.abs(Math.abs(du) - 1) < 1e-10 && Math.abs(du - dv) < 1e-10,
          `${m}x${n} k=${k}: vector ${l} differs (${du}, ${dv})`,
        );
      }
    }
  });

  test(`${path}: float32 input is decomposed in float64`, () => {
    const rng = new Rng(19);
    const data = Float32Array.from(gaussian(rng, 48, 32));
    const a = { rows: 48, cols: 32, data };
    assertValidSvd(a, svd(a, { path }), 'float32 48x32');
  });
}

// With LAPACK present both paths are compared; without it, the portable path is what runs and an explicit
// LAPACK request must say why it cannot be met (CI installs liblapacke, so there both paths are compared).
const comparePaths = paths.length === 2;
test(
  comparePaths
    ? 'both paths agree on singular values and vectors of a generic matrix'
    : 'without LAPACK an explicit request names the reason',
  () => {
    if (!comparePaths) {
      assert.throws(
        () => svd({ rows: 2, cols: 2, data: new Float64Array([1, 0, 0, 1]) }, { path: 'lapack' }),
        /LAPACK/i,
      );
      return;
    }
    const rng = new Rng(23);
    for (const [m, n] of [
      [90, 70],
      [70, 90],
      [256, 64],
    ]) {
      const a = { rows: m, cols: n, data: gaussian(rng, m, n) };
      const x = svd(a, { path: 'ts' });
      const y = svd(a, { path: 'lapack' });
      for (let i = 0; i < x.S.length; i++) assert.ok(Math.abs(x.S[i] - y.S[i]) <= 1e-12 * x.S[0], `${m}x${n}: S[${i}]`);
      for (let l = 0; l < 5; l++) {
        let dot = 0;
        for (let i = 0; i < m; i++) dot += x.U[i * x.k + l] * y.U[i * y.k + l];
        assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-9, `${m}x${n}: U column ${l}`);
      }
    }
  },
);

test('batch: worker threads give the in-thread results, in input order, with per-matrix k', async () => {
  const rng = new Rng(29);
  const mats = [
    [40, 30],
    [30, 40],
    [90, 20],
    [5, 5],
    [64, 64],
  ].map(([m, n], i) => ({ rows: m, cols: n, data: gaussian(rng, m, n), name: `w${i}` }));
  const ks = [30, 5, 20, 0, 10];
  const threaded = await svdBatch(mats, { path: 'ts', threads: 2, vectorsPerMatrix: ks });
  const serial = await svdBatch(mats, { path: 'ts', threads: 1, vectorsPerMatrix: ks });
  for (let i = 0; i < mats.length; i++) {
    assert.equal(threaded[i].k, ks[i]);
    assert.deepEqual(threaded[i].S, serial[i].S, `${mats[i].name}: S`);
    assert.deepEqual(threaded[i].U, serial[i].U, `${mats[i].name}: U`);
    assert.deepEqual(threaded[i].V, serial[i].V, `${mats[i].name}: V`);
    assert.deepEqual(threaded[i].S, svd(mats[i], { path: 'ts' }).S);
  }
  if (lapackStatus().available) {
    const viaLapack = await svdBatch(mats, { vectorsPerMatrix: ks, threads: 2 });
    for (let i = 0; i < mats.length; i++) {
      assert.equal(viaLapack[i].path, 'lapack');
      assertValidSvd(mats[i], viaLapack[i], `lapack batch ${mats[i].name}`);
      for (let l = 0; l < viaLapack[i].S.length; l++)
        assert.ok(Math.abs(viaLapack[i].S[l] - serial[i].S[l]) < 1e-12 * serial[i].S[0]);
    }
  }
});

test('errors name the matrix, its shape and what was expected', async () => {
  assert.throws(
    () => svd({ rows: 3, cols: 4, data: new Float64Array(11), name: 'h.0.mlp.c_fc.weight' }),
    /"h\.0\.mlp\.c_fc\.weight" \(3 x 4\): expected 12 elements/,
  );
  assert.throws(
    () => svd({ rows: 0, cols: 4, data: new Float64Array(0) }),
    /0 x 4 matrix: expected positive integer dimensions/,
  );
  assert.throws(
    () => svd({ rows: 2, cols: 2, data: new Float64Array(4) }, { vectors: 3 }),
    /expected 0 <= vectors <= 2, got 3/,
  );
  for (const path of paths) {
    assert.throws(
      () => svd({ rows: 2, cols: 3, data: Float64Array.of(1, NaN, 0, 1, 0, 0), name: 'g' }, { path }),
      /"g" \(2 x 3\).*NaN or infinite/,
    );
    assert.throws(
      () => svd({ rows: 3, cols: 2, data: Float64Array.of(1, 0, Infinity, 1, 0, 0) }, { path }),
      /NaN or infinite/,
    );
  }
  await assert.rejects(
    svdBatch([{ rows: 2, cols: 2, data: new Float64Array(4) }], { vectorsPerMatrix: [1, 1] }),
    /vectorsPerMatrix has 2 entries for 1 matrices/,
  );
  assert.throws(() => resolveSvdPath('gpu' as never), /unknown SVD path 'gpu'/);
});

test('SCULPT_LAPACK=0 forces the TypeScript path, and demanding LAPACK then fails clearly', () => {
  const saved = process.env.SCULPT_LAPACK;
  try {
    process.env.SCULPT_LAPACK = '0';
    resetLapackProbe();
    const status = lapackStatus();
    assert.equal(status.available, false);
    assert.match(status.reason ?? '', /SCULPT_LAPACK=0/);
    const r = svd({ rows: 3, cols: 2, data: Float64Array.of(1, 2, 3, 4, 5, 6) });
    assert.equal(r.path, 'ts');
    assert.throws(
      () => svd({ rows: 2, cols: 2, data: new Float64Array(4), name: 'w' }, { path: 'lapack' }),
      /LAPACK path was requested but disabled by SCULPT_LAPACK=0/,
    );
    process.env.SCULPT_LAPACK = '/nonexistent/liblapacke.so';
    resetLapackProbe();
    assert.equal(lapackStatus().available, false);
    assert.match(lapackStatus().reason ?? '', /no LAPACKE library could be loaded|koffi/);
    assert.equal(svd({ rows: 2, cols: 2, data: Float64Array.of(2, 0, 0, 1) }).path, 'ts');
  } finally {
    if (saved === undefined) delete process.env.SCULPT_LAPACK;
    else process.env.SCULPT_LAPACK = saved;
    resetLapackProbe();
  }
});

test('the fast path reports what it loaded', () => {
  const s = lapackStatus();
  if (s.available) {
    assert.ok(s.library);
    assert.equal(resolveSvdPath('auto'), 'lapack');
  } else {
    assert.ok(s.reason);
    assert.equal(resolveSvdPath('auto'), 'ts');
  }
});
