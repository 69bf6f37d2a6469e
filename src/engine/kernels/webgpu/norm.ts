/**
 * Fused RMSNorm and LayerNorm (torch semantics: biased variance) for the webgpu backend, forward and backward.
 *
 * Unfused, tfjs runs a norm as about ten elementwise and reduction programs, each a full pass over the
 * activations, and autodiff adds as many again. Here:
 *   forward   row stats [N, 2] = (mean, rstd)   one workgroup per row, shared-memory tree reductions
 *             y = (x - mean)·rstd·w (+ b)       one workgroup per row
 *   backward  dx                                one workgroup per row: needs the row's Σ g and Σ g·x̂ (g = dy·w)
 *             dw (and db) partial sums          one thread per column, looping over a block of rows
 *                                               (coalesced: neighbouring threads read neighbouring columns)
 * RMSNorm is the same code with the mean pinned at 0 and the Σ g term dropped.
 *
 * Rows are spread over at most 65535 workgroups as row-grid.ts describes.
 */
import { tf } from '../../tf';
import { KernelProgram, runKernel, Uniform, WORKGROUP_INDEX } from './program';
import { MAX_WORKGROUPS, ROW_GRID_UNIFORMS, rowGrid, rowGridUniforms, rowLoop } from './row-grid';

/** Threads per row in the row programs (a power of two: the tree reduction halves it). */
const ROW_THREADS = 256;
/** Columns per workgroup in the dw/db reduction. */
const COL_THREADS = 128;
/** Rows each dw/db workgroup sums before writing its partial; more rows means fewer partials to add up. */
const MIN_ROWS_PER_BLOCK = 64;

type Kind = 'rms' | 'layer';

const ROW_UNIFORMS = `${ROW_GRID_UNIFORMS} eps : f32,`;

function rowUniforms(rows: number, cols: number, eps: number): Uniform[] {
  return [...rowGridUniforms(rows, cols), { type: 'float32', data: [eps] }];
}

const ROW_LOOP = rowLoop('d');

/** Workgroup sum of one value per thread; every thread gets the total. Call in uniform control flow only. */
const BLOCK_SUM = `
var<workgroup> partial : array<vec2<f32>, ${ROW_THREADS}>;
fn blockSum(v : vec2<f32>) -> vec2<f32> {
  partial[localIndex] = v;
  workgroupBarrier();
  for (var s = ${ROW_THREADS / 2}u; s > 0u; s = s >> 1u) {
    if (localIndex < s) { partial[localIndex] = partial[localIndex] + partial[localIndex + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  // The next call overwrites partial: everyone must have read the total first.
  workgroupBarrier();
  return total;
}`;

/** Per-row (mean, rstd) [N, 2]. Two passes over the row (the second hits the cache): exact variance, no Welford. */
function statsProgram(kind: Kind, rows: number): KernelProgram {
  const centered = kind === 'layer';
  const { groups } = rowGrid(rows);
  return {
    key: `norm_stats_${kind}`,
    variableNames: ['X'],
    outputShape: [rows, 2],
    workgroupSize: [ROW_THREADS, 1, 1],
    workgroups: groups,
    uniforms: ROW_UNIFORMS,
    code: `${BLOCK_SUM}
fn main() {${ROW_LOOP}
    var mean = 0.0;
    ${
      centered
        ? `
    var s = 0.0;
    if (live) { for (var j = tid; j < d; j += ${ROW_THREADS}) { s += X[base + j]; } }
    mean = blockSum(vec2<f32>(s, 0.0)).x / f32(d);`
        : ''
    }
    var q = 0.0;
    if (live) {
      for (var j = tid; j < d; j += ${ROW_THREADS}) {
        let c = X[base + j] - mean;
        q += c * c;
      }
    }
    let rstd = inverseSqrt(blockSum(vec2<f32>(q, 0.0)).x / f32(d) + uniforms.eps);
    if (live && tid == 0) {
      result[2 * row] = mean;
      result[2 * row + 1] = rstd;
    }
  }
}`,
  };
}

/** y = (x - mean)·rstd·w (+ b), one workgroup per row. */
function normalizeProgram(kind: Kind, rows: number, cols: number): KernelProgram {
  const centered = kind === 'layer';
  return {
    key: `norm_apply_${kind}`,
    variableNames: centered ? ['X', 'S', 'W', 'B'] : ['X', 'S', 'W'],
    outputShape: [rows, cols],
    workgroupSize: [ROW_THREADS, 1, 1],
    workgroups: rowGrid(rows).groups,
    uniforms: ROW_UNIFORMS,
    code: `
fn main() {${ROW_LOOP}
    if (live) {
      let mean = S[2 * row];
      let rstd = S[2 * row + 1];
      for (var j = tid; j < d; j += ${ROW_THREADS}) {
        result[base + j] = (X[base + j] - mean) * rstd * W[j]${centered ? ' + B[j]' : ''};
      }
    }
  }
}`,
  };
}

/**
 * dx = rstd·(g - mean(g) - x̂·mean(g·x̂)) with g = dy·w, x̂ = (x - mean)·rstd (LayerNorm);
 * RMSNorm drops the mean(g) term (its mean is not subtracted, so it has no gradient path).
 */
function inputGradProgram(kind: Kind, rows: number, cols: number): KernelProgram {
  const centered = kind === 'layer';
  return {
    key: `norm_dx_${kind}`,
    variableNames: ['X', 'S', 'W', 'DY'],
    outputShape: [rows, cols],
    workgroupSize: [ROW_THREADS, 1, 1],
    workgroups: rowGrid(rows).groups,
    uniforms: ROW_UNIFORMS,
    code: `${BLOCK_SUM}
fn main() {${ROW_LOOP}
    var mean = 0.0;
    var rstd = 0.0;
    var acc = vec2<f32>(0.0, 0.0);
    if (live) {
      mean = S[2 * row];
      rstd = S[2 * row + 1];
      for (var j = tid; j < d; j += ${ROW_THREADS}) {
        let g = DY[base + j] * W[j];
        acc += vec2<f32>(g, g * (X[base + j] - mean) * rstd);
      }
    }
    let m = blockSum(acc) / f32(d);
    if (live) {
      for (var j = tid; j < d; j += ${ROW_THREADS}) {
        let g = DY[base + j] * W[j];
        let xhat = (X[base + j] - mean) * rstd;
        result[base + j] = rstd * (g${centered ? ' - m.x' : ''} - xhat * m.y);
      }
    }
  }
}`,
  };
}

/**
 * Partial column sums over blocks of rows: out[blk, c] = Σ dy·x̂ and, for LayerNorm, out[blk, d + c] = Σ dy.
 * Each thread owns one column of one block, so a warp reads a contiguous run of a row.
 */
function paramGradProgram(kind: Kind, rows: number, cols: number): { program: KernelProgram; uniforms: Uniform[] } {
  const centered = kind === 'layer';
  const colBlocks = Math.ceil(cols / COL_THREADS);
  // Enough rows per block to stay within one dispatch dimension.
  const rowsPerBlock = Math.max(MIN_ROWS_PER_BLOCK, Math.ceil((rows * colBlocks) / MAX_WORKGROUPS));
  const rowBlocks = Math.max(1, Math.ceil(rows / rowsPerBlock));
  const width = centered ? 2 : 1;
  const program: KernelProgram = {
    key: `norm_dw_${kind}`,
    variableNames: ['X', 'S', 'DY'],
    outputShape: [rowBlocks, width * cols],
    workgroupSize: [COL_THREADS, 1, 1],
    workgroups: colBlocks * rowBlocks,
    uniforms: 'rows : i32, cols : i32, colBlocks : i32, rowsPerBlock : i32,',
    code: `
fn main() {
  let wg = ${WORKGROUP_INDEX};
  let d = uniforms.cols;
  let blk = wg / uniforms.colBlocks;
  let col = (wg % uniforms.colBlocks) * ${COL_THREADS} + i32(localIndex);
  if (col < d) {
    let r0 = blk * uniforms.rowsPerBlock;
    let r1 = min(r0 + uniforms.rowsPerBlock, uniforms.rows);
    var dw = 0.0;
    var db = 0.0;
    for (var r = r0; r < r1; r++) {
      let dy = DY[r * d + col];
      dw += dy * (X[r * d + col] - S[2 * r]) * S[2 * r + 1];
      db += dy;
    }
    result[blk * ${width} * d + col] = dw;
    ${centered ? 'result[blk * 2 * d + d + col] = db;' : ''}
  }
}`,
  };
  const uniforms: Uniform[] = [
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [cols] },
    { type: 'int32', data: [colBlocks] },
    { type: 'int32', data: [rowsPerBlock] },
  ];
  return { program, uniforms };
}

function checkShapes(where: string, x: tf.Tensor, params: tf.Tensor[]): [number, number] {
  if (x.rank !== 2) throw new Error(`${where}: x must be [rows, features], got [${x.shape}]`);
  const [rows, cols] = x.shape;
  for (const p of params) {
    if (p.size !== cols) throw new Error(`${where}: parameter of shape [${p.shape}] does not match ${cols} features`);
  }
  return [rows, cols];
}

function rowStats(kind: Kind, x: tf.Tensor2D, eps: number): tf.Tensor {
  const [rows, cols] = x.shape;
  return runKernel(statsProgram(kind, rows), [x], rowUniforms(rows, cols, eps));
}

function backward(kind: Kind, x: tf.Tensor2D, w: tf.Tensor, stats: tf.Tensor, dy: tf.Tensor, eps: number): tf.Tensor[] {
  const [rows, cols] = x.shape;
  const dx = runKernel(
    inputGradProgram(kind, rows, cols),
    [x, stats, w.reshape([cols]), dy],
    rowUniforms(rows, cols, eps),
  );
  const { program, uniforms } = paramGradProgram(kind, rows, cols);
  const sums = runKernel(program, [x, stats, dy], uniforms).sum(0);
  if (kind === 'rms') return [dx, sums.reshape(w.shape)];
  const [dw, db] = tf.split(sums, 2);
  return [dx, dw.reshape(w.shape), db];
}

/** LLaMA RMSNorm, x [N, d] / sqrt(mean(x²) + eps) · w, on the webgpu backend. */
export function fusedRmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  const [rows, cols] = checkShapes('fusedRmsNorm', x, [w]);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, ws, save] = args as [tf.Tensor2D, tf.Tensor, tf.GradSaveFunc];
    const stats = rowStats('rms', xs, eps);
    save([xs, ws, stats]);
    const y = runKernel(
      normalizeProgram('rms', rows, cols),
      [xs, stats, ws.reshape([cols])],
      rowUniforms(rows, cols, eps),
    );
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        backward('rms', saved[0] as tf.Tensor2D, saved[1], saved[2], dy, eps),
    };
  });
  return f(x, w) as tf.Tensor2D;
}

/** torch.nn.LayerNorm over the last axis of x [N, d] (biased variance), on the webgpu backend. */
export function fusedLayerNorm(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  const [rows, cols] = checkShapes('fusedLayerNorm', x, [w, b]);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, ws, bs, save] = args as [tf.Tensor2D, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const stats = rowStats('layer', xs, eps);
    save([xs, ws, stats]);
    const y = runKernel(
      normalizeProgram('layer', rows, cols),
      [xs, stats, ws.reshape([cols]), bs.reshape([cols])],
      rowUniforms(rows, cols, eps),
    );
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [dx, dw, db] = backward('layer', saved[0] as tf.Tensor2D, saved[1], saved[2], dy, eps);
        return [dx, dw, db.reshape(bs.shape)];
      },
    };
  });
  return f(x, w, b) as tf.Tensor2D;
}
