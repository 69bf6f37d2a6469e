// Reads objects out of an R package's lazy-load database (data/Rdata.rdx + data/Rdata.rdb) without R.
// The index (.rdx) is a zlib-compressed serialized list; each entry of the .rdb is a 4-byte big-endian
// length, a compression type byte and the compressed serialization. Debian's R packages use type 'Z', a raw
// LZMA2 stream, which Node cannot decode: the `xz` program does (xz-utils, present on Debian).
// Only the parts of R's serialization format that data frames use are supported; anything else is an error
// that names the type, so a new source fails loudly instead of decoding garbage.
import { readFileSync } from 'node:fs';
import { inflateSync, gunzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';

const NILVALUE = 254,
  REFSXP = 255,
  GLOBALENV = 253,
  EMPTYENV = 242,
  BASEENV = 241,
  BASENAMESPACE = 250;
const MISSINGARG = 251,
  UNBOUNDVALUE = 252,
  PACKAGESXP = 248,
  NAMESPACESXP = 249,
  PERSISTSXP = 247;
const ALTREP = 238,
  ATTRLISTSXP = 239,
  ATTRLANGSXP = 240;

/** An R value as plain JS: vectors are arrays (with `.attributes`), NA strings are null. */
class Reader {
  constructor(buf, where) {
    this.buf = buf;
    this.pos = 0;
    this.refs = [];
    this.where = where;
  }
  int() {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  double() {
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }
  header() {
    const magic = this.buf.toString('latin1', 0, 2);
    if (magic !== 'X\n')
      throw new Error(`${this.where}: not an XDR R serialization (starts with ${JSON.stringify(magic)})`);
    this.pos = 2;
    const version = this.int();
    this.int();
    this.int();
    if (version === 3) {
      const n = this.int();
      this.pos += n;
    } else if (version !== 2) throw new Error(`${this.where}: unsupported R serialization version ${version}`);
  }
  length() {
    const n = this.int();
    if (n !== -1) return n;
    const hi = this.int();
    const lo = this.int();
    return hi * 2 ** 32 + lo;
  }
  attributes(flags, value) {
    if (flags & (1 << 9)) {
      const attrs = this.item();
      if (value && typeof value === 'object') value.attributes = pairlistToObject(attrs);
    }
    return value;
  }
  item() {
    const flags = this.int();
    const type = flags & 0xff;
    const levels = flags >> 12;
    const hasAttr = (flags & (1 << 9)) !== 0;
    const hasTag = (flags & (1 << 10)) !== 0;
    switch (type) {
      case NILVALUE:
      case 0:
        return null;
      case GLOBALENV:
      case EMPTYENV:
      case BASEENV:
      case BASENAMESPACE:
      case MISSINGARG:
      case UNBOUNDVALUE:
        return { env: type };
      case REFSXP: {
        let i = flags >> 8;
        if (i === 0) i = this.int();
        return this.refs[i - 1];
      }
      case PACKAGESXP:
      case NAMESPACESXP:
      case PERSISTSXP: {
        this.int();
        const n = this.int();
        const names = [];
        for (let i = 0; i < n; i++) names.push(this.item());
        const v = { env: type, names };
        this.refs.push(v);
        return v;
      }
      case 1: {
        // SYMSXP: a CHARSXP follows; symbols are referenced later by index.
        const v = { symbol: this.item() };
        this.refs.push(v);
        return v;
      }
      case 2:
      case 6:
      case ATTRLISTSXP:
      case ATTRLANGSXP: {
        // Pairlist node: [attributes] [tag] car cdr; flattened into [{tag, value}, ...].
        const nodes = [];
        let f = flags;
        for (;;) {
          const attr = (f & (1 << 9)) !== 0 ? this.item() : null;
          const tag = (f & (1 << 10)) !== 0 ? this.item() : null;
          nodes.push({ tag: tag?.symbol ?? null, value: this.item(), attr });
          f = this.int();
          const t = f & 0xff;
          if (t === NILVALUE) break;
          if (![2, 6, ATTRLISTSXP, ATTRLANGSXP].includes(t)) {
            this.pos -= 4;
            nodes.push({ tag: null, value: this.item() });
            break;
          }
        }
        return { pairlist: nodes };
      }
      case 4: {
        const env = { env: 4 };
        this.refs.push(env);
        this.int();
        env.enclos = this.item();
        env.frame = this.item();
        env.hashtab = this.item();
        env.attrib = this.item();
        return env;
      }
      case 9: {
        const n = this.int();
        if (n === -1) return null;
        const bytes = this.buf.subarray(this.pos, this.pos + n);
        this.pos += n;
        // LATIN1_MASK is 1<<2 in the levels; UTF-8 and ASCII decode as UTF-8.
        return bytes.toString(levels & (1 << 2) ? 'latin1' : 'utf8');
      }
      case 10:
      case 13: {
        const n = this.length();
        const v = new Array(n);
        for (let i = 0; i < n; i++) {
          const x = this.int();
          v[i] = x === -2147483648 ? null : x;
        }
        return this.attributes(flags, v);
      }
      case 14: {
        const n = this.length();
        const v = new Array(n);
        for (let i = 0; i < n; i++) v[i] = this.double();
        return this.attributes(flags, v);
      }
      case 16:
      case 19:
      case 20: {
        const n = this.length();
        const v = new Array(n);
        for (let i = 0; i < n; i++) v[i] = this.item();
        return this.attributes(flags, v);
      }
      case 24: {
        const n = this.length();
        const v = this.buf.subarray(this.pos, this.pos + n);
        this.pos += n;
        return this.attributes(flags, v);
      }
      case ALTREP: {
        const info = this.item();
        const state = this.item();
        const attr = this.item();
        const cls = info?.pairlist?.[0]?.value?.symbol;
        let v;
        if (cls === 'compact_intseq' || cls === 'compact_realseq') {
          const [n, start, step] = state;
          v = Array.from({ length: n }, (_, i) => start + i * step);
        } else if (cls && cls.startsWith('wrap_')) v = state[0];
        else if (cls === 'deferred_string') v = state.pairlist[0].value.map((x) => (x === null ? null : String(x)));
        else throw new Error(`${this.where}: unsupported ALTREP class ${cls}`);
        if (attr) v.attributes = pairlistToObject(attr);
        return v;
      }
      default:
        throw new Error(
          `${this.where}: unsupported R object type ${type} at byte ${this.pos - 4} (attr ${hasAttr}, tag ${hasTag})`,
        );
    }
  }
}

function pairlistToObject(pl) {
  const out = {};
  for (const node of pl?.pairlist ?? []) if (node.tag) out[node.tag] = node.value;
  return out;
}

/** Deserializes an XDR serialization buffer. */
export function unserialize(buf, where = 'R object') {
  const r = new Reader(buf, where);
  r.header();
  return r.item();
}

function decompressEntry(buf, where) {
  const outLen = buf.readUInt32BE(0);
  const type = String.fromCharCode(buf[4]);
  const body = buf.subarray(5);
  let out;
  if (type === 'Z') {
    const r = spawnSync('xz', ['-d', '-c', '--format=raw', '--lzma2=preset=9e'], { input: body, maxBuffer: 1 << 30 });
    if (r.error) throw new Error(`${where}: cannot run xz to decode LZMA2 (${r.error.message}); install xz-utils`);
    if (r.status !== 0) throw new Error(`${where}: xz failed: ${r.stderr.toString().trim()}`);
    out = r.stdout;
  } else if (type === '1') out = inflateSync(body);
  else if (type === '0') out = body;
  else {
    // Plain zlib entries have no type byte: the stream starts right after the length.
    out = inflateSync(buf.subarray(4));
  }
  if (out.length !== outLen) throw new Error(`${where}: decoded ${out.length} bytes, expected ${outLen}`);
  return out;
}

/** Reads the named objects from `<dir>/Rdata.rdx|rdb`; returns {name: value}. */
export function readLazyLoadDb(dir, names) {
  const rdxPath = `${dir}/Rdata.rdx`;
  const rdx = readFileSync(rdxPath);
  // The index is saved like readRDS input: gzip, or the 4-byte length + zlib form.
  let raw;
  try {
    raw = gunzipSync(rdx);
  } catch {
    raw = inflateSync(rdx.subarray(4));
  }
  const index = unserialize(raw, rdxPath);
  const names0 = index.attributes.names;
  const variables = index[names0.indexOf('variables')];
  const varNames = variables.attributes.names;
  const rdb = readFileSync(`${dir}/Rdata.rdb`);
  const out = {};
  for (const name of names) {
    const i = varNames.indexOf(name);
    if (i < 0) throw new Error(`${rdxPath}: no object '${name}' (has ${varNames.join(', ')})`);
    const [offset, len] = variables[i];
    const where = `${dir}/Rdata.rdb[${name}]`;
    out[name] = unserialize(decompressEntry(rdb.subarray(offset, offset + len), where), where);
  }
  return out;
}

/** A data.frame as an array of row objects; factors become their level strings. */
export function dataFrameRows(df, where = 'data.frame') {
  const cols = df?.attributes?.names;
  if (!Array.isArray(cols)) throw new Error(`${where}: not a data.frame (no names attribute)`);
  const values = df.map((col, j) => {
    const levels = col?.attributes?.levels;
    if (levels) return col.map((code) => (code === null ? null : levels[code - 1]));
    if (!Array.isArray(col)) throw new Error(`${where}: column ${cols[j]} is not a vector`);
    return col;
  });
  const n = values[0]?.length ?? 0;
  const rows = [];
  for (let i = 0; i < n; i++) {
    const row = {};
    cols.forEach((c, j) => (row[c] = values[j][i]));
    rows.push(row);
  }
  return rows;
}
