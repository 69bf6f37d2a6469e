/**
 * Choosing the tfjs backend the engine computes on.
 *
 * `auto` prefers tensorflow (only if the user installed @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node)
 * > webgpu (Dawn through the `webgpu` package, if a GPU adapter exists) > wasm > cpu.
 * `tf.setBackend` returns false and silently keeps the previous backend when initialisation fails, so every
 * choice is verified with `tf.getBackend()`. An explicit request that cannot be met is a BackendError that
 * names the backend, the reason and how to enable it.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf';
import { registerWasmKernels } from './kernels/wasm-extra';
import { simdKernels } from './kernels/simd/module';
import { useBlasProducts, type BlasProducts } from './kernels/blas-matmul';
import { blasStatus, loadBlas } from './linalg/blas';
import { gemmRunner } from './linalg/blas-pool';
import { MAX_WASM_THREADS, threadsPerTrainer } from '../runs/threads';

export type BackendRequest = 'auto' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  /** The tfjs backend now active: 'tensorflow' | 'webgpu' | 'wasm' | 'cpu'. */
  name: string;
  requested: BackendRequest;
  /** Adapter or library description, e.g. "NVIDIA H200 (vulkan)" or "WebAssembly SIMD, 1 thread". */
  device: string;
  isGpu: boolean;
  /** Why faster backends (or native matrix products) were passed over, one line each. */
  fallbacks: string[];
  /** What the wasm backend's matrix products run on: `blas:openblas`, `blas:accelerate`, ... or `wasm`. */
  matmul?: string;
}

export class BackendError extends Error {
  constructor(
    readonly backend: string,
    readonly reason: string,
    readonly hint: string,
  ) {
    super(`backend '${backend}' is not available: ${reason}. ${hint}`);
    this.name = 'BackendError';
  }
}

interface Attempt {
  ok: boolean;
  device?: string;
  isGpu?: boolean;
  reason?: string;
  hint?: string;
  matmul?: string;
  /** Why the matrix products are not native. */
  matmulReason?: string;
}

const HINTS = {
  tensorflow:
    'Install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node next to Sculpt; their installer downloads libtensorflow, so it needs network access.',
  webgpu:
    'It needs the `webgpu` package (or SCULPT_DAWN_NODE=/path/to/dawn.node), a Vulkan loader (libvulkan1) and a GPU driver that exposes Vulkan; see the README GPU notes.',
  wasm: 'Reinstall Sculpt so that the tfjs-backend-wasm .wasm files are present beside the bundle or in node_modules.',
  cpu: 'The cpu backend is bundled; this should not happen.',
} as const;

export async function selectBackend(request: BackendRequest = 'auto'): Promise<BackendInfo> {
  if (!BACKEND_REQUESTS.includes(request)) {
    throw new BackendError(String(request), 'unknown backend name', `Use one of: ${BACKEND_REQUESTS.join(', ')}.`);
  }
  const order: Exclude<BackendRequest, 'auto'>[] =
    request === 'auto' ? ['tensorflow', 'webgpu', 'wasm', 'cpu'] : [request];
  if (order.includes('wasm')) wasmThreads(); // a bad SCULPT_WASM_THREADS is an error, not a reason to fall back
  const fallbacks: string[] = [];
  for (const name of order) {
    const attempt = await tryBackend(name, request === 'auto');
    if (attempt.ok) {
      if (attempt.matmulReason) fallbacks.push(`blas: ${attempt.matmulReason}`);
      const info: BackendInfo = {
        name,
        requested: request,
        device: attempt.device ?? name,
        isGpu: attempt.isGpu ?? false,
        fallbacks,
      };
      return attempt.matmul ? { ...info, matmul: attempt.matmul } : info;
    }
    if (request !== 'auto')
      throw new BackendError(name, attempt.reason ?? 'initialisation failed', attempt.hint ?? HINTS[name]);
    fallbacks.push(`${name}: ${attempt.reason}`);
  }
  throw new BackendError('auto', `no backend could be initialised (${fallbacks.join('; ')})`, HINTS.cpu);
}

async function tryBackend(name: Exclude<BackendRequest, 'auto'>, auto: boolean): Promise<Attempt> {
  try {
    switch (name) {
      case 'tensorflow':
        return await tryTensorflow();
      case 'webgpu':
        return await tryWebgpu(auto);
      case 'wasm':
        return await tryWasm();
      case 'cpu':
        return await activate('cpu', 'JavaScript (tfjs-backend-cpu)', false);
    }
  } catch (e) {
    return { ok: false, reason: (e as Error).message, hint: HINTS[name] };
  }
}

/** Sets the backend and checks that it really is the active one. */
async function activate(name: string, device: string, isGpu: boolean): Promise<Attempt> {
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) {
    return { ok: false, reason: `tf.setBackend('${name}') failed (active backend: ${tf.getBackend()})` };
  }
  return { ok: true, device, isGpu };
}

// ---------------------------------------------------------------------------------------------- tensorflow

/** A real Node `require`, for packages that exist only when the user installed them (never bundled). */
const optionalRequire: NodeRequire = createRequire(__filename);

async function tryTensorflow(): Promise<Attempt> {
  const errors: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      optionalRequire(pkg);
      const res = await activate('tensorflow', `libtensorflow via ${pkg}`, pkg.endsWith('-gpu'));
      if (res.ok) return res;
      errors.push(`${pkg}: ${res.reason}`);
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0];
      errors.push(/Cannot find module/.test(msg) ? `${pkg} is not installed` : `${pkg}: ${msg}`);
    }
  }
  return { ok: false, reason: errors.join('; ') };
}

// ---------------------------------------------------------------------------------------------- webgpu

interface DawnModule {
  create(flags: string[]): { requestAdapter(opts?: unknown): Promise<GpuAdapterLike | null> };
  globals: Record<string, unknown>;
}
interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
  isFallbackAdapter?: boolean;
}

/** CPU implementations of Vulkan (SwiftShader, lavapipe): correct, but slower than the wasm backend. */
export function isSoftwareAdapter(adapter: GpuAdapterLike): boolean {
  const info = adapter.info ?? {};
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return adapter.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe|software/i.test(text);
}

/** Where dawn.node is: SCULPT_DAWN_NODE, else the `webgpu` package's prebuilt binary for this platform. */
export function locateDawn(): string {
  const override = process.env.SCULPT_DAWN_NODE;
  if (override) {
    if (!existsSync(override)) throw new Error(`SCULPT_DAWN_NODE points to ${override}, which does not exist`);
    return override;
  }
  let pkgDir: string;
  try {
    pkgDir = dirname(optionalRequire.resolve('webgpu/package.json'));
  } catch {
    throw new Error('the optional `webgpu` package is not installed');
  }
  const platform = process.platform === 'darwin' ? 'darwin-universal' : `${process.platform}-${process.arch}`;
  const file = join(pkgDir, 'dist', platform, 'dawn.node');
  if (!existsSync(file)) throw new Error(`the webgpu package has no Dawn binary for ${platform} (${file})`);
  return file;
}

/** Dawn on Linux reaches the GPU through Vulkan; without the loader it can only print a warning and fail. */
function findVulkanLoader(): string | undefined {
  if (process.platform !== 'linux') return 'n/a';
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d),
    `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`,
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  return dirs.map((d) => join(d, 'libvulkan.so.1')).find((f) => existsSync(f));
}

/** Dawn is initialised once per process: a second instance beside the first can abort the process at exit. */
let webgpuReady: Attempt | null = null;

async function tryWebgpu(auto: boolean): Promise<Attempt> {
  if (webgpuReady) {
    if (auto && !webgpuReady.isGpu)
      return { ok: false, reason: 'Dawn found only a software adapter (a CPU Vulkan driver), slower than wasm' };
    return activate('webgpu', webgpuReady.device!, webgpuReady.isGpu!);
  }
  const dawnPath = locateDawn();
  if (!findVulkanLoader()) return { ok: false, reason: 'no Vulkan loader (libvulkan.so.1) was found' };
  const dawn = optionalRequire(dawnPath) as DawnModule;
  // The tfjs webgpu backend registers itself at import time only if navigator.gpu exists, so the
  // globals must be in place before it is loaded.
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { ok: false, reason: `Dawn (${dawnPath}) found no GPU adapter` };
  // `auto` wants speed: a software adapter computes correctly but slower than wasm, so only an explicit
  // `webgpu` request (tests of the WGSL kernels, debugging) runs on one.
  const software = isSoftwareAdapter(adapter);
  if (software && auto)
    return { ok: false, reason: 'Dawn found only a software adapter (a CPU Vulkan driver), slower than wasm' };
  const g = globalThis as unknown as { navigator?: Record<string, unknown> };
  if (!g.navigator) g.navigator = {};
  Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  await import('@tensorflow/tfjs-backend-webgpu');
  const info = adapter.info ?? {};
  const device =
    [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' ') || 'WebGPU adapter';
  const res = await activate('webgpu', `${device} (Dawn${software ? ', software' : ''})`, !software);
  if (res.ok) webgpuReady = res;
  return res;
}

// ---------------------------------------------------------------------------------------------- wasm

let wasmPathsSet = false;

/** The .wasm files are copied beside the bundles by esbuild.mjs; in tests they come from node_modules. */
export function locateWasmDir(): string {
  const candidates = [__dirname];
  try {
    candidates.push(join(dirname(optionalRequire.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist'));
  } catch {
    // not resolvable from here: only the bundle directory remains
  }
  const dir = candidates.find((d) => existsSync(join(d, 'tfjs-backend-wasm-simd.wasm')));
  if (!dir) throw new Error(`tfjs-backend-wasm-simd.wasm not found in ${candidates.join(' or ')}`);
  return dir;
}

/**
 * Threads for the wasm backend's XNNPACK pool: SCULPT_WASM_THREADS (set by launchers that run several trainers
 * at once, so they share the cores), else every core this process may use. Threads under Node need the bundle
 * built with scripts/build/wasm-threads.mjs (tfjs hands its workers Blob URLs otherwise).
 */
export function wasmThreads(): number {
  const raw = process.env.SCULPT_WASM_THREADS;
  if (raw === undefined || raw === '') return threadsPerTrainer(1);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
    // Checked before any backend is tried: in `auto` a bad value would otherwise end in a silent fall back to cpu.
    throw new BackendError(
      'wasm',
      `SCULPT_WASM_THREADS is '${raw}'`,
      `Set it to an integer from 1 to ${MAX_WASM_THREADS} (the wasm pool has ${MAX_WASM_THREADS} workers), or unset it to use every core.`,
    );
  }
  return n;
}

async function tryWasm(): Promise<Attempt> {
  if (!wasmPathsSet) {
    setWasmPaths(locateWasmDir() + '/');
    wasmPathsSet = true;
  }
  registerWasmKernels();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = wasmThreads();
  // tfjs reports no thread support under Node; our bundles make its threaded build loadable there.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 1 && simd);
  if (threads > 1) setThreadsCount(threads);
  let res = await activate('wasm', '', false);
  if (!res.ok && threads > 1) {
    // The threaded build did not start (e.g. workers refused): the single-threaded one still serves.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    res = await activate('wasm', '', false);
  }
  if (!res.ok) return res;
  const actual = getThreadsCount();
  // Whether the fused kernels' SIMD module bound to this heap (kernels/simd/module.ts); without it they run in
  // TypeScript, with the same results and about a third more time a step, so the run says which.
  const kernels = simdKernels(tf.backend()) ? 'fused kernels in SIMD' : 'fused kernels in TypeScript';
  return {
    ...res,
    device: `WebAssembly${simd ? ' SIMD' : ''}, ${actual} thread${actual === 1 ? '' : 's'}, ${kernels}`,
    ...nativeProducts(threads),
  };
}

/**
 * Matrix products on a native BLAS where one loads (SCULPT_BLAS, see linalg/blas.ts), else tfjs's wasm kernels.
 * The products get as many threads as the wasm pool: they and the other kernels never run at once.
 */
function nativeProducts(threads: number): Pick<Attempt, 'matmul' | 'matmulReason'> {
  const blas = loadBlas();
  if (blas && (products?.blas !== blas || products.runner.threads !== threads)) {
    products?.runner.dispose();
    products = { blas, runner: gemmRunner(blas, threads) };
  }
  useBlasProducts(blas ? products : null);
  const status = blasStatus();
  return { matmul: status.matmul, matmulReason: status.reason };
}

/** The BLAS and its threads, kept across backend selections. */
let products: BlasProducts | null = null;
