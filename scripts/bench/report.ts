/**
 * Shared output of the benchmark suites: a Markdown table for people and, with --json, one last line
 * {"suite", "rows": [{name, ours, peer, unit, speedup}]} for machines (speedup = peer / ours for times,
 * so >= 1 means Sculpt is faster). The JSON shape is kept stable so results can be compared over time.
 */

export interface BenchRow {
  name: string;
  ours: number;
  peer: number | null;
  unit: string;
  speedup: number | null;
}

export interface Stats {
  median: number;
  min: number;
  max: number;
  count: number;
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new RangeError('stats of no samples');
  const xs = [...samples].sort((a, b) => a - b);
  const mid = xs.length >> 1;
  const median = xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
  return { median, min: xs[0], max: xs[xs.length - 1], count: xs.length };
}

/** "1.23 s (1.20-1.31, n=3)"; a lone sample is shown without a range. */
export function formatStats(s: Stats | null, unit = 's', digits = 2): string {
  if (!s) return 'n/a';
  if (s.count === 1) return `${s.median.toFixed(digits)} ${unit} (n=1)`;
  return `${s.median.toFixed(digits)} ${unit} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)}, n=${s.count})`;
}

export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** speedup = peer / ours (both times); null when either side is missing. */
export function speedup(ours: number, peer: number | null): number | null {
  return peer === null || !(ours > 0) ? null : peer / ours;
}

/** Prints the table and notes, then (with json) the machine-readable line last. */
export function printReport(
  suite: string,
  table: string,
  notes: readonly string[],
  rows: readonly BenchRow[],
  json: boolean,
): void {
  console.log(table);
  if (notes.length) console.log(`\n${notes.map((n) => `- ${n}`).join('\n')}`);
  if (json) console.log(JSON.stringify({ suite, rows }));
}
