/**
 * Householder reductions on row-major float64 matrices, in place (LAPACK conventions: H = I - tau v vᵀ with
 * v(0) = 1 implied and the tail of v stored where the zeros appear).
 *
 * Every function here (and in bidiagonal-svd.ts, svd-kernel.ts) refers only to its parameters, locals,
 * globals and the other kernel functions: the worker pool ships their source text to worker threads, so a
 * module-level constant or import used inside them would be undefined there.
 */

/**
 * Householder QR of the m x n matrix `a` (m >= n): R ends in the upper triangle, reflector j's tail in
 * column j below the diagonal, its scalar in tau[j]. `work` needs n entries.
 */
export function householderQr(a: Float64Array, m: number, n: number, tau: Float64Array, work: Float64Array): void {
  for (let j = 0; j < n; j++) {
    tau[j] = columnReflector(a, m, n, j, j);
    if (tau[j] !== 0 && j + 1 < n) applyColumnReflector(a, m, n, j, j, j + 1, tau[j], work);
  }
}

/**
 * Golub-Kahan bidiagonalisation of the p x n matrix `a` (p >= n): a = Q B Pᵀ with B upper bidiagonal,
 * diagonal d (n) and superdiagonal e (n, e[n-1] = 0). Left reflector j sits in column j below the diagonal
 * (tauq[j]); right reflector j in row j right of the superdiagonal, acting on indices j+1.. (taup[j]).
 */
export function bidiagonalise(
  a: Float64Array,
  p: number,
  n: number,
  d: Float64Array,
  e: Float64Array,
  tauq: Float64Array,
  taup: Float64Array,
  work: Float64Array,
): void {
  for (let j = 0; j < n; j++) {
    tauq[j] = columnReflector(a, p, n, j, j);
    d[j] = a[j * n + j];
    if (tauq[j] !== 0 && j + 1 < n) applyColumnReflector(a, p, n, j, j, j + 1, tauq[j], work);
    if (j + 1 < n) {
      taup[j] = rowReflector(a, n, j, j + 1);
      e[j] = a[j * n + j + 1];
      if (taup[j] !== 0) applyRowReflector(a, p, n, j, j + 1, taup[j]);
    } else {
      taup[j] = 0;
      e[j] = 0;
    }
  }
}

/**
 * Builds the reflector that zeroes column `col` below row `r0` (rows r0..m-1); leaves beta in a(r0, col)
 * and the scaled tail below it. Returns tau (0 when the tail is already zero: H = I).
 */
export function columnReflector(a: Float64Array, m: number, n: number, r0: number, col: number): number {
  let tail = 0;
  for (let i = r0 + 1; i < m; i++) {
    const x = a[i * n + col];
    tail += x * x;
  }
  if (tail === 0) return 0;
  const alpha = a[r0 * n + col];
  const norm = Math.sqrt(alpha * alpha + tail);
  const beta = alpha >= 0 ? -norm : norm;
  const scale = 1 / (alpha - beta);
  for (let i = r0 + 1; i < m; i++) a[i * n + col] *= scale;
  a[r0 * n + col] = beta;
  return (beta - alpha) / beta;
}

/** As columnReflector, for row `row` from column c0 on (the row is contiguous). */
export function rowReflector(a: Float64Array, n: number, row: number, c0: number): number {
  const base = row * n;
  let tail = 0;
  for (let c = c0 + 1; c < n; c++) {
    const x = a[base + c];
    tail += x * x;
  }
  if (tail === 0) return 0;
  const alpha = a[base + c0];
  const norm = Math.sqrt(alpha * alpha + tail);
  const beta = alpha >= 0 ? -norm : norm;
  const scale = 1 / (alpha - beta);
  for (let c = c0 + 1; c < n; c++) a[base + c] *= scale;
  a[base + c0] = beta;
  return (beta - alpha) / beta;
}

/**
 * a(r0:, c0:) <- H a(r0:, c0:) for the reflector stored in column `col` from row r0. Row-major friendly:
 * w = vᵀ A is accumulated four rows at a time (one pass over w per four rows), then A -= tau v wᵀ row by row.
 */
export function applyColumnReflector(
  a: Float64Array,
  m: number,
  n: number,
  r0: number,
  col: number,
  c0: number,
  tau: number,
  w: Float64Array,
): void {
  const top = r0 * n;
  for (let c = c0; c < n; c++) w[c] = a[top + c];
  let i = r0 + 1;
  for (; i + 3 < m; i += 4) {
    const b0 = i * n;
    const b1 = b0 + n;
    const b2 = b1 + n;
    const b3 = b2 + n;
    const v0 = a[b0 + col];
    const v1 = a[b1 + col];
    const v2 = a[b2 + col];
    const v3 = a[b3 + col];
    for (let c = c0; c < n; c++) w[c] += v0 * a[b0 + c] + v1 * a[b1 + c] + v2 * a[b2 + c] + v3 * a[b3 + c];
  }
  for (; i < m; i++) {
    const b = i * n;
    const v = a[b + col];
    if (v !== 0) for (let c = c0; c < n; c++) w[c] += v * a[b + c];
  }
  for (let c = c0; c < n; c++) {
    w[c] *= tau;
    a[top + c] -= w[c];
  }
  for (i = r0 + 1; i + 3 < m; i += 4) {
    const b0 = i * n;
    const b1 = b0 + n;
    const b2 = b1 + n;
    const b3 = b2 + n;
    const v0 = a[b0 + col];
    const v1 = a[b1 + col];
    const v2 = a[b2 + col];
    const v3 = a[b3 + col];
    for (let c = c0; c < n; c++) {
      const wc = w[c];
      a[b0 + c] -= v0 * wc;
      a[b1 + c] -= v1 * wc;
      a[b2 + c] -= v2 * wc;
      a[b3 + c] -= v3 * wc;
    }
  }
  for (; i < m; i++) {
    const b = i * n;
    const v = a[b + col];
    if (v !== 0) for (let c = c0; c < n; c++) a[b + c] -= v * w[c];
  }
}

/**
 * a(vrow+1:, c0:) <- a(vrow+1:, c0:) H for the reflector stored in row vrow from column c0 (a(vrow, c0) stands
 * for its leading 1). Four rows per pass share each load of the reflector.
 */
export function applyRowReflector(a: Float64Array, p: number, n: number, vrow: number, c0: number, tau: number): void {
  const vb = vrow * n;
  let i = vrow + 1;
  for (; i + 3 < p; i += 4) {
    const b0 = i * n;
    const b1 = b0 + n;
    const b2 = b1 + n;
    const b3 = b2 + n;
    let s0 = a[b0 + c0];
    let s1 = a[b1 + c0];
    let s2 = a[b2 + c0];
    let s3 = a[b3 + c0];
    for (let c = c0 + 1; c < n; c++) {
      const u = a[vb + c];
      s0 += a[b0 + c] * u;
      s1 += a[b1 + c] * u;
      s2 += a[b2 + c] * u;
      s3 += a[b3 + c] * u;
    }
    s0 *= tau;
    s1 *= tau;
    s2 *= tau;
    s3 *= tau;
    a[b0 + c0] -= s0;
    a[b1 + c0] -= s1;
    a[b2 + c0] -= s2;
    a[b3 + c0] -= s3;
    for (let c = c0 + 1; c < n; c++) {
      const u = a[vb + c];
      a[b0 + c] -= s0 * u;
      a[b1 + c] -= s1 * u;
      a[b2 + c] -= s2 * u;
      a[b3 + c] -= s3 * u;
    }
  }
  for (; i < p; i++) {
    const b = i * n;
    let s = a[b + c0];
    for (let c = c0 + 1; c < n; c++) s += a[b + c] * a[vb + c];
    s *= tau;
    if (s === 0) continue;
    a[b + c0] -= s;
    for (let c = c0 + 1; c < n; c++) a[b + c] -= s * a[vb + c];
  }
}

/**
 * Applies H_{count-1}, ..., H_0 in that order (i.e. x <- H_0 ... H_{count-1} x) to each of the `rows` vectors
 * stored as rows of `x` (length len). Reflector j acts on indices j + shift .. len-1; its full vector (leading 1
 * included) is refl[offs[j] .. offs[j] + len - j - shift). Rows are taken in small blocks so a block stays in
 * cache while every reflector streams past it once.
 */
export function applyReflectorsToRows(
  x: Float64Array,
  rows: number,
  len: number,
  refl: Float64Array,
  offs: Int32Array,
  tau: Float64Array,
  count: number,
  shift: number,
): void {
  const block = 8;
  for (let r0 = 0; r0 < rows; r0 += block) {
    const r1 = Math.min(rows, r0 + block);
    for (let j = count - 1; j >= 0; j--) {
      const t = tau[j];
      if (t === 0) continue;
      const s = j + shift;
      const o = offs[j] - s;
      let r = r0;
      // Four rows per pass: each reflector entry is loaded once for all four, and the sums run side by side.
      for (; r + 3 < r1; r += 4) {
        const b0 = r * len;
        const b1 = b0 + len;
        const b2 = b1 + len;
        const b3 = b2 + len;
        let d0 = 0;
        let d1 = 0;
        let d2 = 0;
        let d3 = 0;
        for (let c = s; c < len; c++) {
          const v = refl[o + c];
          d0 += v * x[b0 + c];
          d1 += v * x[b1 + c];
          d2 += v * x[b2 + c];
          d3 += v * x[b3 + c];
        }
        const f0 = d0 * t;
        const f1 = d1 * t;
        const f2 = d2 * t;
        const f3 = d3 * t;
        for (let c = s; c < len; c++) {
          const v = refl[o + c];
          x[b0 + c] -= f0 * v;
          x[b1 + c] -= f1 * v;
          x[b2 + c] -= f2 * v;
          x[b3 + c] -= f3 * v;
        }
      }
      for (; r < r1; r++) {
        const b = r * len;
        let d = 0;
        for (let c = s; c < len; c++) d += refl[o + c] * x[b + c];
        const f = d * t;
        if (f !== 0) for (let c = s; c < len; c++) x[b + c] -= f * refl[o + c];
      }
    }
  }
}

/** Copies the reflectors left by householderQr/bidiagonalise (columns) into one contiguous buffer. */
export function packColumnReflectors(
  a: Float64Array,
  p: number,
  n: number,
  count: number,
  offs: Int32Array,
): Float64Array {
  let total = 0;
  for (let j = 0; j < count; j++) total += p - j;
  const out = new Float64Array(total);
  let o = 0;
  for (let j = 0; j < count; j++) {
    offs[j] = o;
    out[o] = 1;
    for (let i = j + 1; i < p; i++) out[o + i - j] = a[i * n + j];
    o += p - j;
  }
  return out;
}

/** Copies the right reflectors left by bidiagonalise (rows, acting on indices j+1..) into one buffer. */
export function packRowReflectors(a: Float64Array, n: number, offs: Int32Array): Float64Array {
  let total = 0;
  for (let j = 0; j + 1 < n; j++) total += n - j - 1;
  const out = new Float64Array(total);
  let o = 0;
  for (let j = 0; j + 1 < n; j++) {
    offs[j] = o;
    out[o] = 1;
    for (let c = j + 2; c < n; c++) out[o + c - j - 1] = a[j * n + c];
    o += n - j - 1;
  }
  return out;
}
