/**
 * Mutation test of the safetensors reader: seeded mutations of real checkpoints (bit flips, header-length
 * changes, truncations, appended bytes, offset and dtype/shape edits, repeated keys, non-JSON headers), each
 * judged by a separate implementation of the format's rules written here from the specification. Every mutated
 * file must either be refused with a SafetensorsError or be exactly consistent by those rules (a bit flip in
 * tensor data, say), and then read back as the tensors its header declares. No other exception, and no case
 * slower than the time bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SafetensorsError,
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  type SafetensorsContents,
  type StTensor,
} from '../../src/engine/io/safetensors';
import { int, pick, seeded, type Rng } from '../helpers/random';
import { fixture, repoRoot } from '../helpers/paths';

const CASES = 3000;
const CASE_LIMIT_MS = 2000;
const SEED = 0x5afe;

// ---------------------------------------------------------------------------------------------
// The format's rules, independently of the reader: an 8-byte little-endian length N (at most 100 MB), N bytes
// of UTF-8 JSON that start with "{" and may end in spaces, then a data buffer the entries tile exactly.

const WIDTH: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

interface Declared {
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** A small JSON parser that refuses what JSON.parse would accept silently: repeated keys in one object. */
function strictJson(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`${what} at ${i}`);
  };
  const token = (re: RegExp): string => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) fail('bad token');
    i += m![0].length;
    return m![0];
  };
  // A string token: up to the next unescaped quote; JSON.parse then refuses bad escapes and control characters.
  const str = (): string => {
    if (text[i] !== '"') fail('expected a string');
    let j = i + 1;
    while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    if (j >= text.length) fail('unterminated string');
    const s = JSON.parse(text.slice(i, j + 1)) as string;
    i = j + 1;
    return s;
  };
  const value = (depth: number): unknown => {
    if (depth > 64) fail('too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      const keys = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return out;
      }
      for (;;) {
        ws();
        const key = str();
        if (keys.has(key)) fail(`repeated key ${key}`);
        keys.add(key);
        ws();
        if (text[i++] !== ':') fail('expected :');
        Object.defineProperty(out, key, {
          value: value(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        ws();
        const d = text[i++];
        if (d === '}') return out;
        if (d !== ',') fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value(depth + 1));
        ws();
        const d = text[i++];
        if (d === ']') return out;
        if (d !== ',') fail('expected , or ]');
      }
    }
    if (c === '"') return str();
    if (c === 't' || c === 'f' || c === 'n') return JSON.parse(token(/true|false|null/y));
    return Number(token(/-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y));
  };
  const out = value(0);
  ws();
  if (i !== text.length) fail('trailing text');
  return out;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The tensors a file declares when it obeys every rule of the format; null when it breaks one. */
function consistentTensors(bytes: Uint8Array): Map<string, Declared> | null {
  if (bytes.length < 8) return null;
  const n = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8) || n > 100_000_000n || n < 2n) return null;
  const header = bytes.subarray(8, 8 + Number(n));
  let end = header.length;
  while (end > 0 && header[end - 1] === 0x20) end--;
  if (header[0] !== 0x7b) return null;
  let parsed: unknown;
  try {
    parsed = strictJson(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(header.subarray(0, end)));
  } catch {
    return null;
  }
  if (!isPlainObject(parsed)) return null;
  const out = new Map<string, Declared>();
  for (const [name, e] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (e === null) continue;
      if (!isPlainObject(e) || !Object.values(e).every((v) => typeof v === 'string')) return null;
      continue;
    }
    if (!isPlainObject(e)) return null;
    const keys = Object.keys(e).sort();
    if (keys.join() !== 'data_offsets,dtype,shape') return null;
    const { dtype, shape, data_offsets: offsets } = e as { dtype: unknown; shape: unknown; data_offsets: unknown };
    if (typeof dtype !== 'string' || !Object.hasOwn(WIDTH, dtype)) return null;
    if (!Array.isArray(shape) || !shape.every(isCount)) return null;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) return null;
    const [b, f] = offsets as [number, number];
    const size = shape.reduce((p: bigint, d: number) => p * BigInt(d), BigInt(WIDTH[dtype]));
    if (f < b || BigInt(f - b) !== size) return null;
    out.set(name, { dtype, shape: shape as number[], begin: b, end: f });
  }
  const sorted = [...out.values()].sort((x, y) => x.begin - y.begin || x.end - y.end);
  let at = 0;
  for (const t of sorted) {
    if (t.begin !== at) return null;
    at = t.end;
  }
  return at === bytes.length - 8 - Number(n) ? out : null;
}

// ---------------------------------------------------------------------------------------------
// Mutations.

function headerLength(bytes: Uint8Array): number {
  return bytes.length < 8 ? 0 : Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
}

function headerText(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(8, 8 + headerLength(bytes))).toString('utf8');
}

/** A file from new header text and the original data buffer, the length prefix set to the text's length. */
function withHeader(bytes: Uint8Array, text: string): Uint8Array {
  const json = Buffer.from(text);
  const data = bytes.subarray(8 + headerLength(bytes));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

type Entry = { dtype: unknown; shape: unknown; data_offsets: unknown };

/** Edits the parsed header of one file and writes it back with a correct length (so only the edit is wrong). */
function editEntries(
  rng: Rng,
  bytes: Uint8Array,
  edit: (names: string[], h: Record<string, Entry>) => void,
): Uint8Array {
  const h = JSON.parse(headerText(bytes)) as Record<string, Entry>;
  const names = Object.keys(h).filter((k) => k !== '__metadata__');
  if (names.length === 0) return bytes;
  edit(names, h);
  const text = JSON.stringify(h);
  return withHeader(bytes, rng() < 0.5 ? text : text.padEnd(Math.ceil(text.length / 8) * 8));
}

const OTHER_DTYPES = [
  'F64',
  'F32',
  'F16',
  'BF16',
  'I64',
  'I32',
  'I16',
  'I8',
  'U8',
  'BOOL',
  'U32',
  'F8_E4M3',
  'f32',
  '',
];

const MUTATIONS: Record<string, (rng: Rng, bytes: Uint8Array) => Uint8Array> = {
  'header bit flip': (rng, bytes) => {
    const out = bytes.slice();
    const span = Math.min(8 + headerLength(bytes), bytes.length);
    for (let k = 1 + int(rng, 3); k > 0; k--) out[int(rng, span)] ^= 1 << int(rng, 8);
    return out;
  },
  'data bit flip': (rng, bytes) => {
    const out = bytes.slice();
    const start = 8 + headerLength(bytes);
    if (start >= out.length) return out;
    for (let k = 1 + int(rng, 4); k > 0; k--) out[start + int(rng, out.length - start)] ^= 1 << int(rng, 8);
    return out;
  },
  'header length +-1..8': (rng, bytes) => {
    const out = bytes.slice();
    const d = (1 + int(rng, 8)) * (rng() < 0.5 ? -1 : 1);
    new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, headerLength(bytes) + d)), true);
    return out;
  },
  'header length odd': (rng, bytes) => {
    const out = bytes.slice();
    const v = pick(rng, [0n, 1n, 2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, BigInt(out.length), 100_000_001n]);
    new DataView(out.buffer).setBigUint64(0, v, true);
    return out;
  },
  truncation: (rng, bytes) => {
    const h = 8 + headerLength(bytes);
    // Half inside the header and its length, half inside the data.
    return bytes.slice(0, rng() < 0.5 ? int(rng, h) : h + int(rng, bytes.length - h));
  },
  'appended bytes': (rng, bytes) => {
    const extra = new Uint8Array(1 + int(rng, 64)).map(() => (rng() < 0.3 ? 0x20 : int(rng, 256)));
    return Buffer.concat([bytes, extra]);
  },
  'offsets swapped': (rng, bytes) =>
    editEntries(rng, bytes, (names, h) => {
      const a = h[pick(rng, names)];
      const b = h[pick(rng, names)];
      [a.data_offsets, b.data_offsets] = [b.data_offsets, a.data_offsets];
    }),
  'offsets shifted': (rng, bytes) =>
    editEntries(rng, bytes, (names, h) => {
      const d = pick(rng, [-8, -4, -2, -1, 1, 2, 4, 8, 4096]);
      const which = int(rng, 3);
      for (const name of rng() < 0.5 ? [pick(rng, names)] : names) {
        const o = h[name].data_offsets as number[];
        h[name].data_offsets = [which === 1 ? o[0] : o[0] + d, which === 0 ? o[1] : o[1] + d];
      }
    }),
  'dtype edit': (rng, bytes) =>
    editEntries(rng, bytes, (names, h) => {
      h[pick(rng, names)].dtype = pick(rng, OTHER_DTYPES);
    }),
  'shape edit': (rng, bytes) =>
    editEntries(rng, bytes, (names, h) => {
      const e = h[pick(rng, names)];
      const shape = e.shape as number[];
      e.shape = pick(rng, [
        () => shape.map((d, i) => (i === shape.length - 1 ? d + pick(rng, [-1, 1, 2]) : d)),
        () => [...shape].reverse(),
        () => [...shape, 1],
        () => [...shape, 2],
        () => shape.slice(1),
        () => shape.map((d) => (rng() < 0.3 ? pick(rng, [-1, 0.5, 1e20, 2 ** 53]) : d)),
        () => 'x',
      ])();
    }),
  'repeated key': (rng, bytes) => {
    const text = headerText(bytes).trimEnd();
    const h = JSON.parse(text) as Record<string, unknown>;
    const names = Object.keys(h);
    if (names.length === 0) return bytes;
    const name = pick(rng, names);
    const copy = `${JSON.stringify(name)}:${JSON.stringify(rng() < 0.7 ? h[name] : pick(rng, Object.values(h)))}`;
    return withHeader(bytes, `${text.slice(0, -1)},${copy}}`);
  },
  'non-JSON header': (rng, bytes) => {
    const text = headerText(bytes);
    const at = int(rng, text.length + 1);
    const kind = int(rng, 5);
    if (kind === 0) return withHeader(bytes, text.slice(0, at));
    if (kind === 1)
      return withHeader(
        bytes,
        Buffer.from(new Uint8Array(1 + int(rng, 40)).map(() => int(rng, 256))).toString('latin1'),
      );
    if (kind === 2)
      return withHeader(
        bytes,
        text.slice(0, at) +
          pick(rng, ['"', ',', '}', '{', '[', ']', ':', '\u00ff', '\ufffd', '\n', 'NaN']) +
          text.slice(at),
      );
    if (kind === 3)
      return withHeader(bytes, pick(rng, ['[]', 'null', '"x"', '1', '{}', '{} {}', ' {}', '{}\t', '\ufeff{}']));
    return withHeader(bytes, text.slice(0, at) + text.slice(at + 1 + int(rng, 4)));
  },
};

function mixedFile(): Uint8Array {
  const t: Record<string, StTensor> = {
    f64: { dtype: 'F64', shape: [2], data: new Float64Array([1.5, -2]) },
    i64: { dtype: 'I64', shape: [1, 2], data: new BigInt64Array([2n ** 40n, -1n]) },
    w: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    h: { dtype: 'F16', shape: [3], data: new Float32Array([0.5, -0, 1]) },
    b: { dtype: 'BF16', shape: [2], data: new Float32Array([1, 2]) },
    c: { dtype: 'I8', shape: [2], data: new Int8Array([-1, 1]) },
    m: { dtype: 'BOOL', shape: [2, 1], data: new Uint8Array([1, 0]) },
    empty: { dtype: 'F32', shape: [0], data: new Float32Array(0) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([3]) },
  };
  return encodeSafetensors(t, { format: 'pt' });
}

function bases(): [string, Uint8Array][] {
  return [
    ['llama-tiny', new Uint8Array(readFileSync(fixture('hf-reference', 'llama-tiny', 'model.safetensors')))],
    ['gpt2-tiny', new Uint8Array(readFileSync(fixture('hf-reference', 'gpt2-tiny', 'model.safetensors')))],
    ['tiny-t5', new Uint8Array(readFileSync(join(repoRoot, 'assets', 'models', 'tiny-t5', 'model.safetensors')))],
    ['mixed', mixedFile()],
  ];
}

/** The reader's result against what the header declares: names, dtypes, shapes, and the stored bytes. */
function assertDeclared(got: SafetensorsContents, want: Map<string, Declared>, bytes: Uint8Array, where: string): void {
  assert.deepEqual([...got.tensors.keys()].sort(), [...want.keys()].sort(), `${where}: names`);
  const dataStart = 8 + headerLength(bytes);
  for (const [name, d] of want) {
    const t = got.tensors.get(name)!;
    assert.equal(t.dtype, d.dtype, `${where}: ${name} dtype`);
    assert.deepEqual(t.shape, d.shape, `${where}: ${name} shape`);
    assert.equal(
      t.data.length,
      d.shape.reduce((a, b) => a * b, 1),
      `${where}: ${name} length`,
    );
    if (d.dtype !== 'F16' && d.dtype !== 'BF16') {
      const raw = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      assert.ok(raw.equals(bytes.subarray(dataStart + d.begin, dataStart + d.end)), `${where}: ${name} bytes`);
    }
  }
}

test(`mutation: ${CASES} seeded mutations of real checkpoints are refused with a SafetensorsError or are exactly consistent`, (t) => {
  const rng = seeded(SEED);
  const files = bases();
  const kinds = Object.keys(MUTATIONS);
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-st-mutation-'));
  const counts = { rejected: 0, consistent: 0, crashes: 0, hangs: 0, acceptedCorrupt: 0, rejectedConsistent: 0 };
  const perKind = new Map<string, { rejected: number; consistent: number }>(
    kinds.map((k) => [k, { rejected: 0, consistent: 0 }]),
  );
  const problems: string[] = [];
  let slowest = 0;
  try {
    for (let i = 0; i < CASES; i++) {
      const [base, original] = pick(rng, files);
      const kind = kinds[i % kinds.length];
      const bytes = MUTATIONS[kind](rng, original);
      const where = `case ${i} (${kind} of ${base})`;
      const expected = consistentTensors(bytes);
      const viaFile = i % 10 === 0;
      const label = viaFile ? join(dir, `case-${i}.safetensors`) : where;
      if (viaFile) writeFileSync(label, bytes);
      const started = performance.now();
      let got: SafetensorsContents | undefined;
      let error: unknown;
      try {
        got = viaFile ? readSafetensors(label) : decodeSafetensors(bytes, label);
      } catch (e) {
        error = e;
      }
      const ms = performance.now() - started;
      slowest = Math.max(slowest, ms);
      if (ms > CASE_LIMIT_MS) {
        counts.hangs++;
        problems.push(`${where}: took ${Math.round(ms)} ms`);
      }
      if (error !== undefined) {
        if (!(error instanceof SafetensorsError) || error.file !== label) {
          counts.crashes++;
          problems.push(`${where}: ${error instanceof Error ? error.stack : String(error)}`);
        } else if (expected !== null) {
          counts.rejectedConsistent++;
          problems.push(`${where}: a consistent file was refused: ${error.message}`);
        } else {
          counts.rejected++;
          perKind.get(kind)!.rejected++;
        }
      } else if (expected === null) {
        counts.acceptedCorrupt++;
        problems.push(`${where}: a file that breaks the format was accepted`);
      } else {
        assertDeclared(got!, expected, bytes, where);
        counts.consistent++;
        perKind.get(kind)!.consistent++;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const table = [...perKind].map(([k, c]) => `${k}: ${c.rejected} rejected, ${c.consistent} consistent`).join('; ');
  t.diagnostic(
    `rejected ${counts.rejected}, consistent ${counts.consistent}, crashes ${counts.crashes}, hangs ${counts.hangs}, ` +
      `accepted corrupt ${counts.acceptedCorrupt}, refused consistent ${counts.rejectedConsistent}; slowest case ${Math.round(slowest)} ms`,
  );
  t.diagnostic(table);
  assert.deepEqual(problems.slice(0, 10), []);
  assert.equal(counts.rejected + counts.consistent, CASES);
  // The mutations reach the reader's checks: most are refused, and data-only flips stay readable.
  assert.ok(counts.rejected > CASES / 2, `${counts.rejected} rejected`);
  assert.equal(perKind.get('data bit flip')!.rejected, 0, 'a flip inside tensor data cannot be detected');
  for (const kind of ['header length +-1..8', 'truncation', 'appended bytes', 'repeated key'])
    assert.equal(perKind.get(kind)!.consistent, 0, `${kind}: every case refused`);
});
