/**
 * A strict, minimal codec for RFC 8949 core deterministic CBOR over the value
 * subset fednode signs: maps with text keys, arrays, safe integers, finite
 * floats, text, byte strings, booleans and null. It exists for speed (it is
 * ~10x faster than a general encoder on small messages, which matters on every
 * vote and advert) and strictness (the decoder accepts ONLY the canonical
 * encoding, checking as it reads instead of re-encoding). The tests check it
 * against cborg's RFC 8949 encoder on random values.
 *
 * Canonical rules applied: shortest integer and length forms; definite lengths;
 * map keys sorted by their encoded bytes (for text keys: shorter first, then
 * bytewise) with no duplicates; integral numbers as integers; other numbers as
 * the shortest of float16/32/64 that holds the value exactly; no tags, no
 * undefined, no NaN or infinities.
 */

export class CborFormatError extends RangeError {
  readonly nonCanonical: boolean;
  constructor(message: string, nonCanonical = false) {
    super(message);
    this.name = 'CborFormatError';
    this.nonCanonical = nonCanonical;
  }
}

/** Nesting bound: our schemas are a few levels deep; 64 keeps hostile recursion bounded. */
export const MAX_DEPTH = 64;

/** Copies up to this many bytes in a loop instead of TypedArray.set (see Writer.bytes). */
const SMALL_COPY_BYTES = 64;

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });
/** Buffer's native latin1 decoder, applied to plain Uint8Arrays (identical to
 * ASCII for bytes < 0x80, the only case it is used for). */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;
/** `b` as a latin1 string, one char a byte, with no Buffer view made first (a map key). */
export const latin1Key = (b: Uint8Array): string => latin1Slice.call(b, 0, b.byteLength);

export class Writer {
  buf = new Uint8Array(256);
  len = 0;
  private view = new DataView(this.buf.buffer);
  ensure(n: number): void {
    if (this.len + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  reset(): void {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  head(major: number, n: number): void {
    const m = major << 5;
    if (n < 24) this.byte(m | n);
    else if (n < 0x100) {
      this.ensure(2);
      this.buf[this.len++] = m | 24;
      this.buf[this.len++] = n;
    } else if (n < 0x10000) {
      this.ensure(3);
      this.buf[this.len++] = m | 25;
      this.view.setUint16(this.len, n);
      this.len += 2;
    } else if (n < 0x100000000) {
      this.ensure(5);
      this.buf[this.len++] = m | 26;
      this.view.setUint32(this.len, n);
      this.len += 4;
    } else {
      this.ensure(9);
      this.buf[this.len++] = m | 27;
      this.view.setUint32(this.len, Math.floor(n / 0x100000000));
      this.view.setUint32(this.len + 4, n >>> 0);
      this.len += 8;
    }
  }
  bytes(b: Uint8Array): void {
    const n = b.byteLength;
    this.ensure(n);
    // TypedArray.prototype.set costs ~60 ns a call whatever the size; map keys and
    // 32-byte hashes/keys are copied faster byte by byte (measured: bench/crypto.ts).
    if (n <= SMALL_COPY_BYTES) {
      const buf = this.buf;
      const at = this.len;
      for (let i = 0; i < n; i++) buf[at + i] = b[i] as number;
    } else this.buf.set(b, this.len);
    this.len += n;
  }
  float(x: number): void {
    const h = toHalf(x);
    if (h !== null) {
      this.ensure(3);
      this.buf[this.len++] = 0xf9;
      this.view.setUint16(this.len, h);
      this.len += 2;
      return;
    }
    if (Math.fround(x) === x) {
      this.ensure(5);
      this.buf[this.len++] = 0xfa;
      this.view.setFloat32(this.len, x);
      this.len += 4;
      return;
    }
    this.ensure(9);
    this.buf[this.len++] = 0xfb;
    this.view.setFloat64(this.len, x);
    this.len += 8;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bits of x when x converts exactly, else null. */
function toHalf(x: number): number | null {
  if (Math.fround(x) !== x) return null;
  f32[0] = x;
  const bits = u32[0] ?? 0;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0 && mant === 0) return sign; // ±0
  const e = exp - 127;
  if (e >= -14 && e <= 15) {
    if ((mant & 0x1fff) !== 0) return null; // needs more than 10 mantissa bits
    return sign | ((e + 15) << 10) | (mant >>> 13);
  }
  if (e >= -24 && e < -14) {
    // subnormal half: value = m * 2^-24
    const full = mant | 0x800000;
    const shift = -e - 14 + 13;
    if ((full & ((1 << shift) - 1)) !== 0) return null;
    return sign | (full >>> shift);
  }
  return null;
}

function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

interface KeyEntry {
  enc: Uint8Array;
  key: string;
  at: number; // the key's position in the object's own (for-in) key order
}
const keyCache = new Map<string, Uint8Array>();
/** Map keys repeat endlessly (field names); their encodings are cached. Bound:
 * schema field names are few; the cap stops a caller with data-derived keys
 * from growing it. */
const KEY_CACHE_MAX = 4096;

function encodeKey(k: string): Uint8Array {
  let enc = keyCache.get(k);
  if (enc === undefined) {
    const w = new Writer();
    const b = te.encode(k);
    w.head(3, b.byteLength);
    w.bytes(b);
    enc = w.buf.slice(0, w.len);
    if (keyCache.size < KEY_CACHE_MAX) keyCache.set(k, enc);
  }
  return enc;
}

// Messages of one kind share their key set: its canonical order is computed once
// and found again by walking a trie of the keys in insertion order (no key array
// or joined string per message: those were ~40 % of a vote's encode). Bound: one
// node per distinct (prefix, key), capped as keyCache; past it, sorted per call.
interface ShapeNode {
  next: Map<string, ShapeNode>;
  entries: KeyEntry[] | null;
}
const shapeRoot: ShapeNode = { next: new Map(), entries: null };
let shapeNodes = 0;

function sortEntries(keys: string[]): KeyEntry[] {
  const entries = keys.map((key, at) => ({ key, enc: encodeKey(key), at }));
  entries.sort((a, b) => compareBytes(a.enc, b.enc));
  return entries;
}

// A map's values, read once in its for-in walk (V8 loads rec[k] there through
// the enum cache) and written from here in key order, not looked up by name
// twice more. A stack (nested maps push above); takeScratch empties it.
const vals: unknown[] = [];
let valTop = 0;

/** Pushes rec's values (for-in order) onto vals; returns its keys in canonical order. */
function walkRecord(rec: Record<string, unknown>): KeyEntry[] {
  let node: ShapeNode | null = shapeRoot;
  for (const k in rec) {
    vals[valTop++] = rec[k];
    let child: ShapeNode | undefined = node?.next.get(k);
    if (node !== null && child === undefined && shapeNodes < KEY_CACHE_MAX) {
      node.next.set(k, (child = { next: new Map(), entries: null }));
      shapeNodes++;
    }
    node = child ?? null; // past the cap: this shape is sorted per call, uncached
  }
  return node === null ? sortEntries(Object.keys(rec)) : (node.entries ??= sortEntries(Object.keys(rec)));
}

/** compareBytes over two ranges of one buffer, without making subarrays. */
function compareRanges(buf: Uint8Array, aStart: number, aEnd: number, bStart: number, bEnd: number): number {
  const la = aEnd - aStart;
  const lb = bEnd - bStart;
  const n = la < lb ? la : lb;
  for (let i = 0; i < n; i++) {
    const d = (buf[aStart + i] as number) - (buf[bStart + i] as number);
    if (d !== 0) return d;
  }
  return la - lb;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.byteLength - b.byteLength;
}

export function encodeValue(w: Writer, v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new CborFormatError(`nesting deeper than ${MAX_DEPTH}`);
  switch (typeof v) {
    case 'number':
      // Safe integers (and -0, as 0) are integers; every other finite number,
      // integral values beyond 2^53 included, is a float in its shortest form.
      if (Number.isSafeInteger(v)) {
        if (v >= 0) w.head(0, v);
        else w.head(1, -1 - v);
      } else {
        if (!Number.isFinite(v)) throw new CborFormatError('NaN and infinities are not encodable');
        w.float(v);
      }
      return;
    case 'string': {
      // ASCII fast path (field values such as kinds and ids): bytes = char codes
      const n = v.length;
      if (n < 256) {
        let ascii = true;
        for (let i = 0; i < n; i++) {
          if (v.charCodeAt(i) >= 0x80) {
            ascii = false;
            break;
          }
        }
        if (ascii) {
          w.head(3, n);
          w.ensure(n);
          for (let i = 0; i < n; i++) w.buf[w.len + i] = v.charCodeAt(i);
          w.len += n;
          return;
        }
      }
      const b = te.encode(v);
      w.head(3, b.byteLength);
      w.bytes(b);
      return;
    }
    case 'boolean':
      w.byte(v ? 0xf5 : 0xf4);
      return;
    case 'object': {
      if (v === null) {
        w.byte(0xf6);
        return;
      }
      if (v instanceof Uint8Array) {
        w.head(2, v.byteLength);
        w.bytes(v);
        return;
      }
      if (Array.isArray(v)) {
        w.head(4, v.length);
        for (const x of v as unknown[]) encodeValue(w, x, depth + 1);
        return;
      }
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new CborFormatError(`cannot encode ${(v).constructor?.name ?? 'object'}`);
      const base = valTop;
      const entries = walkRecord(v as Record<string, unknown>);
      let count = 0;
      for (const e of entries) if (vals[base + e.at] !== undefined) count++; // undefined = absent optional field
      w.head(5, count);
      for (const e of entries) {
        const x = vals[base + e.at];
        if (x === undefined) continue;
        w.bytes(e.enc);
        encodeValue(w, x, depth + 1);
      }
      for (let i = base; i < valTop; i++) vals[i] = undefined; // keep no references to the caller's values
      valTop = base;
      return;
    }
    default:
      throw new CborFormatError(`cannot encode a value of type ${typeof v}`);
  }
}

// Small results are carved from 8 KiB slabs, as Node's Buffer pool does:
// allocating a fresh ArrayBuffer per message (Uint8Array.slice) cost ~1.9 µs
// for a 180-byte vote here, a view on a slab ~0.3 µs. A retained result keeps
// its slab alive, so the slab is small (8 KiB, Node's pool size) and results
// over 1 KiB get their own buffer.
const SLAB_BYTES = 8 * 1024;
const SLAB_MAX_PIECE = 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabOffset = 0;

/** A new zero-length-checked buffer of n bytes (slab-carved when small). */
export function allocBytes(n: number): Uint8Array {
  if (n > SLAB_MAX_PIECE) return new Uint8Array(n);
  if (slabOffset + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabOffset = 0;
  }
  const out = new Uint8Array(slab, slabOffset, n);
  slabOffset += (n + 7) & ~7; // keep pieces 8-byte aligned
  return out;
}

/** A copy of src[start, end) as a plain Uint8Array. */
export function copyOut(src: Uint8Array, start: number, end: number): Uint8Array {
  const out = allocBytes(end - start);
  out.set(src.subarray(start, end));
  return out;
}

// One scratch writer reused by every top-level encode (encoding is synchronous
// and never re-entered), so a message costs one allocation: its result.
const scratch = new Writer();
/** The scratch buffer is dropped if one message made it grow past 64 KiB. */
const SCRATCH_KEEP_BYTES = 64 * 1024;

/**
 * The shared scratch writer, emptied: a hot path writes into it and uses a
 * view of the bytes in place (no copy: the envelope path digests and frames
 * straight from it), then calls releaseScratch() in a `finally`. Nothing may
 * encode again before the caller is done with the bytes.
 */
export function takeScratch(): Writer {
  scratch.len = 0;
  valTop = 0;
  return scratch;
}
export function releaseScratch(): void {
  if (scratch.buf.byteLength > SCRATCH_KEEP_BYTES) scratch.reset();
}

export function fastEncode(value: unknown): Uint8Array {
  const w = takeScratch();
  try {
    encodeValue(w, value, 0);
    return copyOut(w.buf, 0, w.len);
  } finally {
    releaseScratch();
  }
}

// Short strings repeat endlessly in decoded messages (map keys, kinds, cluster
// ids, enum values): they are interned in a direct-mapped table, so a repeat
// costs a hash and a compare instead of a native string allocation (~0.15 µs
// each, ~8 per vote). Bound: INTERN_SLOTS entries of at most INTERN_MAX_CHARS
// bytes (16 KiB of bytes); a colliding string replaces the slot's occupant.
const INTERN_MAX_CHARS = 16;
const INTERN_SLOTS = 1024;
const internBytes = new Uint8Array(INTERN_SLOTS * INTERN_MAX_CHARS);
const internLength = new Uint8Array(INTERN_SLOTS);
const internString: string[] = new Array<string>(INTERN_SLOTS).fill('');

function decodeText(buf: Uint8Array, start: number, end: number): string {
  try {
    return td.decode(buf.subarray(start, end));
  } catch {
    throw new CborFormatError('text string is not valid UTF-8');
  }
}

/** Text of at most INTERN_MAX_CHARS bytes: interned when ASCII, strict UTF-8 otherwise. */
function shortText(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  let h = 0x811c9dc5 ^ n;
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (c >= 0x80) return decodeText(buf, start, end);
    h = Math.imul(h ^ c, 0x01000193);
  }
  const slot = (h >>> 0) & (INTERN_SLOTS - 1);
  const at = slot * INTERN_MAX_CHARS;
  if (internLength[slot] === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (internBytes[at + i] !== buf[start + i]) {
        same = false;
        break;
      }
    }
    // a slot of length 0 (unused, or the empty string) holds ''
    if (same) return internString[slot] as string;
  }
  const s = latin1Slice.call(buf, start, end);
  for (let i = 0; i < n; i++) internBytes[at + i] = buf[start + i] as number;
  internLength[slot] = n;
  internString[slot] = s;
  return s;
}

export class Reader {
  pos = 0;
  private viewCache: DataView | null = null;
  private readonly len: number;
  constructor(readonly buf: Uint8Array) {
    this.len = buf.byteLength;
  }
  /** A DataView for floats only, made on first use (most messages have none:
   * making one per message cost more than reading their integers by hand). */
  private get view(): DataView {
    this.viewCache ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    return this.viewCache;
  }
  /** Big-endian unsigned integer of `n` (1, 2 or 4) bytes at pos. */
  private be(n: number): number {
    const b = this.buf;
    const p = this.pos;
    if (n === 1) return b[p] as number;
    if (n === 2) return ((b[p] as number) << 8) | (b[p + 1] as number);
    return ((b[p] as number) * 0x1000000) + (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number));
  }
  need(n: number): void {
    if (this.pos + n > this.len) throw new CborFormatError(`truncated input at offset ${this.pos}`);
  }
  /** Reads an argument with minimal-encoding enforcement. */
  arg(info: number): number {
    if (info < 24) return info;
    let n: number;
    if (info === 24) {
      this.need(1);
      n = this.be(1);
      this.pos += 1;
      if (n < 24) throw new CborFormatError('non-minimal integer or length', true);
    } else if (info === 25) {
      this.need(2);
      n = this.be(2);
      this.pos += 2;
      if (n < 0x100) throw new CborFormatError('non-minimal integer or length', true);
    } else if (info === 26) {
      this.need(4);
      n = this.be(4);
      this.pos += 4;
      if (n < 0x10000) throw new CborFormatError('non-minimal integer or length', true);
    } else if (info === 27) {
      this.need(8);
      const hi = this.be(4);
      this.pos += 4;
      const lo = this.be(4);
      this.pos -= 4;
      this.pos += 8;
      if (hi > 0x1fffff) throw new CborFormatError('integer or length beyond 2^53');
      n = hi * 0x100000000 + lo;
      if (n < 0x100000000) throw new CborFormatError('non-minimal integer or length', true);
    } else if (info === 31) {
      throw new CborFormatError('indefinite lengths are not allowed', true);
    } else {
      throw new CborFormatError(`reserved additional information ${info}`);
    }
    return n;
  }
  value(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new CborFormatError(`nesting deeper than ${MAX_DEPTH}`);
    this.need(1);
    const ib = this.buf[this.pos++] as number;
    const major = ib >> 5;
    const info = ib & 0x1f;
    switch (major) {
      case 0:
        return this.arg(info);
      case 1:
        return -1 - this.arg(info);
      case 2: {
        const n = this.arg(info);
        this.need(n);
        const out = copyOut(this.buf, this.pos, this.pos + n);
        this.pos += n;
        return out;
      }
      case 3: {
        const n = this.arg(info);
        this.need(n);
        const s = this.text(n);
        return s;
      }
      case 4: {
        const n = this.arg(info);
        // each element takes at least one byte: refuse impossible counts before allocating
        if (n > this.buf.byteLength - this.pos) throw new CborFormatError(`array of ${n} elements cannot fit in the input`);
        const out: unknown[] = new Array<unknown>(n);
        for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
        return out;
      }
      case 5: {
        const n = this.arg(info);
        if (n * 2 > this.buf.byteLength - this.pos) throw new CborFormatError(`map of ${n} entries cannot fit in the input`);
        const out: Record<string, unknown> = {};
        let prevStart = -1;
        let prevEnd = -1;
        for (let i = 0; i < n; i++) {
          const keyStart = this.pos;
          this.need(1);
          const kb = this.buf[this.pos] as number;
          if (kb >> 5 !== 3) throw new CborFormatError('map keys must be text strings');
          const key = this.value(depth + 1) as string;
          const keyEnd = this.pos;
          // an own '__proto__' key would re-prototype the object on assignment; no schema uses it
          if (key === '__proto__') throw new CborFormatError("map key '__proto__' is not allowed");
          if (prevStart >= 0 && compareRanges(this.buf, prevStart, prevEnd, keyStart, keyEnd) >= 0) {
            throw new CborFormatError(`map keys out of canonical order or duplicated at '${key}'`, true);
          }
          prevStart = keyStart;
          prevEnd = keyEnd;
          out[key] = this.value(depth + 1);
        }
        return out;
      }
      case 6:
        throw new CborFormatError('CBOR tags are not allowed');
      default: {
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 25 || info === 26 || info === 27) {
          const start = this.pos - 1;
          let x: number;
          if (info === 25) {
            this.need(2);
            x = fromHalf(this.view.getUint16(this.pos));
            this.pos += 2;
          } else if (info === 26) {
            this.need(4);
            x = this.view.getFloat32(this.pos);
            this.pos += 4;
          } else {
            this.need(8);
            x = this.view.getFloat64(this.pos);
            this.pos += 8;
          }
          if (!Number.isFinite(x)) throw new CborFormatError('NaN and infinities are not allowed');
          // canonical iff our encoder would produce exactly these bytes
          const w = new Writer();
          encodeValue(w, x, 0);
          if (compareBytes(w.buf.subarray(0, w.len), this.buf.subarray(start, this.pos)) !== 0) {
            throw new CborFormatError('number not in its shortest canonical form', true);
          }
          return x;
        }
        throw new CborFormatError(`simple value ${info} is not allowed`);
      }
    }
  }
  text(n: number): string {
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    const buf = this.buf;
    if (n <= INTERN_MAX_CHARS) return shortText(buf, start, end);
    for (let i = start; i < end; i++) {
      if ((buf[i] as number) >= 0x80) {
        return decodeText(buf, start, end); // non-ASCII: strict UTF-8 (invalid sequences are an error, not U+FFFD)
      }
    }
    // ASCII (field names, kinds, ids): Node's native latin1 slice, no copy of the bytes
    return latin1Slice.call(buf, start, end);
  }
}

/** Decode exactly one canonical value spanning all of `bytes`. Throws CborFormatError. */
export function fastDecode(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  const v = r.value(0);
  if (r.pos !== bytes.byteLength) throw new CborFormatError(`${bytes.byteLength - r.pos} trailing bytes after the value`);
  return v;
}
