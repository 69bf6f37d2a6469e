import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metricsAfter } from '../../src/runs/metrics';

// A 3-task matrix worked by hand (percent):
//            task0 task1 task2
// after 0:    80    30    40
// after 1:    60    90    35
// after 2:    50    70    85
const R = [
  [80, 30, 40],
  [60, 90, 35],
  [50, 70, 85],
];
const b = [33, 33, 33];

test('AA, BWT, forgetting and FWT equal the hand computation', () => {
  const m = metricsAfter(R, b);
  assert.equal(m.AA, (50 + 70 + 85) / 3);
  assert.equal(m.BWT, (50 - 80 + (70 - 90)) / 2); // -25
  assert.equal(m.forgetting, (80 - 50 + (90 - 70)) / 2); // max over earlier rows: 80 for task0, 90 for task1
  assert.equal(m.FWT, (30 - 33 + (35 - 33)) / 2); // R[0][1] - b1, R[1][2] - b2
});

test('forgetting uses the best earlier accuracy, not the one right after training', () => {
  // task0 improves after task1 (backward transfer) and then drops.
  const m = metricsAfter(
    [
      [60, 0],
      [75, 80],
      [50, 80],
    ].map((r) => [...r, 0]),
    null,
    2,
  );
  assert.equal(m.forgetting, (75 - 50 + (80 - 80)) / 2);
  assert.equal(m.BWT, (50 - 60 + (80 - 80)) / 2);
  assert.equal(m.FWT, null, 'FWT needs the zero-shot row');
});

test('after the first task only AA is defined; partial rows are fine', () => {
  const m = metricsAfter([[72, 10]], [20, 30], 0);
  assert.deepEqual(m, { AA: 72, BWT: null, forgetting: null, FWT: null });
  const m1 = metricsAfter(R.slice(0, 2), b, 1);
  assert.equal(m1.AA, (60 + 90) / 2);
  assert.equal(m1.BWT, 60 - 80);
  assert.equal(m1.FWT, 30 - 33);
});
