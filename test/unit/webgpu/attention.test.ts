/**
 * The fused causal attention kernels (webgpu) against the tf-op composition of `attention()` computed on the
 * cpu backend: output and the gradients in q, k, v (relative error ≤ 1e-4; SwiftShader computes in exact
 * fp32, so the only differences are summation order), for multi-head and grouped-query attention, with and
 * without padding, T not a multiple of the tiles, and hd = 128. Then a tiny LLaMA's loss and gradients on
 * webgpu (fused path) against cpu (relative ≤ 1e-3).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../../src/engine/tf';
import { fusedAttention } from '../../../src/engine/kernels/webgpu/attention';
import { attention } from '../../../src/engine/models/layers';
import { MASKED } from '../../../src/engine/kernels/masked';
import { randomModel } from '../../../src/engine/models/registry';
import { onCpu, relError, useSoftwareWebGpu } from '../../helpers/webgpu';

const TOL = 1e-4;
const MODEL_TOL = 1e-3;

/** The decoder's bias: causal MASKED above the diagonal plus MASKED on padded keys, [B|1, 1, T, T]. */
function maskBias(B: number, T: number, keyValid: tf.Tensor2D | null): tf.Tensor {
  const data = new Float32Array(T * T);
  for (let i = 0; i < T; i++) data.fill(MASKED, i * T + i + 1, (i + 1) * T);
  const causal = tf.tensor2d(data, [T, T]).reshape([1, 1, T, T]);
  if (!keyValid) return causal;
  return tf.scalar(1).sub(keyValid).mul(MASKED).reshape([B, 1, 1, T]).add(causal);
}

/** `attention()`'s matmul + softmax composition in the [B, heads, T, hd] layout of fusedAttention. */
function reference(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  keyValid: tf.Tensor2D | null,
  scale: number,
): tf.Tensor4D {
  const [B, H, T, hd] = q.shape;
  const KV = k.shape[1];
  const qg = q.mul(scale).reshape([B, KV, (H / KV) * T, hd]);
  const scores = tf
    .matMul(qg, k, false, true)
    .reshape([B, H, T, T])
    .add(maskBias(B, T, keyValid));
  const probs = tf.softmax(scores).reshape([B, KV, (H / KV) * T, T]);
  return tf.matMul(probs, v).reshape([B, H, T, hd]);
}

interface Case {
  name: string;
  B: number;
  H: number;
  KV: number;
  T: number;
  hd: number;
  /** Per batch row: [leading padded positions, trailing padded positions]; null = no mask. */
  pad: [number, number][] | null;
}

function inputs(c: Case, seed: number) {
  const q = tf.randomNormal([c.B, c.H, c.T, c.hd], 0, 1, 'float32', seed) as tf.Tensor4D;
  const k = tf.randomNormal([c.B, c.KV, c.T, c.hd], 0, 1, 'float32', seed + 1) as tf.Tensor4D;
  const v = tf.randomNormal([c.B, c.KV, c.T, c.hd], 0, 1, 'float32', seed + 2) as tf.Tensor4D;
  const dy = tf.randomNormal([c.B, c.H, c.T, c.hd], 0, 1, 'float32', seed + 3) as tf.Tensor4D;
  const valid = c.pad
    ? tf.tensor2d(
        Array.from({ length: c.B * c.T }, (_, n) => {
          const [lead, trail] = c.pad![Math.floor(n / c.T)];
          const t = n % c.T;
          return t < lead || t >= c.T - trail ? 0 : 1;
        }),
        [c.B, c.T],
      )
    : null;
  return { q, k, v, dy, valid };
}

type Attn = (
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  keyValid: tf.Tensor2D | null,
  scale: number,
) => tf.Tensor4D;

/** Output and d/dq, d/dk, d/dv of sum(attn(q, k, v) ∘ dy). */
function outputAndGrads(attn: Attn, x: ReturnType<typeof inputs>, scale: number): tf.Tensor[] {
  const out = attn(x.q, x.k, x.v, x.valid, scale);
  const grads = tf.grads((q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
    attn(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, x.valid, scale)
      .mul(x.dy)
      .sum(),
  )([x.q, x.k, x.v]);
  return [out, ...grads];
}

const CASES: Case[] = [
  { name: 'MHA, no padding, T=40', B: 2, H: 4, KV: 4, T: 40, hd: 8, pad: null },
  {
    name: 'MHA, padding, T=21',
    B: 2,
    H: 4,
    KV: 4,
    T: 21,
    hd: 16,
    pad: [
      [3, 0],
      [0, 5],
    ],
  },
  {
    name: 'GQA (G=2), padding, T=37',
    B: 2,
    H: 4,
    KV: 2,
    T: 37,
    hd: 32,
    pad: [
      [0, 4],
      [6, 2],
    ],
  },
  { name: 'MQA (G=4), no padding, T=19', B: 2, H: 4, KV: 1, T: 19, hd: 24, pad: null },
  { name: 'GQA (G=2), padding, hd=128, T=20', B: 1, H: 2, KV: 1, T: 20, hd: 128, pad: [[2, 1]] },
];

for (const [n, c] of CASES.entries()) {
  test(`fusedAttention matches the tf-op composition: ${c.name}`, async () => {
    await useSoftwareWebGpu();
    const x = inputs(c, 100 + 10 * n);
    const scale = 1 / Math.sqrt(c.hd);
    const want = await onCpu(() => outputAndGrads(reference, x, scale));
    const got = tf.tidy(() => outputAndGrads(fusedAttention, x, scale));
    const names = ['output', 'dq', 'dk', 'dv'];
    for (let i = 0; i < 4; i++) {
      const err = relError(await got[i].data(), want[i]);
      assert.ok(err <= TOL, `${names[i]}: relative error ${err.toExponential(2)} > ${TOL}`);
    }
    tf.dispose([...got, x.q, x.k, x.v, x.dy]);
    if (x.valid) x.valid.dispose();
  });
}

test('the reference composition is what attention() computes (cpu)', async () => {
  const c: Case = {
    name: '',
    B: 2,
    H: 4,
    KV: 2,
    T: 13,
    hd: 8,
    pad: [
      [2, 0],
      [0, 3],
    ],
  };
  const x = inputs(c, 7);
  const scale = 0.3;
  const [ref, prod] = await onCpu(() => {
    const bias = maskBias(c.B, c.T, x.valid);
    const ctx = { B: c.B, T: c.T, past: 0, bias, cache: null, keyValid: x.valid };
    // attention() takes [B, T, heads, hd] and returns [B·T, H·hd].
    const toBTH = (t: tf.Tensor4D) => t.transpose([0, 2, 1, 3]) as tf.Tensor4D;
    const prod = attention(toBTH(x.q), toBTH(x.k), toBTH(x.v), ctx, 0, scale);
    return [toBTH(reference(x.q, x.k, x.v, x.valid, scale)).reshape([c.B * c.T, c.H * c.hd]), prod];
  });
  assert.ok(relError(ref, prod) <= 1e-6, `relative error ${relError(ref, prod)}`);
  tf.dispose([x.q, x.k, x.v, x.dy, x.valid!]);
});

interface ProgramRunner {
  runWebGPUProgram(program: { shaderKey: string }, ...rest: unknown[]): unknown;
}

test('tiny LLaMA: loss and gradients on webgpu (fused attention) match cpu', async () => {
  await useSoftwareWebGpu();
  const raw = JSON.parse(
    readFileSync(join(process.env.SCULPT_REPO_ROOT ?? process.cwd(), 'assets/models/tiny-llama/config.json'), 'utf8'),
  );
  const model = randomModel(raw, { seed: 5, std: 0.2 });
  const vocab = raw.vocab_size as number;
  const B = 2;
  const T = 19;
  const ids = tf.tensor2d(
    Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % vocab),
    [B, T],
    'int32',
  );
  const labels = tf.tensor2d(
    Array.from({ length: B * T }, (_, i) => (i % T < 4 && i >= T ? -100 : (i * 5 + 1) % vocab)),
    [B, T],
    'int32',
  );
  // Left padding in the second row: its first rows attend to masked keys only.
  const mask = tf.tensor2d(
    Array.from({ length: B * T }, (_, i) => (i >= T && i % T < 4 ? 0 : 1)),
    [B, T],
    'int32',
  );
  const vars = [...model.params.values()];
  const lossAndGrads = () => {
    const { value, grads } = tf.variableGrads(() => model.loss(ids, labels, mask), vars);
    return [value, ...vars.map((v) => grads[v.name])];
  };
  const want = await onCpu(lossAndGrads);

  // Record the programs dispatched, to know the fused kernels ran.
  const backend = tf.backend() as unknown as ProgramRunner;
  const original = backend.runWebGPUProgram;
  const keys = new Set<string>();
  backend.runWebGPUProgram = function (program, ...rest) {
    keys.add(program.shaderKey);
    return original.call(this, program, ...rest);
  };
  let got: tf.Tensor[];
  try {
    got = tf.tidy(lossAndGrads);
  } finally {
    backend.runWebGPUProgram = original;
  }
  for (const stage of ['out', 'stats', 'rowdot', 'dq', 'dk', 'dv']) {
    assert.ok(
      [...keys].some((k) => k.startsWith(`sculpt_attn_${stage}_`)),
      `fused kernel '${stage}' did not run`,
    );
  }
  const loss = (await got[0].data())[0];
  assert.ok(Math.abs(loss - want[0][0]) <= MODEL_TOL * Math.abs(want[0][0]), `loss ${loss} vs ${want[0][0]}`);
  for (const [i, v] of vars.entries()) {
    const err = relError(await got[i + 1].data(), want[i + 1]);
    assert.ok(err <= MODEL_TOL, `${v.name}: gradient relative error ${err.toExponential(2)} > ${MODEL_TOL}`);
  }
  tf.dispose([...got, ids, labels, mask]);
  model.dispose();
});
