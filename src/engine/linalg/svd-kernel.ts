/**
 * Portable thin SVD in float64: power-of-two scaling, Householder QR of the long side when the matrix is
 * far from square (the SVD of R is then cheaper than bidiagonalising the whole matrix), Golub-Kahan
 * bidiagonalisation, implicit-shift QR on the bidiagonal, then back-transformation of only the singular
 * vectors that were asked for. Worker-safe (see householder.ts): it uses nothing but its kernel siblings.
 */
import {
  applyReflectorsToRows,
  bidiagonalise,
  householderQr,
  packColumnReflectors,
  packRowReflectors,
} from './householder';
import { bidiagonalSvd } from './bidiagonal-svd';

/** Result of svdKernel: U (m x k), V (n x k) row-major, S (min(m, n)) descending. */
export interface KernelSvd {
  U: Float64Array;
  S: Float64Array;
  V: Float64Array;
}

/**
 * Thin SVD of the row-major m x n matrix `data`, returning the leading k singular vector pairs and all
 * singular values. Bases are completed: columns for zero or repeated singular values are still orthonormal,
 * because U and V are products of reflectors and rotations applied to identity columns. `label` names the
 * matrix in errors.
 */
export function svdKernel(
  data: Float32Array | Float64Array,
  m: number,
  n: number,
  k: number,
  label?: string,
): KernelSvd {
  // Work on the tall orientation: A is p0 x q with p0 >= q; for a wide input A = Wᵀ.
  const tall = m >= n;
  const p0 = tall ? m : n;
  const q = tall ? n : m;
  const a = new Float64Array(p0 * q);
  let maxAbs = 0;
  if (tall) {
    for (let i = 0; i < a.length; i++) {
      const x = data[i];
      a[i] = x;
      const ax = x < 0 ? -x : x;
      if (ax > maxAbs) maxAbs = ax;
      else if (ax !== ax) maxAbs = Infinity; // NaN
    }
  } else {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const x = data[i * n + j];
        a[j * q + i] = x;
        const ax = x < 0 ? -x : x;
        if (ax > maxAbs) maxAbs = ax;
        else if (ax !== ax) maxAbs = Infinity; // NaN
      }
    }
  }
  if (!Number.isFinite(maxAbs))
    throw new RangeError(`SVD input ${label ?? `${m} x ${n} matrix`}: contains NaN or infinite entries`);
  // Scale by an exact power of two so that max |a| is in [0.5, 1): squares neither overflow nor lose the bulk.
  const exponent = maxAbs > 0 ? -Math.ceil(Math.log2(maxAbs) + 1e-12) : 0;
  scaleByPowerOfTwo(a, exponent);

  // Householder QR first when the matrix is far from square (LAPACK's dgesdd switches near 11/6).
  const useQr = p0 >= Math.ceil((5 * q) / 3) && q > 1;
  let b = a;
  let p = p0;
  let qrTau: Float64Array | null = null;
  const work = new Float64Array(q);
  if (useQr) {
    qrTau = new Float64Array(q);
    householderQr(a, p0, q, qrTau, work);
    b = new Float64Array(q * q);
    for (let i = 0; i < q; i++) for (let j = i; j < q; j++) b[i * q + j] = a[i * q + j];
    p = q;
  }

  const d = new Float64Array(q);
  const e = new Float64Array(q);
  const tauq = new Float64Array(q);
  const taup = new Float64Array(q);
  bidiagonalise(b, p, q, d, e, tauq, taup, work);
  const qOffs = new Int32Array(q);
  const qRefl = packColumnReflectors(b, p, q, q, qOffs);
  const pOffs = new Int32Array(q);
  const pRefl = packRowReflectors(b, q, pOffs);

  const ut = identity(q);
  const vt = identity(q);
  bidiagonalSvd(d, e, q, ut, vt);

  // Descending order; ties keep their index order so repeated values stay deterministic.
  const order = Array.from({ length: q }, (_, i) => i).sort((x, y) => d[y] - d[x] || x - y);
  const S = new Float64Array(q);
  for (let i = 0; i < q; i++) S[i] = d[order[i]];
  scaleByPowerOfTwo(S, -exponent);

  // Left vectors: rows of U_B, through Q_B (length p), then zero-padded through the QR reflectors (length p0).
  const inner = new Float64Array(k * p);
  for (let i = 0; i < k; i++) inner.set(ut.subarray(order[i] * q, order[i] * q + q), i * p);
  applyReflectorsToRows(inner, k, p, qRefl, qOffs, tauq, q, 0);
  let left = inner;
  if (qrTau) {
    left = new Float64Array(k * p0);
    for (let i = 0; i < k; i++) left.set(inner.subarray(i * q, i * q + q), i * p0);
    const hOffs = new Int32Array(q);
    const hRefl = packColumnReflectors(a, p0, q, q, hOffs);
    applyReflectorsToRows(left, k, p0, hRefl, hOffs, qrTau, q, 0);
  }
  const right = new Float64Array(k * q);
  for (let i = 0; i < k; i++) right.set(vt.subarray(order[i] * q, order[i] * q + q), i * q);
  applyReflectorsToRows(right, k, q, pRefl, pOffs, taup, q - 1, 1);

  // Rows are vectors; the result wants them as columns.
  const leftT = transpose(left, k, p0);
  const rightT = transpose(right, k, q);
  return tall ? { U: leftT, S, V: rightT } : { U: rightT, S, V: leftT };
}

/** Multiplies every entry by 2^exponent exactly, in steps that cannot overflow the scale factor itself. */
export function scaleByPowerOfTwo(x: Float64Array, exponent: number): void {
  let rest = exponent;
  while (rest !== 0) {
    const step = Math.max(-1000, Math.min(1000, rest));
    const f = 2 ** step;
    for (let i = 0; i < x.length; i++) x[i] *= f;
    rest -= step;
  }
}

export function identity(n: number): Float64Array {
  const x = new Float64Array(n * n);
  for (let i = 0; i < n; i++) x[i * n + i] = 1;
  return x;
}

/** Row-major rows x cols -> cols x rows. */
export function transpose(x: Float64Array, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const b = i * cols;
    for (let j = 0; j < cols; j++) y[j * rows + i] = x[b + j];
  }
  return y;
}
