/**
 * Shared shapes of the linear-algebra module. Matrices cross module (and thread) boundaries as row-major
 * typed arrays with explicit dimensions, so no wrapper class is needed on the hot paths.
 */

/** A dense row-major matrix: element (i, j) is data[i * cols + j]. */
export interface DenseMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array | Float64Array;
  /** Used in error messages, e.g. "h.3.attn.c_attn.weight". */
  readonly name?: string;
}

/** Which implementation produced a decomposition. */
export type SvdPath = 'lapack' | 'ts';

/**
 * Thin SVD W = U diag(S) Vᵀ of an m x n matrix, r = min(m, n), all float64 and row-major:
 * U is m x r, V is n x r, S holds r singular values in descending order, all >= 0.
 * With `vectors = k < r`, U and V hold only the leading k columns (m x k, n x k) while S keeps all r values.
 */
export interface Svd {
  readonly m: number;
  readonly n: number;
  /** Number of singular-vector columns held in U and V. */
  readonly k: number;
  readonly U: Float64Array;
  readonly S: Float64Array;
  readonly V: Float64Array;
  readonly path: SvdPath;
}

export interface SvdOptions {
  /**
   * 'auto' (default) uses LAPACK when it loads and SCULPT_LAPACK is not '0'; 'lapack' requires it;
   * 'ts' forces the portable TypeScript path.
   */
  readonly path?: 'auto' | SvdPath;
  /** Number of leading singular vectors to return (default: all r). Every singular value is always returned. */
  readonly vectors?: number;
}

export interface SvdBatchOptions extends SvdOptions {
  /** Decompositions run at once (default: the number of CPU cores the process may use). */
  readonly threads?: number;
  /** Per-matrix vector counts, overriding `vectors` (same order as the inputs). */
  readonly vectorsPerMatrix?: readonly number[];
}

/** Describes a matrix for error messages: `"name" (768 x 2304)` or `768 x 2304 matrix`. */
export function describeMatrix(rows: number, cols: number, name?: string): string {
  return name ? `"${name}" (${rows} x ${cols})` : `${rows} x ${cols} matrix`;
}

/** Validates the dimensions and buffer length of a row-major matrix; throws naming the matrix otherwise. */
export function checkMatrix(a: DenseMatrix): void {
  const { rows, cols, data, name } = a;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new RangeError(`SVD input ${describeMatrix(rows, cols, name)}: expected positive integer dimensions`);
  }
  if (data.length !== rows * cols) {
    throw new RangeError(
      `SVD input ${describeMatrix(rows, cols, name)}: expected ${rows * cols} elements (row-major), got ${data.length}`,
    );
  }
}

/** Resolves the requested number of singular vectors against r = min(m, n). */
export function vectorCount(a: DenseMatrix, requested: number | undefined): number {
  const r = Math.min(a.rows, a.cols);
  if (requested === undefined) return r;
  if (!Number.isInteger(requested) || requested < 0 || requested > r) {
    throw new RangeError(
      `SVD input ${describeMatrix(a.rows, a.cols, a.name)}: expected 0 <= vectors <= ${r}, got ${requested}`,
    );
  }
  return requested;
}
