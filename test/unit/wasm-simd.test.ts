/**
 * The fused wasm kernels' WebAssembly SIMD module (src/engine/kernels/simd/kernels.wat) against the same kernels
 * in TypeScript (SCULPT_WASM_UNFUSED=simd). The other wasm kernel tests (wasm-adamw, wasm-fused-layers) compare
 * the default path, the SIMD one, with the tf ops; this one ties the TypeScript path to it, and checks what is
 * particular to the module: it is what its source assembles to, it runs on both kinds of memory tfjs uses, it
 * serves every kernel it exists for, and it hands the shapes it does not take (rows of a width not divisible by
 * four) to the TypeScript.
 *
 * Tolerance: the module computes in float32 (each op rounded, as the tf ops), the TypeScript in float64 rounded
 * once, so the two differ by a few float32 ulps: |simd - ts| <= ABS + REL · s, s the scale as in
 * wasm-fused-layers (|ts| for elementwise outputs, the row's largest |ts| for a norm's y and dx, the tensor's for dw).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { simdKernels } from '../../src/engine/kernels/simd/module';
import { wasmAdamW } from '../../src/engine/kernels/wasm-adamw';
import { wasmLayerNorm, wasmRmsNorm } from '../../src/engine/kernels/wasm-norm';
import { wasmRope } from '../../src/engine/kernels/wasm-rope';
import { wasmActivation } from '../../src/engine/kernels/wasm-activation';
import { wasmCrossEntropy } from '../../src/engine/kernels/wasm-cross-entropy';
import { repoRoot } from '../helpers/paths';
import { seededValues } from '../helpers/webgpu';

const REL = 2e-6;
const ABS = 1e-7;

type Impl = 'simd' | 'ts';

/** f's outputs, read back, with the kernels on the SIMD module or in TypeScript. */
function on(impl: Impl, f: () => tf.Tensor[]): Float32Array[] {
  process.env.SCULPT_WASM_UNFUSED = impl === 'ts' ? 'simd' : '';
  try {
    return tf.tidy(() => f().map((t) => t.dataSync() as Float32Array));
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
}

/**
 * Compares the two paths output by output (`scale(k, i, ts)` is the scale of element i of output k) and says
 * whether they differ anywhere: where the module serves, its float32 rounding differs from the TypeScript's
 * float64 somewhere in a large tensor; where it hands the case to the TypeScript, both are the same code.
 */
function agree(
  what: string,
  f: () => tf.Tensor[],
  scale: (k: number, i: number, ts: Float32Array) => number = (_k, i, ts) => Math.abs(ts[i]),
): boolean {
  const simd = on('simd', f);
  const ts = on('ts', f);
  let differs = false;
  assert.equal(simd.length, ts.length);
  for (let k = 0; k < ts.length; k++) {
    assert.equal(simd[k].length, ts[k].length, `${what}, output ${k}: length`);
    let worst = 0;
    for (let i = 0; i < ts[k].length; i++) {
      const [a, b] = [simd[k][i], ts[k][i]];
      if (Number.isNaN(b) || !Number.isFinite(b)) {
        assert.ok(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)), `${what}, output ${k}[${i}]: ${a} vs ${b}`);
        continue;
      }
      const d = Math.abs(a - b);
      differs ||= d > 0;
      worst = Math.max(worst, d / (ABS + REL * scale(k, i, ts[k])));
      assert.ok(d <= ABS + REL * scale(k, i, ts[k]), `${what}, output ${k}[${i}]: simd ${a} vs ts ${b}`);
    }
    console.log(`# ${what}, output ${k}: worst |simd - ts| / tolerance ${worst.toFixed(3)}`);
  }
  return differs;
}

/** The largest |v| of the row of width d that element i is in. */
const rowScale =
  (d: number) =>
  (_k: number, i: number, ts: Float32Array): number => {
    const r = Math.floor(i / d) * d;
    let m = 0;
    for (let j = r; j < r + d; j++) m = Math.max(m, Math.abs(ts[j]));
    return m;
  };
/** The largest |v| of the whole output (computed once per output). */
const tensorMax = new WeakMap<Float32Array, number>();
const tensorScale = (_k: number, _i: number, ts: Float32Array): number => {
  let m = tensorMax.get(ts);
  if (m === undefined) tensorMax.set(ts, (m = ts.reduce((a, v) => Math.max(a, Math.abs(v)), 0)));
  return m;
};

test('the committed module is what kernels.wat assembles to', () => {
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'build-simd.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('the module instantiates on an ordinary and on a shared memory, and computes the same on both', () => {
  const results: Float32Array[] = [];
  for (const memory of [
    new WebAssembly.Memory({ initial: 1 }),
    new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true }),
  ]) {
    const k = simdKernels({ wasm: { wasmMemory: memory } });
    assert.ok(k, `instantiated on ${memory.buffer instanceof SharedArrayBuffer ? 'a shared' : 'an ordinary'} memory`);
    const f32 = new Float32Array(memory.buffer);
    // p, g, m, v at 0, 64, 128, 192 bytes; p', m', v' at 256, 320, 384: 7 elements (one past a lane multiple).
    f32.set(seededValues(7, 1), 0);
    f32.set(seededValues(7, 2), 16);
    f32.set(seededValues(7, 3), 32);
    f32.set(seededValues(7, 4, 0, 1), 48);
    k.adamw(0, 64, 128, 192, 256, 320, 384, 7, 0.99, 0.9, 0.1, 0.999, 0.001, 0.01, 1.001, 1e-8);
    results.push(f32.slice(64, 64 + 48));
  }
  assert.deepEqual(results[0], results[1]);
  assert.ok(simdKernels(null) === null, 'no backend, no kernels');
});

test("the module binds to both of tfjs's wasm builds (threaded: shared memory; single-threaded, as trainers beside each other run: an ordinary one), and the backend says so", async () => {
  // This process's backend, then one thread in a child process (a process loads one of the two builds).
  const info = await selectBackend('wasm');
  assert.match(info.device, /fused kernels in SIMD$/, info.device);
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-simd-'));
  try {
    const script = join(dir, 'probe.ts');
    writeFileSync(
      script,
      [
        `import { tf } from ${JSON.stringify(join(repoRoot, 'src/engine/tf'))};`,
        `import { selectBackend } from ${JSON.stringify(join(repoRoot, 'src/engine/backend'))};`,
        `import { backendMemory } from ${JSON.stringify(join(repoRoot, 'src/engine/kernels/simd/module'))};`,
        'void selectBackend("wasm").then((info) => {',
        '  const memory = backendMemory(tf.backend());',
        '  console.log(JSON.stringify({ device: info.device, shared: memory?.buffer instanceof SharedArrayBuffer }));',
        '});',
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'run-ts.mjs'), script], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, SCULPT_WASM_THREADS: '1' },
    });
    assert.equal(r.status, 0, r.stderr);
    const probe = JSON.parse(r.stdout.trim().split('\n').pop()!) as { device: string; shared: boolean };
    assert.match(probe.device, /1 thread, fused kernels in SIMD$/, probe.device);
    assert.equal(probe.shared, false, 'the single-threaded build has an ordinary memory');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('AdamW: the SIMD module and the TypeScript kernel agree, with and without weight decay, at steps 1 and 7', async () => {
  await selectBackend('wasm');
  assert.ok(simdKernels(tf.backend()), 'the module instantiates on the backend in use');
  for (const n of [1, 7, 4096 + 3]) {
    for (const [weightDecay, step] of [
      [0, 1],
      [0.01, 7],
    ]) {
      const run = () => {
        const p = tf.tensor1d(seededValues(n, 11));
        const g = tf.tensor1d(seededValues(n, 12, -1e-2, 1e-2));
        const m = tf.tensor1d(seededValues(n, 13, -1e-3, 1e-3));
        const v = tf.tensor1d(seededValues(n, 14, 0, 1e-4));
        return wasmAdamW(p, g, m, v, { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay, step });
      };
      const differs = agree(`adamw n ${n} wd ${weightDecay} step ${step}`, run);
      if (n > 1000) assert.ok(differs, 'the SIMD module served (its rounding differs from the TypeScript somewhere)');
    }
  }
});

test('norms: forward and every gradient agree, RMSNorm and LayerNorm, widths on and off the lanes, an overflowed row', async () => {
  await selectBackend('wasm');
  for (const [rows, d] of [
    [1024, 128],
    [9, 36],
    [5, 37],
  ]) {
    const values = seededValues(rows * d, 21, -3, 3);
    // Row 2 overflows float32 when squared and summed (as a blown-up run's activations do): rstd 0, zeros out.
    if (rows > 3) for (let j = 0; j < d; j++) values[2 * d + j] = 3e19 * (1 + j / d) * (j % 2 ? -1 : 1);
    for (const centered of [false, true]) {
      const run = () => {
        const x = tf.tensor2d(values, [rows, d]);
        const w = tf.tensor1d(seededValues(d, 22, 0.5, 1.5));
        const b = tf.tensor1d(seededValues(d, 23));
        const r = tf.tensor2d(seededValues(rows * d, 24), [rows, d]);
        const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
          (centered ? wasmLayerNorm(xx as tf.Tensor2D, ww, bb, 1e-5) : wasmRmsNorm(xx as tf.Tensor2D, ww, 1e-5))
            .mul(r)
            .sum();
        const y = centered ? wasmLayerNorm(x, w, b, 1e-5) : wasmRmsNorm(x, w, 1e-5);
        // dx, dw, and db for LayerNorm (RMSNorm has no bias).
        return [y, ...tf.grads(f)(centered ? [x, w, b] : [x, w])];
      };
      const what = `${centered ? 'LayerNorm' : 'RMSNorm'} [${rows}, ${d}]`;
      const differs = agree(what, run, (k, i, ts) => (k < 2 ? rowScale(d)(k, i, ts) : tensorScale(k, i, ts)));
      if (d % 4) assert.equal(differs, false, `${what}: a width off the lanes is left to the TypeScript`);
      else if (rows > 100) assert.ok(differs, `${what}: the SIMD module served`);
    }
  }
});

test('rotary embedding: forward and dx agree for shared and per-row tables; a head whose half is off the lanes falls back', async () => {
  await selectBackend('wasm');
  for (const [x, cs] of [
    [
      [4, 16, 4, 32],
      [1, 16, 1, 32],
    ],
    [
      [2, 7, 3, 8],
      [2, 7, 1, 8],
    ],
    [
      [2, 5, 3, 6],
      [1, 5, 1, 6],
    ],
  ]) {
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    const run = () => {
      const xt = tf.tensor4d(seededValues(size(x), 31), x as [number, number, number, number]);
      const cos = tf.tensor(seededValues(size(cs), 32), cs);
      const sin = tf.tensor(seededValues(size(cs), 33), cs);
      const r = tf.tensor(seededValues(size(x), 34), x);
      const dx = tf.grad((xx: tf.Tensor) =>
        wasmRope(xx as tf.Tensor4D, cos, sin)
          .mul(r)
          .sum(),
      )(xt);
      return [wasmRope(xt, cos, sin), dx];
    };
    const differs = agree(`rope x [${x}] cos [${cs}]`, run, (_k, i, ts) => rowScale(x[3])(_k, i, ts));
    if ((x[3] / 2) % 4) assert.equal(differs, false, `x [${x}]: a half-head off the lanes is left to the TypeScript`);
    else if (x[0] * x[1] > 50) assert.ok(differs, `x [${x}]: the SIMD module served`);
  }
});

test('activations: silu and gelu_new gradients (and gelu_new forward) agree, lengths on and off the lanes, NaN and ±Infinity', async () => {
  await selectBackend('wasm');
  for (const n of [1024 * 344, 13 * 29]) {
    const values = seededValues(n, 41, -6, 6);
    values[3] = NaN;
    values[5] = Infinity;
    values[6] = -Infinity;
    for (const name of ['silu', 'gelu_new'] as const) {
      const run = () => {
        const x = tf.tensor1d(values);
        const r = tf.tensor1d(seededValues(n, 42));
        return [wasmActivation(name, x), tf.grad((xx: tf.Tensor) => wasmActivation(name, xx).mul(r).sum())(x)];
      };
      const differs = agree(`${name} n ${n}`, run);
      if (n > 1000) assert.ok(differs, `${name} n ${n}: the SIMD module served`);
    }
  }
});

test("the module's exponential: within 2.5e-7 of Math.exp on [-87.3, 0] (about 2 float32 ulps), 0 below, NaN stays NaN", () => {
  // softmaxRow on a row whose max is 0 writes exp(x) itself.
  const memory = new WebAssembly.Memory({ initial: 256 });
  const k = simdKernels({ wasm: { wasmMemory: memory } })!;
  const n = 1 << 20;
  const f32 = new Float32Array(memory.buffer);
  for (let i = 0; i < n; i++) f32[i] = Math.fround(-87.3 * (i / (n - 1)));
  f32[n - 1] = 0; // the max
  const sum = k.softmaxRow(0, 4 * n, n);
  assert.equal(k.rowMax.value, 0);
  let worst = 0;
  let want = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(f32[i]);
    want += e;
    worst = Math.max(worst, Math.abs(f32[n + i] - e) / e);
  }
  console.log(`# worst relative error of exp on [-87.3, 0]: ${worst.toExponential(2)}`);
  assert.ok(worst <= 2.5e-7, `relative error ${worst.toExponential(2)}`);
  assert.ok(Math.abs(sum - want) <= 1e-6 * want, `Σ e ${sum} vs ${want}`);
  f32.set([0, -87.4, -200, -Infinity, NaN, -1, -2, -3]);
  k.softmaxRow(0, 64, 4);
  assert.deepEqual(Array.from(f32.subarray(16, 20)), [1, 0, 0, 0]);
  k.softmaxRow(16, 64, 4);
  assert.ok(Number.isNaN(k.rowMax.value), 'a NaN logit makes the max NaN');
  assert.ok(Array.from(f32.subarray(16, 20)).every(Number.isNaN), 'and every e NaN (so the loss is NaN)');

  // Rows of 16 floats or more go four vectors at a time with exp's steps written out, the rest one vector at a
  // time through exp4: both paths give the same bits for the same logits, the edge values included.
  // Every vector has a lane below the cut, each at its own place.
  const edges = [0, -87.4, -200, -Infinity, -90, -87.33654, -1e-30, -0, -5.5, -1, -100, -2, -3, -10, -40, -1000];
  const row = [...edges, ...edges.slice(0, 4), ...edges.slice(4, 12)]; // 28: 16 in the wide loop, 12 in the tail
  f32.set(row);
  k.softmaxRow(0, 4 * 64, row.length);
  const e = Array.from(f32.subarray(64, 64 + row.length));
  assert.deepEqual(e.slice(16, 20), e.slice(0, 4), 'the tail gives the wide loop bits');
  assert.deepEqual(e.slice(20, 28), e.slice(4, 12), 'the tail gives the wide loop bits');
  assert.deepEqual(e.slice(0, 4), [1, 0, 0, 0], 'below -87.34 (and -Infinity) exp is 0');
  for (let i = 4; i < 16; i++) {
    const want = row[i] < -87.34 ? 0 : Math.exp(row[i]);
    assert.ok(Math.abs(e[i] - want) <= 2.5e-7 * want, `exp(${row[i]}): ${e[i]} vs ${want}`);
  }
  for (let at = 0; at < 44; at++) {
    f32.fill(-5, 0, 44); // two turns of the wide loop, then three vectors
    f32[at] = 3;
    k.softmaxRow(0, 4 * 64, 44);
    assert.equal(k.rowMax.value, 3, `the max at ${at} of 44`);
  }
  f32.set([...edges.slice(0, 9), NaN, ...edges.slice(10)]);
  k.softmaxRow(0, 4 * 64, 16);
  assert.ok(Number.isNaN(k.rowMax.value), 'a NaN logit in the wide loop makes the max NaN');
  assert.ok(Array.from(f32.subarray(64, 80)).every(Number.isNaN), 'and every e NaN');
});

test('cross-entropy: the SIMD rows and the TypeScript agree (loss and dlogits), a row off the lanes falls back', async () => {
  await selectBackend('wasm');
  for (const [rows, vocab] of [
    [64, 8192],
    [5, 1001],
  ]) {
    const run = () => {
      const logits = tf.tensor2d(seededValues(rows * vocab, 51, -8, 8), [rows, vocab]);
      const targets = tf.tensor1d(
        Array.from({ length: rows }, (_, r) => (r % 5 === 1 ? -100 : (r * 37) % vocab)),
        'int32',
      );
      return [
        wasmCrossEntropy(logits, targets),
        tf.grad((x: tf.Tensor) => wasmCrossEntropy(x as tf.Tensor2D, targets))(logits),
      ];
    };
    const differs = agree(`cross-entropy [${rows}, ${vocab}]`, run, (k, i, ts) =>
      k === 0 ? Math.abs(ts[0]) : tensorScale(k, i, ts),
    );
    if (vocab % 4) assert.equal(differs, false, `vocabulary ${vocab}: left to the TypeScript`);
    else assert.ok(differs, `vocabulary ${vocab}: the SIMD module served`);
  }
});
