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
  type StTensor,
} from '../../src/engine/io/safetensors';
import { int, pick, seeded, type Rng } from '../helpers/random';
import { fixture } from '../helpers/paths';

const CASES = 4000;
const TIME_LIMIT_MS = 15_000;

const ARRAY_FOR: Record<string, unknown> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Float32Array,
  BF16: Float32Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

function handBuilt(): Uint8Array[] {
  const mixed: Record<string, StTensor> = {
    f64: { dtype: 'F64', shape: [2], data: new Float64Array([1.5, -2]) },
    i64: { dtype: 'I64', shape: [1, 2], data: new BigInt64Array([2n ** 40n, -1n]) },
    w: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    ids: { dtype: 'I32', shape: [3], data: new Int32Array([7, 8, 9]) },
    h: { dtype: 'F16', shape: [3], data: new Float32Array([0.5, -0, Infinity]) },
    b: { dtype: 'BF16', shape: [2], data: new Float32Array([1, NaN]) },
    s: { dtype: 'I16', shape: [1], data: new Int16Array([-3]) },
    c: { dtype: 'I8', shape: [2], data: new Int8Array([-1, 1]) },
    u: { dtype: 'U8', shape: [2], data: new Uint8Array([0, 255]) },
    m: { dtype: 'BOOL', shape: [2, 1], data: new Uint8Array([1, 0]) },
    empty: { dtype: 'F32', shape: [0], data: new Float32Array(0) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([3]) },
  };
  return [
    encodeSafetensors(mixed, { format: 'pt', note: 'fuzz base' }),
    encodeSafetensors({ only: { dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) } }),
    encodeSafetensors({}),
  ];
}

function bases(): Uint8Array[] {
  const files = [
    'adaptive-rank/batch.safetensors',
    'projection/sgd/result.safetensors',
    'llama-tiny/reference.safetensors',
  ];
  return [...handBuilt(), ...files.map((f) => new Uint8Array(readFileSync(fixture('hf-reference', ...f.split('/')))))];
}

function headerLength(bytes: Uint8Array): number {
  return bytes.length < 8 ? 0 : Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
}

/** Rebuilds a file from new header text and the original data buffer, with a correct header length. */
function withHeader(bytes: Uint8Array, text: string): Uint8Array {
  const json = Buffer.from(text);
  const data = bytes.subarray(8 + headerLength(bytes));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function flipBits(rng: Rng, bytes: Uint8Array, from: number, to: number): Uint8Array {
  const out = bytes.slice();
  if (to <= from) return out;
  for (let k = 1 + int(rng, 4); k > 0; k--) out[from + int(rng, to - from)] ^= 1 << int(rng, 8);
  return out;
}

const ODD_NUMBERS = [-1, -8, 0.5, 1e308, 2 ** 53, 2 ** 63, NaN, 1, 3, 4096];
const ODD_VALUES: unknown[] = [null, true, 'F32', '12', [], [[1]], {}, ...ODD_NUMBERS];

function nudge(rng: Rng, n: unknown): unknown {
  if (rng() < 0.3) return pick(rng, ODD_VALUES);
  return typeof n === 'number' ? n + pick(rng, [-8, -4, -2, -1, 1, 2, 4, 8, 1000]) : n;
}

/** Changes one field of one entry of the parsed header. */
function editJson(rng: Rng, header: Record<string, any>): void {
  const names = Object.keys(header);
  if (names.length === 0) {
    header[pick(rng, ['x', '__metadata__'])] = pick(rng, ODD_VALUES);
    return;
  }
  const name = pick(rng, names);
  const e = header[name];
  if (name === '__metadata__' || typeof e !== 'object' || e === null) {
    header[name] = rng() < 0.5 ? { k: pick(rng, ODD_VALUES) } : pick(rng, ODD_VALUES);
    return;
  }
  switch (int(rng, 8)) {
    case 0:
      e.data_offsets = Array.isArray(e.data_offsets)
        ? e.data_offsets.map((v: unknown) => (rng() < 0.5 ? nudge(rng, v) : v))
        : [0, 4];
      break;
    case 1:
      e.data_offsets = Array.isArray(e.data_offsets) ? [...e.data_offsets].reverse() : null;
      break;
    case 2:
      e.dtype = pick(rng, [
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
        'F8_E5M2',
        '',
        'constructor',
        7,
        null,
      ]);
      break;
    case 3:
      e.shape =
        Array.isArray(e.shape) && e.shape.length > 0
          ? e.shape.map((v: unknown) => (rng() < 0.5 ? nudge(rng, v) : v))
          : [nudge(rng, 1)];
      break;
    case 4:
      e.shape =
        rng() < 0.5 ? [...(Array.isArray(e.shape) ? e.shape : []), pick(rng, [0, 1, 2, 1e9])] : pick(rng, ODD_VALUES);
      break;
    case 5:
      delete e[pick(rng, ['dtype', 'shape', 'data_offsets'])];
      break;
    case 6:
      header[`${name}.copy`] = { ...e };
      break; // overlaps the original
    default:
      header[pick(rng, ['__proto__', 'constructor', '0', ''])] = e;
      delete header[name];
      break;
  }
}

function mutateOnce(rng: Rng, bytes: Uint8Array): Uint8Array {
  const n = headerLength(bytes);
  const headerEnd = Math.min(8 + n, bytes.length);
  switch (int(rng, 7)) {
    case 0:
      return flipBits(rng, bytes, 0, headerEnd);
    case 1:
      return flipBits(rng, bytes, headerEnd, bytes.length);
    case 2:
      return bytes.slice(0, int(rng, bytes.length + 1));
    case 3: {
      const out = bytes.slice();
      if (out.length < 8) return out;
      const len = pick(rng, [
        0n,
        1n,
        2n ** 64n - 1n,
        2n ** 53n,
        BigInt(out.length),
        BigInt(Math.max(0, n + int(rng, 17) - 8)),
        BigInt(int(rng, 2 ** 31)),
      ]);
      new DataView(out.buffer).setBigUint64(0, len, true);
      return out;
    }
    case 4: {
      const text = Buffer.from(bytes.subarray(8, headerEnd)).toString();
      try {
        const header = JSON.parse(text);
        editJson(rng, header);
        return withHeader(bytes, JSON.stringify(header));
      } catch {
        return withHeader(bytes, text.slice(0, int(rng, text.length + 1)));
      }
    }
    case 5: {
      const text = Buffer.from(bytes.subarray(8, headerEnd)).toString();
      const at = int(rng, text.length + 1);
      return withHeader(
        bytes,
        text.slice(0, at) +
          pick(rng, ['', '"', ',', '}', '{', '[', '-1', '\u00ff', ' ']) +
          text.slice(at + int(rng, 3)),
      );
    }
    default: {
      const garbage = new Uint8Array(1 + int(rng, 64)).map(() => int(rng, 256));
      return Buffer.concat([bytes, garbage]);
    }
  }
}

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A read either fails cleanly or yields consistent tensors that can be written and read back. */
function checkOutcome(
  read: () => { tensors: Map<string, StTensor>; metadata?: Record<string, string> },
  label: string,
  where: string,
): boolean {
  let result: ReturnType<typeof read>;
  try {
    result = read();
  } catch (e) {
    if (!(e instanceof SafetensorsError)) assert.fail(`${where}: ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.file, label, where);
    return false;
  }
  for (const [name, t] of result.tensors) {
    assert.equal(t.data.length, elementCount(t.shape), `${where}: ${name} length`);
    assert.equal(t.data.constructor, ARRAY_FOR[t.dtype], `${where}: ${name} array type`);
  }
  const again = decodeSafetensors(encodeSafetensors(result.tensors, result.metadata));
  assert.deepEqual([...again.tensors.keys()].sort(), [...result.tensors.keys()].sort(), where);
  assert.deepEqual(again.metadata, result.metadata, where);
  return true;
}

test(`fuzz: ${CASES} mutated files either read consistently or fail with a SafetensorsError`, () => {
  const rng = seeded(20240611);
  const files = bases();
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-st-fuzz-'));
  const started = performance.now();
  let ok = 0;
  try {
    for (let i = 0; i < CASES; i++) {
      let bytes: Uint8Array = pick(rng, files);
      for (let k = 1 + int(rng, 3); k > 0; k--) bytes = mutateOnce(rng, bytes);
      const where = `case ${i}`;
      // Most cases go through the in-memory reader; some through a real file descriptor.
      if (i % 16 === 0) {
        const path = join(dir, `case-${i}.safetensors`);
        writeFileSync(path, bytes);
        if (checkOutcome(() => readSafetensors(path), path, where)) ok++;
      } else if (checkOutcome(() => decodeSafetensors(bytes, where), where, where)) ok++;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed < TIME_LIMIT_MS, `fuzzing took ${Math.round(elapsed)} ms`);
  // Both outcomes must be common, or the mutations are not exercising the reader.
  assert.ok(ok > CASES * 0.05 && ok < CASES * 0.8, `${ok} of ${CASES} mutated files read successfully`);
});
