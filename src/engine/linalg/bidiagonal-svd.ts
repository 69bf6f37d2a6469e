/**
 * SVD of an upper bidiagonal matrix by implicitly shifted QR (Golub-Kahan, with the deflation and splitting
 * rules of LINPACK's dsvdc). Rotations are accumulated into Ut and Vt, whose ROWS are the left and right
 * singular vectors, so every rotation touches two contiguous rows. Worker-safe (see householder.ts).
 */

/**
 * Diagonalises B = bidiag(d, e) (n x n, e[n-1] = 0) in place: on return d holds the singular values (>= 0,
 * unordered) and B = Ut_ᵀ diag(d) Vt_ with Ut, Vt (n x n, rows = vectors) multiplied by the rotations used.
 * Throws when the iteration does not converge (it always should for finite input).
 */
export function bidiagonalSvd(d: Float64Array, e: Float64Array, n: number, ut: Float64Array, vt: Float64Array): void {
  const eps = 2 ** -52;
  const tiny = 2 ** -966;
  const maxIterations = 75 * n * n + 100;
  let iterations = 0;
  let p = n;
  while (p > 0) {
    if (++iterations > maxIterations) {
      throw new Error(
        `bidiagonal SVD (${n} x ${n}): no convergence after ${maxIterations} QR steps (non-finite input?)`,
      );
    }
    // k: largest index below p-1 whose superdiagonal entry is negligible (-1 if none).
    let k = p - 2;
    for (; k >= 0; k--) {
      if (Math.abs(e[k]) <= tiny + eps * (Math.abs(d[k]) + Math.abs(d[k + 1]))) {
        e[k] = 0;
        break;
      }
    }
    let kase: number;
    if (k === p - 2) {
      kase = 4;
    } else {
      let ks = p - 1;
      for (; ks > k; ks--) {
        const t = (ks !== p ? Math.abs(e[ks]) : 0) + (ks !== k + 1 ? Math.abs(e[ks - 1]) : 0);
        if (Math.abs(d[ks]) <= tiny + eps * t) {
          d[ks] = 0;
          break;
        }
      }
      if (ks === k) kase = 3;
      else if (ks === p - 1) kase = 1;
      else {
        kase = 2;
        k = ks;
      }
    }
    k++;
    if (kase === 1) {
      // d[p-1] is zero: chase e[p-2] up the column with right rotations.
      let f = e[p - 2];
      e[p - 2] = 0;
      for (let j = p - 2; j >= k; j--) {
        const t = Math.hypot(d[j], f);
        const cs = d[j] / t;
        const sn = f / t;
        d[j] = t;
        if (j !== k) {
          f = -sn * e[j - 1];
          e[j - 1] = cs * e[j - 1];
        }
        rotateRows(vt, n, j, p - 1, cs, sn);
      }
    } else if (kase === 2) {
      // d[k-1] is zero: split by chasing e[k-1] along the row with left rotations.
      let f = e[k - 1];
      e[k - 1] = 0;
      for (let j = k; j < p; j++) {
        const t = Math.hypot(d[j], f);
        const cs = d[j] / t;
        const sn = f / t;
        d[j] = t;
        f = -sn * e[j];
        e[j] = cs * e[j];
        rotateRows(ut, n, j, k - 1, cs, sn);
      }
    } else if (kase === 3) {
      qrStep(d, e, n, k, p, ut, vt);
    } else {
      // d[k] converged: make it non-negative.
      if (d[k] <= 0) {
        d[k] = d[k] < 0 ? -d[k] : 0;
        const b = k * n;
        for (let c = 0; c < n; c++) vt[b + c] = -vt[b + c];
      }
      p--;
    }
  }
}

/** One implicit QR sweep on the unreduced block k..p-1, shifted by the eigenvalue of the trailing 2 x 2 of BᵀB nearer its corner. */
export function qrStep(
  d: Float64Array,
  e: Float64Array,
  n: number,
  k: number,
  p: number,
  ut: Float64Array,
  vt: Float64Array,
): void {
  const scale = Math.max(Math.abs(d[p - 1]), Math.abs(d[p - 2]), Math.abs(e[p - 2]), Math.abs(d[k]), Math.abs(e[k]));
  const sp = d[p - 1] / scale;
  const spm1 = d[p - 2] / scale;
  const epm1 = e[p - 2] / scale;
  const sk = d[k] / scale;
  const ek = e[k] / scale;
  const b = ((spm1 + sp) * (spm1 - sp) + epm1 * epm1) / 2;
  const c = sp * epm1 * (sp * epm1);
  let shift = 0;
  if (b !== 0 || c !== 0) {
    shift = Math.sqrt(b * b + c);
    if (b < 0) shift = -shift;
    shift = c / (b + shift);
  }
  let f = (sk + sp) * (sk - sp) + shift;
  let g = sk * ek;
  for (let j = k; j < p - 1; j++) {
    let t = Math.hypot(f, g);
    let cs = f / t;
    let sn = g / t;
    if (j !== k) e[j - 1] = t;
    f = cs * d[j] + sn * e[j];
    e[j] = cs * e[j] - sn * d[j];
    g = sn * d[j + 1];
    d[j + 1] = cs * d[j + 1];
    rotateRows(vt, n, j, j + 1, cs, sn);
    t = Math.hypot(f, g);
    cs = f / t;
    sn = g / t;
    d[j] = t;
    f = cs * e[j] + sn * d[j + 1];
    d[j + 1] = -sn * e[j] + cs * d[j + 1];
    g = sn * e[j + 1];
    e[j + 1] = cs * e[j + 1];
    rotateRows(ut, n, j, j + 1, cs, sn);
  }
  e[p - 2] = f;
}

/** (row i, row j) <- (cs row i + sn row j, -sn row i + cs row j) for rows of length len. */
export function rotateRows(x: Float64Array, len: number, i: number, j: number, cs: number, sn: number): void {
  const bi = i * len;
  const bj = j * len;
  for (let c = 0; c < len; c++) {
    const xi = x[bi + c];
    const xj = x[bj + c];
    x[bi + c] = cs * xi + sn * xj;
    x[bj + c] = cs * xj - sn * xi;
  }
}
