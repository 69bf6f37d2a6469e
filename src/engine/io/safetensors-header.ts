// The safetensors header: dtypes, the error type, and parsing and validating the JSON header.
// Every size a header declares is checked against the file size before anything is allocated from it, and
// the three must agree exactly: the header is a JSON object of the declared length (space-padded at most), and
// the tensors, sorted by offset, tile the data buffer from 0 to the end of the file with no gap and no overlap.
import { ModelFileError, type InputErrorOptions } from '../../protocol/errors';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint8Array;

/** A tensor as stored in a file. F16 and BF16 data is held as a Float32Array; `dtype` stays the file's. */
export interface StTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** Where a tensor lives: byteOffsets are relative to the start of the data buffer, as in the header. */
export interface StEntryInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  byteOffsets: [number, number];
}

export type StTensorSet = Map<string, StTensor> | Record<string, StTensor>;

/** A safetensors file that cannot be read (or written): `<file>: [tensor "<name>": ]<detail>`. */
export class SafetensorsError extends ModelFileError {
  override readonly name: string = 'SafetensorsError';

  constructor(
    file: string,
    detail: string,
    readonly tensor?: string,
    options?: InputErrorOptions,
  ) {
    super(file, detail, tensor === undefined ? {} : { tensor }, options);
  }
}

export interface DtypeSpec {
  bytes: number;
  array: { new (length: number): TensorData; readonly name: string };
}

// A Map rather than an object literal, so that header dtypes such as "toString" are not found.
export const DTYPES = new Map<string, DtypeSpec>([
  ['F64', { bytes: 8, array: Float64Array }],
  ['F32', { bytes: 4, array: Float32Array }],
  ['F16', { bytes: 2, array: Float32Array }],
  ['BF16', { bytes: 2, array: Float32Array }],
  ['I64', { bytes: 8, array: BigInt64Array }],
  ['I32', { bytes: 4, array: Int32Array }],
  ['I16', { bytes: 2, array: Int16Array }],
  ['I8', { bytes: 1, array: Int8Array }],
  ['U8', { bytes: 1, array: Uint8Array }],
  ['BOOL', { bytes: 1, array: Uint8Array }],
]);
const DTYPE_LIST = [...DTYPES.keys()].join(', ');

/** Same limit as the reference implementation: anything larger is corruption, not a header. */
const MAX_HEADER_BYTES = 100_000_000;

/** What readHeader needs from a file or a byte array. */
export interface HeaderSource {
  readonly label: string;
  readonly size: number;
  readInto(dst: Uint8Array, position: number): void;
}

export interface Header {
  entries: Map<string, StEntryInfo>;
  metadata: Record<string, string> | undefined;
  dataStart: number;
}

export type Fail = (detail: string, tensor?: string) => SafetensorsError;

export function readHeader(src: HeaderSource): Header {
  const fail: Fail = (detail, tensor) => new SafetensorsError(src.label, detail, tensor);
  if (src.size < 8)
    throw fail(
      `is ${src.size} bytes long, shorter than the 8-byte header length; it is not a safetensors file or was truncated`,
    );
  const prefix = new Uint8Array(8);
  src.readInto(prefix, 0);
  const declared = new DataView(prefix.buffer).getBigUint64(0, true);
  if (declared > BigInt(src.size - 8)) {
    throw fail(
      `header length ${declared} runs past the end of the file (${src.size - 8} bytes follow the length); the file is truncated or not a safetensors file`,
    );
  }
  if (declared > BigInt(MAX_HEADER_BYTES))
    throw fail(`header length ${declared} exceeds the ${MAX_HEADER_BYTES}-byte limit; the file is corrupt`);
  if (declared < 2n)
    throw fail(
      `header length ${declared} is too short for a JSON object; the file is corrupt or not a safetensors file`,
    );
  const headerBytes = new Uint8Array(Number(declared));
  src.readInto(headerBytes, 8);
  const dataStart = 8 + headerBytes.length;
  const json = parseHeaderJson(headerBytes, fail);
  return { ...parseEntries(json, src.size - dataStart, fail), dataStart };
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const SPACE = 0x20;

/**
 * The header is a JSON object that starts at its first byte and may be followed by spaces (0x20) up to the
 * declared length, nothing else: a header length that is off by a byte either cuts the object or takes in
 * bytes that are not padding.
 */
function parseHeaderJson(bytes: Uint8Array, fail: Fail): Record<string, unknown> {
  const lengthHint = 'the header length or the header is corrupt';
  if (bytes[0] !== OPEN_BRACE)
    throw fail(`header does not start with "{" (byte 0x${hex(bytes[0])} at byte 8); ${lengthHint}`);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === SPACE) end--;
  if (bytes[end - 1] !== CLOSE_BRACE) {
    throw fail(
      `header does not end with "}" followed only by space padding (it ends with byte 0x${hex(bytes[end - 1])} at file offset ${8 + end - 1}; the header is ${bytes.length} bytes); ${lengthHint}`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(0, end));
  } catch {
    throw fail('header is not valid UTF-8; the file is corrupt');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fail(`header is not valid JSON (${e instanceof Error ? e.message : String(e)}); the file is corrupt`);
  }
  if (!isObject(json))
    throw fail(`header must be a JSON object mapping tensor names to entries, got ${describe(json)}`);
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== undefined)
    throw fail(`header names the key ${JSON.stringify(duplicate)} twice in one object; the file is corrupt`);
  return json;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const hex = (byte: number | undefined): string => (byte ?? 0).toString(16).padStart(2, '0');

/**
 * The first key that occurs twice in one object of `text`, which JSON.parse has accepted (it keeps the last
 * value of a repeated key silently). A scan of strings and brackets: keys are the strings that follow "{" or a
 * "," inside an object.
 */
function firstDuplicateKey(text: string): string | undefined {
  // One entry per open bracket: the keys seen so far for an object, null for an array.
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      if (expectKey) {
        const keys = stack[stack.length - 1]!;
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === OPEN_BRACE) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(null);
    } else if (c === CLOSE_BRACE || c === 0x5d) {
      stack.pop();
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1] !== null;
    }
  }
  return undefined;
}

function parseEntries(json: Record<string, unknown>, dataLength: number, fail: Fail): Omit<Header, 'dataStart'> {
  let metadata: Record<string, string> | undefined;
  const list: StEntryInfo[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') metadata = parseMetadata(value, fail);
    else list.push(parseEntry(name, value, dataLength, fail));
  }
  // File order is the order of the data; JSON key order is unreliable (JS objects put keys like "0" first).
  list.sort((a, b) => a.byteOffsets[0] - b.byteOffsets[0] || a.byteOffsets[1] - b.byteOffsets[1]);
  checkTiling(list, dataLength, fail);
  return { entries: new Map(list.map((e) => [e.name, e])), metadata };
}

const ENTRY_KEYS = new Set(['dtype', 'shape', 'data_offsets']);

function parseEntry(name: string, value: unknown, dataLength: number, fail: Fail): StEntryInfo {
  if (!isObject(value))
    throw fail(`header entry must be an object with dtype, shape and data_offsets, got ${describe(value)}`, name);
  for (const key of ENTRY_KEYS) {
    if (!Object.hasOwn(value, key)) throw fail(`header entry is missing "${key}"`, name);
  }
  const extra = Object.keys(value).find((k) => !ENTRY_KEYS.has(k));
  if (extra !== undefined)
    throw fail(
      `header entry has the unknown field ${JSON.stringify(extra)}; expected dtype, shape and data_offsets`,
      name,
    );
  const dtype = parseDtype(value.dtype, (d) => fail(d, name));
  const shape = parseShape(value.shape, (d) => fail(d, name));
  const offsets = value.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw fail(`data_offsets must be [begin, end] with non-negative integers, got ${describe(offsets)}`, name);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw fail(`data_offsets [${begin}, ${end}] are reversed (begin after end)`, name);
  const needed = byteSize(dtype, shape, (d) => fail(d, name));
  if (end - begin !== needed) {
    throw fail(
      `data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} with shape [${shape.join(', ')}] needs ${needed}`,
      name,
    );
  }
  if (end > dataLength) {
    throw fail(
      `data_offsets [${begin}, ${end}] run past the end of the data buffer (${dataLength} bytes); the file is truncated or corrupt`,
      name,
    );
  }
  return { name, dtype, shape, byteOffsets: [begin, end] };
}

export function parseDtype(value: unknown, fail: (detail: string) => SafetensorsError): SafetensorsDtype {
  if (typeof value !== 'string') throw fail(`dtype must be a string, got ${describe(value)}`);
  if (!DTYPES.has(value)) throw fail(`dtype ${JSON.stringify(value)} is not supported; expected one of ${DTYPE_LIST}`);
  return value as SafetensorsDtype;
}

export function parseShape(value: unknown, fail: (detail: string) => SafetensorsError): number[] {
  if (!Array.isArray(value) || !value.every(isCount))
    throw fail(`shape must be an array of non-negative integers, got ${describe(value)}`);
  return [...(value as number[])];
}

/** Byte size of a tensor, refusing shapes whose size cannot be represented exactly. */
export function byteSize(dtype: SafetensorsDtype, shape: number[], fail: (detail: string) => SafetensorsError): number {
  if (shape.includes(0)) return 0;
  let size = DTYPES.get(dtype)!.bytes;
  for (const dim of shape) {
    size *= dim;
    if (size > Number.MAX_SAFE_INTEGER)
      throw fail(`shape [${shape.join(', ')}] is too large to address; the header is corrupt`);
  }
  return size;
}

/**
 * The tensors, sorted by their offsets, must tile the data buffer exactly: each begins where the one before
 * ends (an empty tensor occupies no bytes, at that point), and the last ends at the end of the file.
 */
function checkTiling(sorted: StEntryInfo[], dataLength: number, fail: Fail): void {
  let at = 0;
  let previous: StEntryInfo | undefined;
  for (const entry of sorted) {
    const [begin, end] = entry.byteOffsets;
    if (begin !== at) {
      const after = previous
        ? `tensor ${JSON.stringify(previous.name)} ends at ${at}`
        : 'the data buffer starts at offset 0';
      const what =
        begin > at
          ? `leaving ${plural(begin - at, 'byte')} that no tensor owns`
          : `overlapping ${JSON.stringify(previous?.name)} [${previous?.byteOffsets.join(', ')}]`;
      throw fail(
        `data_offsets [${begin}, ${end}] do not follow on: ${after}, ${what}; the header is corrupt`,
        entry.name,
      );
    }
    at = end;
    previous = entry;
  }
  if (at !== dataLength) {
    const last = previous ? `the last tensor, ${JSON.stringify(previous.name)}, ends at ${at}` : 'no tensor is stored';
    throw fail(
      `the data buffer holds ${plural(dataLength, 'byte')}, but ${last}, leaving ${plural(dataLength - at, 'byte')} at its end that no tensor owns; the header length or the offsets are wrong, or bytes were appended to the file`,
    );
  }
}

function parseMetadata(value: unknown, fail: Fail): Record<string, string> | undefined {
  if (value === null) return undefined;
  if (!isObject(value)) throw fail(`__metadata__ must be an object of strings, got ${describe(value)}`);
  return validMetadata(Object.entries(value), fail);
}

export function validMetadata(entries: [string, unknown][], fail: Fail): Record<string, string> {
  for (const [key, v] of entries) {
    if (typeof v !== 'string')
      throw fail(`__metadata__ value for ${JSON.stringify(key)} must be a string, got ${describe(v)}`);
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays an ordinary key.
  return Object.fromEntries(entries) as Record<string, string>;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function describe(value: unknown): string {
  const text = value === undefined ? 'undefined' : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
