/**
 * Run checkpoints: everything needed to continue a run exactly where it stopped.
 *
 *   runs/<id>/checkpoints/<name>/  model.safetensors      every model parameter (HF keys)
 *                                  optimizer.safetensors  optimizer slots (`m/<param>`, `v/<param>`)
 *                                  method.safetensors     the method's tensors (bases, adapters, Fisher, ...)
 *                                  state.json             position (task, epoch, batch), matrix so far, JSON states
 *   runs/<id>/checkpoints/LATEST   the name of the newest complete checkpoint
 *
 * A checkpoint is written into a temporary folder, flushed, and renamed into place; LATEST is replaced the
 * same way afterwards. A crash at any moment leaves the previous checkpoint intact and LATEST pointing at a
 * complete one.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { tf } from './tf';
import { readSafetensors, writeSafetensors, type StTensor } from './io/safetensors';

export const CHECKPOINT_FORMAT = 1;

export interface RunPosition {
  /** Task (index in the run's order) to continue with. */
  task: number;
  /** Epoch within that task and the next batch within the epoch. */
  epoch: number;
  batch: number;
  /** Optimizer steps done within the task and over the run. */
  taskStep: number;
  globalStep: number;
  /** True when the task's training is done but its evaluation is not. */
  trained: boolean;
}

export interface CheckpointMeta {
  format: number;
  position: RunPosition;
  matrix: number[][];
  zeroShot: (number | null)[] | null;
  /** Last event sequence number written before this checkpoint. */
  seq: number;
  elapsedMs: number;
  optimizer: { name: string; step: number };
  method: unknown;
  reason: 'task' | 'epoch' | 'steps' | 'stop';
  time: number;
}

export interface CheckpointContents {
  meta: CheckpointMeta;
  model: Map<string, StTensor>;
  optimizer: Map<string, StTensor>;
  method: Map<string, StTensor>;
  path: string;
}

export class CheckpointCorruptError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(
      `checkpoint ${path} cannot be used: ${reason}. The run folder was left as it was; delete the checkpoint to resume from an earlier one or from the start.`,
    );
    this.name = 'CheckpointCorruptError';
  }
}

/** Reads every tensor asynchronously (webgpu has no synchronous readback in Node), all reads in flight at once. */
async function toSt(tensors: Map<string, tf.Tensor>): Promise<Map<string, StTensor>> {
  const entries = [...tensors];
  const read = await Promise.all(entries.map(([name, t]) => readTensor(name, t)));
  return new Map(entries.map(([name], i) => [name, read[i]]));
}

async function readTensor(name: string, t: tf.Tensor): Promise<StTensor> {
  if (t.dtype === 'float32') return { dtype: 'F32', shape: t.shape.slice(), data: (await t.data()) as Float32Array };
  if (t.dtype === 'int32') return { dtype: 'I32', shape: t.shape.slice(), data: (await t.data()) as Int32Array };
  throw new Error(`checkpoint: tensor '${name}' has dtype ${t.dtype}, which checkpoints do not store`);
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    fsyncSync(fd);
    closeSync(fd);
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic there.
  }
}

function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  writeFileSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, file);
}

export function checkpointsDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

/**
 * Writes a checkpoint atomically, points LATEST at it, and keeps the newest `keep` checkpoints. The tensors are
 * read before anything is written, so the caller must not change them until the promise resolves.
 */
export async function saveCheckpoint(
  runDir: string,
  name: string,
  parts: {
    model: Map<string, tf.Tensor>;
    optimizer: Map<string, tf.Tensor>;
    method: Map<string, tf.Tensor>;
    meta: CheckpointMeta;
  },
  keep: number,
): Promise<string> {
  const [model, optimizer, method] = await Promise.all([toSt(parts.model), toSt(parts.optimizer), toSt(parts.method)]);
  const root = checkpointsDir(runDir);
  mkdirSync(root, { recursive: true });
  const final = join(root, name);
  const tmp = join(root, `.tmp-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeSafetensors(join(tmp, 'model.safetensors'), model, { format: 'pt' });
  writeSafetensors(join(tmp, 'optimizer.safetensors'), optimizer);
  writeSafetensors(join(tmp, 'method.safetensors'), method);
  writeFileAtomic(join(tmp, 'state.json'), JSON.stringify(parts.meta, null, 1));
  fsyncDir(tmp);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncDir(root);
  writeFileAtomic(join(root, 'LATEST'), name + '\n');
  prune(root, keep, name);
  return final;
}

function prune(root: string, keep: number, newest: string): void {
  const all = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.tmp-'))
    .map((d) => ({ name: d.name, time: readTime(join(root, d.name)) }))
    .sort((a, b) => a.time - b.time);
  const excess = all.filter((c) => c.name !== newest).slice(0, Math.max(0, all.length - keep));
  for (const c of excess) rmSync(join(root, c.name), { recursive: true, force: true });
}

function readTime(dir: string): number {
  try {
    return (JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as CheckpointMeta).time ?? 0;
  } catch {
    return 0;
  }
}

/** The newest complete checkpoint of a run, or null when none was written. */
export function latestCheckpoint(runDir: string): string | null {
  const latest = join(checkpointsDir(runDir), 'LATEST');
  if (!existsSync(latest)) return null;
  const name = readFileSync(latest, 'utf8').trim();
  return name ? join(checkpointsDir(runDir), name) : null;
}

/** Reads and checks a checkpoint; every problem is a CheckpointCorruptError naming the file. */
export function loadCheckpoint(path: string): CheckpointContents {
  if (!existsSync(path)) throw new CheckpointCorruptError(path, 'the folder does not exist');
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(join(path, 'state.json'), 'utf8')) as CheckpointMeta;
  } catch (e) {
    throw new CheckpointCorruptError(path, `state.json is unreadable (${(e as Error).message})`);
  }
  if (meta?.format !== CHECKPOINT_FORMAT || typeof meta.position?.task !== 'number' || !Array.isArray(meta.matrix)) {
    throw new CheckpointCorruptError(path, `state.json is not a format-${CHECKPOINT_FORMAT} Sculpt checkpoint`);
  }
  const read = (file: string) => {
    try {
      return readSafetensors(join(path, file)).tensors;
    } catch (e) {
      throw new CheckpointCorruptError(path, `${file}: ${(e as Error).message}`);
    }
  };
  return {
    meta,
    model: read('model.safetensors'),
    optimizer: read('optimizer.safetensors'),
    method: read('method.safetensors'),
    path,
  };
}

/** Tensors of a checkpoint part as tf tensors (caller disposes). */
export function toTensors(part: Map<string, StTensor>): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of part) {
    const dtype = t.dtype === 'I32' ? 'int32' : 'float32';
    out.set(name, tf.tensor(t.data as Float32Array | Int32Array, t.shape, dtype));
  }
  return out;
}
