/**
 * Backend parity on the Hugging Face reference fixtures: logits, loss and every parameter's gradient of one
 * training step computed on a backend under test beside the same computation on the reference backend (cpu),
 * and both beside the transformers values stored with the fixture. Used by `scripts/gpu-check` on a GPU and by
 * the webgpu tests on a software adapter.
 */
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { readSafetensors } from '../../src/engine/io/safetensors';
import { namedGrads } from '../../src/engine/models/grads';

export interface ParityResult {
  fixture: string;
  backend: string;
  /** ||a - b|| / ||b|| against the reference backend. */
  logits: number;
  loss: number;
  worstGrad: { name: string; err: number };
  /** The same errors against the transformers reference stored with the fixture. */
  hfLogits: number;
  hfWorstGrad: number;
  gradCount: number;
}

export interface FixtureOutputs {
  logits: Float32Array;
  loss: Float32Array;
  grads: Map<string, Float32Array>;
}

/** Norm-wise relative error ||a - b|| / ||b|| in float64. */
export function normRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Logits, loss and every parameter's gradient of the fixture at `dir` on the active backend. */
export async function fixtureOutputs(dir: string): Promise<FixtureOutputs> {
  const ref = readSafetensors(join(dir, 'reference.safetensors')).tensors;
  const model = loadPretrained(dir);
  const idsT = ref.get('input.input_ids')!;
  const labT = ref.get('input.labels')!;
  const ids = tf.tensor2d(idsT.data as Int32Array, idsT.shape as [number, number], 'int32');
  const labels = tf.tensor2d(labT.data as Int32Array, labT.shape as [number, number], 'int32');
  try {
    const logitsT = model.logits(ids);
    const logits = (await logitsT.data()) as Float32Array;
    logitsT.dispose();
    const { value, grads } = namedGrads(model, () => model.loss(ids, labels));
    const loss = (await value.data()) as Float32Array;
    value.dispose();
    const out = new Map<string, Float32Array>();
    for (const [n, g] of grads) out.set(n, (await g.data()) as Float32Array);
    tf.dispose([...grads.values()]);
    return { logits, loss, grads: out };
  } finally {
    tf.dispose([ids, labels]);
    model.dispose();
  }
}

/** Runs the fixture at `dir` on `referenceBackend`, then on `backend` (which stays active afterwards). */
export async function fixtureParity(dir: string, backend: string, referenceBackend = 'cpu'): Promise<ParityResult> {
  await tf.setBackend(referenceBackend);
  const want = await fixtureOutputs(dir);
  await tf.setBackend(backend);
  if (tf.getBackend() !== backend) throw new Error(`backend ${backend} is not available`);
  const got = await fixtureOutputs(dir);
  const hf = readSafetensors(join(dir, 'reference.safetensors')).tensors;
  let worstGrad = { name: '', err: 0 };
  let hfWorstGrad = 0;
  for (const [name, g] of want.grads) {
    const mine = got.grads.get(name);
    if (!mine) throw new Error(`${backend}: no gradient for ${name}`);
    const err = normRelError(mine, g);
    if (err >= worstGrad.err) worstGrad = { name, err };
    const h = hf.get(`grad.${name}`);
    if (h) hfWorstGrad = Math.max(hfWorstGrad, normRelError(mine, h.data as Float32Array));
  }
  return {
    fixture: dir.split(/[\\/]/).pop()!,
    backend,
    logits: normRelError(got.logits, want.logits),
    loss: normRelError(got.loss, want.loss),
    worstGrad,
    hfLogits: normRelError(got.logits, hf.get('logits')!.data as Float32Array),
    hfWorstGrad,
    gradCount: want.grads.size,
  };
}
