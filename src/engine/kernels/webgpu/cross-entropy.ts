/**
 * Fused softmax cross-entropy for the webgpu backend: HF's causal-LM loss, the mean over rows whose target is
 * not -100 of -log softmax(logits)[target] (0 when no row is labelled).
 *
 * logSoftmax + pick materialises log-probabilities [N, V] and its gradient another [N, V] or two; with
 * GPT-2's 50257-word vocabulary that is the largest tensor of a step. Here:
 *   forward   one workgroup per row: an online max / Σ exp over the row (each thread a strided slice,
 *             merged in shared memory), the log-sum-exp and the picked logit -> (nll, lse) [N, 2]
 *   backward  one workgroup per row: dlogits = (exp(logit - lse) - onehot(target)) · dy / count,
 *             0 on ignored rows; the saved lse spares a second pass over the row
 * The count of labelled rows stays on the device (no read-back in the step).
 */
import { tf } from '../../tf';
import { KernelProgram, runKernel } from './program';
import { ROW_GRID_UNIFORMS, rowGrid, rowGridUniforms, rowLoop } from './row-grid';

export const IGNORE_INDEX = -100;

const THREADS = 256;
/** Start of the running max: finite, so merging two empty slices never computes -inf - (-inf). */
const LOWEST = '-3.4028234e38';

const UNIFORMS = ROW_GRID_UNIFORMS;
const uniforms = rowGridUniforms;
const ROW_LOOP = rowLoop('V');

function forwardProgram(rows: number): KernelProgram {
  return {
    key: 'cross_entropy_fwd',
    variableNames: ['Logits', 'Targets'],
    outputShape: [rows, 2],
    workgroupSize: [THREADS, 1, 1],
    workgroups: rowGrid(rows).groups,
    uniforms: UNIFORMS,
    code: `
var<workgroup> runMax : array<f32, ${THREADS}>;
var<workgroup> runSum : array<f32, ${THREADS}>;

fn main() {${ROW_LOOP}
    // Online softmax normaliser: sum is Σ exp(v - max) over what this thread has seen.
    var m = ${LOWEST};
    var s = 0.0;
    if (live) {
      for (var j = tid; j < V; j += ${THREADS}) {
        let v = Logits[base + j];
        if (v > m) {
          s = s * exp(m - v) + 1.0;
          m = v;
        } else {
          s += exp(v - m);
        }
      }
    }
    runMax[tid] = m;
    runSum[tid] = s;
    workgroupBarrier();
    for (var h = ${THREADS / 2}; h > 0; h = h >> 1u) {
      if (tid < h) {
        let m1 = runMax[tid];
        let m2 = runMax[tid + h];
        let mm = max(m1, m2);
        runSum[tid] = runSum[tid] * exp(m1 - mm) + runSum[tid + h] * exp(m2 - mm);
        runMax[tid] = mm;
      }
      workgroupBarrier();
    }
    if (live && tid == 0) {
      let lse = runMax[0] + log(runSum[0]);
      let t = Targets[row];
      var nll = 0.0;
      if (t >= 0 && t < V) { nll = lse - Logits[base + t]; }
      result[2 * row] = nll;
      result[2 * row + 1] = lse;
    }
    // The next row overwrites the shared arrays.
    workgroupBarrier();
  }
}`,
  };
}

function backwardProgram(rows: number, cols: number): KernelProgram {
  return {
    key: 'cross_entropy_bwd',
    variableNames: ['Logits', 'Targets', 'Stats', 'Scale'],
    outputShape: [rows, cols],
    workgroupSize: [THREADS, 1, 1],
    workgroups: rowGrid(rows).groups,
    uniforms: UNIFORMS,
    code: `
fn main() {${ROW_LOOP}
    if (live) {
      let t = Targets[row];
      // Ignored rows (and out-of-range targets, which the forward also scores 0) get no gradient.
      let g = select(0.0, Scale[0], t >= 0 && t < V);
      let lse = Stats[2 * row + 1];
      for (var j = tid; j < V; j += ${THREADS}) {
        let p = exp(Logits[base + j] - lse);
        result[base + j] = (p - select(0.0, 1.0, j == t)) * g;
      }
    }
  }
}`,
  };
}

/** Rows whose target is not IGNORE_INDEX, as a float scalar (stays on the device). */
function labelledCount(targets: tf.Tensor): tf.Scalar {
  return targets.notEqual(tf.scalar(IGNORE_INDEX, 'int32')).toFloat().sum();
}

/**
 * Mean over labelled rows of -log softmax(logits)[target], logits [N, V] float32, targets [N] int32 with
 * IGNORE_INDEX for unlabelled rows: `meanNll(tf.logSoftmax(logits), targets)` in one pass each way.
 */
export function fusedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (logits.rank !== 2) throw new Error(`fusedCrossEntropy: logits must be [rows, vocab], got [${logits.shape}]`);
  const [rows, cols] = logits.shape;
  if (targets.rank !== 1 || targets.shape[0] !== rows)
    throw new Error(`fusedCrossEntropy: targets of shape [${targets.shape}] for ${rows} rows`);
  if (rows === 0) return tf.scalar(0);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, y, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const ids = y.dtype === 'int32' ? y : y.toInt();
    const stats = runKernel(forwardProgram(rows), [x, ids], uniforms(rows, cols));
    save([x, ids, stats]);
    const nll = stats.slice([0, 0], [rows, 1]);
    return {
      value: nll.sum().div(labelledCount(ids).maximum(1)) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ts, st] = saved;
        const scale = dy.reshape([1]).div(labelledCount(ts).maximum(1));
        const dlogits = runKernel(backwardProgram(rows, cols), [xs, ts, st, scale], uniforms(rows, cols));
        return [dlogits, tf.zerosLike(ts)];
      },
    };
  });
  return f(logits, targets) as tf.Scalar;
}
