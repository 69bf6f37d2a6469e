/** Command-line options shared by the benches. */

/** `--flag N` as a positive integer, `fallback` when absent; anything else is an error naming the flag. */
export function positiveIntOption(args: readonly string[], flag: string, fallback: number): number {
  const i = args.indexOf(flag);
  const n = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${args[i + 1]}`);
  return n;
}
