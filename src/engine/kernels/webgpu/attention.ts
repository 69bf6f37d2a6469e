/**
 * Fused causal attention for the webgpu backend (FlashAttention, Dao et al. 2022): the [T, T] score matrix
 * is never materialised. Forward and backward each loop over tiles of the other sequence axis staged through
 * workgroup memory, recomputing the scores from Q and K and the probabilities from the row statistics.
 *
 * Semantics are those of `attention()` in models/layers.ts: score = (scale·q)·k + bias with
 * bias = MASKED·[j > i] + MASKED·[key j is padding], softmax over all T keys. Because MASKED is finite, a
 * query row whose visible keys are all padding (the leading positions of a left-padded row) gets a softmax
 * spread over masked keys, future ones included; those rows visit every key tile, the others stop at the
 * diagonal, where skipping is exact (exp(-1e9 - m) is 0 in fp32).
 *
 * Thread layout (every program): a workgroup of 64 invocations = BR rows × LANES lanes. A row is one query
 * (forward, dQ) or one key (dK, dV) of one (batch, head); lane l owns the head columns l, l+LANES, ..., so a
 * row's vectors live in registers as hd/LANES floats (32 at hd = 128). Dot products are reduced over the
 * lanes through workgroup memory. The tile of the other axis (BC rows of hd) is loaded with consecutive
 * invocations reading consecutive floats, and BC is sized from hd so that a workgroup stays within the
 * 16 KiB of workgroup memory WebGPU guarantees.
 */
import { tf } from '../../tf';
import { MASKED } from '../masked';
import { KernelProgram, runKernel, Uniform, WORKGROUP_INDEX } from './program';

const BR = 16;
const LANES = 4;
const WG = BR * LANES;
/** WebGPU's guaranteed maxComputeWorkgroupStorageSize (16 KiB), in floats. */
const SHARED_FLOATS = 4096;

/** The largest tile of the other axis (≤ 32 rows) whose workgroup arrays fit: `perRow` floats per tile row. */
function tileRows(perRow: number): number {
  let bc = 32;
  while (bc > 1 && bc * perRow > SHARED_FLOATS) bc /= 2;
  return bc;
}

/** WGSL summing the lanes' partial dot products held in workgroup array `name`, for (row, tile row jj). */
function lanesSum(fn: string, name: string): string {
  return `fn ${fn}(row : i32, jj : i32) -> f32 {
  let base = (row * BC + jj) * LANES;
  var s = 0.0;
  for (var l = 0; l < LANES; l++) { s += ${name}[base + l]; }
  return s;
}`;
}

/** WGSL shared by all programs: constants, uniforms access and the additive mask of the reference. */
function prelude(hd: number, bc: number): string {
  return `
const HD = ${hd};
const BR = ${BR};
const BC = ${bc};
const LANES = ${LANES};
const NC = ${Math.ceil(hd / LANES)};
const MASKED = ${MASKED.toExponential()};
const NEG_BIG = -3.0e38;

// The reference adds a padding bias and a causal bias (each MASKED), so a padded future key gets 2·MASKED.
// KEYS [B, T+1]: key validity (1 token, 0 padding), then the number of leading padding positions.
fn maskBias(b : i32, i : i32, j : i32) -> f32 {
  let pad = (1.0 - KEYS[b * (uniforms.T + 1) + j]) * MASKED;
  return pad + select(0.0, MASKED, j > i);
}

`;
}

const UNIFORMS = 'T : i32, H : i32, G : i32, scale : f32,';

function uniformsOf(T: number, H: number, G: number, scale: number): Uniform[] {
  return [
    { type: 'int32', data: [T] },
    { type: 'int32', data: [H] },
    { type: 'int32', data: [G] },
    { type: 'float32', data: [scale] },
  ];
}

/**
 * Query-row programs: 'out' (O, forward), 'stats' (row max m and log of the exp-sum, forward) and 'dq'.
 * One workgroup per (b, h, tile of BR query rows); loops over key tiles with K and V staged in shared memory.
 */
function queryProgram(mode: 'out' | 'stats' | 'dq', B: number, H: number, T: number, hd: number): KernelProgram {
  const dq = mode === 'dq';
  const useV = mode !== 'stats';
  // Per key-tile row: K and V (hd each) plus the lane partials of q·k (and of dO·v for dQ).
  const bc = tileRows((useV ? 2 : 1) * hd + (dq ? 2 : 1) * BR * LANES);
  const nQT = Math.ceil(T / BR);
  const store =
    mode === 'out'
      ? `if (rowOk) { for (var c = 0; c < NC; c++) { let col = lane + c * LANES; if (col < HD) { result[qBase + col] = acc[c] / l; } } }`
      : mode === 'stats'
        ? `if (rowOk && lane == 0) { result[2 * (bh * T + i)] = m; result[2 * (bh * T + i) + 1] = log(l); }`
        : `if (rowOk) { for (var c = 0; c < NC; c++) { let col = lane + c * LANES; if (col < HD) { result[qBase + col] = acc[c] * uniforms.scale; } } }`;
  const code = `${prelude(hd, bc)}
var<workgroup> Kt : array<f32, ${bc * hd}>;
${useV ? `var<workgroup> Vt : array<f32, ${bc * hd}>;` : ''}
var<workgroup> partS : array<f32, ${BR * LANES * bc}>;
${dq ? `var<workgroup> partP : array<f32, ${BR * LANES * bc}>;` : ''}
var<workgroup> wgTiles : i32;
${lanesSum('sumS', 'partS')}
${dq ? lanesSum('sumP', 'partP') : ''}

fn main() {
  let T = uniforms.T;
  let nQT = (T + BR - 1) / BR;
  let wg = ${WORKGROUP_INDEX};
  let bh = wg / nQT;
  let qt = wg % nQT;
  let b = bh / uniforms.H;
  let h = bh % uniforms.H;
  let KV = uniforms.H / uniforms.G;
  let kvBase = (b * KV + h / uniforms.G) * T * HD;
  let r = i32(localIndex) / LANES;
  let lane = i32(localIndex) % LANES;
  let i = qt * BR + r;
  let rowOk = i < T;
  let qBase = (bh * T + i) * HD;

  // Key tiles to visit: up to the diagonal of the tile's last row, or all of them when the tile holds a
  // row with every visible key masked (i < number of leading padding positions of batch row b).
  if (localIndex == 0u) {
    let last = min(T, (qt + 1) * BR) - 1;
    var n = last / BC + 1;
    if (qt * BR < i32(KEYS[b * (T + 1) + T])) { n = (T + BC - 1) / BC; }
    wgTiles = n;
  }
  let nTiles = workgroupUniformLoad(&wgTiles);

  var q : array<f32, NC>;
  var acc : array<f32, NC>;
  ${dq ? 'var dO : array<f32, NC>;' : ''}
  for (var c = 0; c < NC; c++) {
    let col = lane + c * LANES;
    var x = 0.0;
    ${dq ? 'var y = 0.0;' : ''}
    if (rowOk && col < HD) {
      x = Q[qBase + col] * uniforms.scale;
      ${dq ? 'y = DO[qBase + col];' : ''}
    }
    q[c] = x;
    acc[c] = 0.0;
    ${dq ? 'dO[c] = y;' : ''}
  }
  ${
    dq
      ? `var m = 0.0; var logl = 0.0; var Di = 0.0;
  if (rowOk) { m = STATS[2 * (bh * T + i)]; logl = STATS[2 * (bh * T + i) + 1]; Di = DD[bh * T + i]; }`
      : 'var m = NEG_BIG; var l = 0.0;'
  }

  for (var kt = 0; kt < nTiles; kt++) {
    let j0 = kt * BC;
    // Rows j0 .. j0+BC-1 of K and V are contiguous: consecutive invocations read consecutive floats.
    for (var e = i32(localIndex); e < BC * HD; e += ${WG}) {
      var kx = 0.0;
      ${useV ? 'var vx = 0.0;' : ''}
      if (j0 + e / HD < T) {
        kx = K[kvBase + j0 * HD + e];
        ${useV ? 'vx = V[kvBase + j0 * HD + e];' : ''}
      }
      Kt[e] = kx;
      ${useV ? 'Vt[e] = vx;' : ''}
    }
    workgroupBarrier();
    for (var jj = 0; jj < BC; jj++) {
      var s = 0.0;
      ${dq ? 'var dp = 0.0;' : ''}
      for (var c = 0; c < NC; c++) {
        let col = lane + c * LANES;
        if (col < HD) {
          s += q[c] * Kt[jj * HD + col];
          ${dq ? 'dp += dO[c] * Vt[jj * HD + col];' : ''}
        }
      }
      partS[(r * BC + jj) * LANES + lane] = s;
      ${dq ? 'partP[(r * BC + jj) * LANES + lane] = dp;' : ''}
    }
    workgroupBarrier();
    ${
      dq
        ? `for (var jj = 0; jj < BC; jj++) {
      let j = j0 + jj;
      if (j < T && rowOk) {
        let s = sumS(r, jj) + maskBias(b, i, j);
        // (s - m) first: both sit near MASKED in a fully masked row, and their difference is exact.
        let p = exp((s - m) - logl);
        let ds = p * (sumP(r, jj) - Di);
        for (var c = 0; c < NC; c++) {
          let col = lane + c * LANES;
          if (col < HD) { acc[c] += ds * Kt[jj * HD + col]; }
        }
      }
    }`
        : `var sc : array<f32, BC>;
    var tmax = NEG_BIG;
    for (var jj = 0; jj < BC; jj++) {
      let j = j0 + jj;
      var s = NEG_BIG;
      if (j < T && rowOk) { s = sumS(r, jj) + maskBias(b, i, j); }
      sc[jj] = s;
      tmax = max(tmax, s);
    }
    // Online softmax: rescale what was accumulated under the previous running max.
    let mNew = max(m, tmax);
    let alpha = exp(m - mNew);
    l *= alpha;
    for (var c = 0; c < NC; c++) { acc[c] *= alpha; }
    for (var jj = 0; jj < BC; jj++) {
      let p = exp(sc[jj] - mNew);
      l += p;
      ${
        mode === 'out'
          ? `for (var c = 0; c < NC; c++) {
        let col = lane + c * LANES;
        if (col < HD) { acc[c] += p * Vt[jj * HD + col]; }
      }`
          : ''
      }
    }
    m = mNew;`
    }
    workgroupBarrier();
  }
  ${store}
}
`;
  return {
    key: `attn_${mode}_${hd}_${bc}`,
    variableNames: dq
      ? ['Q', 'K', 'V', 'KEYS', 'DO', 'STATS', 'DD']
      : useV
        ? ['Q', 'K', 'V', 'KEYS']
        : ['Q', 'K', 'KEYS'],
    outputShape: mode === 'stats' ? [B, H, T, 2] : [B, H, T, hd],
    workgroupSize: [WG, 1, 1],
    workgroups: B * H * nQT,
    uniforms: UNIFORMS,
    code,
  };
}

/**
 * Key-row programs: 'dk' and 'dv'. One workgroup per (b, kv head, tile of BR key rows); loops over the G query
 * heads sharing the kv head and over query tiles, with scaled Q, dO and the row statistics staged in shared memory.
 */
function keyProgram(mode: 'dk' | 'dv', B: number, KV: number, T: number, hd: number): KernelProgram {
  const dk = mode === 'dk';
  const bc = tileRows(2 * hd + (dk ? 2 : 1) * BR * LANES + 3);
  const nKT = Math.ceil(T / BR);
  const code = `${prelude(hd, bc)}
var<workgroup> Qt : array<f32, ${bc * hd}>;
var<workgroup> dOt : array<f32, ${bc * hd}>;
var<workgroup> mt : array<f32, BC>;
var<workgroup> logLt : array<f32, BC>;
var<workgroup> Dt : array<f32, BC>;
var<workgroup> partS : array<f32, ${BR * LANES * bc}>;
${dk ? `var<workgroup> partP : array<f32, ${BR * LANES * bc}>;` : ''}
var<workgroup> wgBounds : vec2<i32>;
${lanesSum('sumS', 'partS')}
${dk ? lanesSum('sumP', 'partP') : ''}

fn main() {
  let T = uniforms.T;
  let H = uniforms.H;
  let G = uniforms.G;
  let KV = H / G;
  let nKT = (T + BR - 1) / BR;
  let wg = ${WORKGROUP_INDEX};
  let bkv = wg / nKT;
  let kt = wg % nKT;
  let b = bkv / KV;
  let r = i32(localIndex) / LANES;
  let lane = i32(localIndex) % LANES;
  let j = kt * BR + r;
  let rowOk = j < T;
  let kBase = (bkv * T + j) * HD;

  // Query tiles to visit: those reaching the diagonal (rows i >= this tile's first key) and those holding
  // fully masked rows (i < leading padding), whose softmax also covers future keys.
  if (localIndex == 0u) { wgBounds = vec2<i32>((kt * BR) / BC, i32(KEYS[b * (T + 1) + T])); }
  let bounds = workgroupUniformLoad(&wgBounds);

  var k : array<f32, NC>;
  ${dk ? 'var v : array<f32, NC>;' : ''}
  var acc : array<f32, NC>;
  for (var c = 0; c < NC; c++) {
    let col = lane + c * LANES;
    var x = 0.0;
    ${dk ? 'var y = 0.0;' : ''}
    if (rowOk && col < HD) {
      x = K[kBase + col];
      ${dk ? 'y = V[kBase + col];' : ''}
    }
    k[c] = x;
    ${dk ? 'v[c] = y;' : ''}
    acc[c] = 0.0;
  }

  let nQT = (T + BC - 1) / BC;
  for (var g = 0; g < G; g++) {
    let bh = b * H + (bkv % KV) * G + g;
    for (var qt = 0; qt < nQT; qt++) {
      if (qt < bounds.x && qt * BC >= bounds.y) { continue; }
      let i0 = qt * BC;
      for (var e = i32(localIndex); e < BC * HD; e += ${WG}) {
        var qx = 0.0;
        var ox = 0.0;
        if (i0 + e / HD < T) {
          qx = Q[(bh * T + i0) * HD + e] * uniforms.scale;
          ox = DO[(bh * T + i0) * HD + e];
        }
        Qt[e] = qx;
        dOt[e] = ox;
      }
      if (i32(localIndex) < BC) {
        let i = i0 + i32(localIndex);
        var mx = 0.0; var lx = 0.0; var dx = 0.0;
        if (i < T) { mx = STATS[2 * (bh * T + i)]; lx = STATS[2 * (bh * T + i) + 1]; dx = DD[bh * T + i]; }
        mt[localIndex] = mx;
        logLt[localIndex] = lx;
        Dt[localIndex] = dx;
      }
      workgroupBarrier();
      for (var ii = 0; ii < BC; ii++) {
        var s = 0.0;
        ${dk ? 'var dp = 0.0;' : ''}
        for (var c = 0; c < NC; c++) {
          let col = lane + c * LANES;
          if (col < HD) {
            s += k[c] * Qt[ii * HD + col];
            ${dk ? 'dp += v[c] * dOt[ii * HD + col];' : ''}
          }
        }
        partS[(r * BC + ii) * LANES + lane] = s;
        ${dk ? 'partP[(r * BC + ii) * LANES + lane] = dp;' : ''}
      }
      workgroupBarrier();
      for (var ii = 0; ii < BC; ii++) {
        let i = i0 + ii;
        if (i < T && rowOk) {
          let s = sumS(r, ii) + maskBias(b, i, j);
          let p = exp((s - mt[ii]) - logLt[ii]);
          ${dk ? 'let w = p * (sumP(r, ii) - Dt[ii]);' : 'let w = p;'}
          for (var c = 0; c < NC; c++) {
            let col = lane + c * LANES;
            // dK sums dS·(scale·q) (Qt holds scaled rows); dV sums P·dO.
            if (col < HD) { acc[c] += w * ${dk ? 'Qt' : 'dOt'}[ii * HD + col]; }
          }
        }
      }
      workgroupBarrier();
    }
  }
  if (rowOk) {
    for (var c = 0; c < NC; c++) {
      let col = lane + c * LANES;
      if (col < HD) { result[kBase + col] = acc[c]; }
    }
  }
}
`;
  return {
    key: `attn_${mode}_${hd}_${bc}`,
    // A binding the shader never reads is dropped from the pipeline layout, so dV does not take V.
    variableNames: dk ? ['Q', 'K', 'V', 'KEYS', 'DO', 'STATS', 'DD'] : ['Q', 'K', 'KEYS', 'DO', 'STATS', 'DD'],
    outputShape: [B, KV, T, hd],
    workgroupSize: [WG, 1, 1],
    workgroups: B * KV * nKT,
    uniforms: UNIFORMS,
    code,
  };
}

/** D = rowsum(dO ∘ O) [B, H, T], the softmax-backward term shared by dQ and dK. One invocation per row. */
function rowDotProgram(rows: number, hd: number): KernelProgram {
  return {
    key: `attn_rowdot_${hd}`,
    variableNames: ['DO', 'O'],
    outputShape: [rows],
    workgroupSize: [WG, 1, 1],
    workgroups: Math.ceil(rows / WG),
    uniforms: 'rows : i32,',
    code: `fn main() {
  let row = ${WORKGROUP_INDEX} * ${WG} + i32(localIndex);
  if (row < uniforms.rows) {
    var s = 0.0;
    for (var c = 0; c < ${hd}; c++) { s += DO[row * ${hd} + c] * O[row * ${hd} + c]; }
    result[row] = s;
  }
}`,
  };
}

/**
 * KEYS [B, T+1]: the key validity, then the number of leading padding positions (the query rows whose visible
 * keys are all masked). One buffer for both, as a program binds at most 7 inputs.
 */
function keysInput(valid: tf.Tensor2D): tf.Tensor2D {
  const lead = valid.cumsum(1).equal(0).toFloat().sum(1, true);
  return tf.concat([valid, lead], 1) as tf.Tensor2D;
}

/** Dispatches `program` with the inputs its variableNames ask for. */
function run(program: KernelProgram, named: Record<string, tf.Tensor>, uniforms: Uniform[]): tf.Tensor {
  return runKernel(
    program,
    program.variableNames.map((n) => named[n]),
    uniforms,
  );
}

/**
 * Causal attention softmax((scale·q)·kᵀ + bias)·v for q [B,H,T,hd], k/v [B,KV,T,hd] (H = KV·G, query head h
 * reads kv head ⌊h/G⌋). `keyValid` [B,T] is 1 for a token, 0 for padding, or null (no padding).
 * Returns [B,H,T,hd]; differentiable in q, k, v (keyValid gets a zero gradient). Needs the webgpu backend.
 */
export function fusedAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  keyValid: tf.Tensor2D | null,
  scale: number,
): tf.Tensor4D {
  const [B, H, T, hd] = q.shape;
  const KV = k.shape[1];
  if (H % KV !== 0) throw new Error(`fusedAttention: ${H} query heads are not a multiple of ${KV} kv heads`);
  if (k.shape[0] !== B || k.shape[2] !== T || k.shape[3] !== hd || v.shape.join(',') !== k.shape.join(',')) {
    throw new Error(`fusedAttention: k [${k.shape}] / v [${v.shape}] do not match q [${q.shape}]`);
  }
  const G = H / KV;
  const uniforms = uniformsOf(T, H, G, scale);
  const valid = keyValid ? keyValid.toFloat() : tf.ones([B, T]);
  const attend = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qi, ki, vi, validIn] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor2D];
    const save = args[4] as tf.GradSaveFunc;
    const keys = keysInput(validIn);
    const fwd = { Q: qi, K: ki, V: vi, KEYS: keys };
    const out = run(queryProgram('out', B, H, T, hd), fwd, uniforms) as tf.Tensor4D;
    const stats = run(queryProgram('stats', B, H, T, hd), fwd, uniforms);
    save([qi, ki, vi, validIn, keys, out, stats]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sq, sk, sv, sValid, sKeys, sOut, sStats] = saved;
      const dO = dy.toFloat();
      const D = runKernel(rowDotProgram(B * H * T, hd), [dO, sOut], [{ type: 'int32', data: [B * H * T] }]);
      const all = { Q: sq, K: sk, V: sv, KEYS: sKeys, DO: dO, STATS: sStats, DD: D };
      const dq = run(queryProgram('dq', B, H, T, hd), all, uniforms);
      const dk = run(keyProgram('dk', B, KV, T, hd), all, uniforms);
      const dv = run(keyProgram('dv', B, KV, T, hd), all, uniforms);
      return [dq, dk, dv, tf.zerosLike(sValid)];
    };
    return { value: out, gradFunc };
  });
  const result = attend(q, k, v, valid) as tf.Tensor4D;
  // The tape keeps its own clones of what the backward needs.
  if (valid !== keyValid) valid.dispose();
  return result;
}
