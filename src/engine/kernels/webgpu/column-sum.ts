/**
 * Column sums of a matrix ([N, C] -> [C]) on webgpu: the bias gradient of every linear layer, dbias = Σ_rows dy.
 * tfjs reduces along the last axis only, so a sum over rows costs a transpose of dy plus a reduction; here each
 * thread owns a column and adds a block of rows (neighbouring threads read neighbouring floats), giving partial
 * sums [blocks, C] that a second pass of the same kernel adds up.
 */
import { tf } from '../../tf';
import { runKernel, WORKGROUP_INDEX } from './program';

const WG = 256;
/** Rows per block: enough work per thread, enough blocks to fill the GPU for a 4096-row activation. */
const BLOCK = 64;

function partialSums(x: tf.Tensor2D): tf.Tensor2D {
  const [n, c] = x.shape;
  const blocks = Math.ceil(n / BLOCK);
  const groupsPerBlock = Math.ceil(c / WG);
  return runKernel(
    {
      key: 'column_sum',
      variableNames: ['X'],
      outputShape: [blocks, c],
      workgroupSize: [WG, 1, 1],
      workgroups: blocks * groupsPerBlock,
      uniforms: 'rows : i32, cols : i32, groupsPerBlock : i32, blocks : i32,',
      code: `fn main() {
        let g = ${WORKGROUP_INDEX};
        let block = g / uniforms.groupsPerBlock;
        let col = (g % uniforms.groupsPerBlock) * ${WG} + i32(localIndex);
        if (block >= uniforms.blocks || col >= uniforms.cols) { return; }
        let first = block * ${BLOCK};
        let last = min(first + ${BLOCK}, uniforms.rows);
        var s = 0.0;
        for (var r = first; r < last; r++) { s += X[r * uniforms.cols + col]; }
        result[block * uniforms.cols + col] = s;
      }`,
    },
    [x],
    [
      { type: 'int32', data: [n] },
      { type: 'int32', data: [c] },
      { type: 'int32', data: [groupsPerBlock] },
      { type: 'int32', data: [blocks] },
    ],
  ) as tf.Tensor2D;
}

/** Σ over rows of x [N, C]: [C]. */
export function columnSum(x: tf.Tensor2D): tf.Tensor1D {
  let t = x;
  const made: tf.Tensor[] = [];
  while (t.shape[0] > 1) {
    t = partialSums(t);
    made.push(t);
  }
  const out = t.reshape([x.shape[1]]) as tf.Tensor1D;
  tf.dispose(made); // `out` holds its own reference to the last partial's data
  return out;
}
