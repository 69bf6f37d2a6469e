/**
 * `sculpt inspect <checkpointDir | builtin:<model>> [--input in.safetensors --out out.safetensors]
 * [--backend cpu|wasm]`: what a checkpoint is (architecture, parameter counts per group, the target matrices methods constrain),
 * and optionally the model's logits (and loss) on stored token ids, written as safetensors so they can be
 * compared with another implementation's. Bad arguments or files exit 2 with a message naming them.
 */
import { existsSync, statSync } from 'node:fs';
import { tf } from '../engine/tf';
import { BACKEND_REQUESTS, selectBackend, type BackendRequest } from '../engine/backend';
import { loadPretrained } from '../engine/io/checkpoint';
import { readSafetensors, writeSafetensors, type StTensor } from '../engine/io/safetensors';
import { UsageError } from '../protocol/errors';
import { inputFailure } from './failures';
import { optionValue, parseCommandArgs, type OptionSpec } from './args';
import { builtinModelDir } from '../runs/builtin';
import { paramCounts, PARAM_GROUPS } from '../engine/models/inventory';
import { isSeq2Seq, type CausalLM, type Seq2SeqLM } from '../engine/models/types';

export const INSPECT_USAGE = `usage: sculpt inspect <checkpointDir | builtin:<model>> [--input <in.safetensors> --out <out.safetensors>] [--backend cpu|wasm]

  Prints the architecture, parameter counts and target matrices of a Hugging Face checkpoint folder
  (config.json + model.safetensors) or of a builtin model named as a config names it (builtin:sculpt-base;
  \`sculpt list\` lists them). With --input, runs the model on the file's 'input.input_ids' (int32 or int64,
  [batch, tokens]) and writes 'logits' [batch, tokens, vocab] to --out, plus 'loss' when the file holds
  'input.labels' (HF causal-LM loss, -100 = ignored). For an encoder-decoder model (T5)
  'input.input_ids' is the encoder input and 'input.labels' the decoder targets [batch, targets]: it
  writes their logits and the seq2seq loss ('input.decoder_input_ids' instead gives logits only).
  --backend   ${BACKEND_REQUESTS.join(' | ')} (default cpu)`;

/** A problem with what the user gave: the message, then this command's usage. */
const usageError = (message: string): UsageError => new UsageError(message, INSPECT_USAGE);

export const INSPECT_OPTIONS: OptionSpec = {
  '--input': '<in.safetensors>',
  '--out': '<out.safetensors>',
  '--backend': '<backend>',
};

/**
 * The checkpoint folder of `ref`: a folder, or a builtin model named as a config names it (`builtin:sculpt-base`),
 * so that what a config trains can be inspected by the same name.
 */
function checkpointFolder(ref: string): string {
  if (ref.startsWith('builtin:')) {
    try {
      return builtinModelDir(ref);
    } catch (e) {
      throw usageError((e as Error).message);
    }
  }
  if (!existsSync(ref) || !statSync(ref).isDirectory()) throw usageError(`checkpoint folder not found: ${ref}`);
  return ref;
}

export async function inspectCommand(argv: string[]): Promise<number> {
  let model: CausalLM | null = null;
  try {
    const args = parseCommandArgs('inspect', argv, { options: INSPECT_OPTIONS });
    const values = {
      input: optionValue(args, '--input'),
      out: optionValue(args, '--out'),
      backend: optionValue(args, '--backend') ?? 'cpu',
    };
    const positionals = args.positional;
    if (args.help) {
      console.log(INSPECT_USAGE);
      return 0;
    }
    if (positionals.length !== 1)
      throw usageError(
        positionals.length
          ? `expected one checkpoint folder, got ${positionals.length}: ${positionals.join(' ')}`
          : 'give a checkpoint folder (or builtin:<model>)',
      );
    const ref = positionals[0];
    const dir = checkpointFolder(ref);
    if ((values.input === undefined) !== (values.out === undefined))
      throw usageError('--input and --out go together: give both or neither');
    if (!BACKEND_REQUESTS.includes(values.backend as BackendRequest))
      throw usageError(`--backend '${values.backend}' is not one of ${BACKEND_REQUESTS.join(', ')}`);
    await selectBackend(values.backend as BackendRequest);
    model = loadPretrained(dir);
    console.log(describeModel(model, dir === ref ? dir : `${ref} (${dir})`));
    if (values.input !== undefined && values.out !== undefined)
      console.log(await runOnFile(model, values.input, values.out));
    return 0;
  } catch (e) {
    const code = inputFailure(e, 'sculpt inspect');
    if (code === undefined) throw e;
    return code;
  } finally {
    model?.dispose();
  }
}

const fmt = (n: number): string => n.toLocaleString('en-US');

export function describeModel(model: CausalLM, dir: string): string {
  const c = model.config;
  const cls = Array.isArray(model.rawConfig.architectures) ? `, ${model.rawConfig.architectures.join(', ')}` : '';
  const counts = paramCounts(model.inventory);
  const s2s = isSeq2Seq(model) ? model : null;
  const shape = s2s
    ? `encoder ${s2s.numEncoderLayers} + decoder ${s2s.numDecoderLayers} layers, hidden ${c.hiddenSize}, ${c.numHeads} heads of ${c.headDim}, ` +
      `MLP ${c.intermediateSize} (${c.activation}), vocab ${c.vocabSize}, relative positions, `
    : `${c.numLayers} layers, hidden ${c.hiddenSize}, ${c.numHeads} heads / ${c.numKvHeads} kv heads of ${c.headDim}, ` +
      `MLP ${c.intermediateSize} (${c.activation}), vocab ${c.vocabSize}, ${c.maxPositions} positions, `;
  const lines = [
    `checkpoint    ${dir}`,
    `architecture  ${model.arch} (model_type ${c.modelType}${cls}): ${shape}${c.tiedHead ? 'head tied to the embedding' : 'separate head'}`,
    `parameters    ${fmt(counts.total)}`,
  ];
  // Only an encoder-decoder model has cross-attention; decoder-only summaries keep their shape.
  const groups = PARAM_GROUPS.filter((g) => s2s || g !== 'cross-attention');
  const width = Math.max(10, ...groups.map((g) => g.length));
  for (const g of groups) {
    const n = counts.byGroup[g];
    const note = g === 'head' && model.inventory.tiedHead ? ' (tied: counted under embedding)' : '';
    lines.push(
      `  ${g.padEnd(width)}  ${fmt(n).padStart(14)}  ${((100 * n) / counts.total).toFixed(1).padStart(5)}%${note}`,
    );
  }
  // An encoder-decoder model numbers its blocks across both stacks; the table names the stack.
  const layerOf = (layer: number): string =>
    !s2s ? String(layer) : layer < s2s.numEncoderLayers ? `enc ${layer}` : `dec ${layer - s2s.numEncoderLayers}`;
  const rows = model.inventory.targets.map((t) => [
    layerOf(t.layer),
    t.role,
    t.name,
    `[${t.shape.join(', ')}]`,
    `${t.dIn} -> ${t.dOut}`,
    t.orientation,
  ]);
  const header = ['layer', 'role', 'name', 'stored', 'in -> out', 'orientation'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string =>
    '  ' +
    r
      .map((cell, i) => cell.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  lines.push(`target matrices (${rows.length})`, line(header), ...rows.map(line));
  return lines.join('\n');
}

/** Token ids as int32 [B, T], whichever integer dtype the file used. */
function idsTensor(t: StTensor | undefined, name: string, file: string, vocab: number | null): tf.Tensor2D | null {
  if (!t) return null;
  if (t.shape.length !== 2) throw usageError(`${file}: '${name}' has shape [${t.shape}], expected [batch, tokens]`);
  if (!['I32', 'I64', 'I16', 'I8', 'U8'].includes(t.dtype))
    throw usageError(`${file}: '${name}' is ${t.dtype}, expected integer token ids`);
  const ids = Int32Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
  const bad = vocab === null ? -1 : ids.findIndex((x) => x < 0 || x >= vocab);
  if (bad >= 0)
    throw usageError(`${file}: '${name}' holds ${ids[bad]} at index ${bad}, outside the vocabulary [0, ${vocab})`);
  return tf.tensor2d(ids, t.shape as [number, number], 'int32');
}

/** Results are read asynchronously: webgpu has no synchronous readback in Node. */
async function runOnFile(model: CausalLM, input: string, out: string): Promise<string> {
  if (!existsSync(input)) throw usageError(`--input file not found: ${input}`);
  const { tensors } = readSafetensors(input);
  const found = [...tensors.keys()].slice(0, 8).join(', ');
  const ids = idsTensor(tensors.get('input.input_ids'), 'input.input_ids', input, model.config.vocabSize);
  if (!ids) throw usageError(`${input}: no 'input.input_ids' tensor (it holds: ${found || 'nothing'})`);
  const labels = idsTensor(tensors.get('input.labels'), 'input.labels', input, null);
  try {
    if (isSeq2Seq(model)) return await runSeq2Seq(model, ids, labels, tensors, input, out);
    if (labels && labels.shape.join() !== ids.shape.join())
      throw usageError(`${input}: 'input.labels' is [${labels.shape}] but 'input.input_ids' is [${ids.shape}]`);
    return await writeOutputs(model.logits(ids), labels ? () => model.loss(ids, labels) : null, out);
  } finally {
    ids.dispose();
    labels?.dispose();
  }
}

/** Writes `logits` (and the loss, when there are labels) to `out` in PyTorch's safetensors layout; disposes both. */
async function writeOutputs(logits: tf.Tensor, lossOf: (() => tf.Tensor) | null, out: string): Promise<string> {
  const result = new Map<string, StTensor>([
    ['logits', { dtype: 'F32', shape: logits.shape, data: Float32Array.from(await logits.data()) }],
  ]);
  logits.dispose();
  let lossText = '';
  if (lossOf) {
    const loss = lossOf();
    const value = Float32Array.from(await loss.data());
    loss.dispose();
    result.set('loss', { dtype: 'F32', shape: [1], data: value });
    lossText = ` and loss ${value[0].toFixed(6)}`;
  }
  writeSafetensors(out, result, { format: 'pt' });
  return `wrote logits [${logits.shape.join(', ')}]${lossText} to ${out}`;
}

/** Encoder inputs with decoder targets (logits and loss) or decoder inputs (logits only). */
async function runSeq2Seq(
  model: Seq2SeqLM,
  ids: tf.Tensor2D,
  labels: tf.Tensor2D | null,
  tensors: Map<string, StTensor>,
  input: string,
  out: string,
): Promise<string> {
  const decoderIn = labels
    ? null
    : idsTensor(tensors.get('input.decoder_input_ids'), 'input.decoder_input_ids', input, model.config.vocabSize);
  try {
    const targets = labels ?? decoderIn;
    if (!targets)
      throw usageError(
        `${input}: an encoder-decoder model needs decoder targets 'input.labels' (or 'input.decoder_input_ids') besides 'input.input_ids'`,
      );
    const name = labels ? 'input.labels' : 'input.decoder_input_ids';
    if (targets.shape[0] !== ids.shape[0])
      throw usageError(`${input}: '${name}' has ${targets.shape[0]} rows but 'input.input_ids' has ${ids.shape[0]}`);
    const logits = labels ? model.labelLogits(ids, labels) : model.decoderLogits(ids, targets);
    return await writeOutputs(logits, labels ? () => model.loss(ids, labels) : null, out);
  } finally {
    decoderIn?.dispose();
  }
}
