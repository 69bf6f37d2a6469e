/**
 * Building blocks shared by the decoders. Activations are kept 2-D ([B*T, features]) between blocks, so a
 * projection is one matmul; attention reshapes to heads once and runs one batched matmul for all heads.
 */
import { tf } from '../tf';
import { matMul } from '../kernels/matmul';
import { fusedAttention } from '../kernels/webgpu/attention';
import { blasAttention } from '../kernels/blas-attention';
import { blasProducts } from '../kernels/blas-matmul';
import { useFused, useWasmFused } from '../kernels/webgpu/switches';
import { fusedCrossEntropy } from '../kernels/webgpu/cross-entropy';
import { wasmCrossEntropy } from '../kernels/wasm-cross-entropy';
import { fusedActivation, type FusedActivation } from '../kernels/webgpu/activation';
import { fusedLayerNorm, fusedRmsNorm } from '../kernels/webgpu/norm';
import { wasmLayerNorm, wasmNormApplies, wasmRmsNorm } from '../kernels/wasm-norm';
import { wasmActivation, wasmGated } from '../kernels/wasm-activation';
import { wasmRope, wasmRopeApplies } from '../kernels/wasm-rope';

/** nn.Linear: weight [out, in], y = x Wᵀ + b (bias fused into the matmul). */
export function linear(x: tf.Tensor2D, w: tf.Tensor, b?: tf.Tensor): tf.Tensor2D {
  return matMul(x, w, false, true, b) as tf.Tensor2D;
}

/** GPT-2 Conv1D: weight [in, out], y = x W + b. */
export function conv1d(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return matMul(x, w, false, false, b) as tf.Tensor2D;
}

/** torch.nn.LayerNorm over the last axis (biased variance, as torch). */
export function layerNorm(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  // On webgpu one program per pass instead of a chain of elementwise ops and reductions each way.
  if (useFused('norm')) return fusedLayerNorm(x, w, b, eps);
  // On wasm one pass per row each way (float32 operands; anything else keeps the ops below).
  if (useWasmFused('norm') && wasmNormApplies(x, [w, b])) return wasmLayerNorm(x, w, b, eps);
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).mul(variance.add(eps).rsqrt()).mul(w).add(b);
}

/** LLaMA RMSNorm: x / sqrt(mean(x²) + eps) * w. */
export function rmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  if (useFused('norm')) return fusedRmsNorm(x, w, eps);
  if (useWasmFused('norm') && wasmNormApplies(x, [w])) return wasmRmsNorm(x, w, eps);
  return x.mul(x.square().mean(-1, true).add(eps).rsqrt()).mul(w);
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const ACTIVATIONS: Record<string, (x: tf.Tensor2D) => tf.Tensor2D> = {
  // GPT-2's tanh approximation; HF names it gelu_new (gelu_pytorch_tanh and gelu_fast are the same formula).
  gelu_new: (x) => x.mul(x.mul(x).mul(x).mul(0.044715).add(x).mul(SQRT_2_OVER_PI).tanh().add(1)).mul(0.5),
  gelu: (x) => x.mul(x.mul(Math.SQRT1_2).erf().add(1)).mul(0.5),
  silu: (x) => x.mul(x.sigmoid()),
  relu: (x) => x.relu(),
};
ACTIVATIONS.gelu_pytorch_tanh = ACTIVATIONS.gelu_new;
ACTIVATIONS.gelu_fast = ACTIVATIONS.gelu_new;
ACTIVATIONS.swish = ACTIVATIONS.silu;

export const SUPPORTED_ACTIVATIONS = Object.keys(ACTIVATIONS);

/**
 * Activations with a fused kernel, by the names that select them: kernels/webgpu/activation.ts on webgpu,
 * kernels/wasm-activation.ts (the same two) on wasm.
 */
const FUSED_ACTIVATIONS: Record<string, FusedActivation> = {
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_new',
  gelu_fast: 'gelu_new',
  silu: 'silu',
  swish: 'silu',
};

export function activation(name: string, where: string): (x: tf.Tensor2D) => tf.Tensor2D {
  const f = ACTIVATIONS[name];
  if (!f)
    throw new Error(`${where}: activation '${name}' is not supported; supported: ${SUPPORTED_ACTIVATIONS.join(', ')}`);
  const fused = FUSED_ACTIVATIONS[name];
  if (!fused) return f;
  return (x) => {
    if (useFused('activation')) return fusedActivation(fused, x);
    if (useWasmFused('activation') && x.dtype === 'float32') return wasmActivation(fused, x) as tf.Tensor2D;
    return f(x);
  };
}

/**
 * A gated MLP's act(gate)·up (LLaMA's SwiGLU, T5's gated-gelu). On wasm, for the activations it fuses, one
 * kernel each way for the products around the sigmoid (kernels/wasm-activation.ts's wasmGated), the same
 * numbers as the ops.
 */
export function gatedActivation(name: string, where: string): (gate: tf.Tensor2D, up: tf.Tensor2D) => tf.Tensor2D {
  const act = activation(name, where);
  const fused = FUSED_ACTIVATIONS[name];
  return (gate, up) => {
    // On webgpu useWasmFused is false: act() there takes the fused webgpu activation.
    if (fused && useWasmFused('activation') && gate.dtype === 'float32')
      return wasmGated(fused, gate, up) as tf.Tensor2D;
    return act(gate).mul(up);
  };
}

/** Rotary embedding: x·cos + rotate_half(x)·sin, rotate_half(x) = [-x₂, x₁] (HF convention, halves not pairs). */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  // On wasm one pass each way instead of split, neg, concat and three products (and their gradients).
  if (useWasmFused('rope') && wasmRopeApplies(x, cos, sin)) return wasmRope(x, cos, sin);
  const [x1, x2] = tf.split(x, 2, 3);
  return x.mul(cos).add(tf.concat([x2.neg(), x1], 3).mul(sin));
}

/**
 * Embedding lookup w[ids] -> [ids, d]. The gradient is a scatter-add (ScatterNd sums repeated ids) rather than
 * gather's UnsortedSegmentSum, which the wasm backend lacks and the cpu backend runs once per vocabulary row.
 */
export function embedding(w: tf.Tensor, ids: tf.Tensor1D): tf.Tensor2D {
  const shape = w.shape;
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [table, rows, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([rows]);
    return {
      value: tf.gather(table, rows),
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => [
        tf.scatterND(saved.reshape([-1, 1]), dy, shape),
        tf.zeros(saved.shape),
      ],
    };
  });
  return lookup(w, ids) as tf.Tensor2D;
}

/** HF's cross-entropy: mean of -logp[i, y_i] over the rows whose target is not -100 (0 when there is none). */
export function meanNll(logp: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const valid = targets.notEqual(tf.scalar(-100, 'int32'));
  const nll = pickColumns(logp, tf.where(valid, targets, tf.zerosLike(targets)))
    .neg()
    .mul(valid.toFloat());
  return nll.sum().div(valid.toFloat().sum().maximum(1)) as tf.Scalar;
}

/**
 * HF's causal-LM loss from the logits [N, V] (targets -100 on unlabelled rows): the backend's fused kernel, one
 * pass each way without log-probabilities [N, V], where it has one (webgpu, wasm; switched off by
 * SCULPT_WEBGPU_UNFUSED / SCULPT_WASM_UNFUSED=xent), else logSoftmax and meanNll. Every model's loss goes through
 * here, so each backend's choice is made in one place.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (useFused('xent')) return fusedCrossEntropy(logits, targets);
  if (useWasmFused('xent')) return wasmCrossEntropy(logits, targets);
  return meanNll(tf.logSoftmax(logits), targets);
}

/**
 * x[i, cols[i]] for every row. The gradient is the one-hot of cols times dy, dense like the softmax gradient
 * it meets, instead of a scatter over all N·V entries.
 */
export function pickColumns(x: tf.Tensor2D, cols: tf.Tensor1D): tf.Tensor1D {
  const V = x.shape[1];
  const pick = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [values, idx, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([idx]);
    return {
      value: pickForward(values as tf.Tensor2D, idx as tf.Tensor1D),
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => [
        oneHotF32(saved as tf.Tensor1D, V).mul(dy.reshape([-1, 1])),
        tf.zeros(saved.shape),
      ],
    };
  });
  return pick(x, cols) as tf.Tensor1D;
}

/** A flat gather while the flat index fits int32 (gather with batchDims is wrong on wasm), else a one-hot sum. */
function pickForward(x: tf.Tensor2D, cols: tf.Tensor1D): tf.Tensor1D {
  const [n, v] = x.shape;
  if (n * v >= 2 ** 31) return x.mul(oneHotF32(cols, v)).sum(1) as tf.Tensor1D;
  return tf.gather(x.reshape([n * v]), tf.range(0, n * v, v, 'int32').add(cols)) as tf.Tensor1D;
}

/** The wasm OneHot kernel writes integers whatever dtype is asked for, so build int32 and cast. */
function oneHotF32(cols: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.oneHot(cols, depth).toFloat() as tf.Tensor2D;
}

/**
 * Per-layer attention memory for incremental decoding: keys and values of the positions so far [B, heads, past,
 * hd] (a rotary model's keys already rotated).
 */
export interface LayerCache {
  k: tf.Tensor4D | null;
  v: tf.Tensor4D | null;
}

/**
 * Keys and values of every position so far: the cached ones followed by this forward's k, v [B, heads, T, hd].
 * They replace the cache's tensors, kept so that they outlive the forward's tidy (the caller releases the old ones).
 */
export function extendCache(c: LayerCache, k: tf.Tensor4D, v: tf.Tensor4D): { k: tf.Tensor4D; v: tf.Tensor4D } {
  if (c.k && c.v) {
    k = tf.concat([c.k, k], 2);
    v = tf.concat([c.v, v], 2);
  }
  c.k = tf.keep(k);
  c.v = tf.keep(v);
  return { k, v };
}

/** What attention needs to know about the current forward, built once per forward by the decoder. */
export interface AttentionContext {
  B: number;
  T: number;
  /** Positions already in the cache (0 without one). */
  past: number;
  /** Additive bias broadcastable to [B, H, T, past + T] (causal and padding), or null when nothing is masked. */
  bias: tf.Tensor | null;
  /**
   * Key validity [B, past + T] (1 = token, 0 = padding), or null without padding. When set, `bias` must be
   * exactly the causal mask plus MASKED on these padded keys: the fused webgpu kernel rebuilds it from this.
   */
  keyValid: tf.Tensor2D | null;
  /** Per-layer caches, updated with this forward's keys/values (the new tensors are `tf.keep`-ed). */
  cache: LayerCache[] | null;
}

/**
 * Scaled dot-product attention for all heads at once. q [B,T,H,hd], k/v [B,T,KV,hd] with H = KV·G. Grouped
 * queries are folded into the row axis ([B,KV,G·T,hd]) so keys and values are never repeated per head.
 * Returns [B·T, H·hd] in the head-major layout the output projection expects.
 */
export function attention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  ctx: AttentionContext,
  layer: number,
  scale: number,
): tf.Tensor2D {
  const { B, T } = ctx;
  const [, , H, hd] = q.shape;
  const KV = k.shape[2];
  if (useFused('attention') && !ctx.cache) {
    // Training and full forwards: the fused kernel never materialises the [T, T] scores.
    const toHeads = (x: tf.Tensor4D) => x.transpose([0, 2, 1, 3]) as tf.Tensor4D;
    const out = fusedAttention(toHeads(q), toHeads(k), toHeads(v), ctx.keyValid, scale);
    return out.transpose([0, 2, 1, 3]).reshape([B * T, H * hd]);
  }
  if (!ctx.cache && q.dtype === 'float32' && blasProducts() && useWasmFused('attention')) {
    // wasm with its products on a BLAS: heads read in place, nothing transposed (kernels/blas-attention.ts).
    return blasAttention(q, k, v, ctx.keyValid, scale).reshape([B * T, H * hd]);
  }
  let kt = k.transpose([0, 2, 1, 3]) as tf.Tensor4D;
  let vt = v.transpose([0, 2, 1, 3]) as tf.Tensor4D;
  const c = ctx.cache?.[layer];
  if (c) ({ k: kt, v: vt } = extendCache(c, kt, vt));
  const Tk = kt.shape[2];
  const qg = q
    .mul(scale)
    .transpose([0, 2, 1, 3])
    .reshape([B, KV, (H / KV) * T, hd]);
  let scores = matMul(qg, kt, false, true).reshape([B, H, T, Tk]);
  if (ctx.bias) scores = scores.add(ctx.bias);
  const probs = tf.softmax(scores).reshape([B, KV, (H / KV) * T, Tk]);
  const out = matMul(probs, vt).reshape([B, H, T, hd]);
  return out.transpose([0, 2, 1, 3]).reshape([B * T, H * hd]);
}
