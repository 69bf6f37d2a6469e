/**
 * The T5 family (HF T5ForConditionalGeneration, MT5ForConditionalGeneration): an encoder over the input and a
 * decoder over the target, both pre-norm stacks with T5's RMS layer norm (no mean, no bias), unscaled attention
 * with learned relative position buckets (bidirectional in the encoder, causal in the decoder), a ReLU or
 * gated-GELU feed-forward, and one embedding table `shared` for both stacks and, when tied, the head (then the
 * decoder output is scaled by d_model^-0.5 first). nn.Linear weights, no biases anywhere.
 */
import { tf } from '../tf';
import { matMul } from '../kernels/matmul';
import type { RawConfig } from './config';
import type { Inventory } from './inventory';
import {
  activation,
  crossEntropy,
  embedding,
  extendCache,
  gatedActivation,
  linear,
  rmsNorm,
  type LayerCache,
} from './layers';
import {
  addBiases,
  attend,
  type BucketSpec,
  causalBias,
  maskedRows,
  paddingBias,
  positionBias,
  splitHeads,
} from './t5-attention';
import { t5Config, t5Ignores, t5Inventory, t5Options, type T5Options } from './t5-config';
import { t5ContinuationLogProbs, t5Generate, t5NextTokenLogProbs } from './t5-generation';
import type {
  Architecture,
  CaptureHooks,
  GenerateOptions,
  ModelConfig,
  Seq2SeqForwardOptions,
  Seq2SeqLM,
} from './types';
import { ParamStore, type ProjectionTerm } from './params';

/** Keys/values a decoder layer keeps while generating ([B, H, positions, d_kv]): its own grow, the encoder's are fixed. */
export interface T5LayerCache {
  self: LayerCache;
  cross: LayerCache;
}

/** The encoder's output as the decoder consumes it. */
export interface Encoded {
  /** [B·S, d], after the encoder's final norm. */
  h: tf.Tensor2D;
  B: number;
  S: number;
  /** Encoder padding as an additive bias [B, 1, 1, S] for cross-attention; null without a mask. */
  bias: tf.Tensor4D | null;
  /** Rows of real encoder tokens among B·S, when capturing a padded batch. */
  rows: tf.Tensor1D | null;
}

export interface DecodeOptions {
  cache?: T5LayerCache[] | null;
  /** Decoder padding mask [B, past + T] (1 = token). */
  mask?: tf.Tensor2D | null;
  capture?: CaptureHooks | null;
  /** Rows among B·T handed to capture hooks (all when null). */
  rows?: tf.Tensor1D | null;
}

/** Where captured activations go during one stack's forward. */
interface Capture {
  hooks: CaptureHooks | null;
  rows: tf.Tensor1D | null;
}

const IGNORE = -100;
const REL_BIAS = 'layer.0.SelfAttention.relative_attention_bias.weight';

export class T5 implements Seq2SeqLM {
  readonly kind = 'seq2seq' as const;
  readonly arch = 't5';
  readonly paramDtypes = new Map<string, string>();
  readonly inventory: Inventory;
  readonly numEncoderLayers: number;
  readonly numDecoderLayers: number;
  readonly decoderStartTokenId: number;
  private readonly opts: T5Options;
  private readonly act: (x: tf.Tensor2D) => tf.Tensor2D;
  private readonly gated: (gate: tf.Tensor2D, up: tf.Tensor2D) => tf.Tensor2D;
  private readonly weights: ParamStore;

  constructor(
    readonly config: ModelConfig,
    readonly rawConfig: RawConfig,
    readonly params: Map<string, tf.Variable>,
  ) {
    this.opts = t5Options(rawConfig, config);
    this.inventory = t5Inventory(config, rawConfig);
    this.numEncoderLayers = this.opts.numEncoderLayers;
    this.numDecoderLayers = this.opts.numDecoderLayers;
    this.decoderStartTokenId = this.opts.decoderStartTokenId;
    this.act = activation(config.activation, 'config.json feed_forward_proj');
    this.gated = gatedActivation(config.activation, 'config.json feed_forward_proj');
    this.weights = new ParamStore(this.arch, params);
  }

  private w(name: string): tf.Tensor {
    return this.weights.get(name);
  }

  withWeights<T>(overrides: Map<string, tf.Tensor>, f: () => T): T {
    return this.weights.withWeights(overrides, f);
  }

  withTerms<T>(terms: Map<string, ProjectionTerm>, f: () => T): T {
    return this.weights.withTerms(terms, f);
  }

  /** x through the bias-free linear weight `name`, plus any projection term set for it (ParamStore.project). */
  private proj(name: string, x: tf.Tensor2D): tf.Tensor2D {
    return this.weights.project(name, x, linear(x, this.w(name)));
  }

  private capture(cap: Capture, name: string, x: tf.Tensor2D): void {
    if (cap.hooks?.matrix) cap.hooks.matrix(name, cap.rows ? tf.gather(x, cap.rows) : x);
  }

  private captureBlock(cap: Capture, layer: number, input: tf.Tensor2D, output: tf.Tensor2D): void {
    if (!cap.hooks?.block) return;
    cap.hooks.block(
      layer,
      cap.rows ? tf.gather(input, cap.rows) : input,
      cap.rows ? tf.gather(output, cap.rows) : output,
    );
  }

  private norm(h: tf.Tensor2D, name: string): tf.Tensor2D {
    return rmsNorm(h, this.w(name), this.config.normEps);
  }

  /** T5LayerSelfAttention's attention (without norm and residual); grows `cache` when given. */
  private selfAttention(
    p: string,
    x: tf.Tensor2D,
    B: number,
    T: number,
    bias: tf.Tensor | null,
    cap: Capture,
    cache: T5LayerCache | null,
  ): tf.Tensor2D {
    const H = this.config.numHeads;
    for (const r of ['q', 'k', 'v']) this.capture(cap, `${p}.${r}.weight`, x);
    const q = splitHeads(this.proj(`${p}.q.weight`, x), B, T, H);
    let k = splitHeads(this.proj(`${p}.k.weight`, x), B, T, H);
    let v = splitHeads(this.proj(`${p}.v.weight`, x), B, T, H);
    if (cache) ({ k, v } = extendCache(cache.self, k, v));
    const a = attend(q, k, v, bias);
    this.capture(cap, `${p}.o.weight`, a);
    return this.proj(`${p}.o.weight`, a);
  }

  /** T5LayerCrossAttention's attention: decoder queries over the encoder output (keys/values cached once). */
  private crossAttention(
    p: string,
    x: tf.Tensor2D,
    enc: Encoded,
    T: number,
    cap: Capture,
    cache: T5LayerCache | null,
  ): tf.Tensor2D {
    const H = this.config.numHeads;
    this.capture(cap, `${p}.q.weight`, x);
    const q = splitHeads(this.proj(`${p}.q.weight`, x), enc.B, T, H);
    let k = cache?.cross.k ?? null;
    let v = cache?.cross.v ?? null;
    if (!k || !v) {
      const encCap = { hooks: cap.hooks, rows: enc.rows };
      this.capture(encCap, `${p}.k.weight`, enc.h);
      this.capture(encCap, `${p}.v.weight`, enc.h);
      k = splitHeads(this.proj(`${p}.k.weight`, enc.h), enc.B, enc.S, H);
      v = splitHeads(this.proj(`${p}.v.weight`, enc.h), enc.B, enc.S, H);
      if (cache) cache.cross = { k: tf.keep(k), v: tf.keep(v) };
    }
    const a = attend(q, k, v, enc.bias);
    this.capture(cap, `${p}.o.weight`, a);
    return this.proj(`${p}.o.weight`, a);
  }

  /** T5DenseActDense (wi, act, wo) or T5DenseGatedActDense (act(wi_0) * wi_1, wo). */
  private feedForward(m: string, x: tf.Tensor2D, cap: Capture): tf.Tensor2D {
    let f: tf.Tensor2D;
    if (this.opts.gated) {
      this.capture(cap, `${m}.wi_0.weight`, x);
      this.capture(cap, `${m}.wi_1.weight`, x);
      f = this.gated(this.proj(`${m}.wi_0.weight`, x), this.proj(`${m}.wi_1.weight`, x));
    } else {
      this.capture(cap, `${m}.wi.weight`, x);
      f = this.act(this.proj(`${m}.wi.weight`, x));
    }
    this.capture(cap, `${m}.wo.weight`, f);
    return this.proj(`${m}.wo.weight`, f);
  }

  private buckets(bidirectional: boolean): BucketSpec {
    return { bidirectional, numBuckets: this.opts.numBuckets, maxDistance: this.opts.maxDistance };
  }

  /** The encoder stack over ids [B, S]. Engine-internal (generation builds on it); callers use `encode`. */
  encodeRows(ids: tf.Tensor2D, mask: tf.Tensor2D | null, hooks: CaptureHooks | null = null): Encoded {
    const [B, S] = ids.shape;
    if (mask && (mask.shape[0] !== B || mask.shape[1] !== S))
      throw new Error(`attention mask has shape [${mask.shape}], expected [${B}, ${S}] like input_ids`);
    // Capture rows first: on webgpu the mask's values stay on the CPU only until its first use (no synchronous readback in Node).
    const cap: Capture = { hooks, rows: hooks && mask ? maskedRows(mask) : null };
    const pad = mask ? paddingBias(mask) : null;
    const bias = addBiases(positionBias(this.w(`encoder.block.0.${REL_BIAS}`), S, S, 0, this.buckets(true)), pad);
    let h = embedding(this.w('shared.weight'), ids.reshape([B * S]));
    for (let i = 0; i < this.numEncoderLayers; i++) {
      const p = `encoder.block.${i}.layer`;
      let out: tf.Tensor2D = h.add(
        this.selfAttention(`${p}.0.SelfAttention`, this.norm(h, `${p}.0.layer_norm.weight`), B, S, bias, cap, null),
      );
      out = out.add(this.feedForward(`${p}.1.DenseReluDense`, this.norm(out, `${p}.1.layer_norm.weight`), cap));
      this.captureBlock(cap, i, h, out);
      h = out;
    }
    return { h: this.norm(h, 'encoder.final_layer_norm.weight'), B, S, bias: pad, rows: cap.rows };
  }

  /** The decoder stack over ids [B, T] (after `past` cached positions): [B·T, d] after the final norm. */
  decodeRows(enc: Encoded, ids: tf.Tensor2D, o: DecodeOptions = {}): tf.Tensor2D {
    const [B, T] = ids.shape;
    if (B !== enc.B) throw new Error(`decoder inputs have ${B} rows, the encoded batch ${enc.B}`);
    const cache = o.cache ?? null;
    const past = cache?.[0]?.self.k?.shape[2] ?? 0;
    const total = past + T;
    if (o.mask && (o.mask.shape[0] !== B || o.mask.shape[1] !== total)) {
      throw new Error(
        `decoder attention mask has shape [${o.mask.shape}], expected [${B}, ${total}] (batch, cached + new tokens)`,
      );
    }
    const rel = positionBias(this.w(`decoder.block.0.${REL_BIAS}`), T, total, past, this.buckets(false));
    const bias = addBiases(rel, T > 1 ? causalBias(T, past) : null, o.mask ? paddingBias(o.mask) : null);
    const cap: Capture = { hooks: o.capture ?? null, rows: o.rows ?? null };
    let h = embedding(this.w('shared.weight'), ids.reshape([B * T]));
    for (let i = 0; i < this.numDecoderLayers; i++) {
      const p = `decoder.block.${i}.layer`;
      const c = cache?.[i] ?? null;
      let out: tf.Tensor2D = h.add(
        this.selfAttention(`${p}.0.SelfAttention`, this.norm(h, `${p}.0.layer_norm.weight`), B, T, bias, cap, c),
      );
      out = out.add(
        this.crossAttention(`${p}.1.EncDecAttention`, this.norm(out, `${p}.1.layer_norm.weight`), enc, T, cap, c),
      );
      out = out.add(this.feedForward(`${p}.2.DenseReluDense`, this.norm(out, `${p}.2.layer_norm.weight`), cap));
      this.captureBlock(cap, this.numEncoderLayers + i, h, out);
      h = out;
    }
    return this.norm(h, 'decoder.final_layer_norm.weight');
  }

  /** Logits [rows, vocab] of decoder rows [rows, d]. */
  headLogits(h: tf.Tensor2D): tf.Tensor2D {
    const x = this.opts.scaleOutputs ? h.mul(this.config.hiddenSize ** -0.5) : h;
    return matMul(x, this.w(this.config.tiedHead ? 'shared.weight' : 'lm_head.weight'), false, true) as tf.Tensor2D;
  }

  encode(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D, capture?: CaptureHooks): tf.Tensor3D {
    const [B, S] = inputIds.shape;
    return tf.tidy(() =>
      this.encodeRows(inputIds, attentionMask ?? null, capture ?? null).h.reshape([B, S, this.config.hiddenSize]),
    );
  }

  hidden(): tf.Tensor3D {
    throw new Error(
      't5 model: hidden() is for decoder-only models; an encoder-decoder model has encode() for the encoder and labelLogits()/decoderLogits() for the decoder',
    );
  }

  logits(): tf.Tensor3D {
    throw new Error(
      't5 model: logits() needs decoder inputs for an encoder-decoder model; call labelLogits(inputIds, labels) or decoderLogits(inputIds, decoderInputIds)',
    );
  }

  decoderLogits(inputIds: tf.Tensor2D, decoderInputIds: tf.Tensor2D, opts: Seq2SeqForwardOptions = {}): tf.Tensor3D {
    const [B, T] = decoderInputIds.shape;
    return tf.tidy(() => {
      const capture = opts.capture ?? null;
      const enc = this.encodeRows(inputIds, opts.attentionMask ?? null, capture);
      const dm = opts.decoderAttentionMask ?? null;
      const h = this.decodeRows(enc, decoderInputIds, {
        mask: dm,
        capture,
        rows: capture && dm ? maskedRows(dm) : null,
      });
      return this.headLogits(h).reshape([B, T, this.config.vocabSize]);
    });
  }

  labelLogits(
    inputIds: tf.Tensor2D,
    labels: tf.Tensor2D,
    attentionMask?: tf.Tensor2D,
    capture?: CaptureHooks,
  ): tf.Tensor3D {
    const [B, T] = labels.shape;
    return tf.tidy(() => {
      const enc = this.encodeRows(inputIds, attentionMask ?? null, capture ?? null);
      // Read from the labels themselves, before their first use: a derived tensor could not be read on webgpu.
      const rows = capture ? maskedRows(labels, (v) => v !== IGNORE) : null;
      const h = this.decodeRows(enc, this.shiftRight(labels), { capture, rows });
      return this.headLogits(h).reshape([B, T, this.config.vocabSize]);
    });
  }

  shiftRight(labels: tf.Tensor2D): tf.Tensor2D {
    const [B, T] = labels.shape;
    return tf.tidy(() => {
      if (T === 0) return labels.toInt();
      const start = tf.fill([B, 1], this.decoderStartTokenId, 'int32');
      const shifted = tf.concat([start, labels.toInt().slice([0, 0], [B, T - 1])], 1);
      return tf.where(
        shifted.equal(tf.scalar(IGNORE, 'int32')),
        tf.fill([B, T], this.opts.padTokenId, 'int32'),
        shifted,
      ) as tf.Tensor2D;
    });
  }

  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D, attentionMask?: tf.Tensor2D): tf.Scalar {
    const [B, T] = labels.shape;
    if (B !== inputIds.shape[0])
      throw new Error(`labels have ${B} rows, input_ids ${inputIds.shape[0]}; give one target sequence per input`);
    return tf.tidy(() => {
      if (T === 0) return tf.scalar(0);
      const enc = this.encodeRows(inputIds, attentionMask ?? null);
      const logits = this.headLogits(this.decodeRows(enc, this.shiftRight(labels)));
      const targets = labels.reshape([B * T]).toInt() as tf.Tensor1D;
      return crossEntropy(logits, targets);
    });
  }

  generate(prompts: number[][], maxNewTokens: number, opts: GenerateOptions = {}): Promise<number[][]> {
    return t5Generate(this, prompts, maxNewTokens, opts);
  }

  continuationLogProbs(prompts: number[][], continuations: number[][], batchSize = 16): Promise<number[]> {
    return t5ContinuationLogProbs(this, prompts, continuations, batchSize);
  }

  nextTokenLogProbs(prompts: number[][], candidates: number[], batchSize = 16): Promise<number[][]> {
    return t5NextTokenLogProbs(this, prompts, candidates, batchSize);
  }

  dispose(): void {
    this.weights.dispose();
  }
}

export const t5Architecture: Architecture = {
  name: 't5',
  modelTypes: ['t5', 'mt5'],
  classes: ['T5ForConditionalGeneration', 'T5Model', 'MT5ForConditionalGeneration', 'MT5Model'],
  basePrefix: '',
  config: t5Config,
  inventory: t5Inventory,
  ignores: t5Ignores,
  build: (cfg, raw, params): Seq2SeqLM => new T5(cfg, raw, params),
};
