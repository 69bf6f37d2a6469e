/**
 * What the builtin models and tasks are, for the editor and New Experiment: each task's size (training and
 * test examples, labels, typical input length) and each model's (architecture, layers, width, parameters),
 * and the benchmark suites of assets/data/manifest.json with their published task orders. Read from the
 * shipped files and cached: the catalog does not change while a process runs.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { labelSet } from '../../data/examples';
import { assetsDir, builtinModelDir, builtinModels, builtinTask, builtinTasks } from './index';

export interface BuiltinTaskInfo {
  id: string;
  train: number;
  test: number;
  labels: string[];
  /** Mean length of an example's input (with its instruction), in characters: what makes a step costly. */
  inputChars: number;
}

export interface ModelInfo {
  /** config.json `model_type`. */
  type: string;
  layers?: number;
  width?: number;
  vocab?: number;
  /** Parameters in the safetensors files (tied weights counted once, as stored). */
  parameters: number;
}

export interface BuiltinSuite {
  /** `cl5`, `cl15`: the folder prefix of the suite's task ids in the manifest. */
  id: string;
  /** Task ids in the suite's first published order. */
  tasks: string[];
  /** Every published order (the first is `tasks`). */
  orders: string[][];
  /** Where the orders come from, as the manifest says. */
  note?: string;
}

const taskCache = new Map<string, BuiltinTaskInfo | undefined>();

/** A builtin task's size; undefined for an id that is not in the catalog (or whose files are unreadable). */
export function builtinTaskInfo(id: string): BuiltinTaskInfo | undefined {
  if (taskCache.has(id)) return taskCache.get(id);
  let info: BuiltinTaskInfo | undefined;
  try {
    const split = builtinTask(id);
    const chars = split.train.reduce((n, e) => n + (e.instruction?.length ?? 0) + e.input.length, 0);
    info = {
      id,
      train: split.train.length,
      test: split.test.length,
      labels: labelSet([...split.train, ...split.test]),
      inputChars: split.train.length ? Math.round(chars / split.train.length) : 0,
    };
  } catch {
    info = undefined;
  }
  taskCache.set(id, info);
  return info;
}

/** "800 train / 400 test, 5 labels" */
export function describeTask(info: BuiltinTaskInfo): string {
  return `${info.train} train / ${info.test} test, ${info.labels.length} labels`;
}

/** Parameters of a safetensors file, from its header alone (8-byte length, then JSON); no weight is read. */
function safetensorsParameters(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    if (!(n > 0 && n < 100_000_000)) return 0;
    const header = Buffer.alloc(n);
    readSync(fd, header, 0, n, 8);
    const entries = JSON.parse(header.toString('utf8')) as Record<string, { shape?: number[] }>;
    let total = 0;
    for (const [k, v] of Object.entries(entries)) {
      if (k === '__metadata__' || !Array.isArray(v?.shape)) continue;
      total += v.shape.reduce((a, b) => a * b, 1);
    }
    return total;
  } finally {
    closeSync(fd);
  }
}

const modelCache = new Map<string, ModelInfo | undefined>();

/** The size of a Hugging Face checkpoint folder (config.json and the safetensors headers); undefined if unreadable. */
export function modelFolderInfo(dir: string): ModelInfo | undefined {
  if (modelCache.has(dir)) return modelCache.get(dir);
  let info: ModelInfo | undefined;
  try {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const num = (...keys: string[]) => {
      for (const k of keys) if (typeof c[k] === 'number') return c[k] as number;
      return undefined;
    };
    const parameters = readdirSync(dir)
      .filter((f) => f.endsWith('.safetensors'))
      .reduce((n, f) => n + safetensorsParameters(join(dir, f)), 0);
    info = {
      type: typeof c.model_type === 'string' ? c.model_type : 'unknown',
      layers: num('num_hidden_layers', 'num_layers', 'n_layer'),
      width: num('hidden_size', 'd_model', 'n_embd'),
      vocab: num('vocab_size'),
      parameters,
    };
  } catch {
    info = undefined;
  }
  modelCache.set(dir, info);
  return info;
}

/** The size of `builtin:<name>` (or `<name>`); undefined when there is no such builtin model. */
export function builtinModelInfo(name: string): ModelInfo | undefined {
  try {
    return modelFolderInfo(builtinModelDir(name));
  } catch {
    return undefined;
  }
}

/** 1234567 -> "1.2M" */
export function compactCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** "llama, 4 layers × 128, 1.6M parameters" */
export function describeModel(info: ModelInfo): string {
  const shape = info.layers !== undefined && info.width !== undefined ? `, ${info.layers} layers × ${info.width}` : '';
  return `${info.type}${shape}, ${compactCount(info.parameters)} parameters`;
}

/** The benchmark suites of assets/data/manifest.json, in the manifest's order; none when it is absent. */
export function builtinSuites(): BuiltinSuite[] {
  let manifest: {
    suites?: Record<string, { tasks?: { id: string }[]; orders?: Record<string, string[]>; orderNote?: string }>;
  };
  try {
    const file = join(assetsDir(), 'data', 'manifest.json');
    if (!existsSync(file)) return [];
    manifest = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
  const known = new Set(builtinTasks());
  const suites: BuiltinSuite[] = [];
  for (const [id, s] of Object.entries(manifest.suites ?? {})) {
    // Orders are listed by number ("1", "2", ...); the first is the suite's published order.
    const orders = Object.keys(s.orders ?? {})
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => s.orders![k]);
    const tasks = orders[0] ?? (s.tasks ?? []).map((t) => t.id);
    if (!tasks.length || !tasks.every((t) => known.has(t))) continue;
    suites.push({ id, tasks, orders: orders.length ? orders : [tasks], note: s.orderNote });
  }
  return suites;
}

/** Every builtin model with its size, for pickers and completion. */
export function builtinModelCatalog(): { name: string; info?: ModelInfo }[] {
  return builtinModels().map((name) => ({ name, info: builtinModelInfo(name) }));
}

/** A builtin task's one-line description (size, labels), or undefined for a name the catalog lacks. */
export function describeBuiltinTask(id: string): string | undefined {
  const info = builtinTaskInfo(id);
  return info && describeTask(info);
}

/** A builtin model's one-line description (family, size), or undefined for a name the catalog lacks. */
export function describeBuiltinModel(name: string): string | undefined {
  const info = builtinModelInfo(name);
  return info && describeModel(info);
}
