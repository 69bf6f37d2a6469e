/**
 * Loading the optional LAPACK fast path: the system's liblapacke (float64 routines) through the `koffi` FFI
 * package. Both are optional: when either is missing, or SCULPT_LAPACK=0, callers fall back to the
 * TypeScript kernel. SCULPT_LAPACK=/path/to/liblapacke.so picks a specific library.
 */
import { readFileSync } from 'node:fs';
const CANDIDATES = [
  'liblapacke.so.3',
  'liblapacke.so',
  'liblapacke.dylib',
  '/opt/homebrew/opt/lapack/lib/liblapacke.dylib',
  'liblapacke.dll',
];

export interface LapackStatus {
  readonly available: boolean;
  /** The liblapacke that was loaded, e.g. "liblapacke.so.3". */
  readonly library?: string;
  /** The LAPACK/BLAS implementation behind it as mapped into the process (Linux), e.g. ".../openblas-pthread/liblapack.so.3". */
  readonly backend?: string;
  /** Why the fast path is off. */
  readonly reason?: string;
}

export type NativeFn = ((...args: unknown[]) => number) & { async: (...args: unknown[]) => void };

export interface Koffi {
  load(path: string): { func(signature: string): NativeFn };
  alloc(type: string, count: number): unknown;
  free(ptr: unknown): void;
  view(ptr: unknown, bytes: number): ArrayBuffer;
}

/** The LAPACKE routines the SVD paths use (column-major, int32 indices). */
export interface LapackRoutines {
  dgesdd: NativeFn;
  dgeqrf: NativeFn;
  dormqr: NativeFn;
  dgebrd: NativeFn;
  dbdsdc: NativeFn;
  dormbr: NativeFn;
}

export interface LapackBinding extends LapackRoutines {
  koffi: Koffi;
  status: LapackStatus;
}

const SIGNATURES: Record<keyof LapackRoutines, string> = {
  dgesdd:
    'int LAPACKE_dgesdd(int layout, char jobz, int m, int n, double *a, int lda, double *s, double *u, int ldu, double *vt, int ldvt)',
  dgeqrf: 'int LAPACKE_dgeqrf(int layout, int m, int n, double *a, int lda, double *tau)',
  dormqr:
    'int LAPACKE_dormqr(int layout, char side, char trans, int m, int n, int k, double *a, int lda, double *tau, double *c, int ldc)',
  dgebrd:
    'int LAPACKE_dgebrd(int layout, int m, int n, double *a, int lda, double *d, double *e, double *tauq, double *taup)',
  dbdsdc:
    'int LAPACKE_dbdsdc(int layout, char uplo, char compq, int n, double *d, double *e, double *u, int ldu, double *vt, int ldvt, double *q, int *iq)',
  dormbr:
    'int LAPACKE_dormbr(int layout, char vect, char side, char trans, int m, int n, int k, double *a, int lda, double *tau, double *c, int ldc)',
};

let cached: LapackBinding | null | undefined;
let cachedStatus: LapackStatus | undefined;

/** Loads koffi and liblapacke once; never throws. */
function binding(): LapackBinding | null {
  if (cached !== undefined) return cached;
  cached = null;
  const setting = process.env.SCULPT_LAPACK;
  if (setting === '0' || setting === 'false' || setting === 'off') {
    cachedStatus = { available: false, reason: `disabled by SCULPT_LAPACK=${setting}` };
    return null;
  }
  let koffi: Koffi;
  try {
    // Required lazily: koffi is an optional dependency with a native module.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    koffi = require('koffi') as Koffi;
  } catch (err) {
    cachedStatus = { available: false, reason: `the optional koffi package did not load (${firstLine(err)})` };
    return null;
  }
  const candidates = setting && setting !== '1' && setting !== 'auto' ? [setting] : CANDIDATES;
  const failures: string[] = [];
  for (const library of candidates) {
    try {
      const lib = koffi.load(library);
      const routines = Object.fromEntries(
        Object.entries(SIGNATURES).map(([name, signature]) => [name, lib.func(signature)]),
      ) as unknown as LapackRoutines;
      // Matrices are decomposed in parallel, one per core; OpenBLAS's own threads only add contention
      // (single-threaded dgesdd measured as fast as two-threaded on the project's machines).
      try {
        lib.func('void openblas_set_num_threads(int n)')(1);
      } catch {
        // Not OpenBLAS: nothing to configure.
      }
      cached = { ...routines, koffi, status: { available: true, library, backend: mappedLapack() } };
      cachedStatus = cached.status;
      return cached;
    } catch (err) {
      failures.push(`${library}: ${firstLine(err)}`);
    }
  }
  cachedStatus = {
    available: false,
    reason: `no LAPACKE library could be loaded (${failures.join('; ')}); on Debian/Ubuntu: apt-get install liblapacke libopenblas0-pthread`,
  };
  return null;
}

/** Whether the LAPACK fast path is usable, and why not. */
export function lapackStatus(): LapackStatus {
  binding();
  return cachedStatus ?? { available: false, reason: 'not probed' };
}

/** Forgets the probe result so that a changed SCULPT_LAPACK is honoured (tests). */
export function resetLapackProbe(): void {
  cached = undefined;
  cachedStatus = undefined;
}

/** The loaded library, or an error naming the matrix and why LAPACK is unavailable. */
export function requireLapack(what: string): LapackBinding {
  const b = binding();
  if (!b) throw new Error(`${what}: ${lapackStatus().reason}`);
  return b;
}

/** The LAPACK implementation the dynamic loader mapped (Linux only; undefined elsewhere). */
function mappedLapack(): string | undefined {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const libs = new Set(
      maps
        .split('\n')
        .map((l) => l.split(/\s+/)[5] ?? '')
        .filter((p) => /lib(open)?blas|liblapack\.|libmkl|libflame/.test(p)),
    );
    return libs.size ? [...libs].sort().join(', ') : undefined;
  } catch {
    return undefined;
  }
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0];
}
