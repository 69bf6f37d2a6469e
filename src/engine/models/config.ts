/**
 * Typed reads of HF config.json fields, with errors that name the field and what was expected. The model code
 * sees only the parsed object, so its errors say `config.json`; the loader names the file's path.
 */
import { ModelFileError } from '../../protocol/errors';

export type RawConfig = Record<string, unknown>;

/** config.json field `field` is unusable; `detail` says what it holds and what was expected. */
export function fieldError(field: string, detail: string): ModelFileError {
  return new ModelFileError('config.json', detail, { field });
}

function fail(field: string, expected: string, got: unknown): never {
  throw fieldError(field, `'${field}' must be ${expected}, found ${JSON.stringify(got)}`);
}

/** A positive integer field; `fallback` when absent or null (undefined fallback = required). */
export function intField(raw: RawConfig, field: string, fallback?: number): number {
  const v = raw[field];
  if (v === undefined || v === null) {
    if (fallback === undefined) fail(field, 'a positive integer (it is required)', v);
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(field, 'a positive integer', v);
  return v;
}

export function numField(raw: RawConfig, field: string, fallback: number): number {
  const v = raw[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(field, 'a number', v);
  return v;
}

export function boolField(raw: RawConfig, field: string, fallback: boolean): boolean {
  const v = raw[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') fail(field, 'true or false', v);
  return v;
}

export function strField(raw: RawConfig, field: string, fallback: string): string {
  const v = raw[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') fail(field, 'a string', v);
  return v;
}

/** A token id field that HF allows to be null, a number, or (eos) a list of numbers. */
export function tokenIds(raw: RawConfig, field: string): number[] {
  const v = raw[field];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list)
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      fail(field, 'a token id, a list of them, or null', v);
  return list as number[];
}

export function tokenId(raw: RawConfig, field: string): number | null {
  return tokenIds(raw, field)[0] ?? null;
}

/** Every head must have the same width and every key/value head must serve the same number of query heads. */
export function checkHeads(numHeads: number, numKvHeads: number): void {
  if (numHeads % numKvHeads !== 0) {
    throw fieldError(
      'num_key_value_heads',
      `the attention heads (${numHeads}) must be a multiple of the key/value heads (${numKvHeads})`,
    );
  }
}
