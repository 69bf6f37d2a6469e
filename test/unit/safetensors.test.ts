import { mock, test } from 'node:test';
import fs from 'node:fs';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  SafetensorsError,
  SafetensorsReader,
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
  type StTensor,
} from '../../src/engine/io/safetensors';
import { fixture, repoRoot } from '../helpers/paths';

function listSafetensors(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? listSafetensors(join(dir, d.name)) : d.name.endsWith('.safetensors') ? [join(dir, d.name)] : [],
  );
}

const FIXTURES = listSafetensors(fixture('hf-reference'));

function bytesOf(data: StTensor['data']): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function assertSameTensors(actual: Map<string, StTensor>, expected: Map<string, StTensor>, where: string): void {
  assert.deepEqual([...actual.keys()], [...expected.keys()], `${where}: tensor names`);
  for (const [name, e] of expected) {
    const a = actual.get(name)!;
    assert.equal(a.dtype, e.dtype, `${where}: ${name} dtype`);
    assert.deepEqual(a.shape, e.shape, `${where}: ${name} shape`);
    assert.equal(a.data.constructor, e.data.constructor, `${where}: ${name} array type`);
    assert.ok(bytesOf(a.data).equals(bytesOf(e.data)), `${where}: ${name} data bytes differ`);
  }
}

function withTempDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-st-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A file from a header given as raw text or as an object (laid out as the reference writer does), and a data buffer. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = Buffer.from(typeof header === 'string' ? text : text.padEnd(Math.ceil(text.length / 8) * 8));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function halfFile(dtype: 'F16' | 'BF16', bits: number[]): Uint8Array {
  const data = new Uint8Array(new Uint16Array(bits).buffer);
  return rawFile({ x: { dtype, shape: [bits.length], data_offsets: [0, data.length] } }, data);
}

test('every fixture reads, and encodes back to the identical file', () => {
  assert.ok(FIXTURES.length >= 10, `expected the hf-reference safetensors files, found ${FIXTURES.length}`);
  for (const file of FIXTURES) {
    const where = relative(repoRoot, file);
    const { tensors, metadata } = readSafetensors(file);
    assert.ok(tensors.size > 0, `${where}: no tensors`);
    const encoded = encodeSafetensors(tensors, metadata);
    // The reference writer's layout (widest dtype first, compact JSON, space padding) is what ours is.
    assert.ok(Buffer.from(encoded).equals(readFileSync(file)), `${where}: re-encoded bytes differ from the file`);
    const decoded = decodeSafetensors(encoded);
    assertSameTensors(decoded.tensors, tensors, where);
    assert.deepEqual(decoded.metadata, metadata);
  }
});

test('writeSafetensors round-trips every fixture through a file', () => {
  withTempDir((dir) => {
    for (const file of FIXTURES) {
      const where = relative(repoRoot, file);
      const original = readSafetensors(file);
      const out = join(dir, 'copy.safetensors');
      writeSafetensors(out, original.tensors, original.metadata);
      const back = readSafetensors(out);
      assertSameTensors(back.tensors, original.tensors, where);
      assert.deepEqual(back.metadata, original.metadata, `${where}: metadata`);
    }
    assert.deepEqual(readdirSync(dir), ['copy.safetensors']);
  });
});

test('fixture values decode correctly: the stored loss matches reference.json', () => {
  for (const model of ['gpt2-tiny', 'llama-tiny', 't5-tiny']) {
    const expected = JSON.parse(readFileSync(fixture('hf-reference', model, 'reference.json'), 'utf8')).loss as number;
    const reader = SafetensorsReader.open(fixture('hf-reference', model, 'reference.safetensors'));
    try {
      const loss = reader.read('loss');
      assert.equal(loss.dtype, 'F32');
      assert.deepEqual(loss.shape, [1]);
      assert.equal(loss.data[0], Math.fround(expected));
      const ids = reader.read('input.input_ids');
      assert.ok(ids.data instanceof Int32Array);
      assert.equal(
        ids.data.length,
        ids.shape.reduce((a, b) => a * b, 1),
      );
      assert.ok([...ids.data].every((id) => id >= 0 && id < 100_000));
    } finally {
      reader.close();
    }
  }
});

test('the reader exposes names in file order, entry info and metadata', () => {
  const reader = SafetensorsReader.open(fixture('hf-reference', 'llama-tiny', 'model.safetensors'));
  try {
    assert.deepEqual(reader.metadata, { format: 'pt' });
    const names = reader.names();
    assert.equal(names[0], 'lm_head.weight');
    const offsets = names.map((n) => reader.info(n).byteOffsets);
    for (let i = 1; i < offsets.length; i++) assert.equal(offsets[i][0], offsets[i - 1][1]);
    assert.deepEqual(reader.info('lm_head.weight'), {
      name: 'lm_head.weight',
      dtype: 'F32',
      shape: [512, 64],
      byteOffsets: [0, 131072],
    });
  } finally {
    reader.close();
  }
  assert.throws(
    () => reader.read('lm_head.weight'),
    (e: unknown) => e instanceof SafetensorsError && /closed/.test(e.message),
  );
});

test("reading one tensor reads only the header and that tensor's bytes, straight into its array", () => {
  const file = fixture('hf-reference', 'llama-tiny', 'model.safetensors');
  const original = fs.readSync;
  let bytesRead = 0;
  const spy = mock.method(fs, 'readSync', (...args: unknown[]) => {
    const n = (original as (...a: unknown[]) => number)(...args);
    bytesRead += n;
    return n;
  });
  try {
    const reader = SafetensorsReader.open(file);
    const headerBytes = bytesRead;
    const t = reader.read('model.layers.1.self_attn.q_proj.weight');
    reader.close();
    assert.equal(headerBytes, 8 + 2144);
    assert.equal(bytesRead - headerBytes, t.data.byteLength);
  } finally {
    spy.mock.restore();
  }
});

test('names keep the written order even when they look like array indices', () => {
  const t = (v: number): StTensor => ({ dtype: 'F32', shape: [1], data: new Float32Array([v]) });
  const tensors = new Map([
    ['10', t(10)],
    ['b', t(0)],
    ['2', t(2)],
    ['__proto__', t(-1)],
  ]);
  const back = decodeSafetensors(encodeSafetensors(tensors));
  assert.deepEqual([...back.tensors.keys()], ['10', 'b', '2', '__proto__']);
  assert.deepEqual(
    [...back.tensors.values()].map((x) => x.data[0]),
    [10, 0, 2, -1],
  );
});

test('F16 upcasts exactly, including subnormals, infinities, NaN and negative zero, and writes back byte-identically', () => {
  const cases: [number, number][] = [
    [0x0000, 0],
    [0x8000, -0],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14],
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 0.333251953125],
    [0x7bff, 65504],
    [0xfbff, -65504],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0x7e00, NaN],
    [0x7c01, NaN],
    [0xfe00, NaN],
  ];
  const file = halfFile(
    'F16',
    cases.map(([b]) => b),
  );
  const x = decodeSafetensors(file, 'f16.safetensors').tensors.get('x')!;
  assert.equal(x.dtype, 'F16');
  assert.ok(x.data instanceof Float32Array);
  cases.forEach(([bits, value], i) =>
    assert.ok(Object.is(x.data[i], value), `0x${bits.toString(16)} -> ${x.data[i]}, expected ${value}`),
  );
  const nanBits = new Uint32Array(x.data.buffer);
  assert.equal(nanBits[13], 0x7f802000, 'a signalling NaN keeps its payload');
  assert.ok(Buffer.from(encodeSafetensors({ x })).equals(file));
});

test('all 65536 F16 and BF16 bit patterns survive read and write, and F16 values match the IEEE definition', () => {
  const all = Array.from({ length: 65536 }, (_, i) => i);
  for (const dtype of ['F16', 'BF16'] as const) {
    const file = halfFile(dtype, all);
    const x = decodeSafetensors(file).tensors.get('x')!;
    assert.ok(Buffer.from(encodeSafetensors({ x })).equals(file), `${dtype}: bytes differ after a round trip`);
    const bits = new Uint32Array(x.data.buffer, x.data.byteOffset, x.data.length);
    for (const h of all) {
      const exp = (h >>> 10) & 0x1f;
      const mant = h & 0x3ff;
      const sign = h & 0x8000 ? -1 : 1;
      if (dtype === 'BF16') {
        assert.equal(bits[h], (h << 16) >>> 0);
      } else if (exp === 31) {
        assert.ok(mant === 0 ? x.data[h] === sign * Infinity : Number.isNaN(x.data[h]));
      } else {
        const expected = sign * (exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15));
        if (!Object.is(x.data[h], expected))
          assert.fail(`F16 0x${h.toString(16)} -> ${x.data[h]}, expected ${expected}`);
      }
    }
  }
});

test('BF16 upcasts known values', () => {
  const cases: [number, number][] = [
    [0x0000, 0],
    [0x8000, -0],
    [0x3f80, 1],
    [0xc000, -2],
    [0x0001, 2 ** -133],
    [0x0080, 2 ** -126],
    [0x7f7f, 3.3895313892515355e38],
    [0x7f80, Infinity],
    [0xff80, -Infinity],
    [0x7fc0, NaN],
    [0x3eab, 0.333984375],
  ];
  const x = decodeSafetensors(
    halfFile(
      'BF16',
      cases.map(([b]) => b),
    ),
  ).tensors.get('x')!;
  cases.forEach(([bits, value], i) =>
    assert.ok(Object.is(x.data[i], value), `0x${bits.toString(16)} -> ${x.data[i]}, expected ${value}`),
  );
});

test('writing float32 data as F16/BF16 rounds to nearest, ties to even', () => {
  const values = [
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    65519,
    65520,
    2 ** -25,
    2 ** -25 * 1.5,
    3 * 2 ** -25,
    -1e-9,
    1e6,
    NaN,
    -0,
  ];
  const f16 = [0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0000, 0x0001, 0x0002, 0x8000, 0x7c00, 0x7e00, 0x8000];
  const bf = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 3e38, 3.4e38, 2 ** -134, NaN];
  const bf16 = [0x3f80, 0x3f82, 0x7f62, 0x7f80, 0x0000, 0x7fc0];
  for (const [dtype, input, expected] of [
    ['F16', values, f16],
    ['BF16', bf, bf16],
  ] as const) {
    const bytes = encodeSafetensors({ x: { dtype, shape: [input.length], data: new Float32Array(input) } });
    const stored = new Uint16Array(bytes.slice(bytes.length - 2 * input.length).buffer);
    assert.deepEqual(
      [...stored].map((b) => b.toString(16)),
      expected.map((b) => b.toString(16)),
      dtype,
    );
  }
});

test('random float32 values narrow to the nearest F16/BF16 with ties to even', () => {
  let seed = 12345;
  const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const n = 20000;
  const bits = new Uint32Array(n).map(() => {
    const r = next();
    // Keep most values in the F16 range, where rounding is interesting.
    return ((r & 0x8000_0000) | ((((r >>> 23) & 0x3f) + 96) << 23) | (next() & 0x7fffff)) >>> 0;
  });
  const data = new Float32Array(bits.buffer);
  for (const dtype of ['F16', 'BF16'] as const) {
    const narrow = decodeSafetensors(encodeSafetensors({ x: { dtype, shape: [n], data } })).tensors.get('x')!
      .data as Float32Array;
    const up = decodeSafetensors(
      halfFile(
        dtype,
        Array.from({ length: 65536 }, (_, i) => i),
      ),
    ).tensors.get('x')!.data as Float32Array;
    const raw = new Uint16Array(encodeSafetensors({ x: { dtype, shape: [n], data } }).slice(-2 * n).buffer);
    for (let i = 0; i < n; i++) {
      const v = data[i];
      const got = narrow[i];
      const h = raw[i];
      if (!Number.isFinite(got)) continue; // overflow boundaries are covered above
      for (const neighbour of [up[(h + 1) & 0xffff], up[(h - 1) & 0xffff]]) {
        if (!Number.isFinite(neighbour) || Math.sign(neighbour) !== Math.sign(v)) continue;
        const dGot = Math.abs(v - got);
        const dN = Math.abs(v - neighbour);
        assert.ok(
          dGot < dN || (dGot === dN && (h & 1) === 0),
          `${dtype}: ${v} stored as ${got}, but ${neighbour} is nearer`,
        );
      }
    }
  }
});

test('every integer and float dtype round-trips, I64 beyond 2^31 and 2^53 included', () => {
  const tensors: Record<string, StTensor> = {
    f64: { dtype: 'F64', shape: [3], data: new Float64Array([Math.PI, -0, 1e300]) },
    i64: {
      dtype: 'I64',
      shape: [2, 2],
      data: new BigInt64Array([2n ** 40n + 1n, -(2n ** 62n), 2n ** 63n - 1n, -(2n ** 63n)]),
    },
    i32: { dtype: 'I32', shape: [2], data: new Int32Array([2 ** 31 - 1, -(2 ** 31)]) },
    i16: { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) },
    i8: { dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) },
    u8: { dtype: 'U8', shape: [1, 2], data: new Uint8Array([0, 255]) },
    flags: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([7]) },
  };
  const back = decodeSafetensors(
    encodeSafetensors(
      tensors,
      Object.fromEntries([
        ['note', 'dtypes'],
        ['__proto__', 'plain key'],
      ]),
    ),
  );
  assert.deepEqual(
    back.metadata,
    Object.fromEntries([
      ['note', 'dtypes'],
      ['__proto__', 'plain key'],
    ]),
  );
  for (const [name, t] of Object.entries(tensors))
    assertSameTensors(new Map([[name, back.tensors.get(name)!]]), new Map([[name, t]]), name);
  assert.deepEqual(
    [...(back.tensors.get('i64')!.data as BigInt64Array)],
    [2n ** 40n + 1n, -(2n ** 62n), 2n ** 63n - 1n, -(2n ** 63n)],
  );
  // Widest elements come first in the file so that every tensor is aligned to its element size.
  assert.deepEqual([...back.tensors.keys()].slice(0, 2), ['f64', 'i64']);
});

function expectError(run: () => unknown, file: string, tensor: string | undefined, pattern: RegExp): void {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.equal(e.tensor, tensor);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    if (tensor !== undefined) assert.ok(e.message.includes(JSON.stringify(tensor)), e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

const entry = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  dtype: 'F32',
  shape: [2],
  data_offsets: [0, 8],
  ...extra,
});
const eightBytes = new Uint8Array(8);

test('malformed files fail with a SafetensorsError naming the file and the tensor', () => {
  const L = 'bad.safetensors';
  const read = (bytes: Uint8Array) => () => decodeSafetensors(bytes, L);
  expectError(read(new Uint8Array(5)), L, undefined, /5 bytes long, shorter than the 8-byte header length/);
  expectError(read(rawFile({}, eightBytes, 1000n)), L, undefined, /header length 1000 runs past the end of the file/);
  expectError(read(rawFile({}, eightBytes, 2n ** 64n - 1n)), L, undefined, /runs past the end/);
  expectError(read(rawFile('{"a": ')), L, undefined, /header does not end with "}" followed only by space padding/);
  expectError(read(rawFile('{"a": }')), L, undefined, /header is not valid JSON/);
  expectError(
    read(rawFile(Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1'))),
    L,
    undefined,
    /not valid (UTF-8|JSON)/,
  );
  expectError(read(rawFile('[1, 2]')), L, undefined, /header does not start with "\{"/);
  expectError(read(rawFile('null')), L, undefined, /header does not start with "\{"/);
  expectError(
    read(rawFile({ w: 3 }, eightBytes)),
    'bad.safetensors',
    'w',
    /entry must be an object with dtype, shape and data_offsets, got 3/,
  );
  for (const key of ['dtype', 'shape', 'data_offsets']) {
    const e = entry();
    delete e[key];
    expectError(read(rawFile({ w: e }, eightBytes)), L, 'w', new RegExp(`missing "${key}"`));
  }
  expectError(read(rawFile({ w: entry({ dtype: 4 }) }, eightBytes)), L, 'w', /dtype must be a string, got 4/);
  expectError(
    read(rawFile({ w: entry({ dtype: 'F8_E4M3' }) }, eightBytes)),
    L,
    'w',
    /dtype "F8_E4M3" is not supported; expected one of F64, F32/,
  );
  expectError(read(rawFile({ w: entry({ dtype: 'toString' }) }, eightBytes)), L, 'w', /not supported/);
  expectError(
    read(rawFile({ w: entry({ shape: [-2] }) }, eightBytes)),
    L,
    'w',
    /shape must be an array of non-negative integers, got \[-2\]/,
  );
  expectError(
    read(rawFile({ w: entry({ shape: [1.5] }) }, eightBytes)),
    L,
    'w',
    /shape must be an array of non-negative integers/,
  );
  expectError(read(rawFile({ w: entry({ shape: '2' }) }, eightBytes)), L, 'w', /shape must be an array/);
  expectError(read(rawFile({ w: entry({ shape: [2 ** 40, 2 ** 40] }) }, eightBytes)), L, 'w', /too large to address/);
  expectError(
    read(rawFile({ w: entry({ data_offsets: [0] }) }, eightBytes)),
    L,
    'w',
    /data_offsets must be \[begin, end\]/,
  );
  expectError(read(rawFile({ w: entry({ data_offsets: [0, '8'] }) }, eightBytes)), L, 'w', /data_offsets must be/);
  expectError(read(rawFile({ w: entry({ data_offsets: [8, 0] }) }, eightBytes)), L, 'w', /\[8, 0\] are reversed/);
  expectError(
    read(rawFile({ w: entry({ shape: [3] }) }, eightBytes)),
    L,
    'w',
    /span 8 bytes, but F32 with shape \[3\] needs 12/,
  );
  expectError(
    read(rawFile({ w: entry({ data_offsets: [8, 16] }) }, eightBytes)),
    L,
    'w',
    /\[8, 16\] run past the end of the data buffer \(8 bytes\)/,
  );
  const two = rawFile({ a: entry(), b: entry({ shape: [1], data_offsets: [4, 8] }) }, eightBytes);
  expectError(read(two), L, 'b', /\[4, 8\] do not follow on: tensor "a" ends at 8, overlapping "a" \[0, 8\]/);
  expectError(
    read(rawFile({ __metadata__: { epoch: 3 }, w: entry() }, eightBytes)),
    L,
    undefined,
    /__metadata__ value for "epoch" must be a string, got 3/,
  );
  expectError(
    read(rawFile({ __metadata__: ['x'], w: entry() }, eightBytes)),
    L,
    undefined,
    /__metadata__ must be an object of strings/,
  );
});

test('the header length, the offsets and the file length must agree exactly', () => {
  const L = 'strict.safetensors';
  const read = (bytes: Uint8Array) => () => decodeSafetensors(bytes, L);
  const good = encodeSafetensors({
    a: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
    b: { dtype: 'F32', shape: [1], data: new Float32Array([3]) },
  });
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));
  const withLength = (len: number): Uint8Array => {
    const out = good.slice();
    new DataView(out.buffer).setBigUint64(0, BigInt(len), true);
    return out;
  };
  assert.equal(good[8 + n - 1], 0x20, 'the header is padded, so one byte less is still a JSON object');
  // One byte short: the JSON still parses, but the data would start one byte early.
  expectError(
    read(withLength(n - 1)),
    L,
    undefined,
    /13 bytes, but the last tensor, "b", ends at 12, leaving 1 byte at its end that no tensor owns/,
  );
  expectError(read(withLength(n - 1)), L, undefined, /holds 13 bytes/);
  expectError(read(withLength(n + 1)), L, undefined, /header does not end with "\}" followed only by space padding/);
  for (const d of [-8, -3, 2, 8]) assert.throws(read(withLength(n + d)), SafetensorsError, `length ${d}`);
  expectError(read(Buffer.concat([good, Buffer.from([0])])), L, undefined, /leaving 1 byte at its end/);
  expectError(
    read(rawFile({}, eightBytes)),
    L,
    undefined,
    /holds 8 bytes, but no tensor is stored, leaving 8 bytes at its end/,
  );
  // A gap between tensors, and a tensor that does not start the buffer.
  const gap = rawFile(
    { a: entry({ shape: [1], data_offsets: [0, 4] }), b: entry({ shape: [1], data_offsets: [8, 12] }) },
    new Uint8Array(12),
  );
  expectError(
    read(gap),
    L,
    'b',
    /\[8, 12\] do not follow on: tensor "a" ends at 4, leaving 4 bytes that no tensor owns/,
  );
  const late = rawFile({ a: entry({ shape: [1], data_offsets: [4, 8] }) }, eightBytes);
  expectError(read(late), L, 'a', /the data buffer starts at offset 0, leaving 4 bytes/);
  // An empty tensor sits where the one before ends; anywhere else it is a corrupt offset.
  const empty = (at: number) =>
    rawFile({ a: entry(), e: { dtype: 'F32', shape: [0], data_offsets: [at, at] } }, eightBytes);
  assert.deepEqual([...decodeSafetensors(empty(8)).tensors.keys()], ['a', 'e']);
  assert.deepEqual([...decodeSafetensors(empty(0)).tensors.keys()], ['e', 'a']);
  expectError(read(empty(4)), L, 'e', /\[4, 4\] do not follow on/);
  // The header: a JSON object from its first byte, then only spaces.
  expectError(read(rawFile(' {}')), L, undefined, /does not start with "\{" \(byte 0x20 at byte 8\)/);
  expectError(read(rawFile('{}\n')), L, undefined, /ends with byte 0x0a/);
  expectError(read(rawFile('{}\0\0')), L, undefined, /ends with byte 0x00/);
  expectError(read(rawFile('{')), L, undefined, /too short for a JSON object/);
  expectError(read(rawFile('')), L, undefined, /header length 0 is too short/);
  assert.equal(decodeSafetensors(rawFile('{}      ')).tensors.size, 0);
  assert.equal(
    decodeSafetensors(rawFile('{ "a" : {"dtype":"F32", "shape":[2], "data_offsets":[0,8]} } ', eightBytes)).tensors
      .size,
    1,
  );
  // Repeated keys, which JSON.parse would silently merge, and unknown entry fields.
  const one = '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}';
  expectError(read(rawFile(`{${one},${one}}`, eightBytes)), L, undefined, /names the key "a" twice/);
  expectError(
    read(rawFile('{"a":{"dtype":"F32","shape":[2],"dtype":"F32","data_offsets":[0,8]}}', eightBytes)),
    L,
    undefined,
    /names the key "dtype" twice/,
  );
  expectError(
    read(rawFile(`{"__metadata__":{"k":"1","k":"2"},${one}}`, eightBytes)),
    L,
    undefined,
    /names the key "k" twice/,
  );
  assert.equal(
    decodeSafetensors(rawFile(`{"__metadata__":{"k":"[\\"a\\",{"},${one}}`, eightBytes)).metadata?.k,
    '["a",{',
  );
  expectError(read(rawFile({ a: entry({ crc: 1 }) }, eightBytes)), L, 'a', /unknown field "crc"/);
});

test('a file that is not a regular file is refused without waiting on it', () => {
  if (process.platform === 'win32') return;
  withTempDir((dir) => {
    const fifo = join(dir, 'pipe.safetensors');
    const made = spawnSync('mkfifo', [fifo]);
    if (made.status !== 0) return;
    expectError(() => SafetensorsReader.open(fifo), fifo, undefined, /is a pipe, not a regular file/);
    expectError(() => readSafetensors(dir), dir, undefined, /is a folder, not a regular file/);
  });
  if (fs.existsSync('/dev/zero'))
    expectError(() => readSafetensors('/dev/zero'), '/dev/zero', undefined, /is a device, not a regular file/);
});

test('a truncated file names the tensor whose data is missing', () => {
  const bytes = readFileSync(fixture('hf-reference', 'adaptive-rank', 'batch.safetensors'));
  expectError(
    () => decodeSafetensors(bytes.subarray(0, bytes.length - 1), 'batch'),
    'batch',
    'input_ids',
    /run past the end of the data buffer.*truncated/,
  );
  expectError(
    () => decodeSafetensors(bytes.subarray(0, 20), 'batch'),
    'batch',
    undefined,
    /runs past the end of the file/,
  );
});

test('an absurdly large header length is refused before allocating it', () => {
  withTempDir((dir) => {
    // A sparse file: large enough for the declared header, yet it costs no disk or memory.
    const path = join(dir, 'huge.safetensors');
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, 100_000_001n, true);
    writeFileSync(path, prefix);
    truncateSync(path, 100_000_100);
    expectError(
      () => SafetensorsReader.open(path),
      path,
      undefined,
      /header length 100000001 exceeds the 100000000-byte limit/,
    );
  });
});

test('reader errors: absent tensors, missing files, folders', () => {
  const reader = SafetensorsReader.fromBytes(
    rawFile({ a: entry(), b: entry({ data_offsets: [8, 16] }) }, new Uint8Array(16)),
    'two',
  );
  expectError(() => reader.info('c'), 'two', 'c', /no such tensor; the file holds 2 tensors \("a", "b"\)/);
  expectError(() => reader.read('c'), 'two', 'c', /no such tensor/);
  withTempDir((dir) => {
    const missing = join(dir, 'missing.safetensors');
    expectError(() => SafetensorsReader.open(missing), missing, undefined, /could not open the file: ENOENT/);
    expectError(() => readSafetensors(dir), dir, undefined, /not a regular file/);
    const shortFile = join(dir, 'short.safetensors');
    writeFileSync(shortFile, 'abc');
    expectError(() => readSafetensors(shortFile), shortFile, undefined, /3 bytes long/);
  });
});

test('invalid tensors are refused on write, naming the file and the tensor', () => {
  const f32 = (data: unknown, shape: unknown = [2], dtype: unknown = 'F32') => ({
    w: { dtype, shape, data } as unknown as StTensor,
  });
  withTempDir((dir) => {
    const out = join(dir, 'out.safetensors');
    expectError(
      () => writeSafetensors(out, f32(new Float32Array(3))),
      out,
      'w',
      /cannot write: data holds 3 elements, but shape \[2\] needs 2/,
    );
    expectError(
      () => writeSafetensors(out, f32(new Float64Array(2))),
      out,
      'w',
      /F32 data must be a Float32Array, got Float64Array/,
    );
    expectError(() => writeSafetensors(out, f32([1, 2])), out, 'w', /F32 data must be a Float32Array, got \[1,2\]/);
    expectError(
      () => writeSafetensors(out, f32(new Int32Array(2), [2], 'I64')),
      out,
      'w',
      /I64 data must be a BigInt64Array/,
    );
    expectError(
      () => writeSafetensors(out, f32(new Float32Array(2), [2], 'F8')),
      out,
      'w',
      /dtype "F8" is not supported/,
    );
    expectError(
      () => writeSafetensors(out, f32(new Float32Array(2), [-2])),
      out,
      'w',
      /shape must be an array of non-negative integers/,
    );
    expectError(
      () => writeSafetensors(out, { __metadata__: f32(new Float32Array(2)).w }),
      out,
      '__metadata__',
      /reserved/,
    );
    const meta = { step: 3 } as unknown as Record<string, string>;
    expectError(
      () => writeSafetensors(out, f32(new Float32Array(2)), meta),
      out,
      undefined,
      /__metadata__ value for "step" must be a string/,
    );
    expectError(() => encodeSafetensors(f32(new Float32Array(1))), '(in-memory safetensors)', 'w', /needs 2/);
    assert.deepEqual(readdirSync(dir), []);
  });
});

test('a failed write leaves the previous file in place and no temporary file behind', () => {
  withTempDir((dir) => {
    const out = join(dir, 'model.safetensors');
    const good = { a: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } as StTensor };
    writeSafetensors(out, good);
    const before = readFileSync(out);
    const bad = { ...good, b: { dtype: 'F32', shape: [4], data: new Float32Array(3) } as StTensor };
    assert.throws(() => writeSafetensors(out, bad), SafetensorsError);
    assert.ok(readFileSync(out).equals(before));
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  });
});

test('a write that fails midway leaves nothing under the final name', () => {
  withTempDir((dir) => {
    // A folder in the way makes the final rename fail after every byte has been written and synced.
    const out = join(dir, 'blocked.safetensors');
    mkdirSync(join(out, 'child'), { recursive: true });
    const tensors = { a: { dtype: 'BF16', shape: [3], data: new Float32Array([1, 2, 3]) } as StTensor };
    expectError(
      () => writeSafetensors(out, tensors),
      out,
      undefined,
      /could not write .*; the file was left as it was/,
    );
    assert.deepEqual(readdirSync(dir), ['blocked.safetensors']);
    assert.deepEqual(readdirSync(out), ['child']);
  });
});

test('a write whose disk fills up during the tensor data leaves no file and no temporary file', () => {
  withTempDir((dir) => {
    const out = join(dir, 'full.safetensors');
    let calls = 0;
    const original = fs.writeSync;
    const fake = mock.method(fs, 'writeSync', (...args: Parameters<typeof fs.writeSync>) => {
      if (++calls === 2) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      return (original as (...a: unknown[]) => number)(...args);
    });
    try {
      const tensors = { a: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } as StTensor };
      expectError(() => writeSafetensors(out, tensors), out, undefined, /could not write \(ENOSPC/);
    } finally {
      fake.mock.restore();
    }
    assert.ok(calls >= 2, 'the failing write was reached');
    assert.deepEqual(readdirSync(dir), []);
  });
});
