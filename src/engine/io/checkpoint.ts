/**
 * Hugging Face checkpoint folders: config.json plus model.safetensors or a sharded
 * model.safetensors.index.json. Tensor names are the model's parameter names, so loading is a lookup; the
 * whole file set is checked against the architecture before any weight is read.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { tf } from '../tf';
import { architectureFor, buildModel, variableOf } from '../models/registry';
import type { Architecture, CausalLM } from '../models/types';
import type { RawConfig } from '../models/config';
import type { Inventory } from '../models/inventory';
import { ModelFileError } from '../../protocol/errors';
import { CONFIG_LIMIT_ENV, FileReadError, configByteLimit, readBoundedText } from '../../data/read-bounded';
import { SafetensorsReader, writeSafetensors, type StTensor } from './safetensors';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);
const LIST_LIMIT = 20;

/** A JSON file of the checkpoint folder (config.json, the shard index), read only if it is a regular file of bounded size. */
function readJsonFile(path: string): unknown {
  const what = basename(path);
  let text: string;
  try {
    text = readBoundedText(path, { what, maxBytes: configByteLimit(), limitEnv: CONFIG_LIMIT_ENV });
  } catch (e) {
    if (e instanceof FileReadError) {
      const prefix = `${what} ${path} `;
      const detail = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
      throw new ModelFileError(path, detail, {}, { cause: e });
    }
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(path, `not valid JSON (${(e as Error).message})`);
  }
}

export function readConfig(dir: string): Record<string, unknown> {
  if (!existsSync(dir))
    throw new ModelFileError(dir, 'no such folder; give a checkpoint folder with config.json and model.safetensors');
  if (!statSync(dir).isDirectory())
    throw new ModelFileError(dir, 'is not a folder; a checkpoint is a folder with config.json and model.safetensors');
  const path = join(dir, 'config.json');
  if (!existsSync(path))
    throw new ModelFileError(dir, 'no config.json; a checkpoint folder needs config.json and model.safetensors');
  const raw = readJsonFile(path);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ModelFileError(path, 'expected a JSON object');
  return raw as Record<string, unknown>;
}

/** Which file holds each tensor: one model.safetensors, or the shards named by the index. */
function weightFiles(dir: string): string[] {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!existsSync(indexPath)) {
    const other = readdirSync(dir).filter((f) => /\.(bin|pt|pth|ckpt|h5|msgpack|gguf)$/.test(f));
    const hint = other.length
      ? ` It holds ${other.join(', ')}: convert those to safetensors (e.g. save_pretrained(..., safe_serialization=True)).`
      : '';
    throw new ModelFileError(dir, `neither model.safetensors nor model.safetensors.index.json was found.${hint}`);
  }
  const index = readJsonFile(indexPath) as { weight_map?: unknown } | null;
  const map = typeof index === 'object' && index !== null ? index.weight_map : undefined;
  if (
    typeof map !== 'object' ||
    map === null ||
    Array.isArray(map) ||
    !Object.values(map).every((v) => typeof v === 'string')
  )
    throw new ModelFileError(indexPath, "'weight_map' must be an object mapping tensor names to shard file names", {
      field: 'weight_map',
    });
  const shards = new Set(Object.values(map as Record<string, string>));
  if (shards.size === 0) throw new ModelFileError(indexPath, "'weight_map' lists no shards", { field: 'weight_map' });
  return [...shards].map((shard) => {
    const path = join(dir, shard);
    if (basename(shard) !== shard || !existsSync(path))
      throw new ModelFileError(indexPath, `shard '${shard}' is missing from ${dir}`, { field: 'weight_map' });
    return path;
  });
}

function listed(title: string, lines: string[]): string[] {
  if (lines.length === 0) return [];
  const shown = lines.slice(0, LIST_LIMIT).map((l) => `    ${l}`);
  if (lines.length > LIST_LIMIT) shown.push(`    ... and ${lines.length - LIST_LIMIT} more`);
  return [`  ${title} (${lines.length}):`, ...shown];
}

const shapeStr = (s: number[]): string => `[${s.join(', ')}]`;

interface WeightPlan {
  raw: RawConfig;
  arch: Architecture;
  modelType: string;
  /** What config.json implies: every parameter's name and shape, the target matrices. */
  inventory: Inventory;
  /** The file and key of every parameter the model needs. */
  sources: Map<string, { file: string; key: string }>;
  /** Open readers by file, their headers checked; the caller closes them. */
  readers: Map<string, SafetensorsReader>;
}

/**
 * Reads config.json and every weight file's header (no tensor data) and checks them against each other: every
 * parameter the config implies is stored once, with its shape and a float dtype, and nothing unknown is stored.
 */
function planWeights(dir: string): WeightPlan {
  const raw = readConfig(dir);
  const configPath = join(dir, 'config.json');
  let arch, cfg;
  try {
    arch = architectureFor(raw, configPath);
    cfg = arch.config(raw);
  } catch (e) {
    // The model code names the file `config.json`; name the one that was read.
    if (e instanceof ModelFileError && e.file === 'config.json') throw e.inFile(configPath);
    throw e;
  }
  const inventory = arch.inventory(cfg, raw);
  const expected = new Map(inventory.params.map((p) => [p.name, p.shape]));
  const sources = new Map<string, { file: string; key: string }>();
  const unexpected: string[] = [];
  const wrong: string[] = [];
  const seen = new Set<string>();
  const readers = new Map<string, SafetensorsReader>();
  try {
    for (const file of weightFiles(dir)) {
      const reader = SafetensorsReader.open(file);
      readers.set(file, reader);
      for (const key of reader.names()) {
        const name = expected.has(key) ? key : expected.has(arch.basePrefix + key) ? arch.basePrefix + key : null;
        const info = reader.info(key);
        if (name === null) {
          if (!arch.ignores(key, cfg) && !arch.ignores(arch.basePrefix + key, cfg))
            unexpected.push(`${key} ${info.dtype} ${shapeStr(info.shape)} (${basename(file)})`);
          continue;
        }
        const want = expected.get(name)!;
        seen.add(name);
        if (shapeStr(want) !== shapeStr(info.shape))
          wrong.push(`${key}: expected ${shapeStr(want)}, found ${shapeStr(info.shape)}`);
        else if (!FLOAT_DTYPES.has(info.dtype)) wrong.push(`${key}: dtype ${info.dtype}, expected F32, F16 or BF16`);
        else if (sources.has(name))
          wrong.push(`${key}: stored twice (${basename(sources.get(name)!.file)} and ${basename(file)})`);
        else sources.set(name, { file, key });
      }
    }
    const missing = [...expected].filter(([n]) => !seen.has(n)).map(([n, s]) => `${n} (expected ${shapeStr(s)})`);
    if (missing.length || unexpected.length || wrong.length) {
      throw new ModelFileError(
        dir,
        [
          `the weights do not match the ${cfg.modelType} model that config.json describes:`,
          ...listed('missing', missing),
          ...listed('unexpected', unexpected),
          ...listed('wrong shape or dtype', wrong),
          'Make config.json and the safetensors files describe the same model (same sizes, same parameter names).',
        ].join('\n'),
      );
    }
  } catch (e) {
    for (const r of readers.values()) r.close();
    throw e;
  }
  return { raw, arch, modelType: cfg.modelType, inventory, sources, readers };
}

export interface ModelFolderSummary {
  modelType: string;
  /** The weight files whose headers were checked. */
  files: string[];
  parameters: number;
  /** The model's parameters and target matrices by name, from config.json (checked against the files). */
  inventory: Inventory;
}

/**
 * Checks a checkpoint folder without loading a weight: config.json describes a supported model, every weight
 * file is a well-formed safetensors file (header, offsets, file size), and the tensors present are the ones the
 * config implies, with its shapes. Throws a ModelFileError naming the file; cheap enough to run before a run.
 */
export function checkModelFolder(dir: string): ModelFolderSummary {
  const plan = planWeights(dir);
  for (const r of plan.readers.values()) r.close();
  return {
    modelType: plan.modelType,
    files: [...plan.readers.keys()],
    parameters: plan.sources.size,
    inventory: plan.inventory,
  };
}

/**
 * Loads a checkpoint folder as a trainable fp32 model. F16/BF16 weights are upcast (and remembered, so a
 * save writes them back in their dtype). A headless base-model file (keys without 'transformer.'/'model.')
 * is accepted; buffers such as GPT-2's attn.bias and tied duplicates of the embedding are skipped.
 */
export function loadPretrained(dir: string): CausalLM {
  const { raw, sources, readers } = planWeights(dir);
  try {
    const params = new Map<string, tf.Variable>();
    const dtypes = new Map<string, string>();
    try {
      for (const [name, { file, key }] of sources) {
        const t = readers.get(file)!.read(key);
        params.set(name, variableOf(t.data as Float32Array, t.shape));
        dtypes.set(name, t.dtype);
      }
    } catch (e) {
      for (const v of params.values()) v.dispose();
      throw e;
    }
    return buildModel(raw, params, dtypes);
  } finally {
    for (const r of readers.values()) r.close();
  }
}

/**
 * Writes config.json and model.safetensors (each atomically: temporary file, then rename) with the keys and
 * dtypes the model was loaded with; a tied head is stored once, as HF does.
 */
export async function saveCheckpoint(model: CausalLM, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await writeModelWeights(model, join(dir, 'model.safetensors'));
  const configPath = join(dir, 'config.json');
  const temp = join(dir, `.config.json.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(temp, configJson(model.rawConfig));
  renameSync(temp, configPath);
}

/**
 * Writes the model's parameters to a model.safetensors file with the keys and dtypes it was loaded with (a tied
 * head once, as HF stores it); `overrides` (a method's merged weights) replace the variables they name.
 */
export async function writeModelWeights(
  model: CausalLM,
  file: string,
  overrides: ReadonlyMap<string, tf.Tensor> | null = null,
): Promise<void> {
  const tensors = new Map<string, StTensor>();
  for (const p of model.inventory.params) {
    const v = overrides?.get(p.name) ?? model.params.get(p.name);
    if (!v) throw new Error(`the model has no parameter '${p.name}' to write (was it disposed?)`);
    const dtype = (model.paramDtypes.get(p.name) ?? 'F32') as StTensor['dtype'];
    // Asynchronous read: webgpu has no synchronous readback in Node.
    tensors.set(p.name, { dtype, shape: [...v.shape], data: (await v.data()) as Float32Array });
  }
  writeSafetensors(file, tensors, { format: 'pt' });
}

/**
 * Fields of a Hugging Face config.json that transformers declares as floats. JSON.stringify writes 1.0 as 1,
 * which recent transformers' strict config classes refuse (T5's `initializer_factor`), so these keep a decimal
 * point.
 */
const FLOAT_FIELDS = new Set([
  'initializer_factor',
  'initializer_range',
  'layer_norm_epsilon',
  'layer_norm_eps',
  'rms_norm_eps',
  'rope_theta',
  'dropout_rate',
]);

/** config.json's text as transformers reads it: two-space JSON, the FLOAT_FIELDS of the top level as floats. */
export function configJson(raw: unknown): string {
  return (
    JSON.stringify(raw, null, 2)
      .split('\n')
      .map((line) => {
        const m = /^ {2}"([^"]+)": (-?\d+)(,?)$/.exec(line);
        return m && FLOAT_FIELDS.has(m[1]) ? `  "${m[1]}": ${m[2]}.0${m[3]}` : line;
      })
      .join('\n') + '\n'
  );
}
