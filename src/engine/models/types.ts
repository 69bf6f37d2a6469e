/**
 * The contract every language model in the engine fulfils. Methods and the runner program against `CausalLM`
 * only; they never ask which architecture they hold. Parameters are `tf.Variable`s keyed by their Hugging Face
 * state-dict names, so a checkpoint maps onto them one to one. Encoder-decoder models (`Seq2SeqLM`) extend the
 * same contract: what means the same for both (parameters, loss, generation, rank scoring) is called alike.
 */
import type { tf } from '../tf';
import type { Inventory } from './inventory';
import type { ProjectionTerm } from './params';

/** The architecture-independent view of an HF `config.json`. */
export interface ModelConfig {
  /** HF `model_type`, e.g. 'gpt2', 'llama', 'mistral', 'qwen2'. */
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  /** Transformer blocks; for an encoder-decoder model, encoder and decoder blocks together (see Seq2SeqLM). */
  numLayers: number;
  numHeads: number;
  /** Key/value heads: equal to numHeads for multi-head, 1 for multi-query, in between for grouped-query. */
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  /** Longest sequence (prompt + generated) the model accepts. */
  maxPositions: number;
  normEps: number;
  /** Name of the MLP activation as HF spells it ('gelu_new', 'silu', ...). */
  activation: string;
  /** True when the output head reuses the token embedding matrix (no separate head variable). */
  tiedHead: boolean;
  /** Tokens beyond this distance would be masked by the reference implementation; null = unlimited. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}

/**
 * Activations handed out during a capturing forward. Tensors are valid only during the call: copy what you
 * need (`tf.keep` or an accumulated sum; no synchronous read, which webgpu lacks in Node) before returning. Rows are real tokens only (padding
 * removed when an attention mask was given), in batch-major order.
 */
export interface CaptureHooks {
  /** Input x [rows, dIn] of a target matrix, named by its weight key (see `Inventory.targets`). */
  matrix?(weightName: string, x: tf.Tensor2D): void;
  /**
   * Hidden states entering and leaving transformer block `layer`, each [rows, hiddenSize]. An encoder-decoder
   * model numbers its encoder blocks first and its decoder blocks after them, as its inventory does.
   */
  block?(layer: number, input: tf.Tensor2D, output: tf.Tensor2D): void;
}

export interface GenerateOptions {
  /** Stop a row once it produced one of these (included in the output). Default: the config's EOS ids. */
  eosTokenIds?: number[];
  /** Reuse keys/values of earlier positions (default true); false recomputes the whole prefix each step. */
  useCache?: boolean;
}

export interface CausalLM {
  /** 'seq2seq' for an encoder-decoder model (then it is a `Seq2SeqLM`); absent or 'causal' for a decoder-only one. */
  readonly kind?: 'causal' | 'seq2seq';
  readonly arch: string;
  readonly config: ModelConfig;
  /** config.json exactly as read, written back unchanged on save. */
  readonly rawConfig: Record<string, unknown>;
  /** Trainable parameters by HF key. Tied weights appear once, under the embedding's key. */
  readonly params: Map<string, tf.Variable>;
  /** Safetensors dtype each parameter had on disk ('F32', 'F16', 'BF16'), so a save keeps it. */
  readonly paramDtypes: Map<string, string>;
  readonly inventory: Inventory;

  /** Final (normed) hidden states [B, T, hiddenSize]. A seq2seq model throws: see `Seq2SeqLM.encode`. */
  hidden(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D, capture?: CaptureHooks): tf.Tensor3D;
  /**
   * Next-token logits [B, T, vocab]. `attentionMask` (1 = token, 0 = padding) may pad on either side. A seq2seq
   * model needs decoder inputs and throws (as HF's does): see `Seq2SeqLM.labelLogits`.
   */
  logits(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D, capture?: CaptureHooks): tf.Tensor3D;
  /**
   * HF causal-LM loss: position t predicts labels[t + 1]; labels -100 are ignored; mean over the rest
   * (0 when nothing is left, rather than NaN, so a degenerate batch cannot poison the weights). For a seq2seq
   * model (HF's `model(input_ids, attention_mask, labels)` too): inputIds and attentionMask are the encoder's,
   * labels [B, T'] the decoder's targets (any length), decoder inputs = labels shifted right.
   */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D, attentionMask?: tf.Tensor2D): tf.Scalar;
  /**
   * Runs `f` with some parameters replaced by tensors of the same shape (e.g. W + Σ BᵢAᵢ for LoRA-style
   * methods). Gradients flow to whatever the replacements are computed from; the variables are untouched.
   * When `f` returns a promise (evaluation, which reads results asynchronously), the replacements stay until it
   * settles.
   */
  withWeights<T>(overrides: Map<string, tf.Tensor>, f: () => T): T;
  /**
   * Runs `f` with a term added to the output of some projections, keyed by weight: y = x Wᵀ (+ bias) + term(x)
   * (O-LoRA's adapters on dropped-out inputs while training). The terms end with `f`, as withWeights's.
   */
  withTerms<T>(terms: Map<string, ProjectionTerm>, f: () => T): T;
  // Inference resolves asynchronously: it reads results back with `data()`, since webgpu has no synchronous
  // readback in Node.
  /**
   * Greedy decoding; returns only the new tokens of each prompt (prompts may differ in length). A seq2seq model
   * encodes the prompt and decodes from its decoder start token.
   */
  generate(prompts: number[][], maxNewTokens: number, opts?: GenerateOptions): Promise<number[][]>;
  /** Σ log p(continuation | prompt) per example: rank classification over a label set (seq2seq: prompt = encoder input). */
  continuationLogProbs(prompts: number[][], continuations: number[][], batchSize?: number): Promise<number[]>;
  /** log p(candidate | prompt) for each prompt (rows) and candidate token (columns): one forward per prompt. */
  nextTokenLogProbs?(prompts: number[][], candidates: number[], batchSize?: number): Promise<number[][]>;
  dispose(): void;
}

export interface Seq2SeqForwardOptions {
  /** Encoder padding mask [B, S] (1 = token, 0 = padding). */
  attentionMask?: tf.Tensor2D;
  /** Decoder padding mask [B, T] (combined with the causal mask). Capture rows follow it. */
  decoderAttentionMask?: tf.Tensor2D;
  capture?: CaptureHooks;
}

/**
 * An encoder-decoder model (T5). Blocks are numbered encoder first: decoder block i is layer
 * `numEncoderLayers + i` in the inventory and in capture hooks, and `config.numLayers` counts both stacks.
 * Capture rows: encoder rows are real encoder tokens; decoder rows are positions whose label is not -100
 * (`labelLogits`, `loss`) or that the decoder mask keeps (`decoderLogits`).
 */
export interface Seq2SeqLM extends CausalLM {
  readonly kind: 'seq2seq';
  readonly numEncoderLayers: number;
  readonly numDecoderLayers: number;
  /** First decoder input (HF `decoder_start_token_id`). */
  readonly decoderStartTokenId: number;
  /** Encoder output [B, S, hiddenSize] (after the encoder's final norm). */
  encode(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D, capture?: CaptureHooks): tf.Tensor3D;
  /** Logits [B, T, vocab] of the decoder fed `decoderInputIds` over the encoded inputs (teacher forcing). */
  decoderLogits(inputIds: tf.Tensor2D, decoderInputIds: tf.Tensor2D, opts?: Seq2SeqForwardOptions): tf.Tensor3D;
  /** Logits [B, T', vocab] for decoder targets `labels`, as HF returns them with the loss. */
  labelLogits(
    inputIds: tf.Tensor2D,
    labels: tf.Tensor2D,
    attentionMask?: tf.Tensor2D,
    capture?: CaptureHooks,
  ): tf.Tensor3D;
  /** Decoder inputs for `labels`: shifted right, the start token first, -100 replaced by the pad id (int32). */
  shiftRight(labels: tf.Tensor2D): tf.Tensor2D;
}

export function isSeq2Seq(model: CausalLM): model is Seq2SeqLM {
  return model.kind === 'seq2seq';
}

/** One implementation (a family of HF model types sharing a forward), as the registry knows it. */
export interface Architecture {
  /** Implementation name: 'gpt2', 'llama' or 't5'. */
  readonly name: string;
  /** HF `model_type` values it serves. */
  readonly modelTypes: readonly string[];
  /** HF class names accepted in config.json `architectures` (LM heads and their headless bases). */
  readonly classes: readonly string[];
  /** Key prefix a headless base-model checkpoint omits ('transformer.', 'model.'). */
  readonly basePrefix: string;
  config(raw: Record<string, unknown>): ModelConfig;
  inventory(cfg: ModelConfig, raw: Record<string, unknown>): Inventory;
  /** Checkpoint keys that are buffers or tied duplicates rather than parameters: skipped on load. */
  ignores(key: string, cfg: ModelConfig): boolean;
  build(cfg: ModelConfig, raw: Record<string, unknown>, params: Map<string, tf.Variable>): CausalLM;
}
