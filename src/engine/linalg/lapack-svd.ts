/**
 * Thin SVD on the LAPACK fast path (float64, column-major LAPACKE calls on native memory).
 *
 * - All vectors (or none): LAPACKE_dgesdd, divide and conquer.
 * - The leading k < r vectors (what a task boundary needs): the same steps dgesdd takes, but the orthogonal
 *   factors are applied to k columns only instead of being formed in full: QR of the long side when the
 *   matrix is far from square (dgeqrf), bidiagonalisation (dgebrd), divide and conquer on the bidiagonal
 *   (dbdsdc), then dormbr/dormqr on k vectors. Every singular value is still computed.
 *
 * The matrix is handed over in its tall orientation (rows >= columns): dgesdd's QR-first path is faster than
 * its LQ path, and a row-major wide matrix already is its tall transpose in column-major.
 *
 * A decomposition is written once as a generator of native calls, so the same plan runs synchronously or
 * with each call on one of koffi's worker threads (several decompositions then run at once).
 */
import { requireLapack, type Koffi, type LapackBinding, type NativeFn } from './lapack';
import type { KernelSvd } from './svd-kernel';
import { describeMatrix, type DenseMatrix } from './types';

const COL_MAJOR = 102;
const ch = (c: string): number => c.charCodeAt(0);

type Call = readonly [name: string, fn: NativeFn, args: unknown[]];
type Plan = Generator<Call, KernelSvd, number>;

/** Thin SVD through LAPACK on the calling thread. */
export function lapackSvd(a: DenseMatrix, k: number): KernelSvd {
  const lapack = requireLapack(`LAPACK SVD of ${describeMatrix(a.rows, a.cols, a.name)}`);
  const mem = new NativeMemory(lapack.koffi);
  try {
    const plan = planSvd(lapack, mem, a, k);
    let step = plan.next();
    while (!step.done) {
      const [, fn, args] = step.value;
      step = plan.next(fn(...args));
    }
    return step.value;
  } finally {
    mem.release();
  }
}

/** Thin SVD through LAPACK with the native calls on koffi's worker threads. */
export async function lapackSvdAsync(a: DenseMatrix, k: number): Promise<KernelSvd> {
  const lapack = requireLapack(`LAPACK SVD of ${describeMatrix(a.rows, a.cols, a.name)}`);
  const mem = new NativeMemory(lapack.koffi);
  try {
    const plan = planSvd(lapack, mem, a, k);
    let step = plan.next();
    while (!step.done) {
      const [, fn, args] = step.value;
      step = plan.next(await callAsync(fn, args));
    }
    return step.value;
  } finally {
    mem.release();
  }
}

function callAsync(fn: NativeFn, args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, info: number) =>
      err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(info),
    );
  });
}

/** Native buffers (stable while koffi's threads use them, unlike a typed array's storage), freed together. */
class NativeMemory {
  private readonly ptrs: unknown[] = [];
  constructor(private readonly koffi: Koffi) {}

  doubles(count: number): [ptr: unknown, view: Float64Array] {
    const n = Math.max(1, count);
    const ptr = this.koffi.alloc('double', n);
    this.ptrs.push(ptr);
    return [ptr, new Float64Array(this.koffi.view(ptr, n * 8))];
  }

  ints(count: number): unknown {
    const ptr = this.koffi.alloc('int', Math.max(1, count));
    this.ptrs.push(ptr);
    return ptr;
  }

  release(): void {
    for (const ptr of this.ptrs.splice(0)) this.koffi.free(ptr);
  }
}

function* planSvd(lapack: LapackBinding, mem: NativeMemory, a: DenseMatrix, k: number): Plan {
  const { rows: m, cols: n, data } = a;
  const what = describeMatrix(m, n, a.name);
  const check = (info: number, routine: string): void => {
    if (info === 0) return;
    const why = info < 0 ? `argument ${-info} was invalid` : 'the iteration did not converge';
    throw new Error(`LAPACK SVD of ${what}: ${routine} returned info = ${info} (${why})`);
  };
  const tall = m >= n;
  const p = tall ? m : n;
  const q = tall ? n : m;
  const [pa, av] = mem.doubles(p * q);
  if (tall) transposeInto(data, m, n, av);
  else av.set(data);
  for (let i = 0; i < av.length; i++) {
    if (!Number.isFinite(av[i])) throw new RangeError(`SVD input ${what}: contains NaN or infinite entries`);
  }

  let S: Float64Array;
  let longVecs: Float64Array; // p x k, column-major, leading dimension p
  let shortVecs: Float64Array; // k x q, column-major: shortVecs[l + j * ldShort] is vector l's entry j
  let ldShort: number;
  if (k === 0 || k === q) {
    const [ps, sv] = mem.doubles(q);
    const [pu, uv] = mem.doubles(k ? p * q : 1);
    const [pvt, vtv] = mem.doubles(k ? q * q : 1);
    const jobz = ch(k ? 'S' : 'N');
    check(yield ['dgesdd', lapack.dgesdd, [COL_MAJOR, jobz, p, q, pa, p, ps, pu, p, pvt, q]], 'dgesdd');
    [S, longVecs, shortVecs, ldShort] = [sv, uv, vtv, q];
  } else {
    // QR first when far from square (dgesdd's own switch point is about 11/6).
    const useQr = 6 * p >= 11 * q;
    const [ptau] = mem.doubles(q);
    let [pb, bv] = [pa, av];
    let rows = p;
    if (useQr) {
      check(yield ['dgeqrf', lapack.dgeqrf, [COL_MAJOR, p, q, pa, p, ptau]], 'dgeqrf');
      [pb, bv] = mem.doubles(q * q);
      for (let j = 0; j < q; j++) for (let i = 0; i <= j; i++) bv[i + j * q] = av[i + j * p];
      rows = q;
    }
    const [pd, dv] = mem.doubles(q);
    const [pe] = mem.doubles(q);
    const [ptq] = mem.doubles(q);
    const [ptp] = mem.doubles(q);
    check(yield ['dgebrd', lapack.dgebrd, [COL_MAJOR, rows, q, pb, rows, pd, pe, ptq, ptp]], 'dgebrd');
    const [pu, ub] = mem.doubles(q * q);
    const [pvt, vtb] = mem.doubles(q * q);
    const [pdq] = mem.doubles(1);
    const dbdsdcArgs = [COL_MAJOR, ch('U'), ch('I'), q, pd, pe, pu, q, pvt, q, pdq, mem.ints(1)];
    check(yield ['dbdsdc', lapack.dbdsdc, dbdsdcArgs], 'dbdsdc');

    // Left: Q_B [U_B(:, :k); 0], then the QR factor's Q.
    const [pc, cv] = mem.doubles(rows * k);
    for (let l = 0; l < k; l++) for (let i = 0; i < q; i++) cv[i + l * rows] = ub[i + l * q];
    const qArgs = [COL_MAJOR, ch('Q'), ch('L'), ch('N'), rows, k, q, pb, rows, ptq, pc, rows];
    check(yield ['dormbr', lapack.dormbr, qArgs], 'dormbr(Q)');
    longVecs = cv;
    if (useQr) {
      const [pl, lv] = mem.doubles(p * k);
      for (let l = 0; l < k; l++) for (let i = 0; i < q; i++) lv[i + l * p] = cv[i + l * q];
      check(yield ['dormqr', lapack.dormqr, [COL_MAJOR, ch('L'), ch('N'), p, k, q, pa, p, ptau, pl, p]], 'dormqr');
      longVecs = lv;
    }
    // Right: V_B(:, :k)ᵀ P_Bᵀ, kept as k x q.
    const [pw, wv] = mem.doubles(k * q);
    for (let j = 0; j < q; j++) for (let l = 0; l < k; l++) wv[l + j * k] = vtb[l + j * q];
    check(
      yield ['dormbr', lapack.dormbr, [COL_MAJOR, ch('P'), ch('R'), ch('T'), k, q, rows, pb, rows, ptp, pw, k]],
      'dormbr(P)',
    );
    [S, shortVecs, ldShort] = [dv, wv, k];
  }

  // Back to row-major, copying out of native memory before it is freed.
  const long = new Float64Array(p * k);
  for (let l = 0; l < k; l++) {
    const b = l * p;
    for (let i = 0; i < p; i++) long[i * k + l] = longVecs[b + i];
  }
  const short = new Float64Array(q * k);
  for (let j = 0; j < q; j++) for (let l = 0; l < k; l++) short[j * k + l] = shortVecs[l + j * ldShort];
  const values = Float64Array.from(S);
  return tall ? { U: long, S: values, V: short } : { U: short, S: values, V: long };
}

/** Row-major m x n into column-major (out[i + j m] = x[i][j]), in tiles so both sides stay in cache. */
function transposeInto(x: Float32Array | Float64Array, m: number, n: number, out: Float64Array): void {
  const t = 32;
  for (let i0 = 0; i0 < m; i0 += t) {
    const i1 = Math.min(m, i0 + t);
    for (let j0 = 0; j0 < n; j0 += t) {
      const j1 = Math.min(n, j0 + t);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[i + j * m] = x[i * n + j];
    }
  }
}
