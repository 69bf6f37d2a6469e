/** Number formatting shared by charts, tables and CSV (CSV keeps full precision; screens show one decimal). */

export const DASH = '–';

export function fmt(v: number | null | undefined, digits = 1): string {
  return v == null || !Number.isFinite(v) ? DASH : v.toFixed(digits);
}

/** A signed figure (BWT, FWT): "+2.0", "−33.3" with a real minus sign. */
export function fmtSigned(v: number | null | undefined, digits = 1): string {
  if (v == null || !Number.isFinite(v)) return DASH;
  const s = Math.abs(v).toFixed(digits);
  if (Number(s) === 0) return s;
  return v > 0 ? `+${s}` : `\u2212${s}`;
}

export function fmtSeconds(s: number | null | undefined): string {
  if (s == null || !Number.isFinite(s)) return DASH;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtCount(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return DASH;
  return Math.round(v).toLocaleString('en-US');
}

/** Compact figure for axis ticks and throughput: 1234 -> "1.2k". */
export function fmtCompact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return a >= 10 || v === 0 ? v.toFixed(0) : v.toPrecision(2);
}

function csvCell(v: string | number | null | undefined): string {
  if (v == null || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: readonly (readonly (string | number | null | undefined)[])[]): string {
  return rows.map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/** A p-value: three decimals, or "< 0.001". */
export function fmtP(p: number | null | undefined): string {
  if (p == null || !Number.isFinite(p)) return DASH;
  return p < 0.001 ? '< 0.001' : p.toFixed(3);
}
