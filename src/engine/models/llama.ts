/**
 * The LLaMA family (HF LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM): RMSNorm, rotary positions,
 * SwiGLU MLP, grouped- or multi-query attention, optional biases, tied or untied head. nn.Linear weights are
 * stored [out, in]. The three differ only in which projections carry a bias and in config defaults.
 */
import { tf } from '../tf';
import {
  boolField,
  checkHeads,
  fieldError,
  intField,
  numField,
  RawConfig,
  strField,
  tokenId,
  tokenIds,
} from './config';
import { DecoderLM, ForwardContext } from './decoder';
import { Inventory, InventoryBuilder } from './inventory';
import { applyRope, attention, embedding, gatedActivation, linear, rmsNorm } from './layers';
import type { Architecture, CausalLM, ModelConfig } from './types';

interface Biases {
  qkv: boolean;
  o: boolean;
  mlp: boolean;
}

/** Qwen2 always biases q/k/v (not o); LLaMA follows attention_bias / mlp_bias; Mistral has none. */
function biases(raw: RawConfig): Biases {
  const type = raw.model_type;
  if (type === 'qwen2') return { qkv: true, o: false, mlp: false };
  if (type === 'mistral') return { qkv: false, o: false, mlp: false };
  const attn = boolField(raw, 'attention_bias', false);
  return { qkv: attn, o: attn, mlp: boolField(raw, 'mlp_bias', false) };
}

function llamaConfig(raw: RawConfig): ModelConfig {
  const d = intField(raw, 'hidden_size');
  const heads = intField(raw, 'num_attention_heads');
  const kv = intField(raw, 'num_key_value_heads', heads);
  checkHeads(heads, kv);
  if (raw.head_dim == null && d % heads !== 0)
    throw fieldError(
      'hidden_size',
      `hidden_size (${d}) must be a multiple of num_attention_heads (${heads}) when head_dim is not given`,
    );
  const headDim = intField(raw, 'head_dim', d / heads);
  if (headDim % 2 !== 0) throw fieldError('head_dim', `head_dim (${headDim}) must be even for rotary embeddings`);
  const type = strField(raw, 'model_type', 'llama');
  const useWindow = type === 'mistral' || (type === 'qwen2' && boolField(raw, 'use_sliding_window', false));
  return {
    modelType: type,
    vocabSize: intField(raw, 'vocab_size'),
    hiddenSize: d,
    numLayers: intField(raw, 'num_hidden_layers'),
    numHeads: heads,
    numKvHeads: kv,
    headDim,
    intermediateSize: intField(raw, 'intermediate_size'),
    maxPositions: intField(raw, 'max_position_embeddings', 2048),
    normEps: numField(raw, 'rms_norm_eps', 1e-6),
    activation: strField(raw, 'hidden_act', 'silu'),
    tiedHead: boolField(raw, 'tie_word_embeddings', false),
    // MistralConfig's own default is 4096 when the field is absent; an explicit null turns the window off.
    slidingWindow: !useWindow
      ? null
      : raw.sliding_window === undefined
        ? type === 'mistral'
          ? 4096
          : null
        : raw.sliding_window === null
          ? null
          : intField(raw, 'sliding_window'),
    bosTokenId: tokenId(raw, 'bos_token_id'),
    eosTokenIds: tokenIds(raw, 'eos_token_id'),
    padTokenId: tokenId(raw, 'pad_token_id'),
  };
}

function llamaInventory(cfg: ModelConfig, raw: RawConfig): Inventory {
  const { hiddenSize: d, intermediateSize: ff, vocabSize: V, numHeads: H, numKvHeads: KV, headDim: hd } = cfg;
  const bias = biases(raw);
  const b = new InventoryBuilder();
  b.add('model.embed_tokens.weight', [V, d], 'embedding');
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    b.add(`${p}.input_layernorm.weight`, [d], 'norm', i);
    b.target(`${p}.self_attn.q_proj`, 'q', 'attention', i, d, H * hd, 'out_in', bias.qkv);
    b.target(`${p}.self_attn.k_proj`, 'k', 'attention', i, d, KV * hd, 'out_in', bias.qkv);
    b.target(`${p}.self_attn.v_proj`, 'v', 'attention', i, d, KV * hd, 'out_in', bias.qkv);
    b.target(`${p}.self_attn.o_proj`, 'o', 'attention', i, H * hd, d, 'out_in', bias.o);
    b.add(`${p}.post_attention_layernorm.weight`, [d], 'norm', i);
    b.target(`${p}.mlp.gate_proj`, 'gate', 'mlp', i, d, ff, 'out_in', bias.mlp);
    b.target(`${p}.mlp.up_proj`, 'up', 'mlp', i, d, ff, 'out_in', bias.mlp);
    b.target(`${p}.mlp.down_proj`, 'down', 'mlp', i, ff, d, 'out_in', bias.mlp);
  }
  b.add('model.norm.weight', [d], 'norm');
  if (!cfg.tiedHead) b.add('lm_head.weight', [V, d], 'head');
  return b.build(cfg.tiedHead);
}

/** RoPE parameters live in `rope_parameters` (transformers 5) or in `rope_theta` + `rope_scaling` (older). */
function ropeParameters(raw: RawConfig): RawConfig {
  const params = (raw.rope_parameters ?? raw.rope_scaling ?? {}) as RawConfig;
  if (typeof params !== 'object' || Array.isArray(params))
    throw fieldError('rope_parameters', `'rope_parameters' must be an object`);
  return { rope_theta: raw.rope_theta, ...params };
}

/** inv_freq as the reference computes it in float32; 'linear' and 'llama3' rescale it for longer contexts. */
export function ropeInvFreq(raw: RawConfig, headDim: number): Float32Array {
  const rp = ropeParameters(raw);
  const theta = numField(rp, 'rope_theta', 10000);
  const type = strField(rp, 'rope_type', strField(rp, 'type', 'default'));
  const f = Math.fround;
  const inv = Float32Array.from({ length: headDim / 2 }, (_, j) => f(1 / f(Math.pow(theta, f((2 * j) / headDim)))));
  if (type === 'default') return inv;
  const factor = numField(rp, 'factor', 1);
  if (type === 'linear') return inv.map((x) => x / factor);
  if (type === 'llama3') {
    const low = numField(rp, 'low_freq_factor', 1);
    const high = numField(rp, 'high_freq_factor', 4);
    const oldLen = numField(rp, 'original_max_position_embeddings', 8192);
    return inv.map((x) => {
      const wavelen = (2 * Math.PI) / x;
      if (wavelen < oldLen / high) return x;
      if (wavelen > oldLen / low) return x / factor;
      const smooth = (oldLen / wavelen - low) / (high - low);
      return (1 - smooth) * (x / factor) + smooth * x;
    });
  }
  throw fieldError('rope_parameters', `rope type '${type}' is not supported; supported: default, linear, llama3`);
}

class Llama extends DecoderLM {
  private readonly gated: (gate: tf.Tensor2D, up: tf.Tensor2D) => tf.Tensor2D;
  private readonly invFreq: Float32Array;

  constructor(cfg: ModelConfig, raw: RawConfig, params: Map<string, tf.Variable>) {
    super('llama', cfg, raw, params, llamaInventory(cfg, raw));
    this.gated = gatedActivation(cfg.activation, 'config.json hidden_act');
    this.invFreq = ropeInvFreq(raw, cfg.headDim);
  }

  protected override ropeInvFreq(): Float32Array {
    return this.invFreq;
  }

  private proj(x: tf.Tensor2D, module: string): tf.Tensor2D {
    const name = `${module}.weight`;
    return this.projected(name, x, linear(x, this.w(name), this.maybe(`${module}.bias`)));
  }

  protected embed(ids: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    return embedding(this.w('model.embed_tokens.weight'), ids.reshape([ctx.B * ctx.T]));
  }

  protected block(i: number, h: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const { B, T } = ctx;
    const { numHeads: H, numKvHeads: KV, headDim: hd, normEps: eps } = this.config;
    const { cos, sin } = ctx.rope!;
    const p = `model.layers.${i}`;
    const x = rmsNorm(h, this.w(`${p}.input_layernorm.weight`), eps);
    for (const r of ['q', 'k', 'v']) this.captureMatrix(ctx, `${p}.self_attn.${r}_proj.weight`, x);
    const q = applyRope(this.proj(x, `${p}.self_attn.q_proj`).reshape([B, T, H, hd]), cos, sin);
    const k = applyRope(this.proj(x, `${p}.self_attn.k_proj`).reshape([B, T, KV, hd]), cos, sin);
    const v = this.proj(x, `${p}.self_attn.v_proj`).reshape([B, T, KV, hd]) as tf.Tensor4D;
    const a = attention(q, k, v, ctx, i, 1 / Math.sqrt(hd));
    this.captureMatrix(ctx, `${p}.self_attn.o_proj.weight`, a);
    h = h.add(this.proj(a, `${p}.self_attn.o_proj`));

    const x2 = rmsNorm(h, this.w(`${p}.post_attention_layernorm.weight`), eps);
    this.captureMatrix(ctx, `${p}.mlp.gate_proj.weight`, x2);
    this.captureMatrix(ctx, `${p}.mlp.up_proj.weight`, x2);
    const f = this.gated(this.proj(x2, `${p}.mlp.gate_proj`), this.proj(x2, `${p}.mlp.up_proj`));
    this.captureMatrix(ctx, `${p}.mlp.down_proj.weight`, f);
    return h.add(this.proj(f, `${p}.mlp.down_proj`));
  }

  protected finalNorm(h: tf.Tensor2D): tf.Tensor2D {
    return rmsNorm(h, this.w('model.norm.weight'), this.config.normEps);
  }

  protected headWeight(): tf.Tensor2D {
    return this.w(this.config.tiedHead ? 'model.embed_tokens.weight' : 'lm_head.weight') as tf.Tensor2D;
  }
}

/** Rotary frequency buffers that old LLaMA files carry; recomputed from the config instead. */
const LLAMA_BUFFER = /^(model\.)?layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

export const llamaArchitecture: Architecture = {
  name: 'llama',
  modelTypes: ['llama', 'mistral', 'qwen2'],
  classes: ['LlamaForCausalLM', 'LlamaModel', 'MistralForCausalLM', 'MistralModel', 'Qwen2ForCausalLM', 'Qwen2Model'],
  basePrefix: 'model.',
  config: llamaConfig,
  inventory: llamaInventory,
  ignores: (key, cfg) => LLAMA_BUFFER.test(key) || (cfg.tiedHead && key === 'lm_head.weight'),
  build: (cfg, raw, params): CausalLM => new Llama(cfg, raw, params),
};
