/**
 * Causal attention on the native BLAS for the wasm backend, the counterpart of webgpu/attention.ts. As tf ops a
 * layer's attention is transposes of q, k, v to heads and of the output back, a scale, two batched products, the
 * bias add and the softmax, and the same again backwards: in an answer-only step of the base model about a fifth
 * of the time, mostly in kernels that move data. Here q, k, v stay in the projections' layout [B, T, heads, hd]:
 * each head's rows are a matrix with leading dimension heads·hd, which sgemm reads in place, so nothing is
 * transposed. Per batch row b and query head h (kv head g = ⌊h / G⌋):
 *
 *   forward   S = scale · Q_bh K_bgᵀ + bias,  P = softmax(S) (kept for the backward),  O_bh = P V_bg
 *   backward  dP = dO_bh V_bgᵀ,  dS = P ⊙ (dP - rowsum(P ⊙ dP)),  dQ_bh = scale · dS K_bg,
 *             dK_bg += scale · dSᵀ Q_bh,  dV_bg += Pᵀ dO_bh
 *
 * The bias is the decoder's: MASKED on keys after the query (causal) and MASKED again on padded keys, so a row
 * with every key masked gets the same softmax as the tf ops. Where T fits the SIMD module's lanes the softmax and
 * its backward run there, one call per head's T x T block (causalSoftmax, causalSoftmaxGrad: a call per row from
 * here cost more than the arithmetic). The products of each phase run at
 * once on the products' threads; the gradients of the G query heads that share a kv head accumulate in one chain,
 * on one thread, in head order, so the numbers do not depend on the thread count.
 *
 * Used for full forwards (no decoding cache) on the wasm backend while its products run on a BLAS
 * (layers.ts's attention decides; SCULPT_WASM_UNFUSED=attention keeps the tf ops).
 */
import { tf } from '../tf';
import type { GemmJob } from '../linalg/blas';
import { blasProducts } from './blas-matmul';
import { MASKED } from './masked';
import { simdIfEnabled, type SimdKernels } from './simd/module';
import { registerHeapKernels, type WasmHeapBackend } from './wasm-heap';

const FORWARD = 'SculptBlasAttention';
const BACKWARD = 'SculptBlasAttentionGrad';

interface Attrs {
  scale: number;
}

/** Attention calls this path has served in this process (what tests check it by). */
export const blasAttentionServed = { count: 0 };

export function registerBlasAttention(): void {
  registerHeapKernels({
    [FORWARD]: (b, inputs, attrs) => forward(b, inputs, (attrs as unknown as Attrs).scale),
    [BACKWARD]: (b, inputs, attrs) => backward(b, inputs, (attrs as unknown as Attrs).scale),
  });
}

/**
 * softmax(scale · q kᵀ + causal and padding bias) v for q [B,T,H,hd], k/v [B,T,KV,hd] (H = KV·G); keyValid
 * [B,T] is 1 for a token, 0 for padding, or null. Returns [B,T,H,hd]; differentiable in q, k, v.
 */
export function blasAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  keyValid: tf.Tensor2D | null,
  scale: number,
): tf.Tensor4D {
  const [B, T, H, hd] = q.shape;
  const KV = k.shape[2];
  if (k.shape[0] !== B || k.shape[1] !== T || k.shape[3] !== hd || H % KV !== 0 || !sameShape(k, v))
    throw new RangeError(`attention: q [${q.shape}] with k [${k.shape}] and v [${v.shape}]`);
  if (keyValid && (keyValid.shape[0] !== B || keyValid.shape[1] !== T))
    throw new RangeError(`attention: key mask [${keyValid.shape}] for a batch [${B}, ${T}]`);
  const valid = keyValid ? keyValid.toFloat() : tf.ones([B, T]);
  const attend = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qi, ki, vi, validIn] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor2D];
    const save = args[4] as tf.GradSaveFunc;
    const [out, probs] = tf.engine().runKernel(FORWARD, { q: qi, k: ki, v: vi, valid: validIn }, {
      scale,
    } as never) as unknown as tf.Tensor[];
    save([qi, ki, vi, probs, validIn]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sq, sk, sv, sp, sValid] = saved;
      const grads = tf.engine().runKernel(BACKWARD, { dy, q: sq, k: sk, v: sv, p: sp, valid: sValid }, {
        scale,
      } as never) as unknown as tf.Tensor[];
      return [...grads, tf.zerosLike(sValid)];
    };
    return { value: out as tf.Tensor4D, gradFunc };
  });
  const result = attend(q, k, v, valid) as tf.Tensor4D;
  if (valid !== keyValid) valid.dispose();
  blasAttentionServed.count++;
  return result;
}

function sameShape(a: tf.Tensor, b: tf.Tensor): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}

/** Float offsets of head h's first row in a [B,T,heads,hd] tensor. */
const headBase = (b: number, T: number, heads: number, hd: number, h: number) => (b * T * heads + h) * hd;

/** alpha · A Bᵀ of two heads' rows (T x hd each, rows lda and ldb floats apart) into a contiguous T x T matrix. */
function rowsTimesRows(
  T: number,
  hd: number,
  alpha: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  c: number,
): GemmJob {
  return { transA: false, transB: true, m: T, n: T, k: hd, alpha, a, lda, b, ldb, beta: 0, c, ldc: T };
}

/** alpha · op(S) X + beta C: a contiguous T x T matrix S (op: transposed or not) times a head's rows X. */
function squareTimesHead(
  T: number,
  hd: number,
  transposeS: boolean,
  alpha: number,
  s: number,
  x: number,
  ldx: number,
  beta: number,
  c: number,
  ldc: number,
): GemmJob {
  return { transA: transposeS, transB: false, m: T, n: hd, k: T, alpha, a: s, lda: T, b: x, ldb: ldx, beta, c, ldc };
}

function input(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const t = inputs[name];
  if (!t) throw new Error(`attention kernel: input ${name} missing`);
  return t;
}

function products() {
  const p = blasProducts();
  if (!p) throw new Error('attention kernel: no BLAS in use (layers.ts checks first)');
  return p;
}

function forward(b: WasmHeapBackend, inputs: tf.NamedTensorInfoMap, scale: number): tf.TensorInfo[] {
  const { blas, runner } = products();
  const [q, k, v, validInfo] = ['q', 'k', 'v', 'valid'].map((n) => input(inputs, n));
  const [B, T, H, hd] = q.shape;
  const KV = k.shape[2];
  const G = H / KV;
  const out = b.makeOutput([B, T, H, hd], 'float32');
  const probs = b.makeOutput([B, H, T, T], 'float32');
  const heap = (t: tf.TensorInfo) => b.typedArrayFromHeap(t) as Float32Array;
  const [Q, K, V, O, P] = [q, k, v, out, probs].map((t) => blas.address(heap(t)));
  const p = heap(probs);
  const valid = heap(validInfo);
  const scores: GemmJob[] = [];
  const values: GemmJob[] = [];
  for (let bi = 0; bi < B; bi++)
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / G);
      const pOff = 4 * (bi * H + h) * T * T;
      const qOff = 4 * headBase(bi, T, H, hd, h);
      const kvOff = 4 * headBase(bi, T, KV, hd, g);
      scores.push(rowsTimesRows(T, hd, scale, Q + qOff, H * hd, K + kvOff, KV * hd, P + pOff));
      values.push(squareTimesHead(T, hd, false, 1, P + pOff, V + kvOff, KV * hd, 0, O + qOff, H * hd));
    }
  runner.run(scores);
  softmaxRows(simdIfEnabled(b, T % 4 === 0), p, valid, B, H, T);
  runner.run(values);
  return [out, probs];
}

/**
 * Row-wise softmax of the scores in place, as softmax(S + bias) with the decoder's bias. A row with a key it may
 * see (at or before the query, not padding) gives every masked key exactly 0, as the tf ops do (exp of about -1e9
 * below the row's max underflows): those rows are computed on their causal prefix alone, masked keys in it set to
 * MASKED, in the SIMD module where it serves (the prefix rounded up to its four lanes). A row with every key masked
 * (a padding query) adds MASKED per mask, as the bias does, and takes the softmax of the whole row.
 */
function softmaxRows(
  simd: SimdKernels | null,
  p: Float32Array,
  valid: Float32Array,
  B: number,
  H: number,
  T: number,
): void {
  const firstValid = firstValidKeys(valid, B, T);
  for (let bi = 0; bi < B; bi++) {
    const padded: number[] = [];
    for (let j = 0; j < T; j++) if (valid[bi * T + j] === 0) padded.push(j);
    for (let h = 0; h < H; h++) {
      const block = (bi * H + h) * T * T;
      for (let t = 0; t < firstValid[bi]; t++) maskedRow(p, block + t * T, valid, bi, t, T);
      for (let t = firstValid[bi]; t < T; t++)
        for (const j of padded) {
          if (j > t) break;
          p[block + t * T + j] = MASKED;
        }
      if (simd) {
        // The rows below in one call: causalSoftmax is this loop's SIMD branch, row by row the same numbers.
        simd.causalSoftmax(p.byteOffset + 4 * block, T, firstValid[bi], T);
        continue;
      }
      for (let t = firstValid[bi]; t < T; t++) {
        const row = block + t * T;
        let max = -Infinity;
        for (let j = 0; j <= t; j++) max = Math.max(max, p[row + j]);
        let sum = 0;
        for (let j = 0; j <= t; j++) sum += p[row + j] = Math.exp(p[row + j] - max);
        for (let j = 0; j <= t; j++) p[row + j] /= sum;
        p.fill(0, row + t + 1, row + T);
      }
    }
  }
}

/** Per batch row, its first key that is not padding (T if none): queries before it see no key (every one masked). */
function firstValidKeys(valid: Float32Array, B: number, T: number): number[] {
  return Array.from({ length: B }, (_, bi) => {
    const j = valid.subarray(bi * T, (bi + 1) * T).findIndex((x) => x !== 0);
    return j < 0 ? T : j;
  });
}

/** A row with every key masked: the scores plus MASKED for each mask, then the softmax of the whole row. */
function maskedRow(p: Float32Array, row: number, valid: Float32Array, bi: number, t: number, T: number): void {
  for (let j = 0; j < T; j++) {
    let s = p[row + j];
    if (j > t) s += MASKED;
    if (valid[bi * T + j] === 0) s += MASKED;
    p[row + j] = s;
  }
  let max = -Infinity;
  for (let j = 0; j < T; j++) max = Math.max(max, p[row + j]);
  let sum = 0;
  for (let j = 0; j < T; j++) sum += p[row + j] = Math.exp(p[row + j] - max);
  for (let j = 0; j < T; j++) p[row + j] /= sum;
}

function backward(b: WasmHeapBackend, inputs: tf.NamedTensorInfoMap, scale: number): tf.TensorInfo[] {
  const { blas, runner } = products();
  const [dy, q, k, v, probs, validInfo] = ['dy', 'q', 'k', 'v', 'p', 'valid'].map((n) => input(inputs, n));
  const [B, T, H, hd] = q.shape;
  const KV = k.shape[2];
  const G = H / KV;
  const dq = b.makeOutput([B, T, H, hd], 'float32');
  const dk = b.makeOutput([B, T, KV, hd], 'float32');
  const dv = b.makeOutput([B, T, KV, hd], 'float32');
  const dsInfo = b.makeOutput([B, H, T, T], 'float32');
  const heap = (t: tf.TensorInfo) => b.typedArrayFromHeap(t) as Float32Array;
  const [DY, Q, K, V, P, DQ, DK, DV, DS] = [dy, q, k, v, probs, dq, dk, dv, dsInfo].map((t) => blas.address(heap(t)));
  // dP = dO Vᵀ per head, then dS in place.
  const dpJobs: GemmJob[] = [];
  for (let bi = 0; bi < B; bi++)
    for (let h = 0; h < H; h++)
      dpJobs.push(
        rowsTimesRows(
          T,
          hd,
          1,
          DY + 4 * headBase(bi, T, H, hd, h),
          H * hd,
          V + 4 * headBase(bi, T, KV, hd, Math.floor(h / G)),
          KV * hd,
          DS + 4 * (bi * H + h) * T * T,
        ),
      );
  runner.run(dpJobs);
  const p = heap(probs);
  const ds = heap(dsInfo);
  const valid = heap(validInfo);
  const firstValid = firstValidKeys(valid, B, T);
  const simd = simdIfEnabled(b, T % 4 === 0);
  for (let block = 0; block < B * H; block++) {
    // Keys after the query have P = 0, so dS = 0 there, unless the row had every key masked (softmaxRows): those
    // rows, before the batch row's first valid key, take the whole row.
    const fv = firstValid[Math.floor(block / H)];
    const at = block * T * T;
    if (simd) {
      const [pAt, dsAt] = [p.byteOffset + 4 * at, ds.byteOffset + 4 * at];
      if (fv > 0) simd.causalSoftmaxGrad(pAt, dsAt, T, 0, fv, 1);
      simd.causalSoftmaxGrad(pAt, dsAt, T, fv, T, 0);
      continue;
    }
    for (let t = 0; t < T; t++) {
      const row = at + t * T;
      const end = t < fv ? T : t + 1;
      let dot = 0;
      for (let j = 0; j < end; j++) dot += p[row + j] * ds[row + j];
      for (let j = 0; j < end; j++) ds[row + j] = p[row + j] * (ds[row + j] - dot);
      ds.fill(0, row + end, row + T);
    }
  }
  // dQ per head; dK and dV per kv head, its G query heads accumulated in order in one chain.
  const chains: GemmJob[][] = [];
  for (let bi = 0; bi < B; bi++)
    for (let g = 0; g < KV; g++) {
      const kvOff = 4 * headBase(bi, T, KV, hd, g);
      const chain: GemmJob[] = [];
      for (let h = g * G; h < (g + 1) * G; h++) {
        const qOff = 4 * headBase(bi, T, H, hd, h);
        const pOff = 4 * (bi * H + h) * T * T;
        const beta = h === g * G ? 0 : 1;
        chain.push(
          // dQ_bh = scale · dS K_bg
          squareTimesHead(T, hd, false, scale, DS + pOff, K + kvOff, KV * hd, 0, DQ + qOff, H * hd),
          // dK_bg += scale · dSᵀ Q_bh
          squareTimesHead(T, hd, true, scale, DS + pOff, Q + qOff, H * hd, beta, DK + kvOff, KV * hd),
          // dV_bg += Pᵀ dO_bh
          squareTimesHead(T, hd, true, 1, P + pOff, DY + qOff, H * hd, beta, DV + kvOff, KV * hd),
        );
      }
      chains.push(chain);
    }
  runner.runChains(chains);
  b.disposeData(dsInfo.dataId, true);
  return [dq, dk, dv];
}
