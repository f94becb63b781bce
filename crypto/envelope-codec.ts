/**
 * The signed map of an envelope, written and read by hand around the generic
 * codec (cbor-fast.ts), which handles only the body.
 *
 * The map always has the same seven one-letter text keys, so its canonical
 * form is fixed: 0xa7, then the keys in encoded-byte order b c k q s t v,
 * each key the two bytes 0x61 <letter>. Writing that layout straight out
 * skips the generic encoder's key-set lookup and per-key copies; reading it
 * skips building seven key strings, the key-order comparisons and the
 * closed-schema pass. The bytes are the same as encodeCanonical of the map
 * (the tests check this on random bodies).
 *
 * The reader is a fast path only: it accepts exactly that layout, in canonical
 * form, with the types the envelope needs, and returns null on ANY other input;
 * the caller then takes the generic path, which gives the specific error code.
 * So everything the fast path accepts the generic path accepts with equal
 * values, and everything it refuses gets the generic path's answer.
 */
import { CborFormatError, encodeValue, Reader, releaseScratch, takeScratch, Writer } from './cbor-fast.js';

const TEXT1 = 0x61; // text string of length 1: every key of the envelope map
const MAP7 = 0xa7;
const KEY_B = 0x62;
const KEY_C = 0x63;
const KEY_K = 0x6b;
const KEY_Q = 0x71;
const KEY_S = 0x73;
const KEY_T = 0x74;
const KEY_V = 0x76;

/** What an envelope's creator supplies (EnvelopeFields in envelope.ts). */
export interface SignedBody {
  kind: string;
  cluster: string;
  seq: number;
  time: number;
  body: unknown;
}

export interface SignedFields extends SignedBody {
  version: number;
  signer: Uint8Array;
}

function key(w: Writer, letter: number): void {
  w.ensure(2);
  w.buf[w.len] = TEXT1;
  w.buf[w.len + 1] = letter;
  w.len += 2;
}

/**
 * The signed map's `c` and `k` entries (next to each other in canonical order), encoded once per
 * (cluster, kind): a node signs with one cluster id and a handful of kinds, so each envelope
 * copies these bytes instead of scanning and encoding two strings (issue 15, envelope create).
 * Bound: CLUSTER_KIND_CACHE_MAX pairs; beyond it (a caller with data-derived cluster ids) the
 * bytes are encoded per call and not kept.
 */
const CLUSTER_KIND_CACHE_MAX = 256;
const clusterKind = new Map<string, Map<string, Uint8Array>>();
let clusterKindSize = 0;
function clusterKindBytes(cluster: string, kind: string): Uint8Array {
  let kinds = clusterKind.get(cluster);
  const hit = kinds?.get(kind);
  if (hit !== undefined) return hit;
  const w = new Writer();
  key(w, KEY_C);
  encodeValue(w, cluster, 1);
  key(w, KEY_K);
  encodeValue(w, kind, 1);
  const enc = w.buf.slice(0, w.len);
  if (clusterKindSize < CLUSTER_KIND_CACHE_MAX) {
    if (kinds === undefined) {
      kinds = new Map();
      clusterKind.set(cluster, kinds);
    }
    kinds.set(kind, enc);
    clusterKindSize++;
  }
  return enc;
}

/**
 * Append the signed map of `f`, signed by `signer`, envelope `version`, to
 * `w`. Throws CborFormatError when the body is not encodable (undefined
 * included: an envelope always has a body).
 */
export function writeSigned(w: Writer, f: SignedBody, signer: Uint8Array, version: number): void {
  w.byte(MAP7);
  key(w, KEY_B);
  if (f.body === undefined) throw new CborFormatError('an envelope body cannot be undefined');
  encodeValue(w, f.body, 1);
  w.bytes(clusterKindBytes(f.cluster, f.kind));
  key(w, KEY_Q);
  w.head(0, f.seq);
  key(w, KEY_S);
  w.head(2, signer.byteLength);
  w.bytes(signer);
  key(w, KEY_T);
  w.head(0, f.time);
  key(w, KEY_V);
  w.head(0, version);
}

/**
 * Encode the signed map of `f` into the shared scratch buffer and hand `use`
 * a view of it, valid only during the call. Throws as writeSigned.
 */
export function withSignedEncoded<T>(f: SignedFields, use: (signed: Uint8Array) => T): T {
  const w = takeScratch();
  try {
    writeSigned(w, f, f.signer, f.version);
    return use(w.buf.subarray(0, w.len));
  } finally {
    releaseScratch();
  }
}

function readKey(r: Reader, letter: number): boolean {
  const buf = r.buf;
  if (buf[r.pos] !== TEXT1 || buf[r.pos + 1] !== letter) return false;
  r.pos += 2;
  return true;
}

function readUint(r: Reader): number | null {
  const x = r.value(1);
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : null;
}

function readText(r: Reader): string | null {
  const x = r.value(1);
  return typeof x === 'string' ? x : null;
}

/**
 * The fields of a signed map in the exact canonical layout, or null for
 * anything else (then the generic decoder explains what is wrong).
 * `signerBytes` is the signer key length the envelope requires.
 */
export function readSignedFast(signed: Uint8Array, signerBytes: number): SignedFields | null {
  if (signed[0] !== MAP7) return null;
  const r = new Reader(signed);
  r.pos = 1;
  try {
    if (!readKey(r, KEY_B)) return null;
    const body = r.value(1);
    if (!readKey(r, KEY_C)) return null;
    const cluster = readText(r);
    if (cluster === null || !readKey(r, KEY_K)) return null;
    const kind = readText(r);
    if (kind === null || !readKey(r, KEY_Q)) return null;
    const seq = readUint(r);
    if (seq === null || !readKey(r, KEY_S)) return null;
    const signer = r.value(1);
    if (!(signer instanceof Uint8Array) || signer.byteLength !== signerBytes || !readKey(r, KEY_T)) return null;
    const time = readUint(r);
    if (time === null || !readKey(r, KEY_V)) return null;
    const version = readUint(r);
    if (version === null || r.pos !== signed.byteLength) return null;
    return { version, kind, cluster, signer, seq, time, body };
  } catch (err) {
    if (err instanceof CborFormatError) return null; // malformed: the generic path names the fault
    throw err;
  }
}
