/**
 * The SIMD kernels of kernels.wat, instantiated on tfjs's own wasm memory: the module imports the backend's
 * WebAssembly.Memory, so a tensor's data is passed as its byte offset in the heap and read and written in place.
 * tfjs's threaded build has a shared memory, its single-threaded one an ordinary memory; the module comes in both
 * flavours (kernels-wasm.ts) and the one matching the memory is instantiated, once per memory.
 *
 * Where the memory cannot be found (a tfjs build that hides it) or the module does not instantiate, simdKernels
 * returns null and the TypeScript kernels serve, with the same results within float32 rounding.
 */
import { PLAIN_MEMORY_WASM, SHARED_MEMORY_WASM } from './kernels-wasm';
import { useWasmFused } from '../webgpu/switches';

/** The exports of kernels.wat; pointers are byte offsets into the wasm heap. */
export interface SimdKernels {
  /** softmaxRow's max of the row it last read. */
  rowMax: WebAssembly.Global;
  /** e = exp(x - max) over one row of n logits (n a multiple of 4); returns Σ e, leaves max in rowMax. */
  softmaxRow(x: number, e: number, n: number): number;
  /** dst = src · s over n floats (n a multiple of 4). */
  scaleRow(src: number, dst: number, n: number, s: number): void;
  /**
   * Attention's causal softmax on rows t0 .. t1 - 1 of one T x T block (T a multiple of 4), in place (see
   * kernels.wat; blas-attention.ts's softmaxRows).
   */
  causalSoftmax(p: number, T: number, t0: number, t1: number): void;
  /** Its backward in place in ds (holding dP): ds = p (ds - rowsum(p ds)) on the causal prefix (all of it if full). */
  causalSoftmaxGrad(p: number, ds: number, T: number, t0: number, t1: number, full: number): void;
  /**
   * The cross-entropy's forward on rows r0 .. r1 - 1 of [rows, n] logits: e = exp(x - max) for rows whose int32
   * target lies in [0, n); Σ e and the max as float64 at stats + 16 r and + 8.
   */
  crossEntropyRows(x: number, e: number, t: number, stats: number, n: number, r0: number, r1: number): void;
  /** Its backward on rows r0 .. r1 - 1: (e / Σ e - onehot) g, zeros on rows without a target. */
  crossEntropyGradRows(
    e: number,
    t: number,
    sums: number,
    out: number,
    g: number,
    n: number,
    r0: number,
    r1: number,
  ): void;
  /** out = a + s · b over n floats (n a multiple of 4); s = -1 gives a - b, rounded as tf's Sub. */
  addScaled(a: number, b: number, out: number, n: number, s: number): void;
  adamw(
    p: number,
    g: number,
    m: number,
    v: number,
    p1: number,
    m1: number,
    v1: number,
    n: number,
    decay: number,
    beta1: number,
    c1: number,
    beta2: number,
    c2: number,
    stepSize: number,
    invBc2: number,
    eps: number,
  ): void;
  normForward(
    x: number,
    w: number,
    b: number,
    y: number,
    rows: number,
    d: number,
    eps: number,
    centered: number,
    hasBias: number,
  ): void;
  normInputGrad(
    x: number,
    w: number,
    dy: number,
    dx: number,
    rows: number,
    d: number,
    eps: number,
    centered: number,
  ): void;
  normWeightGrad(x: number, dy: number, dw: number, rows: number, d: number, eps: number, centered: number): void;
  /** kind 0: silu, 1: gelu_new. */
  activationGrad(x: number, g: number, dy: number, dx: number, n: number, kind: number): void;
  geluArgument(x: number, z: number, n: number): void;
  /** h = (x·g)·u over n floats, each product rounded to float32. */
  gatedForward(x: number, g: number, u: number, h: number, n: number): void;
  /** t = dh·u and du = dh·(x·g) over n floats. */
  gatedGradProducts(x: number, g: number, u: number, dh: number, t: number, du: number, n: number): void;
  /** Strides in bytes. */
  rope(
    x: number,
    c: number,
    s: number,
    y: number,
    B: number,
    T: number,
    H: number,
    D: number,
    cb: number,
    ct: number,
    ch: number,
    sb: number,
    st: number,
    sh: number,
    transposed: number,
  ): void;
}

/** What of tfjs's Emscripten module locates its memory: `wasmMemory` (threaded build) or `asm.memory`. */
interface EmscriptenModuleLike {
  wasmMemory?: WebAssembly.Memory;
  asm?: { memory?: WebAssembly.Memory };
}

const instances = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

/** The tfjs wasm backend's memory, or null. */
export function backendMemory(backend: unknown): WebAssembly.Memory | null {
  const module = (backend as { wasm?: EmscriptenModuleLike } | null)?.wasm;
  const memory = module?.wasmMemory ?? module?.asm?.memory;
  return memory instanceof WebAssembly.Memory ? memory : null;
}

/** The kernels bound to this backend's heap, or null where they cannot be (see the header). */
export function simdKernels(backend: unknown): SimdKernels | null {
  const memory = backendMemory(backend);
  if (!memory) return null;
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    kernels = instantiate(memory);
    instances.set(memory, kernels);
  }
  return kernels;
}

/**
 * What a fused kernel calls: the module for this backend, unless SCULPT_WASM_UNFUSED names `simd` or the operands
 * do not fit its four lanes (`fits` false: a row width, head half or vocabulary not a multiple of 4), in which
 * cases the kernel's TypeScript serves.
 */
export function simdIfEnabled(backend: unknown, fits = true): SimdKernels | null {
  return fits && useWasmFused('simd') ? simdKernels(backend) : null;
}

function instantiate(memory: WebAssembly.Memory): SimdKernels | null {
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  try {
    const bytes = Buffer.from(shared ? SHARED_MEMORY_WASM : PLAIN_MEMORY_WASM, 'base64');
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    return instance.exports as unknown as SimdKernels;
  } catch {
    return null;
  }
}
