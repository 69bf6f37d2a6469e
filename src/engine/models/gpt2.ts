/**
 * GPT-2 (HF GPT2LMHeadModel): learned positions, pre-LayerNorm blocks, fused c_attn, gelu_new MLP, head tied
 * to the token embedding. Conv1D weights are stored [in, out] and applied as x W + b.
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
import { activation, attention, conv1d, embedding, layerNorm } from './layers';
import type { Architecture, CausalLM, ModelConfig } from './types';

function gpt2Config(raw: RawConfig): ModelConfig {
  const d = intField(raw, 'n_embd');
  const heads = intField(raw, 'n_head');
  checkHeads(heads, heads);
  if (d % heads !== 0) throw fieldError('n_embd', `n_embd (${d}) must be a multiple of n_head (${heads})`);
  if (boolField(raw, 'add_cross_attention', false))
    throw fieldError('add_cross_attention', 'add_cross_attention is set; only the decoder-only GPT-2 is supported');
  return {
    modelType: 'gpt2',
    vocabSize: intField(raw, 'vocab_size'),
    hiddenSize: d,
    numLayers: intField(raw, 'n_layer'),
    numHeads: heads,
    numKvHeads: heads,
    headDim: d / heads,
    intermediateSize: intField(raw, 'n_inner', 4 * d),
    maxPositions: intField(raw, 'n_positions'),
    normEps: numField(raw, 'layer_norm_epsilon', 1e-5),
    activation: strField(raw, 'activation_function', 'gelu_new'),
    tiedHead: boolField(raw, 'tie_word_embeddings', true),
    slidingWindow: null,
    bosTokenId: tokenId(raw, 'bos_token_id'),
    eosTokenIds: tokenIds(raw, 'eos_token_id'),
    padTokenId: tokenId(raw, 'pad_token_id'),
  };
}

function gpt2Inventory(cfg: ModelConfig): Inventory {
  const { hiddenSize: d, intermediateSize: ff, vocabSize: V } = cfg;
  const b = new InventoryBuilder();
  b.add('transformer.wte.weight', [V, d], 'embedding').add('transformer.wpe.weight', [cfg.maxPositions, d], 'position');
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `transformer.h.${i}`;
    b.add(`${p}.ln_1.weight`, [d], 'norm', i).add(`${p}.ln_1.bias`, [d], 'norm', i);
    b.target(`${p}.attn.c_attn`, 'qkv', 'attention', i, d, 3 * d, 'in_out', true);
    b.target(`${p}.attn.c_proj`, 'o', 'attention', i, d, d, 'in_out', true);
    b.add(`${p}.ln_2.weight`, [d], 'norm', i).add(`${p}.ln_2.bias`, [d], 'norm', i);
    b.target(`${p}.mlp.c_fc`, 'fc', 'mlp', i, d, ff, 'in_out', true);
    b.target(`${p}.mlp.c_proj`, 'proj', 'mlp', i, ff, d, 'in_out', true);
  }
  b.add('transformer.ln_f.weight', [d], 'norm').add('transformer.ln_f.bias', [d], 'norm');
  if (!cfg.tiedHead) b.add('lm_head.weight', [V, d], 'head');
  return b.build(cfg.tiedHead);
}

class GPT2 extends DecoderLM {
  private readonly act: (x: tf.Tensor2D) => tf.Tensor2D;
  private readonly scaleByLayer: boolean;
  private readonly scaleWeights: boolean;

  constructor(cfg: ModelConfig, raw: RawConfig, params: Map<string, tf.Variable>) {
    super('gpt2', cfg, raw, params, gpt2Inventory(cfg));
    this.act = activation(cfg.activation, 'config.json activation_function');
    this.scaleWeights = boolField(raw, 'scale_attn_weights', true);
    this.scaleByLayer = boolField(raw, 'scale_attn_by_inverse_layer_idx', false);
  }

  protected embed(ids: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const { B, T, past } = ctx;
    const d = this.config.hiddenSize;
    const tok = embedding(this.w('transformer.wte.weight'), ids.reshape([B * T]));
    const wpe = this.w('transformer.wpe.weight');
    if (ctx.positions) return tok.add(embedding(wpe, ctx.positions.reshape([B * T])));
    return tok
      .reshape([B, T, d])
      .add(wpe.slice([past, 0], [T, d]))
      .reshape([B * T, d]);
  }

  protected block(i: number, h: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const { B, T } = ctx;
    const { numHeads: H, headDim: hd, normEps: eps } = this.config;
    const p = `transformer.h.${i}`;
    const x = layerNorm(h, this.w(`${p}.ln_1.weight`), this.w(`${p}.ln_1.bias`), eps);
    this.captureMatrix(ctx, `${p}.attn.c_attn.weight`, x);
    const [q, k, v] = tf.split(this.conv(`${p}.attn.c_attn`, x), 3, 1);
    let scale = this.scaleWeights ? 1 / Math.sqrt(hd) : 1;
    if (this.scaleByLayer) scale /= i + 1;
    const shape: [number, number, number, number] = [B, T, H, hd];
    const a = attention(q.reshape(shape), k.reshape(shape), v.reshape(shape), ctx, i, scale);
    this.captureMatrix(ctx, `${p}.attn.c_proj.weight`, a);
    h = h.add(this.conv(`${p}.attn.c_proj`, a));

    const x2 = layerNorm(h, this.w(`${p}.ln_2.weight`), this.w(`${p}.ln_2.bias`), eps);
    this.captureMatrix(ctx, `${p}.mlp.c_fc.weight`, x2);
    const f = this.act(this.conv(`${p}.mlp.c_fc`, x2));
    this.captureMatrix(ctx, `${p}.mlp.c_proj.weight`, f);
    return h.add(this.conv(`${p}.mlp.c_proj`, f));
  }

  /** x through the Conv1D `module` (weight [in, out], bias), plus any projection term set for its weight. */
  private conv(module: string, x: tf.Tensor2D): tf.Tensor2D {
    const name = `${module}.weight`;
    return this.projected(name, x, conv1d(x, this.w(name), this.w(`${module}.bias`)));
  }

  protected finalNorm(h: tf.Tensor2D): tf.Tensor2D {
    return layerNorm(h, this.w('transformer.ln_f.weight'), this.w('transformer.ln_f.bias'), this.config.normEps);
  }

  protected headWeight(): tf.Tensor2D {
    return this.w(this.config.tiedHead ? 'transformer.wte.weight' : 'lm_head.weight') as tf.Tensor2D;
  }
}

/** The causal-mask buffers old GPT-2 files carry; the engine builds its own mask. */
const GPT2_BUFFER = /^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$/;

export const gpt2Architecture: Architecture = {
  name: 'gpt2',
  modelTypes: ['gpt2'],
  classes: ['GPT2LMHeadModel', 'GPT2Model'],
  basePrefix: 'transformer.',
  config: gpt2Config,
  inventory: (cfg) => gpt2Inventory(cfg),
  ignores: (key, cfg) => GPT2_BUFFER.test(key) || (cfg.tiedHead && key === 'lm_head.weight'),
  build: (cfg, raw, params): CausalLM => new GPT2(cfg, raw, params),
};
