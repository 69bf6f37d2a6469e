/**
 * The few statistics a repeated comparison needs: mean, spread and a Student-t confidence interval of the mean,
 * and a paired sign-flip permutation test. Self-contained (no tfjs, no Node-only APIs): the dashboard's browser
 * bundle uses it too, and its numbers must be the CLI's.
 *
 * Why these: an experiment grid gives few runs per method (seeds × task orders, often 3 to 10), the runs of two
 * methods share their cell (same order, same seed), and nothing says the differences are normal. The t interval
 * says how far a mean may be from the truth; the sign-flip test asks whether a paired difference could be noise
 * without assuming a distribution, and is exact for the small n that matter.
 */
import {
  HIGHER_IS_BETTER,
  type Estimate,
  type MetricName,
  type PairedDifference,
  type Verdict,
} from './aggregate-types';
import { Rng } from '../data/rng';

// ---------------------------------------------------------------------------------------------------------------
// Mean, spread, interval

/** x̄ = (1/n) Σ x_i; null for no values. */
export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/**
 * Sample standard deviation s = √( Σ (x_i - x̄)² / (n - 1) ); null for fewer than two values. Two passes (mean
 * first), so that values far from zero with a small spread lose no digits.
 */
export function sampleSd(values: readonly number[]): number | null {
  const n = values.length;
  if (n < 2) return null;
  const m = mean(values)!;
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / (n - 1));
}

/**
 * Mean, sample sd and the Student-t 95% interval of the mean of `values`:
 *
 *   ci95 = x̄ ± t_{0.975, n-1} · s / √n
 *
 * n = 0: mean null. n = 1: sd and ci95 null (one value says nothing about spread). No spread: ci95 = [x̄, x̄].
 */
export function estimate(values: readonly number[]): Estimate {
  const n = values.length;
  const m = mean(values);
  const sd = sampleSd(values);
  let ci95: [number, number] | null = null;
  if (m != null && sd != null) {
    const h = sd === 0 ? 0 : (studentTQuantile(0.975, n - 1) * sd) / Math.sqrt(n);
    ci95 = [m - h, m + h];
  }
  return { n, mean: m, sd, ci95, values: [...values] };
}

// ---------------------------------------------------------------------------------------------------------------
// Special functions: log-gamma, log-beta, the regularized incomplete beta function

const LN_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Lanczos approximation (g = 7, 9 terms), relative error about 1e-15 for x > 0. */
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (reflection Γ(x)Γ(1-x) = π / sin(πx) below 1/2). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return LN_SQRT_2PI + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/**
 * The remainder of Stirling's series, ln Γ(x) - [(x - ½) ln x - x + ½ ln 2π] = Σ_k B_2k / (2k (2k-1) x^(2k-1)),
 * seven terms: below 1e-15 for x >= 10.
 */
function stirlingRemainder(x: number): number {
  const x2 = 1 / (x * x);
  const c = [1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156];
  let s = 0;
  for (let k = c.length - 1; k >= 0; k--) s = s * x2 + c[k];
  return s / x;
}

/**
 * ln B(a, b) = ln Γ(a) + ln Γ(b) - ln Γ(a + b). With a large argument the three log-gammas are huge and nearly
 * cancel, so the large ones go through Stirling's formula with the cancellation done by hand (as in R's lbeta),
 * with p = min(a, b), q = max(a, b):
 *
 *   p, q >= 10:    ½ ln 2π - ½ ln q + (p - ½) ln(p/(p+q)) + q ln(1 - p/(p+q)) + ω(p) + ω(q) - ω(p+q)
 *   q >= 10 > p:   ln Γ(p) + p - p ln(p+q) + (q - ½) ln(1 - p/(p+q)) + ω(q) - ω(p+q)
 *
 * with ω the Stirling remainder.
 */
export function lnBeta(a: number, b: number): number {
  const p = Math.min(a, b);
  const q = Math.max(a, b);
  const r = p / (p + q);
  if (p >= 10) {
    const corr = stirlingRemainder(p) + stirlingRemainder(q) - stirlingRemainder(p + q);
    return LN_SQRT_2PI - 0.5 * Math.log(q) + corr + (p - 0.5) * Math.log(r) + q * Math.log1p(-r);
  }
  if (q >= 10) {
    const corr = stirlingRemainder(q) - stirlingRemainder(p + q);
    return lnGamma(p) + corr + p - p * Math.log(p + q) + (q - 0.5) * Math.log1p(-r);
  }
  return lnGamma(p) + lnGamma(q) - lnGamma(p + q);
}

const TINY = 1e-300;

/**
 * The continued fraction of I_x(a, b) (modified Lentz), fast for x < (a + 1)/(a + b + 2):
 *
 *   I_x(a, b) = x^a (1-x)^b / (a B(a, b)) · 1/(1+ d_1/(1+ d_2/(1+ ...)))
 *   d_2m+1 = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),   d_2m = m(b-m) x / ((a+2m-1)(a+2m))
 *
 * It takes O(√max(a, b)) terms.
 */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const maxIterations = 100_000;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= maxIterations; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) return h;
  }
  return h;
}

/**
 * The regularized incomplete beta function I_x(a, b) = (1/B(a, b)) ∫_0^x t^(a-1) (1-t)^(b-1) dt and its
 * complement 1 - I_x(a, b) = I_(1-x)(b, a), both to full relative precision: whichever is small is computed
 * directly, not as 1 minus the other. `y` is 1 - x, passed separately by callers that know it more precisely
 * than 1 - x would give it.
 */
export function incompleteBeta(a: number, b: number, x: number, y = 1 - x): { lower: number; upper: number } {
  if (x <= 0) return { lower: 0, upper: 1 };
  if (y <= 0) return { lower: 1, upper: 0 };
  // ln of x^a (1-x)^b / B(a, b); log1p keeps the digits of the factor near 1.
  const lnX = x > 0.5 ? Math.log1p(-y) : Math.log(x);
  const lnY = y > 0.5 ? Math.log1p(-x) : Math.log(y);
  const front = Math.exp(a * lnX + b * lnY - lnBeta(a, b));
  if (x < (a + 1) / (a + b + 2)) {
    const lower = (front * betaContinuedFraction(a, b, x)) / a;
    return { lower, upper: 1 - lower };
  }
  const upper = (front * betaContinuedFraction(b, a, y)) / b;
  return { lower: 1 - upper, upper };
}

/**
 * Regularized incomplete gamma functions P(a, x) = γ(a, x)/Γ(a) (`lower`) and Q(a, x) = 1 - P (`upper`): the
 * series of P below x = a + 1, the continued fraction (modified Lentz) of Q above, each where it converges fast;
 * the other one is 1 minus it, which is then at least about 0.1 and keeps its digits.
 *
 *   P(a, x) = e^(-x) x^a / Γ(a) · Σ_{n>=0} x^n / (a (a+1) ... (a+n))
 *   Q(a, x) = e^(-x) x^a / Γ(a) · 1/(x+1-a - 1(1-a)/(x+3-a - 2(2-a)/(x+5-a - ...)))
 */
export function incompleteGamma(a: number, x: number): { lower: number; upper: number } {
  if (x <= 0) return { lower: 0, upper: 1 };
  const front = Math.exp(-x + a * Math.log(x) - lnGamma(a));
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000 && term > sum * 1e-17; n++) {
      term *= x / (a + n);
      sum += term;
    }
    const lower = front * sum;
    return { lower, upper: 1 - lower };
  }
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  const upper = front * h;
  return { lower: 1 - upper, upper };
}

// ---------------------------------------------------------------------------------------------------------------
// Quantiles of the normal and Student's t distributions

/** The two parts of a symmetric distribution right of zero, at t >= 0: P(0 < X < t) and P(X > t). */
interface Halves {
  central: number;
  upper: number;
}

/**
 * Student's t with ν degrees of freedom, for t >= 0, from x = ν/(ν+t²) and 1 - x = t²/(ν+t²):
 *
 *   P(T > t)     = ½ I_x(ν/2, ½)
 *   P(0 < T < t) = ½ (1 - I_x(ν/2, ½)) = ½ I_{1-x}(½, ν/2)
 *
 * x and 1 - x are both formed directly (through ν/t² for large t, so that t² cannot overflow), so neither part
 * loses digits.
 */
export function studentTHalves(t: number, df: number): Halves {
  if (t === Infinity) return { central: 0.5, upper: 0 };
  let x: number;
  let y: number;
  if (t <= 1) {
    const s = df + t * t;
    x = df / s;
    y = (t * t) / s;
  } else {
    const r = df / t / t;
    x = r / (1 + r);
    y = 1 / (1 + r);
  }
  const { lower, upper } = incompleteBeta(df / 2, 0.5, x, y);
  return { central: 0.5 * upper, upper: 0.5 * lower };
}

/** Density of Student's t: f(t) = (1 + t²/ν)^(-(ν+1)/2) / (√ν B(ν/2, ½)). */
export function studentTDensity(t: number, df: number): number {
  return Math.exp(-lnBeta(df / 2, 0.5) - 0.5 * Math.log(df) - ((df + 1) / 2) * Math.log1p((t * t) / df));
}

/** The standard normal for z >= 0: P(0 < Z < z) = ½ P(½, z²/2), P(Z > z) = ½ erfc(z/√2) = ½ Q(½, z²/2). */
export function normalHalves(z: number): Halves {
  const { lower, upper } = incompleteGamma(0.5, (z * z) / 2);
  return { central: 0.5 * lower, upper: 0.5 * upper };
}

const normalDensity = (z: number): number => Math.exp(-(z * z) / 2 - LN_SQRT_2PI);

/**
 * The t >= 0 with g(t) = target, for a decreasing g with g' = -f and g(0) > target. Newton steps
 * t ← t + (g(t) - target) / f(t), kept inside a bracket that shrinks with every evaluation and bisected whenever
 * a step would leave it: g is monotone, so this always converges. It stops when the step or the bracket is
 * within 1e-15 of t.
 */
function solveDecreasing(target: number, g: (t: number) => number, f: (t: number) => number): number {
  // Bracket [lo, hi] with g(lo) > target >= g(hi).
  let lo = 0;
  let hi = 1;
  while (g(hi) > target) {
    lo = hi;
    hi *= 2;
    if (!Number.isFinite(hi)) return Infinity;
  }
  let t = (lo + hi) / 2;
  for (let i = 0; i < 400; i++) {
    const v = g(t);
    if (v > target) lo = t;
    else hi = t;
    const density = f(t);
    let next = density > 0 ? t + (v - target) / density : NaN;
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    const step = Math.abs(next - t);
    t = next;
    if (step <= 1e-15 * t || hi - lo <= 1e-15 * t) break;
  }
  return t;
}

/**
 * The p-quantile of a distribution symmetric about zero, given its halves and density. By symmetry
 * x_p = -x_{1-p}, so only t >= 0 is solved for: near the middle (|p - ½| < ¼, where p - ½ is exact in floating
 * point) from P(0 < X < t) = |p - ½|, in the tails from P(X > t) = min(p, 1 - p). Each way the target keeps all
 * the digits p has.
 */
function symmetricQuantile(p: number, halves: (t: number) => Halves, density: (t: number) => number): number {
  if (!(p >= 0 && p <= 1)) return NaN;
  if (p === 0.5) return 0;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  const c = Math.abs(p - 0.5);
  const t =
    c < 0.25
      ? solveDecreasing(-c, (x) => -halves(x).central, density)
      : solveDecreasing(Math.min(p, 1 - p), (x) => halves(x).upper, density);
  return p > 0.5 ? t : -t;
}

/** The p-quantile of the standard normal distribution. */
export function normalQuantile(p: number): number {
  return symmetricQuantile(p, normalHalves, normalDensity);
}

/**
 * From here on the t quantile comes from the normal one through the Cornish-Fisher expansion, whose first
 * omitted term is below 1e-15 relative here; the incomplete beta function would need O(√ν) continued-fraction
 * terms and lose digits in them.
 */
const ASYMPTOTIC_DF = 1e5;

/**
 * t_p(ν) ≈ z + g1/ν + g2/ν² + g3/ν³ + g4/ν⁴ (Abramowitz and Stegun 26.7.5), z the normal p-quantile:
 *   g1 = (z³ + z)/4
 *   g2 = (5z⁵ + 16z³ + 3z)/96
 *   g3 = (3z⁷ + 19z⁵ + 17z³ - 15z)/384
 *   g4 = (79z⁹ + 776z⁷ + 1482z⁵ - 1920z³ - 945z)/92160
 */
function cornishFisherT(z: number, df: number): number {
  const z2 = z * z;
  const g1 = ((z2 + 1) * z) / 4;
  const g2 = (((5 * z2 + 16) * z2 + 3) * z) / 96;
  const g3 = ((((3 * z2 + 19) * z2 + 17) * z2 - 15) * z) / 384;
  const g4 = (((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z) / 92160;
  return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df;
}

/**
 * The p-quantile of Student's t with `df` degrees of freedom (df > 0, not necessarily whole; Infinity gives the
 * normal quantile): the t with P(T <= t) = p, solved from `studentTHalves` and `studentTDensity` up to df = 1e5,
 * from the expansion beyond. Relative error about 1e-12 or better for df >= 1, as long as the quantile stays
 * below about 1e150 (with df = 1 that is p > 1e-150; ν/t² underflows beyond).
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(df > 0)) return NaN;
  if (df > ASYMPTOTIC_DF) return cornishFisherT(normalQuantile(p), df);
  return symmetricQuantile(
    p,
    (t) => studentTHalves(t, df),
    (t) => studentTDensity(t, df),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Paired sign-flip permutation test

export interface SignFlipOptions {
  /** Monte Carlo sign assignments for n > 16 (default 20000: standard error of p below 0.0036). */
  samples?: number;
  /** Seed of the Monte Carlo draws (fixed by default, so that the same data give the same p everywhere). */
  seed?: number;
}

export interface SignFlipResult {
  /** Two-sided p-value; null for no differences. */
  p: number | null;
  /** Whether every sign assignment was enumerated (n <= EXACT_MAX_PAIRS). */
  exact: boolean;
  /** Sign assignments evaluated: 2^n when exact, the Monte Carlo sample count otherwise. */
  samples: number;
}

/** Up to this many pairs the test enumerates all 2^n sign assignments (65536 at 16). */
export const EXACT_MAX_PAIRS = 16;
export const DEFAULT_SIGN_FLIP_SAMPLES = 20_000;
export const DEFAULT_SIGN_FLIP_SEED = 0x5eed;

/**
 * Two-sided paired sign-flip (randomization) test of "the mean difference is zero". Under that hypothesis each
 * difference d_i is as likely to have come out as -d_i, so every sign assignment s ∈ {±1}^n is equally likely.
 * Statistic T(s) = |Σ s_i d_i| (the same ordering as |mean|), observed T_obs = |Σ d_i|:
 *
 *   exact (n <= 16):   p = #{s ∈ {±1}^n : T(s) >= T_obs - τ} / 2^n
 *   Monte Carlo:       p = (1 + #{draws with T(s) >= T_obs - τ}) / (1 + samples)
 *
 * The Monte Carlo form counts the observed assignment as one draw, so p never reaches 0. τ = 1e-9 · Σ |d_i|
 * absorbs rounding in the sums, so that assignments tied with the observed one in exact arithmetic count as
 * ties. A zero difference flips to itself (both of its signs are counted, as every assignment is); all
 * differences zero give p = 1. Every assignment and its negation give the same T, so an exact p is at least
 * 2 / 2^n.
 */
export function signFlipTest(diffs: readonly number[], opts: SignFlipOptions = {}): SignFlipResult {
  const n = diffs.length;
  if (n === 0) return { p: null, exact: true, samples: 0 };
  let observed = 0;
  let scale = 0;
  for (const d of diffs) {
    observed += d;
    scale += Math.abs(d);
  }
  const threshold = Math.abs(observed) - 1e-9 * scale;
  if (n <= EXACT_MAX_PAIRS) {
    const total = 2 ** n;
    let hits = 0;
    for (let mask = 0; mask < total; mask++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (mask >> i) & 1 ? -diffs[i] : diffs[i];
      if (Math.abs(s) >= threshold) hits++;
    }
    return { p: hits / total, exact: true, samples: total };
  }
  const samples = Math.max(1, Math.floor(opts.samples ?? DEFAULT_SIGN_FLIP_SAMPLES));
  const rng = new Rng(opts.seed ?? DEFAULT_SIGN_FLIP_SEED);
  let hits = 0;
  for (let k = 0; k < samples; k++) {
    let s = 0;
    let bits = 0;
    for (let i = 0; i < n; i++) {
      // One 32-bit draw gives the signs of 32 differences.
      if (i % 32 === 0) bits = Math.floor(rng.next() * 4294967296);
      s += (bits >>> (i % 32)) & 1 ? -diffs[i] : diffs[i];
    }
    if (Math.abs(s) >= threshold) hits++;
  }
  return { p: (1 + hits) / (1 + samples), exact: false, samples };
}

/** The significance level of the verdicts. */
export const ALPHA = 0.05;

/**
 * A method against the baseline on one metric, from the per-cell differences (method - baseline): the mean
 * difference with its t interval (`estimate`), the sign-flip p-value, the smallest p this many pairs can give
 * (exact: min(1, 2/2^n); Monte Carlo: 1/(1 + samples)), and the verdict:
 *
 *   p < 0.05 and mean > 0: 'better' when a higher value of the metric is better, else 'worse'
 *   p < 0.05 and mean < 0: the mirror
 *   otherwise:             'not distinguishable at 95%'
 */
export function pairedDifference(
  metric: MetricName,
  pairs: readonly { order: number | null; seed: number | null; diff: number }[],
  opts: SignFlipOptions = {},
): PairedDifference {
  const diffs = pairs.map((x) => x.diff);
  const est = estimate(diffs);
  const test = signFlipTest(diffs, opts);
  const n = diffs.length;
  const minP = n === 0 ? null : test.exact ? Math.min(1, 2 / 2 ** n) : 1 / (1 + test.samples);
  let verdict: Verdict = 'not distinguishable at 95%';
  if (test.p != null && test.p < ALPHA && est.mean != null && est.mean !== 0) {
    const up = est.mean > 0 === HIGHER_IS_BETTER[metric];
    verdict = up ? 'better' : 'worse';
  }
  return {
    metric,
    n,
    mean: est.mean,
    sd: est.sd,
    ci95: est.ci95,
    p: test.p,
    exact: test.exact,
    minP,
    verdict,
    pairs: pairs.map(({ order, seed, diff }) => ({ order, seed, diff })),
  };
}
