/**
 * The wasm backend's block-copy GatherV2 (src/engine/kernels/wasm-gather.ts) against tfjs's own wasm kernel
 * (SCULPT_WASM_UNFUSED=gather): a gather does no arithmetic, so the two must agree bit for bit, for every axis,
 * index shape and dtype the engine uses (embedding lookups, the rotary tables, label and row selections), with the
 * same error for an index outside the axis and the same gradient. A batched gather (batchDims > 0) is left to
 * tfjs's kernel, and still right.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { wasmGatherServed } from '../../src/engine/kernels/wasm-gather';

/** Runs f with the block-copy gather off (tfjs's kernel) or on. */
function withGather<T>(fused: boolean, f: () => T): T {
  if (fused) delete process.env.SCULPT_WASM_UNFUSED;
  else process.env.SCULPT_WASM_UNFUSED = 'gather';
  try {
    return f();
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
}

/** The values and shape of f() on each path. */
function both(f: () => tf.Tensor): { fused: { v: number[]; shape: number[] }; tfjs: { v: number[]; shape: number[] } } {
  const read = (fused: boolean) =>
    withGather(fused, () =>
      tf.tidy(() => {
        const t = f();
        return { v: Array.from(t.dataSync()), shape: t.shape };
      }),
    );
  return { fused: read(true), tfjs: read(false) };
}

/** How many gathers f ran through the block copy. */
function served(fused: boolean, f: () => tf.Tensor): number {
  const before = wasmGatherServed.count;
  withGather(fused, () => tf.tidy(f)).dispose();
  return wasmGatherServed.count - before;
}

test('gather: the block copy equals tfjs wasm kernel bit for bit on every axis, index shape and dtype', async () => {
  await selectBackend('wasm');
  const table = tf.tensor(
    Array.from({ length: 6 * 5 * 4 }, (_, i) => Math.sin(i) * 1e3),
    [6, 5, 4],
    'float32',
  );
  const ints = tf.tensor(
    Array.from({ length: 30 }, (_, i) => i * 7 - 50),
    [10, 3],
    'int32',
  );
  const bools = tf.tensor(
    Array.from({ length: 12 }, (_, i) => i % 3 === 0),
    [4, 3],
    'bool',
  );
  const cases: [string, () => tf.Tensor][] = [
    ['axis 0, ids 1-D (an embedding lookup)', () => tf.gather(table, tf.tensor1d([5, 0, 0, 3], 'int32'))],
    [
      'axis 0, ids 2-D (a batch of rows)',
      () =>
        tf.gather(
          table,
          tf.tensor2d(
            [
              [1, 2],
              [2, 1],
              [5, 5],
            ],
            [3, 2],
            'int32',
          ),
        ),
    ],
    ['axis 1', () => tf.gather(table, tf.tensor1d([4, 0, 2], 'int32'), 1)],
    ['axis -1 (single elements, candidates of a head)', () => tf.gather(table, tf.tensor1d([3, 1], 'int32'), -1)],
    [
      'axis 2, ids 2-D',
      () =>
        tf.gather(
          table,
          tf.tensor2d(
            [
              [0, 3],
              [3, 0],
            ],
            [2, 2],
            'int32',
          ),
          2,
        ),
    ],
    ['int32 values', () => tf.gather(ints, tf.tensor1d([9, 0, 4], 'int32'))],
    ['bool values', () => tf.gather(bools, tf.tensor1d([1, 2], 'int32'), 1)],
    ['no indices', () => tf.gather(table, tf.tensor1d([], 'int32'))],
    ['a 1-D table', () => tf.gather(tf.tensor1d([1.5, -2, 7]), tf.tensor1d([2, 2, 0], 'int32'))],
  ];
  for (const [name, f] of cases) {
    assert.equal(served(true, f), 1, `${name}: the block copy serves it`);
    assert.equal(served(false, f), 0, `${name}: SCULPT_WASM_UNFUSED=gather leaves it to tfjs`);
    const { fused, tfjs } = both(f);
    assert.deepEqual(fused.shape, tfjs.shape, `${name}: shape`);
    assert.deepEqual(fused.v, tfjs.v, `${name}: values`);
  }
  tf.dispose([table, ints, bools]);
});

test('gather: an index outside the axis fails as in tfjs, naming the index and the range', async () => {
  await selectBackend('wasm');
  const table = tf.zeros([4, 3]);
  for (const fused of [true, false]) {
    for (const bad of [4, -1]) {
      assert.throws(
        () => withGather(fused, () => tf.gather(table, tf.tensor1d([0, bad], 'int32'))),
        new RegExp(`GatherV2: the index value ${bad} is not in \\[0, 3\\]`),
        `${fused ? 'block copy' : 'tfjs'}: index ${bad}`,
      );
    }
  }
  table.dispose();
});

test('gather: the gradient (the embedding gradient) is the same on both paths; batchDims > 0 goes to tfjs', async () => {
  await selectBackend('wasm');
  const table = tf.tensor2d(
    Array.from({ length: 8 * 3 }, (_, i) => i / 7 - 1),
    [8, 3],
  );
  const ids = tf.tensor1d([2, 7, 2, 0, 2], 'int32');
  const r = tf.tensor2d(
    Array.from({ length: 15 }, (_, i) => Math.cos(i)),
    [5, 3],
  );
  const grad = (fused: boolean) =>
    withGather(fused, () =>
      tf.tidy(() =>
        Array.from(
          tf
            .grad((t: tf.Tensor) => tf.gather(t, ids).mul(r).sum())(table)
            .dataSync(),
        ),
      ),
    );
  const g = grad(true);
  assert.deepEqual(g, grad(false));
  // Row 2 was looked up three times: its gradient is the sum of the three rows of r.
  const rv = r.arraySync() as number[][];
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(g[2 * 3 + c] - (rv[0][c] + rv[2][c] + rv[4][c])) < 1e-6);
  const batchedGather = () =>
    tf.gather(
      tf.tensor2d([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      tf.tensor2d(
        [
          [2, 0],
          [1, 1],
        ],
        [2, 2],
        'int32',
      ),
      1,
      1,
    );
  assert.equal(served(true, batchedGather), 0, 'batchDims 1: not the block copy');
  const batched = both(batchedGather);
  assert.deepEqual(batched.fused.v, [3, 1, 5, 5]);
  assert.deepEqual(batched.fused.v, batched.tfjs.v);
  tf.dispose([table, ids, r]);
});
