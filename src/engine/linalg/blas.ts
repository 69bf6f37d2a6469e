/**
 * Loading the optional native BLAS for the CPU path's matrix products: cblas_sgemm of OpenBLAS (Linux) or
 * Accelerate (macOS) through the `koffi` FFI package, called directly on the wasm heap: koffi gives the address
 * of a typed array's storage (SharedArrayBuffer-backed ones included), so operands are never copied.
 *
 * The library runs single-threaded: OpenBLAS's result for an element depends on how its threads partition the
 * product, and a run must compute the same numbers whatever share of the cores it gets (a resumed run beside
 * other runs, say). Parallelism comes from cutting each product into blocks fixed by its shape (blas-pool.ts).
 *
 * SCULPT_BLAS: `auto` (default) tries the libraries below; `off` keeps tfjs's wasm kernels; a path loads that
 * library (any CBLAS). When koffi or the library is missing the wasm kernels serve, and the reason is kept.
 */
import { basename } from 'node:path';
import type { NativeFn } from './lapack';

/** Optimised BLAS builds only: a reference BLAS is slower than the wasm kernels, so it is used only by path. */
const CANDIDATES = [
  'libopenblas.so.0',
  'libopenblas.so',
  '/System/Library/Frameworks/Accelerate.framework/Accelerate',
  '/opt/homebrew/opt/openblas/lib/libopenblas.dylib',
  'libopenblas.dll',
];

/** The cblas_sgemm declaration, shared with the pool's workers; pointers are addresses (BigInt). */
export const SGEMM_SIGNATURE =
  'void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, void *a, int lda, void *b, int ldb, float beta, void *c, int ldc)';
export const ROW_MAJOR = 101;
export const NO_TRANS = 111;
export const TRANS = 112;

/**
 * C = alpha op(A) op(B) + beta C (alpha 1 unless given) on row-major matrices at native addresses, leading
 * dimensions explicit; `count` such products (default 1) whose matrices follow each other
 * `strideA`/`strideB`/`strideC` bytes apart.
 */
export interface GemmJob {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  a: number;
  lda: number;
  b: number;
  ldb: number;
  beta: number;
  c: number;
  ldc: number;
  alpha?: number;
  count?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
}

export interface BlasStatus {
  readonly available: boolean;
  /** What the run-started event reports: `blas:openblas`, `blas:accelerate`, `blas:<library>`, or `wasm`. */
  readonly matmul: string;
  /** The library as loaded, e.g. "libopenblas.so.0". */
  readonly library?: string;
  /** OpenBLAS's build description (version, kernel), when it reports one. */
  readonly config?: string;
  /** Why the wasm kernels serve instead. */
  readonly reason?: string;
}

export interface Blas {
  readonly status: BlasStatus;
  /** The library and koffi's module path, for worker threads that bind the same function. */
  readonly library: string;
  readonly koffiPath: string;
  /** The native address of a typed array's first element (valid until its memory moves). */
  address(view: ArrayBufferView): number;
  /** One sgemm on the calling thread. */
  gemm(job: GemmJob): void;
}

interface KoffiLike {
  load(path: string): { func(signature: string): NativeFn };
  address(value: unknown): bigint;
}

let cached: Blas | null | undefined;
let cachedStatus: BlasStatus | undefined;

/** The BLAS SCULPT_BLAS asks for, loaded once; null (with blasStatus() saying why) when there is none. */
export function loadBlas(): Blas | null {
  if (cached !== undefined) return cached;
  cached = null;
  const setting = (process.env.SCULPT_BLAS ?? '').trim();
  const off = (reason: string): null => {
    cachedStatus = { available: false, matmul: 'wasm', reason };
    return null;
  };
  if (['off', '0', 'false', 'none', 'wasm'].includes(setting.toLowerCase()))
    return off(`disabled by SCULPT_BLAS=${setting}`);
  let koffi: KoffiLike;
  let koffiPath: string;
  try {
    // Required lazily: koffi is an optional dependency with a native module.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    koffi = require('koffi') as KoffiLike;
    koffiPath = require.resolve('koffi');
  } catch (err) {
    return off(`the optional koffi package did not load (${firstLine(err)})`);
  }
  const auto = ['', 'auto', 'on', '1', 'true'].includes(setting.toLowerCase());
  const failures: string[] = [];
  for (const library of auto ? CANDIDATES : [setting]) {
    try {
      cached = bind(koffi, koffiPath, library);
      cachedStatus = cached.status;
      return cached;
    } catch (err) {
      failures.push(`${library}: ${firstLine(err)}`);
    }
  }
  return off(
    auto
      ? `no BLAS library could be loaded (${failures.join('; ')}); on Debian/Ubuntu: apt-get install libopenblas0-pthread`
      : `SCULPT_BLAS=${setting} could not be loaded (${failures.join('; ')}); set it to a CBLAS library, auto or off`,
  );
}

/** Whether native products are available, and why not. */
export function blasStatus(): BlasStatus {
  loadBlas();
  return cachedStatus ?? { available: false, matmul: 'wasm', reason: 'not probed' };
}

/** Forgets the probe result so that a changed SCULPT_BLAS is honoured (tests). The library stays mapped. */
export function resetBlasProbe(): void {
  cached = undefined;
  cachedStatus = undefined;
}

function bind(koffi: KoffiLike, koffiPath: string, library: string): Blas {
  // Accelerate reads its thread limit when it first runs; single-threaded for the reason in the header.
  if (/Accelerate/.test(library)) process.env.VECLIB_MAXIMUM_THREADS ??= '1';
  const lib = koffi.load(library);
  const sgemm = lib.func(SGEMM_SIGNATURE);
  const optional = (signature: string): NativeFn | null => {
    try {
      return lib.func(signature);
    } catch {
      return null;
    }
  };
  optional('void openblas_set_num_threads(int n)')?.(1);
  const getConfig = optional('const char *openblas_get_config()');
  const name = /Accelerate/.test(library)
    ? 'accelerate'
    : getConfig
      ? 'openblas'
      : basename(library)
          .replace(/^lib/, '')
          .replace(/\.(so|dylib|dll).*$/, '');
  return {
    status: {
      available: true,
      matmul: `blas:${name}`,
      library,
      config: getConfig ? String(getConfig() as unknown).trim() : undefined,
    },
    library,
    koffiPath,
    address: (view) => Number(koffi.address(view)),
    gemm(j) {
      const [ta, tb] = [j.transA ? TRANS : NO_TRANS, j.transB ? TRANS : NO_TRANS];
      for (let i = 0; i < (j.count ?? 1); i++) {
        const a = BigInt(j.a + i * (j.strideA ?? 0));
        const b = BigInt(j.b + i * (j.strideB ?? 0));
        const c = BigInt(j.c + i * (j.strideC ?? 0));
        sgemm(ROW_MAJOR, ta, tb, j.m, j.n, j.k, j.alpha ?? 1, a, j.lda, b, j.ldb, j.beta, c, j.ldc);
      }
    },
  };
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0];
}
