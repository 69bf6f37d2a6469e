/**
 * NaN and infinite values in tensors loaded from a file: a corrupt file, reported as one (naming the file and the
 * tensor) before training could turn it into a NaN loss that looks like a learning-rate problem. One reduction
 * per tensor and, when all are finite, a single read-back; nothing the training computes is touched.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFileError } from '../protocol/errors';
import { addMany, tf } from './tf';

/** Names of the tensors in `tensors` holding a NaN or an infinity, in order. */
export async function nonFiniteTensors(tensors: Iterable<[string, tf.Tensor]>): Promise<string[]> {
  const entries = [...tensors].filter(([, t]) => t.dtype === 'float32' && t.size > 0);
  if (entries.length === 0) return [];
  // 1 per tensor whose values are all finite, 0 otherwise.
  const flags = entries.map(([, t]) => tf.tidy(() => tf.all(tf.isFinite(t)).cast('float32')));
  try {
    const count = flags.length === 1 ? flags[0] : tf.tidy(() => addMany(flags));
    const finite = (await count.data())[0];
    if (!flags.includes(count)) count.dispose();
    if (finite === entries.length) return [];
    const bad: string[] = [];
    for (let i = 0; i < entries.length; i++) if ((await flags[i].data())[0] !== 1) bad.push(entries[i][0]);
    return bad;
  } finally {
    tf.dispose(flags);
  }
}

/**
 * Throws a ModelFileError naming the first tensor of the pretrained model in `dir` that holds a NaN or an
 * infinity (and how many more do), with the weights file when the folder has a single one.
 */
export async function assertFiniteWeights(dir: string, params: Map<string, tf.Tensor>): Promise<void> {
  const bad = await nonFiniteTensors(params);
  if (bad.length === 0) return;
  const file = weightsFileOf(dir, bad[0]);
  const more =
    bad.length > 1
      ? ` (and ${bad.length - 1} more tensors: ${bad.slice(1, 4).join(', ')}${bad.length > 4 ? ', ...' : ''})`
      : '';
  throw new ModelFileError(
    file,
    `holds NaN or infinite values${more}; the file is corrupt`,
    { tensor: bad[0] },
    {
      hint: 'The weights file is damaged, not the training: download or convert the model again (`sculpt inspect <folder>` shows what loads).',
    },
  );
}

/** The safetensors file in `dir` that holds `tensor`: the only one, or the one the shard index names. */
function weightsFileOf(dir: string, tensor: string): string {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return single;
  try {
    const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as {
      weight_map?: Record<string, string>;
    };
    const map = index.weight_map ?? {};
    const key = Object.keys(map).find((k) => k === tensor || tensor.endsWith(`.${k}`));
    if (key) return join(dir, map[key]);
  } catch {
    // No index (or an unreadable one, which the loader reports): name the folder.
  }
  return dir;
}
