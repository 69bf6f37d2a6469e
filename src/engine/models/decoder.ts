/**
 * The part of a decoder-only language model that does not depend on the architecture: masks, positions,
 * rotary tables, the forward loop over blocks, head, loss, and the capture of activations. An architecture
 * supplies the embedding, one block, the final norm and the head matrix.
 */
import { tf } from '../tf';
import { matMul } from '../kernels/matmul';
import type { Inventory } from './inventory';
import type { CaptureHooks, CausalLM, GenerateOptions, ModelConfig } from './types';
import { AttentionContext, LayerCache, crossEntropy } from './layers';
import { MASKED } from '../kernels/masked';
import { hostReadable } from '../kernels/webgpu/internals';
import { continuationLogProbs, greedyGenerate, nextTokenLogProbs } from './generation';
import { ParamStore, type ProjectionTerm } from './params';

/** Everything a block needs about the current forward. */
export interface ForwardContext extends AttentionContext {
  /** Position ids [B, T] (from the attention mask), or null: positions past .. past+T-1 in every row. */
  positions: tf.Tensor2D | null;
  /** Rotary cos/sin for this forward, broadcastable to [B, T, heads, headDim]; null without rotary. */
  rope: { cos: tf.Tensor; sin: tf.Tensor } | null;
  capture: CaptureHooks | null;
  /** Indices of real tokens among the B·T rows, when capturing a padded batch. */
  rows: tf.Tensor1D | null;
}

export interface ForwardOptions {
  cache?: LayerCache[] | null;
  capture?: CaptureHooks | null;
}

export abstract class DecoderLM implements CausalLM {
  readonly paramDtypes = new Map<string, string>();
  private readonly weights: ParamStore;
  private causal: tf.Tensor2D | null = null;
  private rope: { cos: tf.Tensor2D; sin: tf.Tensor2D; n: number } | null = null;

  constructor(
    readonly arch: string,
    readonly config: ModelConfig,
    readonly rawConfig: Record<string, unknown>,
    readonly params: Map<string, tf.Variable>,
    readonly inventory: Inventory,
  ) {
    this.weights = new ParamStore(arch, params);
  }

  /** Token (and learned position) embedding of ids [B, T] -> [B·T, d]. */
  protected abstract embed(ids: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
  protected abstract block(layer: number, h: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
  protected abstract finalNorm(h: tf.Tensor2D): tf.Tensor2D;
  /** The output projection [vocab, d] (the embedding matrix when tied). */
  protected abstract headWeight(): tf.Tensor2D;
  /** Rotary inverse frequencies (float32 values), or null for learned positions. */
  protected ropeInvFreq(): Float32Array | null {
    return null;
  }

  protected w(name: string): tf.Tensor {
    return this.weights.get(name);
  }

  protected maybe(name: string): tf.Tensor | undefined {
    return this.weights.maybe(name);
  }

  withWeights<T>(overrides: Map<string, tf.Tensor>, f: () => T): T {
    return this.weights.withWeights(overrides, f);
  }

  withTerms<T>(terms: Map<string, ProjectionTerm>, f: () => T): T {
    return this.weights.withTerms(terms, f);
  }

  /** y = the projection of x through weight `name`, plus any term set for that weight (ParamStore.project). */
  protected projected(name: string, x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D {
    return this.weights.project(name, x, y);
  }

  /** Hands x (rows of real tokens) to the capture hook of target `name`. */
  protected captureMatrix(ctx: ForwardContext, name: string, x: tf.Tensor2D): void {
    if (ctx.capture?.matrix) ctx.capture.matrix(name, ctx.rows ? tf.gather(x, ctx.rows) : x);
  }

  /**
   * The forward up to the final norm: [B·T, d]. `mask` [B, past+T] (1 = token) covers cached positions too.
   * Engine-internal (generation and loss build on it); callers outside use hidden/logits/loss.
   */
  forwardHidden(ids: tf.Tensor2D, mask: tf.Tensor2D | null, opts: ForwardOptions = {}): tf.Tensor2D {
    const [B, T] = ids.shape;
    const cache = opts.cache ?? null;
    const past = cache?.[0]?.k?.shape[2] ?? 0;
    const total = past + T;
    const cfg = this.config;
    if (total > cfg.maxPositions) {
      throw new Error(
        `${this.arch} model: sequence of ${total} tokens exceeds the ${cfg.maxPositions} positions in config.json; shorten the input`,
      );
    }
    if (cfg.slidingWindow !== null && total > cfg.slidingWindow) {
      throw new Error(
        `${this.arch} model: sequence of ${total} tokens exceeds the sliding window (${cfg.slidingWindow}), which this engine does not implement; shorten the input`,
      );
    }
    if (mask && (mask.shape[0] !== B || mask.shape[1] !== total)) {
      throw new Error(
        `attention mask has shape [${mask.shape}], expected [${B}, ${total}] (batch, cached + new tokens)`,
      );
    }
    // Capture rows are read from the mask before anything uses it: on webgpu a tensor built from JS values keeps
    // them on the CPU only until its first use, and Node has no synchronous readback from the GPU.
    const rows = opts.capture && mask ? realRows(mask, past) : null;
    const maskF = mask ? mask.toFloat() : null;
    const positions = maskF ? this.positionsFromMask(maskF, past, T) : null;
    // The bias is built on first use: only attention's tf ops read it (the fused and BLAS kernels take keyValid),
    // and its broadcast add costs about a millisecond a forward on wasm. It is made in this forward's scope either
    // way, since nothing between here and attention opens one.
    let bias: tf.Tensor | null | undefined;
    const buildBias = () => this.attentionBias(B, T, past, maskF);
    const ctx: ForwardContext = {
      B,
      T,
      past,
      get bias() {
        if (bias === undefined) bias = buildBias();
        return bias;
      },
      keyValid: maskF,
      cache,
      positions,
      rope: this.ropeFor(B, T, past, positions),
      capture: opts.capture ?? null,
      rows,
    };
    let h = this.embed(ids, ctx);
    for (let i = 0; i < cfg.numLayers; i++) {
      const out = this.block(i, h, ctx);
      if (ctx.capture?.block)
        ctx.capture.block(i, ctx.rows ? tf.gather(h, ctx.rows) : h, ctx.rows ? tf.gather(out, ctx.rows) : out);
      h = out;
    }
    return this.finalNorm(h);
  }

  /** Logits [rows, vocab] of hidden rows [rows, d]. */
  headLogits(h: tf.Tensor2D): tf.Tensor2D {
    return matMul(h, this.headWeight(), false, true) as tf.Tensor2D;
  }

  hidden(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D, capture?: CaptureHooks): tf.Tensor3D {
    const [B, T] = inputIds.shape;
    return tf.tidy(() =>
      this.forwardHidden(inputIds, attentionMask ?? null, { capture }).reshape([B, T, this.config.hiddenSize]),
    );
  }

  logits(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D, capture?: CaptureHooks): tf.Tensor3D {
    const [B, T] = inputIds.shape;
    return tf.tidy(() =>
      this.headLogits(this.forwardHidden(inputIds, attentionMask ?? null, { capture })).reshape([
        B,
        T,
        this.config.vocabSize,
      ]),
    );
  }

  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D, attentionMask?: tf.Tensor2D): tf.Scalar {
    const [B, T] = inputIds.shape;
    if (labels.shape[0] !== B || labels.shape[1] !== T)
      throw new Error(`labels have shape [${labels.shape}], expected [${B}, ${T}] like input_ids`);
    // Instruction-style batches label only the answer (a few tokens of each row); the head and the softmax
    // then run on those positions alone, which is most of a step's cost saved. The positions are read from
    // the labels: free where tensors live in main memory, and on webgpu while the labels still hold their
    // host copy (a batch fresh from JS arrays); otherwise the dense path runs.
    const rows = hostReadable(labels) ? labelledRows(labels) : null;
    return tf.tidy(() => {
      if (T < 2) return tf.scalar(0);
      const d = this.config.hiddenSize;
      const hidden = this.forwardHidden(inputIds, attentionMask ?? null).reshape([B, T, d]);
      if (rows) {
        if (rows.positions.length === 0) return tf.scalar(0);
        const h = tf.gather(hidden.reshape([B * T, d]), tf.tensor1d(rows.positions, 'int32')) as tf.Tensor2D;
        const logits = this.headLogits(h);
        const targets = tf.tensor1d(rows.targets, 'int32');
        return crossEntropy(logits, targets);
      }
      const M = B * (T - 1);
      // The last position predicts nothing, so the head runs on T-1 positions only.
      const h = hidden.slice([0, 0, 0], [B, T - 1, d]).reshape([M, d]);
      const targets = labels
        .slice([0, 1], [B, T - 1])
        .reshape([M])
        .toInt() as tf.Tensor1D;
      const logits = this.headLogits(h as tf.Tensor2D);
      return crossEntropy(logits, targets);
    });
  }

  generate(prompts: number[][], maxNewTokens: number, opts: GenerateOptions = {}): Promise<number[][]> {
    return greedyGenerate(this, prompts, maxNewTokens, opts);
  }

  continuationLogProbs(prompts: number[][], continuations: number[][], batchSize = 16): Promise<number[]> {
    return continuationLogProbs(this, prompts, continuations, batchSize);
  }

  nextTokenLogProbs(prompts: number[][], candidates: number[], batchSize = 16): Promise<number[][]> {
    return nextTokenLogProbs(this, prompts, candidates, batchSize);
  }

  dispose(): void {
    this.weights.dispose();
    this.causal?.dispose();
    this.causal = null;
    this.rope?.cos.dispose();
    this.rope?.sin.dispose();
    this.rope = null;
  }

  /** HF generation's position ids: count of real tokens before each one (left padding starts at 0). */
  private positionsFromMask(mask: tf.Tensor2D, past: number, T: number): tf.Tensor2D {
    const B = mask.shape[0];
    return mask.cumsum(1).sub(1).maximum(0).slice([0, past], [B, T]).toInt() as tf.Tensor2D;
  }

  /** Causal [1,1,T,past+T] (a slice of one table grown by doubling) plus padding [B,1,1,past+T]. */
  private attentionBias(B: number, T: number, past: number, mask: tf.Tensor2D | null): tf.Tensor | null {
    const total = past + T;
    let causal: tf.Tensor | null = null;
    if (T > 1) {
      if (!this.causal || this.causal.shape[0] < total) {
        const n = Math.min(this.config.maxPositions, Math.max(total, 2 * (this.causal?.shape[0] ?? 32)));
        const data = new Float32Array(n * n);
        for (let i = 0; i < n; i++) data.fill(MASKED, i * n + i + 1, (i + 1) * n);
        this.causal?.dispose();
        this.causal = tf.keep(tf.tensor2d(data, [n, n]));
      }
      causal = this.causal.slice([past, 0], [T, total]).reshape([1, 1, T, total]);
    }
    if (!mask) return causal;
    const pad = tf.scalar(1).sub(mask).mul(MASKED).reshape([B, 1, 1, total]);
    return causal ? pad.add(causal) : pad;
  }

  /** cos/sin rows for this forward's positions, from tables built once and grown by doubling. */
  private ropeFor(B: number, T: number, past: number, positions: tf.Tensor2D | null): ForwardContext['rope'] {
    const invFreq = this.ropeInvFreq();
    if (!invFreq) return null;
    const need = past + T;
    if (!this.rope || this.rope.n < need)
      this.buildRope(invFreq, Math.min(this.config.maxPositions, Math.max(need, 2 * (this.rope?.n ?? 64))));
    const { cos, sin } = this.rope!;
    const hd = 2 * invFreq.length;
    if (!positions)
      return {
        cos: cos.slice([past, 0], [T, hd]).reshape([1, T, 1, hd]),
        sin: sin.slice([past, 0], [T, hd]).reshape([1, T, 1, hd]),
      };
    const flat = positions.reshape([B * T]);
    return { cos: tf.gather(cos, flat).reshape([B, T, 1, hd]), sin: tf.gather(sin, flat).reshape([B, T, 1, hd]) };
  }

  /** Angles in float32 as the reference computes them (inv_freq · position, then cos/sin), so long contexts agree. */
  private buildRope(invFreq: Float32Array, n: number): void {
    const half = invFreq.length;
    const cos = new Float32Array(n * 2 * half);
    const sin = new Float32Array(n * 2 * half);
    for (let p = 0; p < n; p++) {
      for (let j = 0; j < half; j++) {
        const angle = Math.fround(p * invFreq[j]);
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        cos[p * 2 * half + j] = cos[p * 2 * half + j + half] = c;
        sin[p * 2 * half + j] = sin[p * 2 * half + j + half] = s;
      }
    }
    this.rope?.cos.dispose();
    this.rope?.sin.dispose();
    this.rope = { cos: tf.keep(tf.tensor2d(cos, [n, 2 * half])), sin: tf.keep(tf.tensor2d(sin, [n, 2 * half])), n };
  }
}

/**
 * Row indices (into B·T) of real tokens among the current positions; reads the mask (capture only: calibration,
 * whose masks are fresh batches, still readable on webgpu when read before their first use).
 */
function realRows(mask: tf.Tensor2D, past: number): tf.Tensor1D {
  const [B, total] = mask.shape;
  const m = mask.dataSync();
  const T = total - past;
  const rows: number[] = [];
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (m[b * total + past + t] > 0) rows.push(b * T + t);
  return tf.tensor1d(rows, 'int32');
}

/**
 * Flat positions b·T + t whose next token is labelled (labels[b][t + 1] != -100), and those next tokens. Reads
 * the labels synchronously, so `loss` calls it only when they are readable on the host (hostReadable).
 */
function labelledRows(labels: tf.Tensor2D): { positions: number[]; targets: number[] } {
  const [B, T] = labels.shape;
  const y = labels.dataSync();
  const positions: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const next = y[b * T + t + 1];
      if (next !== -100) {
        positions.push(b * T + t);
        targets.push(next);
      }
    }
  }
  return { positions, targets };
}
