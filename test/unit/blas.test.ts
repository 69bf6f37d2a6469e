// The wasm backend's matrix products on the native BLAS (src/engine/kernels/blas-matmul.ts): the same values as
// tfjs's wasm kernels for every layout the engine uses, the same training, and the fall back to the wasm kernels
// when SCULPT_BLAS turns it off or names no library. Provisioning installs OpenBLAS (scripts/provision/lapack.sh,
// run by `npm test` when missing); without it every comparison fails, naming what is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { blasProducts, useBlasProducts, type BlasProducts } from '../../src/engine/kernels/blas-matmul';
import { resetBlasProbe } from '../../src/engine/linalg/blas';
import { onThreads, requireBlas } from './blas-util';
import { type GemmRunner } from '../../src/engine/linalg/blas-pool';
import { AdaptiveSvd } from '../../src/engine/methods/adaptive-svd';
import { SeqFt } from '../../src/engine/methods/seqft';
import type { Method } from '../../src/engine/methods/method';
import { resolveMethod } from '../../src/protocol/config-validate';
import { eventIssues, type SculptEvent } from '../../src/protocol/events';
import { Optimizer, steps, tiny, type Tiny } from './methods-util';

/** The products' runner with its sgemm calls counted, so that a test can tell the products went through it. */
function counted(products: BlasProducts): { products: BlasProducts; calls: () => number } {
  let calls = 0;
  const runner: GemmRunner = {
    ...products.runner,
    run: (jobs) => {
      calls += jobs.length;
      products.runner.run(jobs);
    },
  };
  return { products: { ...products, runner }, calls: () => calls };
}

/** `f` with the products on the BLAS (sgemm calls counted); the BLAS stays on afterwards. */
function onBlas<T>(f: () => T): { value: T; sgemmCalls: number } {
  const products = blasProducts()!;
  const spy = counted(products);
  try {
    useBlasProducts(spy.products);
    return { value: f(), sgemmCalls: spy.calls() };
  } finally {
    useBlasProducts(products);
  }
}

/** `f` with the products on tfjs's wasm kernels; the BLAS is back on afterwards. */
function onWasm<T>(f: () => T): T {
  const blas = blasProducts();
  try {
    useBlasProducts(null);
    return f();
  } finally {
    useBlasProducts(blas);
  }
}

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(y[i])));
  return m;
}

test('BLAS products equal the wasm kernels for every transpose, batch broadcast and bias', async () => {
  requireBlas();
  const info = await selectBackend('wasm');
  assert.match(info.matmul ?? '', /^blas:/, JSON.stringify(info));
  // [a shape, b shape, transposeA, transposeB, bias]
  const cases: [number[], number[], boolean, boolean, boolean][] = [
    [[33, 17], [17, 9], false, false, false],
    [[17, 33], [17, 9], true, false, false],
    [[33, 17], [9, 17], false, true, true],
    [[17, 33], [9, 17], true, true, true],
    [[2, 3, 12, 8], [2, 3, 8, 5], false, false, false],
    [[2, 3, 12, 8], [2, 3, 5, 8], false, true, false],
    [[2, 3, 8, 12], [2, 3, 8, 5], true, false, false],
    [[6, 12, 8], [8, 5], false, false, false],
    [[1, 12, 8], [6, 8, 5], false, false, false],
    [[6, 12, 8], [1, 5, 8], false, true, false],
  ];
  for (const [sa, sb, ta, tb, withBias] of cases) {
    const label = JSON.stringify({ sa, sb, ta, tb, withBias });
    const a = tf.randomNormal(sa, 0, 1, 'float32', 1);
    const b = tf.randomNormal(sb, 0, 1, 'float32', 2);
    const n = tb ? sb[sb.length - 2] : sb[sb.length - 1];
    const bias = withBias ? tf.randomNormal([n], 0, 1, 'float32', 3) : null;
    const got = onBlas(() =>
      bias
        ? tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA: ta, transposeB: tb, bias })
        : tf.matMul(a, b, ta, tb),
    );
    // tfjs's fused wasm kernel mishandles transposed operands with a bias: the reference adds it separately.
    const want = onWasm(() => (bias ? tf.add(tf.matMul(a, b, ta, tb), bias) : tf.matMul(a, b, ta, tb)));
    assert.ok(got.sgemmCalls > 0, `${label}: the BLAS path made no sgemm call`);
    const diff = maxRelDiff(got.value, want);
    assert.ok(diff <= 1e-5, `${label}: max relative difference ${diff}`);
    tf.dispose([a, b, got.value, want, ...(bias ? [bias] : [])]);
  }
});

test('gradients through BLAS products equal those of the wasm kernels', async () => {
  requireBlas();
  await selectBackend('wasm');
  const a = tf.randomNormal([3, 10, 7], 0, 1, 'float32', 4);
  const b = tf.randomNormal([3, 6, 7], 0, 1, 'float32', 5);
  const f = (): tf.Tensor[] =>
    tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, false, true).square().sum())([a, b]);
  const got = onBlas(f);
  const want = onWasm(f);
  assert.ok(got.sgemmCalls >= 3, 'forward and both gradient products on the BLAS');
  for (let i = 0; i < 2; i++) assert.ok(maxRelDiff(got.value[i], want[i]) <= 1e-5, `gradient ${i}`);
  tf.dispose([a, b, ...got.value, ...want]);
});

test('a product gives the same bits on 1, 2 or 3 threads (blocks fixed by its shape)', async () => {
  requireBlas();
  await selectBackend('wasm');
  const shapes: [number[], number[], boolean, boolean][] = [
    [[1000, 128], [344, 128], false, true],
    [[256, 72], [256, 900], true, false],
    [[24, 40, 16], [24, 40, 16], false, true],
  ];
  const products = () =>
    shapes.map(([sa, sb, ta, tb]) =>
      tf.tidy(() =>
        tf.matMul(tf.randomNormal(sa, 0, 1, 'float32', 8), tf.randomNormal(sb, 0, 1, 'float32', 9), ta, tb).dataSync(),
      ),
    );
  const results = [await onThreads(1, products), await onThreads(2, products), await onThreads(3, products)];
  await selectBackend('wasm');
  for (const t of [1, 2])
    results[t].forEach((r, i) => assert.deepEqual(r, results[0][i], `shape ${i}: ${t + 1} threads vs 1`));
});

for (const name of ['seqft', 'adaptive-svd'] as const) {
  test(`20 training steps of the tiny model (${name}) give the same losses on BLAS and wasm products`, async () => {
    requireBlas();
    await selectBackend('wasm');
    const prepare = async (): Promise<[Tiny, Method, Optimizer]> => {
      const t = tiny(['tiny/sentiment'], 64);
      const method: Method =
        name === 'seqft'
          ? new SeqFt()
          : new AdaptiveSvd(
              resolveMethod({
                method: 'adaptive-svd',
                protectPretrained: true,
                rank: { policy: 'fixed', ratio: 0.5 },
              }),
              'methods[0]',
            );
      const optimizer = new Optimizer({ name: 'adamw', weightDecay: 0 });
      await method.setup?.(t.ctx);
      await method.beforeTask?.(t.ctx);
      return [t, method, optimizer];
    };
    // The setup (an SVD for adaptive-svd) is awaited outside the switch; the 20 steps are synchronous.
    const prepared = [await prepare(), await prepare()];
    const blas = onBlas(() => steps(...prepared[0], 0, 0, 20));
    const wasm = onWasm(() => steps(...prepared[1], 0, 0, 20));
    for (const [t, method, optimizer] of prepared) {
      optimizer.dispose();
      method.dispose();
      t.model.dispose();
    }
    assert.ok(blas.sgemmCalls > 0, 'the products went through the BLAS');
    assert.equal(blas.value.length, 20);
    blas.value.forEach((l, i) =>
      assert.ok(Math.abs(l - wasm[i]) <= 1e-4 * Math.abs(wasm[i]), `step ${i}: loss ${l} (BLAS) vs ${wasm[i]} (wasm)`),
    );
    assert.ok(blas.value[19] < blas.value[0], 'the model learns');
  });
}

test('SCULPT_BLAS=off or a library that does not load falls back to the wasm kernels with the same results', async () => {
  const saved = process.env.SCULPT_BLAS;
  const product = (): Float32Array =>
    tf.tidy(() => {
      const a = tf.randomNormal([40, 24], 0, 1, 'float32', 6);
      const b = tf.randomNormal([16, 24], 0, 1, 'float32', 7);
      return tf.matMul(a, b, false, true).dataSync() as Float32Array;
    });
  try {
    const withDefault = await selectBackend('wasm');
    const reference = product();
    for (const [setting, reason] of [
      ['off', /^blas: disabled by SCULPT_BLAS=off$/],
      ['/nonexistent/libcblas.so', /^blas: SCULPT_BLAS=\/nonexistent\/libcblas.so could not be loaded/],
    ] as const) {
      process.env.SCULPT_BLAS = setting;
      resetBlasProbe();
      const info = await selectBackend('wasm');
      assert.equal(info.matmul, 'wasm', setting);
      assert.equal(blasProducts(), null, `${setting}: no BLAS in use`);
      assert.ok(
        info.fallbacks.some((f) => reason.test(f)),
        `${setting}: ${info.fallbacks.join(' | ')}`,
      );
      const got = product();
      got.forEach((v, i) => assert.ok(Math.abs(v - reference[i]) <= 1e-5 * Math.max(1, Math.abs(reference[i]))));
    }
    // The run-started event carries the choice, and its schema accepts it.
    const event = {
      v: 1,
      runId: 'r',
      seq: 1,
      time: 0,
      type: 'run-started',
      config: {},
      method: 'seqft',
      tasks: [],
      order: 0,
      backend: { name: 'wasm', device: withDefault.device, isGpu: false, fallbacks: [], matmul: withDefault.matmul },
      model: { arch: 'llama', source: 's', parameters: 1, trainable: 1, layers: 1, targets: 1 },
    } as SculptEvent;
    assert.deepEqual(eventIssues(event), []);
  } finally {
    if (saved === undefined) delete process.env.SCULPT_BLAS;
    else process.env.SCULPT_BLAS = saved;
    resetBlasProbe();
    await selectBackend('wasm');
  }
});
