/**
 * Columnar, growable step series and their decimation. A long run reports tens of thousands of step events;
 * keeping them as objects and redrawing every point would make a live dashboard stall, so steps are stored in
 * typed arrays and charts get at most ~2,000 points per series.
 */

/** A growable Float64Array column: amortised O(1) append, no per-point objects. */
export class Column {
  private buf: Float64Array;
  length = 0;

  constructor(capacity = 256) {
    this.buf = new Float64Array(capacity);
  }

  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }

  get(i: number): number {
    return this.buf[i];
  }

  /** A view of the filled part (no copy). */
  view(): Float64Array {
    return this.buf.subarray(0, this.length);
  }
}

export interface Point {
  x: number;
  y: number;
}

/**
 * Min/max decimation: splits x's index range into buckets and keeps, per bucket, the first point, the minimum,
 * the maximum and the last point, in x order. Unlike averaging it keeps loss spikes (divergence) visible, and
 * unlike LTTB it is a single pass with no floating-point area arithmetic, so the result is stable as points
 * arrive. Non-finite y values (a NaN loss) are kept as gaps: Chart.js breaks the line there.
 */
export function decimateMinMax(xs: ArrayLike<number>, ys: ArrayLike<number>, maxPoints = 2000): Point[] {
  const n = Math.min(xs.length, ys.length);
  if (n <= maxPoints) {
    const out: Point[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = { x: xs[i], y: ys[i] };
    return out;
  }
  const buckets = Math.max(1, Math.floor(maxPoints / 4));
  const size = n / buckets;
  const out: Point[] = [];
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor(b * size);
    const end = Math.min(n, Math.floor((b + 1) * size));
    if (end <= start) continue;
    let lo = -1;
    let hi = -1;
    let gap = -1;
    for (let i = start; i < end; i++) {
      const y = ys[i];
      if (!Number.isFinite(y)) {
        if (gap < 0) gap = i;
        continue;
      }
      if (lo < 0 || y < ys[lo]) lo = i;
      if (hi < 0 || y > ys[hi]) hi = i;
    }
    const keep = new Set<number>([start, end - 1]);
    if (lo >= 0) keep.add(lo);
    if (hi >= 0) keep.add(hi);
    if (gap >= 0) keep.add(gap);
    for (const i of [...keep].sort((a, b2) => a - b2)) out.push({ x: xs[i], y: ys[i] });
  }
  return out;
}
