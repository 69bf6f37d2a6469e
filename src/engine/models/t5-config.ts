/**
 * T5's config.json (HF T5Config / MT5Config) and its parameter inventory. Defaults are the config classes'
 * own, so a config that omits a field reads as HF reads it.
 */
import { boolField, fieldError, intField, numField, RawConfig, strField, tokenId, tokenIds } from './config';
import { Inventory, InventoryBuilder } from './inventory';
import { SUPPORTED_ACTIVATIONS } from './layers';
import type { ModelConfig } from './types';

/** What T5 needs beyond the architecture-independent config. */
export interface T5Options {
  numEncoderLayers: number;
  numDecoderLayers: number;
  /** feed_forward_proj 'gated-ACT': wi_0 (activated) times wi_1, then wo. */
  gated: boolean;
  numBuckets: number;
  maxDistance: number;
  /** Decoder output times d_model^-0.5 before the head (the tied-embedding convention). */
  scaleOutputs: boolean;
  decoderStartTokenId: number;
  padTokenId: number;
}

const isMt5 = (raw: RawConfig): boolean => raw.model_type === 'mt5';

/** Defaults of HF T5Config and MT5Config (which differ in sizes, activation and tying only). */
function defaults(
  raw: RawConfig,
): Record<'vocab_size' | 'd_model' | 'd_kv' | 'd_ff' | 'num_layers' | 'num_heads', number> {
  return isMt5(raw)
    ? { vocab_size: 250112, d_model: 512, d_kv: 64, d_ff: 1024, num_layers: 8, num_heads: 6 }
    : { vocab_size: 32128, d_model: 512, d_kv: 64, d_ff: 2048, num_layers: 6, num_heads: 8 };
}

/** HF T5Config: 'relu', 'gelu', 'gated-gelu' (which means gelu_new), 'gated-silu', ... */
function feedForward(raw: RawConfig): { gated: boolean; act: string } {
  const proj = strField(raw, 'feed_forward_proj', isMt5(raw) ? 'gated-gelu' : 'relu');
  const parts = proj.split('-');
  if (parts.length > 2 || (parts.length === 2 && parts[0] !== 'gated')) {
    throw fieldError(
      'feed_forward_proj',
      `'feed_forward_proj' '${proj}' is not valid; use 'ACT' or 'gated-ACT', e.g. 'relu' or 'gated-gelu'`,
    );
  }
  const act = proj === 'gated-gelu' ? 'gelu_new' : parts[parts.length - 1];
  if (!SUPPORTED_ACTIVATIONS.includes(act)) {
    throw fieldError(
      'feed_forward_proj',
      `'feed_forward_proj' '${proj}' uses activation '${act}', which is not supported; supported: ${SUPPORTED_ACTIVATIONS.join(', ')}`,
    );
  }
  return { gated: parts.length === 2, act };
}

export function t5Config(raw: RawConfig): ModelConfig {
  const def = defaults(raw);
  const encoder = intField(raw, 'num_layers', def.num_layers);
  const decoder = intField(raw, 'num_decoder_layers', encoder);
  const pad = tokenId(raw, 'pad_token_id') ?? 0;
  return {
    modelType: strField(raw, 'model_type', 't5'),
    vocabSize: intField(raw, 'vocab_size', def.vocab_size),
    hiddenSize: intField(raw, 'd_model', def.d_model),
    numLayers: encoder + decoder,
    numHeads: intField(raw, 'num_heads', def.num_heads),
    numKvHeads: intField(raw, 'num_heads', def.num_heads),
    headDim: intField(raw, 'd_kv', def.d_kv),
    intermediateSize: intField(raw, 'd_ff', def.d_ff),
    // Positions are relative: any length is accepted (HF's n_positions is a tokenizer hint, not a limit).
    maxPositions: Number.POSITIVE_INFINITY,
    normEps: numField(raw, 'layer_norm_epsilon', 1e-6),
    activation: feedForward(raw).act,
    tiedHead: boolField(raw, 'tie_word_embeddings', !isMt5(raw)),
    slidingWindow: null,
    bosTokenId: tokenId(raw, 'bos_token_id'),
    eosTokenIds: raw.eos_token_id === undefined ? [1] : tokenIds(raw, 'eos_token_id'),
    padTokenId: pad,
  };
}

export function t5Options(raw: RawConfig, cfg: ModelConfig): T5Options {
  const encoder = intField(raw, 'num_layers', defaults(raw).num_layers);
  const pad = cfg.padTokenId ?? 0;
  // transformers 5 saves scale_decoder_outputs; older configs imply it by tie_word_embeddings.
  const scale = boolField(raw, 'scale_decoder_outputs', cfg.tiedHead);
  return {
    numEncoderLayers: encoder,
    numDecoderLayers: cfg.numLayers - encoder,
    gated: feedForward(raw).gated,
    numBuckets: intField(raw, 'relative_attention_num_buckets', 32),
    maxDistance: intField(raw, 'relative_attention_max_distance', 128),
    scaleOutputs: scale,
    decoderStartTokenId: tokenId(raw, 'decoder_start_token_id') ?? pad,
    padTokenId: pad,
  };
}

/**
 * Parameters in HF order. Encoder block i is layer i, decoder block i is layer numEncoderLayers + i. The
 * decoder's EncDecAttention projections form the 'cross-attention' group; the relative position tables
 * (block 0 of each stack) are 'position'.
 */
export function t5Inventory(cfg: ModelConfig, raw: RawConfig): Inventory {
  const o = t5Options(raw, cfg);
  const { hiddenSize: d, intermediateSize: ff, vocabSize: V, numHeads: H, headDim: hd } = cfg;
  const inner = H * hd;
  const b = new InventoryBuilder();
  b.add('shared.weight', [V, d], 'embedding');
  const stack = (name: 'encoder' | 'decoder', count: number, first: number): void => {
    for (let i = 0; i < count; i++) {
      const layer = first + i;
      const p = `${name}.block.${i}.layer`;
      for (const r of ['q', 'k', 'v'] as const)
        b.target(`${p}.0.SelfAttention.${r}`, r, 'attention', layer, d, inner, 'out_in', false);
      b.target(`${p}.0.SelfAttention.o`, 'o', 'attention', layer, inner, d, 'out_in', false);
      if (i === 0) b.add(`${p}.0.SelfAttention.relative_attention_bias.weight`, [o.numBuckets, H], 'position', layer);
      b.add(`${p}.0.layer_norm.weight`, [d], 'norm', layer);
      let ffLayer = 1;
      if (name === 'decoder') {
        for (const r of ['q', 'k', 'v'] as const)
          b.target(`${p}.1.EncDecAttention.${r}`, r, 'cross-attention', layer, d, inner, 'out_in', false);
        b.target(`${p}.1.EncDecAttention.o`, 'o', 'cross-attention', layer, inner, d, 'out_in', false);
        b.add(`${p}.1.layer_norm.weight`, [d], 'norm', layer);
        ffLayer = 2;
      }
      const m = `${p}.${ffLayer}.DenseReluDense`;
      if (o.gated) {
        b.target(`${m}.wi_0`, 'gate', 'mlp', layer, d, ff, 'out_in', false);
        b.target(`${m}.wi_1`, 'up', 'mlp', layer, d, ff, 'out_in', false);
        b.target(`${m}.wo`, 'down', 'mlp', layer, ff, d, 'out_in', false);
      } else {
        b.target(`${m}.wi`, 'fc', 'mlp', layer, d, ff, 'out_in', false);
        b.target(`${m}.wo`, 'proj', 'mlp', layer, ff, d, 'out_in', false);
      }
      b.add(`${p}.${ffLayer}.layer_norm.weight`, [d], 'norm', layer);
    }
    b.add(`${name}.final_layer_norm.weight`, [d], 'norm');
  };
  stack('encoder', o.numEncoderLayers, 0);
  stack('decoder', o.numDecoderLayers, o.numEncoderLayers);
  if (!cfg.tiedHead) b.add('lm_head.weight', [V, d], 'head');
  return b.build(cfg.tiedHead);
}

/** Both stacks' embed_tokens are the shared table, saved by HF as copies (or not at all); so is a tied head. */
export function t5Ignores(key: string, cfg: ModelConfig): boolean {
  return (
    key === 'encoder.embed_tokens.weight' ||
    key === 'decoder.embed_tokens.weight' ||
    (cfg.tiedHead && key === 'lm_head.weight')
  );
}
