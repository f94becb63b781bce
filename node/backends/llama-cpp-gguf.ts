/**
 * A minimal GGUF v3 writer (and a header reader for checks): metadata key/values and F32
 * tensors, laid out as the format's spec (ggml docs/gguf.md) says: header, metadata, tensor
 * infos, padding to `general.alignment`, tensor data with each tensor's offset aligned.
 * Only what the tiny test model needs; no quantised types.
 */
import { FednodeError } from '../../base/errors.js';

export class GgufError extends FednodeError<'ERR_GGUF_INVALID'> {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('ERR_GGUF_INVALID', message, data);
    this.name = 'GgufError';
  }
}

/** Value types of the GGUF spec (the numbers are the wire codes). */
export const GGUF_TYPE = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
const GGML_TYPE_F32 = 0;
export const GGUF_MAGIC = 0x46554747; // "GGUF" read little-endian
export const GGUF_VERSION = 3;
/** The spec's default alignment; we write it explicitly too. */
export const GGUF_ALIGNMENT = 32;

export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; of: 'string'; value: readonly string[] }
  | { type: 'array'; of: 'f32' | 'i32'; value: readonly number[] };

export interface GgufTensor {
  name: string;
  /** ggml order: ne[0] is the innermost (contiguous) dimension. */
  dims: readonly number[];
  data: Float32Array;
}

class Buf {
  private chunks: Uint8Array[] = [];
  length = 0;
  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }
  i32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    this.push(b);
  }
  u64(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  f32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
  }
  str(s: string): void {
    const bytes = new TextEncoder().encode(s);
    this.u64(bytes.length);
    this.push(bytes);
  }
  bytes(b: Uint8Array): void {
    this.push(b);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    if (n > 0) this.push(new Uint8Array(n));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function writeValue(b: Buf, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      b.u32(GGUF_TYPE.u32);
      b.u32(v.value);
      return;
    case 'i32':
      b.u32(GGUF_TYPE.i32);
      b.i32(v.value);
      return;
    case 'f32':
      b.u32(GGUF_TYPE.f32);
      b.f32(v.value);
      return;
    case 'bool':
      b.u32(GGUF_TYPE.bool);
      b.bytes(Uint8Array.of(v.value ? 1 : 0));
      return;
    case 'string':
      b.u32(GGUF_TYPE.string);
      b.str(v.value);
      return;
    case 'array':
      b.u32(GGUF_TYPE.array);
      b.u32(GGUF_TYPE[v.of]);
      b.u64(v.value.length);
      if (v.of === 'string') for (const s of v.value) b.str(s);
      else if (v.of === 'f32') for (const x of v.value) b.f32(x);
      else for (const x of v.value) b.i32(x);
      return;
  }
}

/** Serialise a GGUF v3 file: every tensor F32, offsets aligned to GGUF_ALIGNMENT. */
export function writeGguf(metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[]): Uint8Array {
  const b = new Buf();
  b.u32(GGUF_MAGIC);
  b.u32(GGUF_VERSION);
  b.u64(tensors.length);
  b.u64(metadata.length + 1);
  b.str('general.alignment');
  writeValue(b, { type: 'u32', value: GGUF_ALIGNMENT });
  for (const [k, v] of metadata) {
    b.str(k);
    writeValue(b, v);
  }
  let offset = 0;
  for (const t of tensors) {
    const elements = t.dims.reduce((a, d) => a * d, 1);
    if (elements !== t.data.length) throw new GgufError(`tensor ${t.name}: dims ${t.dims.join('x')} hold ${elements} values, data has ${t.data.length}`, { tensor: t.name });
    b.str(t.name);
    b.u32(t.dims.length);
    for (const d of t.dims) b.u64(d);
    b.u32(GGML_TYPE_F32);
    b.u64(offset);
    offset += Math.ceil((elements * 4) / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  }
  b.pad(GGUF_ALIGNMENT);
  for (const t of tensors) {
    b.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    b.pad(GGUF_ALIGNMENT);
  }
  return b.concat();
}

/** What readGgufHeader finds: enough to check a file without loading it. */
export interface GgufHeader {
  version: number;
  tensorCount: number;
  metadata: Map<string, unknown>;
}

/** Bound on metadata entries read (a real model has ~40; a corrupt count must not loop for long). */
const MAX_METADATA_KV = 4096;

/** Read the header and metadata of a GGUF file (arrays of strings/numbers as JS arrays). Throws GgufError on damage. */
export function readGgufHeader(bytes: Uint8Array): GgufHeader {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  const need = (n: number): void => {
    if (o + n > bytes.length) throw new GgufError(`truncated GGUF at byte ${o} (needs ${n} more)`, { offset: o });
  };
  const u32 = (): number => (need(4), (o += 4), dv.getUint32(o - 4, true));
  const u64 = (): number => {
    need(8);
    o += 8;
    const v = dv.getBigUint64(o - 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError(`count too large at byte ${o - 8}`);
    return Number(v);
  };
  const str = (): string => {
    const n = u64();
    need(n);
    o += n;
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(o - n, o));
  };
  const scalar = (t: number): unknown => {
    switch (t) {
      case GGUF_TYPE.u8: return (need(1), bytes[o++]);
      case GGUF_TYPE.i8: return (need(1), (o += 1), dv.getInt8(o - 1));
      case GGUF_TYPE.u16: return (need(2), (o += 2), dv.getUint16(o - 2, true));
      case GGUF_TYPE.i16: return (need(2), (o += 2), dv.getInt16(o - 2, true));
      case GGUF_TYPE.u32: return u32();
      case GGUF_TYPE.i32: return (need(4), (o += 4), dv.getInt32(o - 4, true));
      case GGUF_TYPE.f32: return (need(4), (o += 4), dv.getFloat32(o - 4, true));
      case GGUF_TYPE.bool: return (need(1), bytes[o++] !== 0);
      case GGUF_TYPE.string: return str();
      case GGUF_TYPE.u64: return u64();
      case GGUF_TYPE.i64: return (need(8), (o += 8), Number(dv.getBigInt64(o - 8, true)));
      case GGUF_TYPE.f64: return (need(8), (o += 8), dv.getFloat64(o - 8, true));
      default: throw new GgufError(`unknown GGUF value type ${t} at byte ${o - 4}`);
    }
  };
  if (u32() !== GGUF_MAGIC) throw new GgufError('not a GGUF file (bad magic)');
  const version = u32();
  if (version !== GGUF_VERSION) throw new GgufError(`GGUF version ${version}, expected ${GGUF_VERSION}`, { version });
  const tensorCount = u64();
  const kvCount = u64();
  if (kvCount > MAX_METADATA_KV) throw new GgufError(`GGUF metadata count ${kvCount} exceeds ${MAX_METADATA_KV}`);
  const metadata = new Map<string, unknown>();
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    const t = u32();
    if (t === GGUF_TYPE.array) {
      const et = u32();
      const n = u64();
      if (n > bytes.length) throw new GgufError(`array ${key}: count ${n} larger than the file`);
      const arr: unknown[] = [];
      for (let j = 0; j < n; j++) arr.push(scalar(et));
      metadata.set(key, arr);
    } else metadata.set(key, scalar(t));
  }
  return { version, tensorCount, metadata };
}
