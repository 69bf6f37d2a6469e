/**
 * Run checkpoints: everything needed to continue a run exactly where it stopped.
 *
 *   runs/<id>/checkpoints/<name>/  model.safetensors      every model parameter (HF keys)
 *                                  optimizer.safetensors  optimizer slots (`m/<param>`, `v/<param>`)
 *                                  method.safetensors     the method's tensors (bases, adapters, Fisher, ...)
 *                                  state.json             position (task, epoch, batch), matrices so far, JSON states
 *                                  manifest.json          size and SHA-256 of each file above, written last
 *   runs/<id>/checkpoints/LATEST   the name of the newest complete checkpoint
 *
 * A checkpoint is written into a temporary folder (`.tmp-*`), flushed, and renamed into place; LATEST is replaced
 * the same way afterwards, and only then are older checkpoints pruned, each renamed to a `.del-*` name before it is
 * deleted. A crash at any moment therefore leaves LATEST pointing at a complete checkpoint; the leftover `.tmp-*`
 * and `.del-*` folders are never read and are removed at the next start (`removeTemporaries`). A write that fails
 * (a full disk) removes its temporary folder and throws a WriteFailedError naming the checkpoint; LATEST is as
 * it was.
 *
 * Loading checks everything a wrong value could silently change: the manifest (a bit flip, a truncated or
 * replaced file), the state against the run's config (`checkState`) and the tensors against the model
 * (`checkTensors`). Checkpoints written before manifests existed load without the file check (the caller warns).
 */
import { createHash } from 'node:crypto';
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
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { tf } from './tf';
import { readSafetensors, writeSafetensors, type StTensor } from './io/safetensors';
import { WriteFailedError, noSpaceError, testWriteFault } from './io/write-failure';

export const CHECKPOINT_FORMAT = 1;
export const MANIFEST_FILE = 'manifest.json';
const PART_FILES = ['model.safetensors', 'optimizer.safetensors', 'method.safetensors', 'state.json'] as const;

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
  /**
   * The same on the validation splits (`eval.validation`): present when the run has them, absent in checkpoints
   * of runs without them (and of versions before them).
   */
  validationMatrix?: number[][];
  validationZeroShot?: (number | null)[] | null;
  /** Last event sequence number written before this checkpoint. */
  seq: number;
  elapsedMs: number;
  /** `slots`: the shape of every optimizer moment saved (absent in checkpoints written before it was recorded). */
  optimizer: { name: string; step: number; slots?: Record<string, number[]> };
  method: unknown;
  reason: 'task' | 'epoch' | 'steps' | 'stop';
  time: number;
}

export interface CheckpointManifest {
  format: number;
  files: Record<string, { size: number; sha256: string }>;
}

export interface CheckpointContents {
  meta: CheckpointMeta;
  model: Map<string, StTensor>;
  optimizer: Map<string, StTensor>;
  method: Map<string, StTensor>;
  path: string;
  /** False for a checkpoint written before manifests existed: its files could not be checked. */
  verified: boolean;
}

export class CheckpointCorruptError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(
      `checkpoint ${path} cannot be used: ${reason}. The checkpoints were left as they were; delete this checkpoint to resume from an earlier one, or every checkpoint to start the run over.`,
    );
    this.name = 'CheckpointCorruptError';
  }
}

/**
 * Test-only: `SCULPT_TEST_PAUSE_AT=<point>[@<n>]` makes the trainer stop for good at the n-th (default: first)
 * time it reaches `point`, after writing its pid to `SCULPT_TEST_PAUSE_FILE`, so that a test can kill it at that
 * exact moment. Points: `checkpoint-write` (inside the temporary folder, before the manifest) and `prune` (an old
 * checkpoint renamed aside, not yet deleted). Never set outside tests.
 */
const pauses = new Map<string, number>();
function testPause(point: string): void {
  const [at, nth = '1'] = (process.env.SCULPT_TEST_PAUSE_AT ?? '').split('@');
  if (at !== point) return;
  const seen = (pauses.get(point) ?? 0) + 1;
  pauses.set(point, seen);
  if (seen !== Number(nth)) return;
  const file = process.env.SCULPT_TEST_PAUSE_FILE;
  if (file) writeFileSync(file, String(process.pid));
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(cell, 0, 0, 60_000);
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
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // The write's own error is the one to report; a leftover is removed at the next start.
    }
    throw e;
  }
}

export function checkpointsDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

/**
 * `name` inside `root`, refusing anything that would resolve elsewhere (`..`, absolute paths, separators): names
 * come from files a user can edit (LATEST), and a run folder must never make the trainer read outside it.
 */
export function childPath(root: string, name: string, what: string): string {
  const full = resolve(root, name);
  if (!name || name === '.' || name === '..' || /[\\/\0]/.test(name) || !full.startsWith(resolve(root) + sep)) {
    throw new CheckpointCorruptError(
      join(root, what),
      `it names ${JSON.stringify(name)}, which is not a folder inside ${root}`,
    );
  }
  return full;
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Writes the manifest of a checkpoint folder holding every part file (also used by tests to re-seal edited ones). */
export function writeManifest(dir: string): void {
  const files: CheckpointManifest['files'] = {};
  for (const f of PART_FILES) files[f] = { size: statSync(join(dir, f)).size, sha256: sha256(join(dir, f)) };
  const manifest: CheckpointManifest = { format: CHECKPOINT_FORMAT, files };
  writeFileAtomic(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 1));
}

/**
 * Checks every file of a checkpoint against its manifest. Returns false for a checkpoint without a manifest (written
 * before manifests existed); any mismatch is a CheckpointCorruptError naming the file.
 */
export function verifyManifest(dir: string): boolean {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) return false;
  let m: CheckpointManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as CheckpointManifest;
  } catch (e) {
    throw new CheckpointCorruptError(dir, `${MANIFEST_FILE} is unreadable (${(e as Error).message})`);
  }
  if (m?.format !== CHECKPOINT_FORMAT || !m.files || typeof m.files !== 'object') {
    throw new CheckpointCorruptError(dir, `${MANIFEST_FILE} is not a format-${CHECKPOINT_FORMAT} manifest`);
  }
  for (const f of PART_FILES) {
    const want = m.files[f];
    if (!want) throw new CheckpointCorruptError(dir, `${MANIFEST_FILE} does not list ${f}`);
    const p = join(dir, f);
    if (!existsSync(p)) throw new CheckpointCorruptError(dir, `${f} is missing`);
    const size = statSync(p).size;
    if (size !== want.size) {
      throw new CheckpointCorruptError(dir, `${f} has ${size} bytes, the manifest says ${want.size}`);
    }
    if (sha256(p) !== want.sha256) {
      throw new CheckpointCorruptError(
        dir,
        `${f} does not match its SHA-256 in the manifest (the file changed after it was written)`,
      );
    }
  }
  return true;
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
  const meta: CheckpointMeta = {
    ...parts.meta,
    optimizer: { ...parts.meta.optimizer, slots: Object.fromEntries([...optimizer].map(([k, t]) => [k, t.shape])) },
  };
  const root = checkpointsDir(runDir);
  const final = childPath(root, name, name);
  const tmp = join(root, `.tmp-${name}-${process.pid}`);
  try {
    mkdirSync(root, { recursive: true });
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    writeSafetensors(join(tmp, 'model.safetensors'), model, { format: 'pt' });
    testPause('checkpoint-write');
    // Test-only (SCULPT_TEST_FAIL_WRITE, see io/write-failure.ts): the disk fills up after the first file.
    if (testWriteFault('checkpoint')) throw noSpaceError();
    writeSafetensors(join(tmp, 'optimizer.safetensors'), optimizer);
    writeSafetensors(join(tmp, 'method.safetensors'), method);
    writeFileAtomic(join(tmp, 'state.json'), JSON.stringify(meta, null, 1));
    // Last: a folder with a manifest is complete.
    writeManifest(tmp);
    fsyncDir(tmp);
    // A checkpoint of the same name (a resumed run passing the same point again) goes aside first, never half-deleted.
    if (existsSync(final)) discard(root, name);
    renameSync(tmp, final);
    fsyncDir(root);
    writeFileAtomic(join(root, 'LATEST'), name + '\n');
    fsyncDir(root);
  } catch (e) {
    // LATEST still names the previous complete checkpoint. The partial one goes now: on a full disk it holds
    // space that the user would otherwise have to find and free (failing that, the next start removes it).
    try {
      rmSync(tmp, { recursive: true, force: true });
    } catch {
      // The write's own error is the one to report.
    }
    throw new WriteFailedError(final, 'write checkpoint', e);
  }
  prune(root, keep, name);
  return final;
}

/** Removes a checkpoint folder: renamed out of the way first, so that a crash never leaves a partial one in place. */
function discard(root: string, name: string): void {
  const gone = join(root, `.del-${name}-${process.pid}`);
  rmSync(gone, { recursive: true, force: true });
  renameSync(join(root, name), gone);
  fsyncDir(root);
  testPause('prune');
  rmSync(gone, { recursive: true, force: true });
}

/** Called once LATEST names `newest`: a checkpoint older than the newest `keep` can go. */
function prune(root: string, keep: number, newest: string): void {
  const all = checkpointNames(root)
    .map((name) => ({ name, time: readTime(join(root, name)) }))
    .sort((a, b) => a.time - b.time);
  const excess = all.filter((c) => c.name !== newest).slice(0, Math.max(0, all.length - Math.max(1, keep)));
  for (const c of excess) discard(root, c.name);
}

/** Checkpoint folders of `root`: every folder except the temporary ones. */
function checkpointNames(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name);
}

function readTime(dir: string): number {
  try {
    const t = (JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as CheckpointMeta).time;
    return typeof t === 'number' ? t : 0;
  } catch {
    return 0;
  }
}

/**
 * Leftovers of a write or a prune that a crash interrupted (`.tmp-*`, `.del-*`, `LATEST.tmp-*`), removed when a
 * trainer starts on the folder. Returns their names.
 */
export function removeTemporaries(runDir: string): string[] {
  const root = checkpointsDir(runDir);
  if (!existsSync(root)) return [];
  const stale = readdirSync(root).filter(
    (n) => n.startsWith('.tmp-') || n.startsWith('.del-') || n.startsWith('LATEST.tmp-'),
  );
  for (const n of stale) rmSync(join(root, n), { recursive: true, force: true });
  return stale;
}

/** The newest complete checkpoint of a run, or null when none was written. LATEST must name a folder inside. */
export function latestCheckpoint(runDir: string): string | null {
  const latest = join(checkpointsDir(runDir), 'LATEST');
  if (!existsSync(latest)) return null;
  const name = readFileSync(latest, 'utf8').trim();
  return name ? childPath(checkpointsDir(runDir), name, 'LATEST') : null;
}

/**
 * The checkpoints to try on resume, best first: the one LATEST names, then every other by the time it was written,
 * newest first. A LATEST that names something outside the folder is an error, not a candidate.
 */
export function checkpointCandidates(runDir: string): string[] {
  const root = checkpointsDir(runDir);
  const latest = latestCheckpoint(runDir);
  const others = checkpointNames(root)
    .map((name) => join(root, name))
    .filter((p) => p !== latest)
    .map((p) => ({ p, time: readTime(p) }))
    .sort((a, b) => b.time - a.time)
    .map((c) => c.p);
  return latest ? [latest, ...others] : others;
}

/** Reads a checkpoint, checking its files against the manifest; every problem is a CheckpointCorruptError. */
export function loadCheckpoint(path: string): CheckpointContents {
  if (!existsSync(path)) throw new CheckpointCorruptError(path, 'the folder does not exist');
  const verified = verifyManifest(path);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(join(path, 'state.json'), 'utf8')) as CheckpointMeta;
  } catch (e) {
    throw new CheckpointCorruptError(path, `state.json is unreadable (${(e as Error).message})`);
  }
  if (meta?.format !== CHECKPOINT_FORMAT) {
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
    verified,
  };
}

/** What a checkpoint's state must agree with: the run it continues. */
export interface StateExpectations {
  /** Tasks in the run's order. */
  tasks: number;
  /** Epochs per task (training.epochs). */
  epochs: number;
  /** The optimizer the run uses. */
  optimizer: string;
  /** Whether the run has validation splits, whose matrix the state must then carry (default false). */
  validation?: boolean;
}

const isInt = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
const isPercent = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 100;

/**
 * Checks state.json against the run: a position inside the run (a task that exists, an epoch within training), one
 * matrix row of T finite percentages per finished task (in the validation matrix too, when the run has validation
 * splits), and counters that fit together. Returns the problems, each
 * naming its field; empty when the state can be used.
 */
export function checkState(meta: CheckpointMeta, expect: StateExpectations): string[] {
  const issues: string[] = [];
  const T = expect.tasks;
  const p = meta.position as Partial<RunPosition> | undefined;
  if (!p || typeof p !== 'object') return ['position is missing'];
  if (!isInt(p.task) || p.task >= T)
    issues.push(`position.task is ${JSON.stringify(p.task)}, the run has tasks 0..${T - 1}`);
  const epochOk = isInt(p.epoch) && (p.epoch < expect.epochs || (p.epoch === expect.epochs && p.batch === 0));
  if (!epochOk)
    issues.push(`position.epoch is ${JSON.stringify(p.epoch)}, training has epochs 0..${expect.epochs - 1}`);
  for (const k of ['batch', 'taskStep', 'globalStep'] as const) {
    if (!isInt(p[k])) issues.push(`position.${k} is ${JSON.stringify(p[k])}, expected an integer >= 0`);
  }
  if (isInt(p.taskStep) && isInt(p.globalStep) && p.taskStep > p.globalStep) {
    issues.push(`position.taskStep (${p.taskStep}) exceeds position.globalStep (${p.globalStep})`);
  }
  if (typeof p.trained !== 'boolean')
    issues.push(`position.trained is ${JSON.stringify(p.trained)}, expected a boolean`);
  const matrices: ['matrix' | 'validationMatrix', 'zeroShot' | 'validationZeroShot'][] = [['matrix', 'zeroShot']];
  // Without validation splits the validation fields are not read, whatever they hold.
  if (expect.validation) matrices.push(['validationMatrix', 'validationZeroShot']);
  for (const [mk, zk] of matrices) {
    const matrix = meta[mk];
    if (!Array.isArray(matrix)) {
      issues.push(`${mk} is not an array`);
    } else {
      // One row per task finished before the position's task.
      if (isInt(p.task) && matrix.length !== p.task) {
        issues.push(`${mk} has ${matrix.length} rows, position.task ${p.task} needs ${p.task}`);
      }
      matrix.forEach((row, i) => {
        if (!Array.isArray(row) || row.length !== T || !row.every(isPercent)) {
          issues.push(`${mk}[${i}] must be ${T} numbers between 0 and 100, got ${JSON.stringify(row).slice(0, 80)}`);
        }
      });
    }
    const z = meta[zk];
    if (z !== null && z !== undefined) {
      if (!Array.isArray(z) || z.length !== T || !z.every((v) => v === null || isPercent(v))) {
        issues.push(
          `${zk} must be null or ${T} numbers between 0 and 100 (or null), got ${JSON.stringify(z).slice(0, 80)}`,
        );
      }
    }
  }
  const o = meta.optimizer as Partial<CheckpointMeta['optimizer']> | undefined;
  if (!o || o.name !== expect.optimizer) {
    issues.push(`optimizer.name is ${JSON.stringify(o?.name)}, the run uses '${expect.optimizer}'`);
  }
  if (!isInt(o?.step)) issues.push(`optimizer.step is ${JSON.stringify(o?.step)}, expected an integer >= 0`);
  if (!isInt(meta.seq)) issues.push(`seq is ${JSON.stringify(meta.seq)}, expected an integer >= 0`);
  if (typeof meta.elapsedMs !== 'number' || !(meta.elapsedMs >= 0))
    issues.push(`elapsedMs is ${JSON.stringify(meta.elapsedMs)}`);
  return issues;
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

function firstNonFinite(t: StTensor): number {
  if (t.dtype !== 'F32') return -1;
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return i;
  return -1;
}

function allZero(t: StTensor): boolean {
  const d = t.data as Float32Array | Int32Array;
  for (let i = 0; i < d.length; i++) if (d[i] !== 0) return false;
  return true;
}

/**
 * Checks the tensors against the model they are loaded into: every parameter present with its shape, finite
 * values, no weight matrix all zeros (no trained model has one; a zeroed file does), and every optimizer moment
 * the state lists present with its shape (an empty optimizer file would otherwise silently reset the optimizer).
 * Returns the problems; empty when the tensors can be used.
 */
export function checkTensors(cp: CheckpointContents, params: Map<string, readonly number[]>): string[] {
  const issues: string[] = [];
  for (const [name, shape] of params) {
    const t = cp.model.get(name);
    if (!t) issues.push(`model.safetensors lacks parameter '${name}'`);
    else if (!sameShape(t.shape, shape))
      issues.push(`model.safetensors: '${name}' has shape [${t.shape}], the model has [${shape}]`);
    else if (shape.length === 2 && allZero(t)) issues.push(`model.safetensors: '${name}' is all zeros`);
  }
  const parts = [
    ['model.safetensors', cp.model],
    ['optimizer.safetensors', cp.optimizer],
    ['method.safetensors', cp.method],
  ] as const;
  for (const [file, part] of parts) {
    for (const [name, t] of part) {
      const at = firstNonFinite(t);
      if (at >= 0) issues.push(`${file}: '${name}' holds ${(t.data as Float32Array)[at]} at element ${at}`);
    }
  }
  const slots = cp.meta.optimizer?.slots;
  if (slots && typeof slots === 'object') {
    for (const [name, shape] of Object.entries(slots)) {
      const t = cp.optimizer.get(name);
      if (!t) issues.push(`optimizer.safetensors lacks moment '${name}' that state.json lists`);
      else if (!Array.isArray(shape) || !sameShape(t.shape, shape)) {
        issues.push(`optimizer.safetensors: '${name}' has shape [${t.shape}], state.json lists [${shape}]`);
      }
    }
    for (const name of cp.optimizer.keys()) {
      if (!(name in slots)) issues.push(`optimizer.safetensors has moment '${name}' that state.json does not list`);
    }
  }
  for (const [key, t] of cp.optimizer) {
    const param = params.get(key.slice(key.indexOf('/') + 1));
    if (param && !sameShape(t.shape, param))
      issues.push(`optimizer.safetensors: '${key}' has shape [${t.shape}], the parameter has [${param}]`);
  }
  return issues;
}

/** Where a resume starts: the checkpoints to try, best first (`checkpointCandidates`). */
export interface ResumeSource {
  candidates: string[];
  /**
   * With no candidates: the first event sequence number of an earlier attempt that stopped before its first
   * checkpoint. The run starts over and its run-started supersedes that attempt's events.
   */
  restartOf?: number;
}

/**
 * The newest candidate that loads and passes every check, with the ones passed over (newer but unusable), or a
 * CheckpointCorruptError listing why each failed when none is usable.
 */
export function chooseCheckpoint(
  candidates: string[],
  expect: StateExpectations,
  params: Map<string, readonly number[]>,
): { contents: CheckpointContents; rejected: CheckpointCorruptError[] } {
  const rejected: CheckpointCorruptError[] = [];
  for (const path of candidates) {
    try {
      const cp = loadCheckpoint(path);
      const issues = checkState(cp.meta, expect);
      if (issues.length) throw new CheckpointCorruptError(path, `state.json: ${issues.join('; ')}`);
      const bad = checkTensors(cp, params);
      if (bad.length) throw new CheckpointCorruptError(path, bad.join('; '));
      return { contents: cp, rejected };
    } catch (e) {
      if (!(e instanceof CheckpointCorruptError)) throw e;
      rejected.push(e);
    }
  }
  if (rejected.length === 1) throw rejected[0];
  throw new CheckpointCorruptError(
    rejected[0]?.path ?? '(none)',
    `no checkpoint of the run can be used (${rejected.map((e) => `${e.path}: ${e.reason}`).join(' | ')})`,
  );
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
