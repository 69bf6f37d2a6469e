// The statistics of repeated comparisons (src/runs/stats.ts) against an established package, and the
// properties of the sign-flip test that no reference table shows.
//
// Reference values: SciPy 1.17.1 with NumPy 2.4.6 (Python 3.11), each block with the call that produced it.
// Exact p-values were also enumerated over all sign assignments in exact rational arithmetic (Python's
// fractions.Fraction); both agree on every case below.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  estimate,
  mean,
  normalQuantile,
  pairedDifference,
  sampleSd,
  signFlipTest,
  studentTQuantile,
} from '../../src/runs/stats';
import { Rng } from '../../src/data/rng';

function close(actual: number | null, expected: number, rel: number, what: string): void {
  assert.ok(actual != null, `${what}: null`);
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(err <= rel, `${what}: ${actual} vs ${expected} (relative error ${err.toExponential(2)})`);
}

// scipy.stats.t.ppf(p, df) for p in [0.975, 0.995, 0.9, 0.025]
const T_PPF: [number, number[]][] = [
  [1, [12.706204736174694, 63.656741162871526, 3.0776835371752544, -12.706204736174705]],
  [2, [4.302652729749462, 9.924843200918287, 1.8856180831641272, -4.302652729749464]],
  [5, [2.5705818356363146, 4.032142983555228, 1.4758840488244815, -2.5705818356363155]],
  [30, [2.0422724563012378, 2.7499956535672254, 1.3104150253913955, -2.042272456301238]],
  [1000, [1.9623390808264083, 2.580754698065951, 1.2823987214609247, -1.9623390808264085]],
  [1_000_000, [1.959966356814107, 2.5758342201053344, 1.281552412129939, -1.9599663568141072]],
];
const PS = [0.975, 0.995, 0.9, 0.025];

test('Student t quantiles match scipy.stats.t.ppf to 1e-10 for df 1 to 10^6', () => {
  for (const [df, qs] of T_PPF) {
    qs.forEach((q, i) => close(studentTQuantile(PS[i], df), q, 1e-10, `t(${PS[i]}, ${df})`));
  }
});

test('t quantiles: symmetry, the middle, the ends, the normal limit', () => {
  for (const df of [1, 3, 7.5, 40, 250]) {
    for (const p of [0.6, 0.8, 0.99, 0.9999]) {
      assert.equal(studentTQuantile(1 - p, df), -studentTQuantile(p, df), `symmetric at df ${df}, p ${p}`);
    }
  }
  assert.equal(studentTQuantile(0.5, 4), 0);
  assert.equal(studentTQuantile(1, 4), Infinity);
  assert.equal(studentTQuantile(0, 4), -Infinity);
  assert.ok(Number.isNaN(studentTQuantile(1.5, 4)));
  assert.ok(Number.isNaN(studentTQuantile(0.9, 0)));
  // Cauchy (df = 1): t_p = tan(π (p - ½)) = -1/tan(πp) (the second form keeps the digits of a small p), also
  // near the middle and far in the tail.
  for (const p of [0.5000001, 0.6, 0.75, 0.999999]) {
    close(studentTQuantile(p, 1), Math.tan(Math.PI * (p - 0.5)), 1e-9, `Cauchy ${p}`);
  }
  close(studentTQuantile(1e-12, 1), -1 / Math.tan(Math.PI * 1e-12), 1e-12, 'Cauchy 1e-12');
  // df = 2: t_p = (2p - 1) √(2 / (4p(1 - p))).
  for (const p of [0.51, 0.7, 0.99, 0.999999]) {
    close(studentTQuantile(p, 2), (2 * p - 1) * Math.sqrt(2 / (4 * p * (1 - p))), 1e-12, `df 2, ${p}`);
  }
  // scipy.stats.norm.ppf(0.975), and the t quantile tends to it.
  close(normalQuantile(0.975), 1.959963984540054, 1e-13, 'z 0.975');
  close(studentTQuantile(0.975, Infinity), 1.959963984540054, 1e-13, 't(0.975, ∞)');
  // Both sides of the switch to the asymptotic expansion agree.
  close(studentTQuantile(0.975, 1e5), studentTQuantile(0.975, 1e5 + 1), 1e-9, 'continuous at 1e5');
});

// mean, np.std(x, ddof=1), scipy.stats.t.interval(0.95, len(x) - 1, loc=mean, scale=scipy.stats.sem(x))
const ESTIMATES: { x: number[]; mean: number; sd: number; ci: [number, number] }[] = [
  { x: [1.0, 3.0], mean: 2.0, sd: 1.4142135623730951, ci: [-10.706204736174694, 14.706204736174694] },
  { x: [61.2, 58.4, 63.9], mean: 61.166666666666664, sd: 2.750151510977774, ci: [54.33491158521962, 67.9984217481137] },
  {
    x: [70.5, 71.25, 69.0, 72.125, 68.75],
    mean: 70.325,
    sd: 1.4458993740921255,
    ci: [68.52967880216445, 72.12032119783555],
  },
  {
    x: [-2.5, 0.75, 1.5, -0.25, 3.0, 2.0, -1.0, 0.5],
    mean: 0.5,
    sd: 1.7474471175321524,
    ci: [-0.9609023496984122, 1.9609023496984122],
  },
];

test('estimate: mean, sample sd and t interval match numpy and scipy.stats.t.interval', () => {
  for (const r of ESTIMATES) {
    const e = estimate(r.x);
    assert.equal(e.n, r.x.length);
    assert.deepEqual(e.values, r.x);
    close(e.mean, r.mean, 1e-14, `mean of ${r.x}`);
    close(e.sd, r.sd, 1e-13, `sd of ${r.x}`);
    close(e.ci95![0], r.ci[0], 1e-10, `ci low of ${r.x}`);
    close(e.ci95![1], r.ci[1], 1e-10, `ci high of ${r.x}`);
  }
});

test('estimate: no values, one value, no spread', () => {
  assert.deepEqual(estimate([]), { n: 0, mean: null, sd: null, ci95: null, values: [] });
  assert.deepEqual(estimate([42.5]), { n: 1, mean: 42.5, sd: null, ci95: null, values: [42.5] });
  assert.deepEqual(estimate([7, 7, 7]), { n: 3, mean: 7, sd: 0, ci95: [7, 7], values: [7, 7, 7] });
  assert.equal(mean([]), null);
  assert.equal(sampleSd([3]), null);
  // Two passes: a large offset costs no digits of the spread.
  close(sampleSd([1e9 + 1, 1e9 + 3]), Math.SQRT2, 1e-12, 'sd with offset');
});

// scipy.stats.permutation_test((d, np.zeros_like(d)), lambda x, y, axis: np.mean(x - y, axis=axis),
//     vectorized=True, permutation_type='samples', alternative='two-sided', n_resamples=np.inf).pvalue
// (swapping a pair (d_i, 0) flips the sign of d_i), and the same as an exact fraction from the enumeration.
// [2.5] (n = 1) is the enumeration's alone: permutation_test wants two or more observations.
const SIGN_FLIP: { d: number[]; p: number; note: string }[] = [
  { d: [1.5, 2.0, 0.5, 3.0, 1.0], p: 0.0625, note: '1/16: all positive, n = 5 cannot reach 0.05' },
  { d: [1.5, 2.0, 0.5, 3.0, 1.0, 2.5], p: 0.03125, note: '1/32: all positive, n = 6' },
  { d: [1.0, -1.0, 2.0, -2.0, 3.0], p: 0.6875, note: '11/16: ties in absolute value' },
  { d: [0.0, 0.0, 1.5, -0.5, 2.0, 1.0], p: 0.25, note: '1/4: zeros flip to themselves' },
  { d: [2.1, -0.4, 1.3, 0.9, 3.2, -1.1, 0.7, 1.8], p: 0.0703125, note: '9/128: decimals' },
  { d: [1.0, 1.0, 1.0, -1.0, 2.0, 2.0, -2.0, 3.0, 0.0, 1.0], p: 0.17578125, note: '45/256: ties and a zero' },
  {
    d: [0.3, -1.2, 2.4, 1.1, 0.8, -0.6, 1.9, 0.2, 1.4, -0.3, 2.2, 0.9],
    p: 0.04345703125,
    note: '89/2048: decimals whose float sums tie only up to rounding',
  },
  { d: [-0.7, -1.4, -0.2, 0.3, -2.1, -0.9, -1.3], p: 0.046875, note: '3/64: negative mean' },
  { d: [2.5], p: 1, note: '1: one pair' },
];

test('exact sign-flip p-values match scipy.stats.permutation_test and an exact enumeration', () => {
  for (const c of SIGN_FLIP) {
    const r = signFlipTest(c.d);
    assert.equal(r.exact, true);
    assert.equal(r.samples, 2 ** c.d.length);
    assert.equal(r.p, c.p, c.note);
  }
});

test('sign flip: no pairs, all zeros, symmetry under negation, p in (0, 1]', () => {
  assert.deepEqual(signFlipTest([]), { p: null, exact: true, samples: 0 });
  assert.equal(signFlipTest([0, 0, 0]).p, 1);
  assert.equal(signFlipTest(new Array(20).fill(0)).p, 1, 'Monte Carlo too');
  const rng = new Rng(7);
  for (let k = 0; k < 40; k++) {
    const n = 1 + rng.int(14);
    const d = Array.from({ length: n }, () => Math.round((rng.next() - 0.3) * 80) / 10);
    const p = signFlipTest(d).p!;
    assert.ok(p > 0 && p <= 1, `p = ${p} for ${d}`);
    assert.ok(p >= 2 / 2 ** n, 'never below 2/2^n');
    assert.equal(signFlipTest(d.map((x) => -x)).p, p, `symmetric for ${d}`);
  }
});

/** P(|Σ s_i d_i| >= |Σ d_i|) over all 2^n sign assignments, by brute force (Gray code: one flip per step). */
function bruteForce(d: number[]): number {
  const n = d.length;
  const observed = Math.abs(d.reduce((a, b) => a + b, 0));
  const tol = 1e-9 * d.reduce((a, b) => a + Math.abs(b), 0);
  const signs = new Array(n).fill(1);
  let sum = d.reduce((a, b) => a + b, 0);
  let hits = 0;
  for (let k = 0; k < 2 ** n; k++) {
    if (k > 0) {
      const i = 31 - Math.clz32(k & -k); // the bit that changes from Gray code k-1 to k
      sum -= 2 * signs[i] * d[i];
      signs[i] = -signs[i];
    }
    if (Math.abs(sum) >= observed - tol) hits++;
  }
  return hits / 2 ** n;
}

test('Monte Carlo sign flip (n = 20) is within 0.01 of the full enumeration and the same on every call', () => {
  const rng = new Rng(2024);
  const d = Array.from({ length: 20 }, () => Math.round((rng.next() - 0.45) * 60) / 10);
  const exact = bruteForce(d);
  assert.ok(exact > 0.02 && exact < 0.9, `a p worth estimating: ${exact}`);
  const a = signFlipTest(d);
  assert.equal(a.exact, false);
  assert.equal(a.samples, 20_000);
  assert.ok(Math.abs(a.p! - exact) <= 0.01, `Monte Carlo ${a.p} vs exact ${exact}`);
  assert.deepEqual(signFlipTest(d), a, 'deterministic');
  assert.equal(signFlipTest(d.map((x) => -x)).p, a.p, 'the same signs flip the negated data');
  const other = signFlipTest(d, { seed: 99, samples: 5000 });
  assert.equal(other.samples, 5000);
  assert.ok(Math.abs(other.p! - exact) <= 0.03, 'another seed, fewer samples: still close');
  // The observed assignment counts as one draw: p >= 1/(1 + samples) even for an extreme difference.
  const extreme = signFlipTest(new Array(30).fill(1), { samples: 1000 });
  assert.equal(extreme.p, 1 / 1001);
});

test('paired difference: interval, p, smallest reachable p and verdict by the direction of the metric', () => {
  const pairs = (diffs: number[]) => diffs.map((diff, i) => ({ order: i % 2, seed: i, diff }));
  const six = pairs([1.5, 2.0, 0.5, 3.0, 1.0, 2.5]);
  const aa = pairedDifference('AA', six);
  assert.equal(aa.n, 6);
  assert.equal(aa.mean, 10.5 / 6);
  assert.deepEqual(aa.ci95, estimate(six.map((x) => x.diff)).ci95);
  assert.equal(aa.p, 1 / 32);
  assert.equal(aa.exact, true);
  assert.equal(aa.minP, 1 / 32);
  assert.equal(aa.verdict, 'better');
  assert.deepEqual(aa.pairs, six);
  assert.equal(pairedDifference('forgetting', six).verdict, 'worse', 'more forgetting is worse');
  const less = six.map((x) => ({ ...x, diff: -x.diff }));
  assert.equal(pairedDifference('AA', less).verdict, 'worse');
  assert.equal(pairedDifference('forgetting', less).verdict, 'better');
  const five = pairedDifference('BWT', pairs([1.5, 2.0, 0.5, 3.0, 1.0]));
  assert.equal(five.minP, 1 / 16);
  assert.equal(five.verdict, 'not distinguishable at 95%', 'five pairs cannot reach p < 0.05');
  const one = pairedDifference('FWT', pairs([4]));
  assert.deepEqual([one.p, one.minP, one.sd, one.ci95, one.verdict], [1, 1, null, null, 'not distinguishable at 95%']);
  const none = pairedDifference('AA', []);
  assert.deepEqual([none.n, none.mean, none.p, none.minP], [0, null, null, null]);
  assert.equal(none.verdict, 'not distinguishable at 95%');
  const mc = pairedDifference('AA', pairs(new Array(20).fill(1)), { samples: 999 });
  assert.equal(mc.exact, false);
  assert.equal(mc.minP, 1 / 1000);
  assert.equal(mc.verdict, 'better');
});
