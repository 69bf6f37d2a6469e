// Hugging Face safetensors files: an 8-byte little-endian header length N, N bytes of JSON header
// (padded with spaces), then the data buffer, which the header's data_offsets index into.
//
// Model files can be large, so reading never holds a file twice: the header is parsed from a small
// read, and each tensor's bytes go straight from the file into its destination typed array.
// Writing streams tensor by tensor into a temporary file beside the target, syncs it, and renames
// it into place, so a crash never leaves a half-written file under the final name.
// Header parsing and validation live in safetensors-header.ts, 16-bit float conversions in half-float.ts;
// this module re-exports what callers need.

import * as fs from 'node:fs';
import { endianness } from 'node:os';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { bf16BitsToF32Bits, f16BitsToF32Bits, f32BitsToBf16Bits, f32BitsToF16Bits } from './half-float';
import {
  DTYPES,
  SafetensorsError,
  byteSize,
  describe,
  isObject,
  parseDtype,
  parseShape,
  readHeader,
  validMetadata,
  type DtypeSpec,
  type Fail,
  type HeaderSource,
  type StEntryInfo,
  type StTensor,
  type StTensorSet,
  type TensorData,
} from './safetensors-header';

export { SafetensorsError } from './safetensors-header';
export type { SafetensorsDtype, StEntryInfo, StTensor, StTensorSet, TensorData } from './safetensors-header';
export { bf16BitsToF32Bits, f16BitsToF32Bits, f32BitsToBf16Bits, f32BitsToF16Bits } from './half-float';

/** Bounds a single read or write call (the OS caps one call near 2 GiB) and the conversion buffers. */
const IO_CHUNK_BYTES = 1 << 24;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';
const MEMORY_LABEL = '(in-memory safetensors)';

// ---------------------------------------------------------------------------------------------
// Byte sources: a file read through a descriptor, or bytes already in memory.

interface ByteSource extends HeaderSource {
  /** Fills `dst` with the bytes at [position, position + dst.length). */
  readInto(dst: Uint8Array, position: number, tensor?: string): void;
  close(): void;
}

class FileSource implements ByteSource {
  readonly size: number;
  private fd: number | undefined;

  constructor(readonly label: string) {
    // Non-blocking, so that opening a FIFO returns at once (and fstat then refuses it) instead of waiting for a
    // writer; reads of a regular file are unaffected.
    const flags = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);
    const fd = ioCall(label, 'open the file', () => fs.openSync(label, flags));
    try {
      const stat = ioCall(label, 'inspect the file', () => fs.fstatSync(fd));
      if (!stat.isFile())
        throw new SafetensorsError(label, `is ${kindOf(stat)}, not a regular file; expected a .safetensors file`);
      this.size = stat.size;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    this.fd = fd;
  }

  readInto(dst: Uint8Array, position: number, tensor?: string): void {
    const fd = this.fd;
    if (fd === undefined)
      throw new SafetensorsError(this.label, 'the reader is closed; open the file again to read it', tensor);
    for (let done = 0; done < dst.length;) {
      const want = Math.min(dst.length - done, IO_CHUNK_BYTES);
      const at = position + done;
      const got = ioCall(this.label, `read at byte ${at}`, () => fs.readSync(fd, dst, done, want, at), tensor);
      if (got === 0) {
        throw new SafetensorsError(
          this.label,
          `the file ends at byte ${at}, before byte ${position + dst.length} that its header promised; it was truncated or replaced while open`,
          tensor,
        );
      }
      done += got;
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fs.closeSync(fd);
  }
}

class MemorySource implements ByteSource {
  readonly size: number;
  private bytes: Uint8Array | undefined;

  constructor(
    bytes: Uint8Array,
    readonly label: string,
  ) {
    this.bytes = bytes;
    this.size = bytes.length;
  }

  readInto(dst: Uint8Array, position: number, tensor?: string): void {
    if (this.bytes === undefined) throw new SafetensorsError(this.label, 'the reader is closed', tensor);
    dst.set(this.bytes.subarray(position, position + dst.length));
  }

  close(): void {
    this.bytes = undefined;
  }
}

function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a pipe';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'something other than a file';
}

function ioCall<T>(file: string, doing: string, call: () => T, tensor?: string): T {
  try {
    return call();
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(file, `could not ${doing}: ${e instanceof Error ? e.message : String(e)}`, tensor, {
      cause: e,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Reading.

export class SafetensorsReader {
  readonly metadata: Record<string, string> | undefined;
  private readonly entries: Map<string, StEntryInfo>;
  private readonly dataStart: number;

  private constructor(private readonly source: ByteSource) {
    try {
      const header = readHeader(source);
      this.entries = header.entries;
      this.metadata = header.metadata;
      this.dataStart = header.dataStart;
    } catch (e) {
      source.close();
      throw e;
    }
  }

  /** Parses the header and keeps the file open for read(); call close() when done. */
  static open(path: string): SafetensorsReader {
    return new SafetensorsReader(new FileSource(path));
  }

  static fromBytes(bytes: Uint8Array, label = MEMORY_LABEL): SafetensorsReader {
    return new SafetensorsReader(new MemorySource(bytes, label));
  }

  /** Tensor names in the order their data appears in the file. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  info(name: string): StEntryInfo {
    const entry = this.entries.get(name);
    if (!entry) {
      const some = this.names()
        .slice(0, 5)
        .map((n) => JSON.stringify(n))
        .join(', ');
      const more = this.entries.size > 5 ? ', ...' : '';
      throw new SafetensorsError(
        this.source.label,
        `no such tensor; the file holds ${this.entries.size} tensors (${some}${more})`,
        name,
      );
    }
    return { ...entry, shape: [...entry.shape], byteOffsets: [...entry.byteOffsets] };
  }

  read(name: string): StTensor {
    const entry = this.info(name);
    const [begin, end] = entry.byteOffsets;
    const spec = DTYPES.get(entry.dtype)!;
    const count = (end - begin) / spec.bytes;
    const data = allocate(spec, count, this.source.label, name);
    const position = this.dataStart + begin;
    if (entry.dtype === 'F16' || entry.dtype === 'BF16') {
      readHalfInto(data as Float32Array, entry.dtype, (raw) => this.source.readInto(raw, position, name));
    } else {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      this.source.readInto(bytes, position, name);
      if (!LITTLE_ENDIAN_HOST) swapBytes(bytes, spec.bytes);
    }
    return { dtype: entry.dtype, shape: entry.shape, data };
  }

  close(): void {
    this.source.close();
  }
}

function allocate(spec: DtypeSpec, count: number, file: string, tensor: string): TensorData {
  try {
    return new spec.array(count);
  } catch (e) {
    throw new SafetensorsError(file, `cannot allocate ${count} elements for this tensor in this process`, tensor, {
      cause: e,
    });
  }
}

/**
 * The raw 16-bit values are read into the upper half of the float32 array's own buffer and widened
 * front to back: element i is written over bytes [4i, 4i+4), which never reach raw values not yet
 * widened (those start at byte 2n + 2i + 2), so no second buffer is needed.
 */
function readHalfInto(out: Float32Array, dtype: 'F16' | 'BF16', fill: (raw: Uint8Array) => void): void {
  const n = out.length;
  const raw = new Uint16Array(out.buffer, out.byteOffset + 2 * n, n);
  fill(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
  if (!LITTLE_ENDIAN_HOST) swapBytes(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), 2);
  const bits = new Uint32Array(out.buffer, out.byteOffset, n);
  const widen = dtype === 'F16' ? f16BitsToF32Bits : bf16BitsToF32Bits;
  for (let i = 0; i < n; i++) bits[i] = widen(raw[i]);
}

function swapBytes(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
}

export interface SafetensorsContents {
  tensors: Map<string, StTensor>;
  metadata?: Record<string, string>;
}

/** Reads every tensor; fine for files that fit in memory once. */
export function readSafetensors(path: string): SafetensorsContents {
  return readAll(SafetensorsReader.open(path));
}

export function decodeSafetensors(bytes: Uint8Array, label = MEMORY_LABEL): SafetensorsContents {
  return readAll(SafetensorsReader.fromBytes(bytes, label));
}

function readAll(reader: SafetensorsReader): SafetensorsContents {
  try {
    const tensors = new Map(reader.names().map((name) => [name, reader.read(name)] as const));
    return reader.metadata === undefined ? { tensors } : { tensors, metadata: reader.metadata };
  } finally {
    reader.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing.

interface Layout {
  header: Uint8Array; // length prefix, JSON and padding
  tensors: { name: string; tensor: StTensor }[];
  totalBytes: number;
}

function planLayout(file: string, tensors: StTensorSet, metadata: Record<string, string> | undefined): Layout {
  const fail: Fail = (detail, tensor) => new SafetensorsError(file, `cannot write: ${detail}`, tensor);
  const list = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)).map(([name, tensor]) => ({
    name,
    tensor,
  }));
  for (const { name, tensor } of list) checkTensor(name, tensor, fail);
  // Widest elements first, as the reference writer does, so every tensor is aligned to its element
  // size in the file (the data buffer starts 8-aligned); the sort is stable, so order is otherwise kept.
  list.sort((a, b) => DTYPES.get(b.tensor.dtype)!.bytes - DTYPES.get(a.tensor.dtype)!.bytes);
  const parts: string[] = [];
  if (metadata !== undefined) {
    if (!isObject(metadata)) throw fail(`__metadata__ must be an object of strings, got ${describe(metadata)}`);
    parts.push(`"__metadata__":${JSON.stringify(validMetadata(Object.entries(metadata), fail))}`);
  }
  let offset = 0;
  for (const { name, tensor } of list) {
    const end = offset + byteSize(tensor.dtype, tensor.shape, (d) => fail(d, name));
    const entry = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, end] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    offset = end;
  }
  // Built by hand rather than from an object so that names like "0" or "__proto__" keep their order and meaning.
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, tensors: list, totalBytes: header.length + offset };
}

function checkTensor(name: string, tensor: StTensor, fail: Fail): void {
  const failHere = (detail: string): SafetensorsError => fail(detail, name);
  if (name === '__metadata__') throw failHere('"__metadata__" is reserved for file metadata; rename the tensor');
  if (!isObject(tensor)) throw failHere(`expected { dtype, shape, data }, got ${describe(tensor)}`);
  const dtype = parseDtype(tensor.dtype, failHere);
  const shape = parseShape(tensor.shape, failHere);
  const spec = DTYPES.get(dtype)!;
  const { data } = tensor;
  if (!ArrayBuffer.isView(data) || !(data instanceof spec.array)) {
    throw failHere(
      `${dtype} data must be a ${spec.array.name}, got ${ArrayBuffer.isView(data) ? data.constructor.name : describe(data)}`,
    );
  }
  const count = byteSize(dtype, shape, failHere) / spec.bytes;
  if (data.length !== count)
    throw failHere(`data holds ${data.length} elements, but shape [${shape.join(', ')}] needs ${count}`);
}

/** Hands the file's bytes to `sink` in order, converting half types in bounded chunks. */
function emit(layout: Layout, sink: (bytes: Uint8Array) => void): void {
  sink(layout.header);
  for (const { tensor } of layout.tensors) {
    const { dtype, data } = tensor;
    if (dtype === 'F16' || dtype === 'BF16') emitHalf(data as Float32Array, dtype, sink);
    else emitRaw(data, DTYPES.get(dtype)!.bytes, sink);
  }
}

function emitHalf(data: Float32Array, dtype: 'F16' | 'BF16', sink: (bytes: Uint8Array) => void): void {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const narrow = dtype === 'F16' ? f32BitsToF16Bits : f32BitsToBf16Bits;
  const chunk = new Uint16Array(Math.min(bits.length, IO_CHUNK_BYTES / 2));
  const chunkBytes = new Uint8Array(chunk.buffer);
  for (let start = 0; start < bits.length; start += chunk.length) {
    const n = Math.min(chunk.length, bits.length - start);
    for (let i = 0; i < n; i++) chunk[i] = narrow(bits[start + i]);
    const out = chunkBytes.subarray(0, 2 * n);
    if (!LITTLE_ENDIAN_HOST) swapBytes(out, 2);
    sink(out);
  }
}

function emitRaw(data: TensorData, width: number, sink: (bytes: Uint8Array) => void): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  for (let start = 0; start < bytes.length; start += IO_CHUNK_BYTES) {
    const part = bytes.subarray(start, start + IO_CHUNK_BYTES);
    if (LITTLE_ENDIAN_HOST || width === 1) sink(part);
    else {
      const copy = part.slice();
      swapBytes(copy, width);
      sink(copy);
    }
  }
}

/** The whole file in memory, for small files and tests. */
export function encodeSafetensors(tensors: StTensorSet, metadata?: Record<string, string>): Uint8Array {
  const layout = planLayout(MEMORY_LABEL, tensors, metadata);
  let out: Uint8Array;
  try {
    out = new Uint8Array(layout.totalBytes);
  } catch (e) {
    throw new SafetensorsError(
      MEMORY_LABEL,
      `cannot allocate ${layout.totalBytes} bytes; write to a file instead`,
      undefined,
      { cause: e },
    );
  }
  let position = 0;
  emit(layout, (bytes) => {
    out.set(bytes, position);
    position += bytes.length;
  });
  return out;
}

/**
 * Writes atomically: the data goes to a temporary file in the same folder, which is synced and then
 * renamed over `path`. On failure the temporary file is removed and `path` is left as it was.
 */
export function writeSafetensors(path: string, tensors: StTensorSet, metadata?: Record<string, string>): void {
  const layout = planLayout(path, tensors, metadata);
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(temp, 'wx');
    const target = fd;
    emit(layout, (bytes) => writeAll(target, bytes));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, path);
  } catch (e) {
    if (fd !== undefined) closeQuietly(fd);
    fs.rmSync(temp, { force: true });
    const reason = e instanceof Error ? e.message : String(e);
    throw new SafetensorsError(path, `could not write (${reason}); the file was left as it was`, undefined, {
      cause: e,
      hint: 'Check that the folder exists and is writable and that the disk has room.',
    });
  }
  syncFolder(dirname(path));
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // the original error is the one worth reporting
  }
}

/** Makes the rename itself durable; some platforms cannot sync folders, which only weakens durability. */
function syncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(folder, 'r');
    fs.fsyncSync(fd);
  } catch {
    // best effort
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
