/**
 * Limits on JSON a user hands in (configs, data lines): nesting deeper than MAX_JSON_DEPTH is refused before
 * any parser recurses into it, so a pathological file is an error naming its line, not a stack overflow.
 * Plain TypeScript, no Node imports: the extension and the webview use it too.
 */

/** Arrays and objects nested deeper than this are refused (real configs and data lines nest a few levels). */
export const MAX_JSON_DEPTH = 64;

/**
 * The offset of the first `[` or `{` that opens nesting deeper than `max`, or -1. Strings are skipped, and so
 * are `//` and block comments (configs may hold them). One linear pass, no recursion.
 */
export function excessiveNesting(text: string, max = MAX_JSON_DEPTH): number {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22 || d === 0x0a) break;
      }
    } else if (c === 0x2f /* / */ && text.charCodeAt(i + 1) === 0x2f) {
      const end = text.indexOf('\n', i);
      i = end < 0 ? n : end;
    } else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a /* * */) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 1;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return i;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      if (depth > 0) depth--;
    }
  }
  return -1;
}

/** 1-based line and column of an offset in a text. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}
