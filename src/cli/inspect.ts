/**
 * `sculpt inspect <checkpointDir> [--input in.safetensors --out out.safetensors] [--backend cpu|wasm]`:
 * what a checkpoint is (architecture, parameter counts per group, the target matrices methods constrain),
 * and optionally the model's logits (and loss) on stored token ids, written as safetensors so they can be
 * compared with another implementation's. Bad arguments or files exit 2 with a message naming them.
 */
import { existsSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { tf } from '../engine/tf';
import { BACKEND_REQUESTS, BackendError, selectBackend, type BackendRequest } from '../engine/backend';
import { CheckpointError, loadPretrained } from '../engine/io/checkpoint';
import { readSafetensors, SafetensorsError, writeSafetensors, type StTensor } from '../engine/io/safetensors';
import { ConfigError } from '../engine/models/config';
import { paramCounts, PARAM_GROUPS } from '../engine/models/inventory';
import type { CausalLM } from '../engine/models/types';

export const INSPECT_USAGE = `usage: sculpt inspect <checkpointDir> [--input <in.safetensors> --out <out.safetensors>] [--backend cpu|wasm]

  Prints the architecture, parameter counts and target matrices of a Hugging Face checkpoint folder
  (config.json + model.safetensors). With --input, runs the model on the file's 'input.input_ids'
  (int32 or int64, [batch, tokens]) and writes 'logits' [batch, tokens, vocab] to --out, plus 'loss'
  when the file holds 'input.labels' (HF causal-LM loss, -100 = ignored).
  --backend   ${BACKEND_REQUESTS.join(' | ')} (default cpu)`;

/** A problem with what the user gave: reported without a stack trace, exit code 2. */
class UsageError extends Error {}

export async function inspectCommand(argv: string[]): Promise<number> {
  let model: CausalLM | null = null;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { input: { type: 'string' }, out: { type: 'string' }, backend: { type: 'string', default: 'cpu' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      console.log(INSPECT_USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `expected one checkpoint folder, got ${positionals.length}: ${positionals.join(' ')}` : 'give a checkpoint folder');
    const dir = positionals[0];
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`checkpoint folder not found: ${dir}`);
    if ((values.input === undefined) !== (values.out === undefined)) throw new UsageError('--input and --out go together: give both or neither');
    if (!BACKEND_REQUESTS.includes(values.backend as BackendRequest)) throw new UsageError(`--backend '${values.backend}' is not one of ${BACKEND_REQUESTS.join(', ')}`);
    await selectBackend(values.backend as BackendRequest);
    model = loadPretrained(dir);
    console.log(describeModel(model, dir));
    if (values.input !== undefined && values.out !== undefined) console.log(runOnFile(model, values.input, values.out));
    return 0;
  } catch (e) {
    const known = e instanceof UsageError || e instanceof CheckpointError || e instanceof SafetensorsError || e instanceof ConfigError || e instanceof BackendError;
    const argError = (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    if (!known && !argError) throw e;
    console.error(`sculpt inspect: ${(e as Error).message}${argError || e instanceof UsageError ? `\n\n${INSPECT_USAGE}` : ''}`);
    return 2;
  } finally {
    model?.dispose();
  }
}

const fmt = (n: number): string => n.toLocaleString('en-US');

export function describeModel(model: CausalLM, dir: string): string {
  const c = model.config;
  const cls = Array.isArray(model.rawConfig.architectures) ? `, ${model.rawConfig.architectures.join(', ')}` : '';
  const counts = paramCounts(model.inventory);
  const lines = [
    `checkpoint    ${dir}`,
    `architecture  ${model.arch} (model_type ${c.modelType}${cls}): ${c.numLayers} layers, hidden ${c.hiddenSize}, ` +
      `${c.numHeads} heads / ${c.numKvHeads} kv heads of ${c.headDim}, MLP ${c.intermediateSize} (${c.activation}), ` +
      `vocab ${c.vocabSize}, ${c.maxPositions} positions, ${c.tiedHead ? 'head tied to the embedding' : 'separate head'}`,
    `parameters    ${fmt(counts.total)}`,
  ];
  for (const g of PARAM_GROUPS) {
    const n = counts.byGroup[g];
    const note = g === 'head' && model.inventory.tiedHead ? ' (tied: counted under embedding)' : '';
    lines.push(`  ${g.padEnd(10)}  ${fmt(n).padStart(14)}  ${((100 * n) / counts.total).toFixed(1).padStart(5)}%${note}`);
  }
  const rows = model.inventory.targets.map((t) => [String(t.layer), t.role, t.name, `[${t.shape.join(', ')}]`, `${t.dIn} -> ${t.dOut}`, t.orientation]);
  const header = ['layer', 'role', 'name', 'stored', 'in -> out', 'orientation'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => '  ' + r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
  lines.push(`target matrices (${rows.length})`, line(header), ...rows.map(line));
  return lines.join('\n');
}

/** Token ids as int32 [B, T], whichever integer dtype the file used. */
function idsTensor(t: StTensor | undefined, name: string, file: string, vocab: number | null): tf.Tensor2D | null {
  if (!t) return null;
  if (t.shape.length !== 2) throw new UsageError(`${file}: '${name}' has shape [${t.shape}], expected [batch, tokens]`);
  if (!['I32', 'I64', 'I16', 'I8', 'U8'].includes(t.dtype)) throw new UsageError(`${file}: '${name}' is ${t.dtype}, expected integer token ids`);
  const ids = Int32Array.from(t.data as ArrayLike<number | bigint>, (x) => Number(x));
  const bad = vocab === null ? -1 : ids.findIndex((x) => x < 0 || x >= vocab);
  if (bad >= 0) throw new UsageError(`${file}: '${name}' holds ${ids[bad]} at index ${bad}, outside the vocabulary [0, ${vocab})`);
  return tf.tensor2d(ids, t.shape as [number, number], 'int32');
}

function runOnFile(model: CausalLM, input: string, out: string): string {
  if (!existsSync(input)) throw new UsageError(`--input file not found: ${input}`);
  const { tensors } = readSafetensors(input);
  const found = [...tensors.keys()].slice(0, 8).join(', ');
  const ids = idsTensor(tensors.get('input.input_ids'), 'input.input_ids', input, model.config.vocabSize);
  if (!ids) throw new UsageError(`${input}: no 'input.input_ids' tensor (it holds: ${found || 'nothing'})`);
  const labels = idsTensor(tensors.get('input.labels'), 'input.labels', input, null);
  try {
    if (labels && labels.shape.join() !== ids.shape.join()) throw new UsageError(`${input}: 'input.labels' is [${labels.shape}] but 'input.input_ids' is [${ids.shape}]`);
    const logits = model.logits(ids);
    const result = new Map<string, StTensor>([['logits', { dtype: 'F32', shape: logits.shape, data: logits.dataSync() as Float32Array }]]);
    logits.dispose();
    let lossText = '';
    if (labels) {
      const loss = model.loss(ids, labels);
      const value = loss.dataSync() as Float32Array;
      loss.dispose();
      result.set('loss', { dtype: 'F32', shape: [1], data: Float32Array.from(value) });
      lossText = ` and loss ${value[0].toFixed(6)}`;
    }
    writeSafetensors(out, result, { format: 'pt' });
    return `wrote logits [${result.get('logits')!.shape.join(', ')}]${lossText} to ${out}`;
  } finally {
    ids.dispose();
    labels?.dispose();
  }
}
