/**
 * Signed envelopes: every message between nodes is one.
 *
 *   signed = canonicalCBOR({ v: 1, k: kind, c: cluster, s: signerPublicKey, q: seq, t: timeMs, b: body })
 *   digest = BLAKE3-keyed(domain("fednode/v1/" + kind), signed)
 *   sig    = Ed25519(signerSecretKey, digest)
 *   wire   = CBOR array [ bstr signed, bstr sig ]   (canonical; built by hand, see below)
 *
 * The kind is both inside the signed map and the digest's domain: a signature
 * made for one kind of message can never verify as another. Decoding never
 * throws on hostile input; it returns a typed result whose `code` says why.
 */
import { CryptoError } from './errors.js';
import { decodeCanonical, expectRecord } from './cbor.js';
import { allocBytes, releaseScratch, takeScratch } from './cbor-fast.js';
import { readSignedFast, writeSigned } from './envelope-codec.js';
import type { SignedFields } from './envelope-codec.js';
import { domain } from './blake3.js';
import type { DigestDomain } from './blake3.js';
import { ed25519, PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from './ed25519.js';
import type { Ed25519 } from './ed25519.js';
import { peerIdFromPublicKey } from './keys.js';
import type { Identity } from './keys.js';
import type { VerifiedCache } from './verify-cache.js';

export const ENVELOPE_VERSION = 1;
/** Default size limit for one envelope on the wire: 256 KiB. Adverts are ~1 KiB,
 * votes ~200 B; proposals carry pattern batches, bounded well below this. */
export const ENVELOPE_MAX_BYTES_DEFAULT = 256 * 1024;
/** Kinds are short identifiers fixed in code; they name a digest domain. */
const KIND_RE = /^[a-z][a-z0-9.-]{0,31}$/;
/** A cluster id is at most 64 characters (we make 26-character base32 ids). */
const CLUSTER_MAX_CHARS = 64;

export interface EnvelopeFields<B = unknown> {
  kind: string;
  cluster: string;
  seq: number;
  /** Unix time in ms, as the signer's clock saw it. */
  time: number;
  body: B;
}

export interface Envelope<B = unknown> extends EnvelopeFields<B> {
  /** Raw 32-byte Ed25519 public key of the signer. */
  signer: Uint8Array;
  /** The signer's libp2p PeerId string. */
  signerId: string;
}

export type EnvelopeErrorCode =
  | 'oversize'
  | 'bad-encoding'
  | 'non-canonical'
  | 'unknown-field'
  | 'wrong-kind'
  | 'wrong-cluster'
  | 'bad-signer'
  | 'bad-signature';

export interface DecodedEnvelope<B = unknown> {
  ok: true;
  envelope: Envelope<B>;
  /** Domain-separated digest of the signed bytes (what the signature covers). */
  digest: Uint8Array;
  signature: Uint8Array;
}
export interface EnvelopeFailure {
  ok: false;
  code: EnvelopeErrorCode;
  detail: string;
}
export type DecodeResult<B = unknown> = DecodedEnvelope<B> | EnvelopeFailure;

export interface OpenOptions {
  /** Kinds the caller accepts here (a vote topic takes votes, not adverts). */
  kinds: readonly string[];
  cluster: string;
  maxBytes?: number;
}

const FIELDS = ['v', 'k', 'c', 's', 'q', 't', 'b'] as const;

// Kind -> domain without building the context string per message. Only kinds
// that match KIND_RE are ever entered, so a hit is also the kind check (the
// regex ran once, when the kind was first used). Bound: kinds are fixed in
// code, and domain() itself refuses more than 256 contexts; decoding enters
// only kinds the receiver accepts (checked before domainOf is reached).
const domainsByKind = new Map<string, DigestDomain>();
function domainOf(kind: string): DigestDomain {
  let d = domainsByKind.get(kind);
  if (d === undefined) {
    d = domain(`fednode/v${ENVELOPE_VERSION}/${kind}`);
    domainsByKind.set(kind, d);
  }
  return d;
}

/** Whether `kind` is well-formed (a kind already in use is, without the regex). */
function isKind(kind: string): boolean {
  return domainsByKind.has(kind) || KIND_RE.test(kind);
}

function badFields(why: string): CryptoError {
  return new CryptoError('ERR_CBOR_SCHEMA', `invalid envelope fields: ${why}`, { why });
}

/** Checks local input; returns the kind's digest domain. */
function checkFields(fields: EnvelopeFields): DigestDomain {
  let dom = domainsByKind.get(fields.kind);
  if (dom === undefined) {
    if (!KIND_RE.test(fields.kind)) throw badFields(`kind '${fields.kind}' must match ${String(KIND_RE)}`);
    dom = domainOf(fields.kind);
  }
  if (fields.cluster.length === 0 || fields.cluster.length > CLUSTER_MAX_CHARS) throw badFields(`cluster id must be 1..${CLUSTER_MAX_CHARS} characters`);
  if (!Number.isSafeInteger(fields.seq) || fields.seq < 0) throw badFields(`seq must be a non-negative safe integer, got ${fields.seq}`);
  if (!Number.isSafeInteger(fields.time) || fields.time < 0) throw badFields(`time must be a non-negative integer (unix ms), got ${fields.time}`);
  return dom;
}

/** Sign `fields` as `id`; returns the wire bytes. Throws CryptoError on invalid local input. */
export function createEnvelope<B>(id: Identity, fields: EnvelopeFields<B>, impl: Ed25519 = ed25519): Uint8Array {
  const dom = checkFields(fields);
  // encoded once into the shared scratch, digested and framed from there: no
  // per-call closures or field object, one allocation besides the signature
  // (the result)
  const w = takeScratch();
  try {
    writeSigned(w, fields, id.publicKey, ENVELOPE_VERSION);
    const signed = w.buf.subarray(0, w.len);
    // The native signer reads the digest where BLAKE3 left it (WASM memory, blake3-small.ts) and
    // writes the signature straight into the frame (a slab piece): both off the V8 heap, no
    // copies. Handed a fresh small on-heap array, V8 would first move it off the heap (~0.3-3 µs
    // a call, growing with GC pressure; issue 15).
    const digest = dom.digestTransient(signed);
    const out = frameFor(signed);
    impl.signInto(out.subarray(out.byteLength - SIGNATURE_BYTES), id.secretKey, digest);
    return out;
  } catch (err) {
    if (err instanceof CryptoError) throw err;
    throw new CryptoError('ERR_CBOR_ENCODE', `cannot encode envelope body as CBOR: ${(err as Error).message}`, {}, { cause: err });
  } finally {
    releaseScratch();
  }
}

// The outer layer is two byte strings; it is encoded and parsed by hand (it is
// the hot path of every message, and a strict hand parser is simpler to prove
// canonical than a general decoder): 0x82, bstr(signed), bstr(sig).
/** Length of a CBOR byte-string header for n bytes. */
function bstrHeaderLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/** Writes a canonical byte-string header for n bytes at out[at]; returns the next offset. */
function writeBstrHeader(out: Uint8Array, at: number, n: number): number {
  if (n < 24) {
    out[at] = 0x40 + n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = 0x58;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = 0x59;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  out[at] = 0x5a;
  out[at + 1] = (n >>> 24) & 0xff;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = (n >>> 8) & 0xff;
  out[at + 4] = n & 0xff;
  return at + 5;
}

/** The outer frame around `signed` with room for the signature at its end (left zero, to be signed into). */
function frameFor(signed: Uint8Array): Uint8Array {
  const out = allocBytes(1 + bstrHeaderLength(signed.byteLength) + signed.byteLength + bstrHeaderLength(SIGNATURE_BYTES) + SIGNATURE_BYTES);
  out[0] = 0x82;
  const at = writeBstrHeader(out, 1, signed.byteLength);
  out.set(signed, at);
  writeBstrHeader(out, at + signed.byteLength, SIGNATURE_BYTES);
  return out;
}

type Parsed = { signed: Uint8Array; sig: Uint8Array } | EnvelopeFailure;

function readBstr(bytes: Uint8Array, at: number): { start: number; end: number } | EnvelopeFailure | 'non-canonical' {
  const ib = bytes[at];
  if (ib === undefined || ib >> 5 !== 2) return { ok: false, code: 'bad-encoding', detail: `expected a byte string at offset ${at}` };
  const info = ib & 0x1f;
  let len: number;
  let start: number;
  if (info < 24) {
    len = info;
    start = at + 1;
  } else if (info === 24 || info === 25 || info === 26) {
    const n = info === 24 ? 1 : info === 25 ? 2 : 4;
    if (at + 1 + n > bytes.byteLength) return { ok: false, code: 'bad-encoding', detail: 'truncated length' };
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (bytes[at + 1 + i] ?? 0);
    start = at + 1 + n;
    const minimal = info === 24 ? len >= 24 : info === 25 ? len >= 0x100 : len >= 0x10000;
    if (!minimal) return 'non-canonical';
  } else {
    return { ok: false, code: 'bad-encoding', detail: 'unsupported byte string length encoding' };
  }
  if (start + len > bytes.byteLength) return { ok: false, code: 'bad-encoding', detail: `truncated: byte string of ${len} bytes runs past the end` };
  return { start, end: start + len };
}

function parseOuter(bytes: Uint8Array): Parsed {
  if (bytes.byteLength === 0) return { ok: false, code: 'bad-encoding', detail: 'empty message' };
  if (bytes[0] !== 0x82) return { ok: false, code: 'bad-encoding', detail: 'not a fednode envelope (expected a 2-element CBOR array)' };
  const a = readBstr(bytes, 1);
  if (a === 'non-canonical') return { ok: false, code: 'non-canonical', detail: 'non-minimal length in envelope frame' };
  if ('ok' in a) return a;
  const b = readBstr(bytes, a.end);
  if (b === 'non-canonical') return { ok: false, code: 'non-canonical', detail: 'non-minimal length in envelope frame' };
  if ('ok' in b) return b;
  if (b.end !== bytes.byteLength) return { ok: false, code: 'bad-encoding', detail: `${bytes.byteLength - b.end} trailing bytes after the envelope` };
  if (b.end - b.start !== SIGNATURE_BYTES) return { ok: false, code: 'bad-encoding', detail: `signature must be ${SIGNATURE_BYTES} bytes, got ${b.end - b.start}` };
  return { signed: bytes.subarray(a.start, a.end), sig: bytes.subarray(b.start, b.end) };
}

/**
 * Cheap checks, in order (no signature check): size, frame, canonical CBOR,
 * closed schema, kind, cluster, signer key. Use `verifyDecoded` after the
 * caller's own cheap checks (membership, freshness), as gossip validators do.
 */
export function decodeEnvelope<B = unknown>(bytes: Uint8Array, opts: OpenOptions): DecodeResult<B> {
  const maxBytes = opts.maxBytes ?? ENVELOPE_MAX_BYTES_DEFAULT;
  // rule: size first, before any parsing work
  if (bytes.byteLength > maxBytes) return { ok: false, code: 'oversize', detail: `envelope of ${bytes.byteLength} bytes exceeds ${maxBytes}` };
  // rule: frame is [bstr, bstr(64)] in canonical form
  const outer = parseOuter(bytes);
  if ('ok' in outer) return outer;
  // fast path: the one canonical layout of a well-formed envelope; anything
  // else goes through the generic decoder, which names the fault
  const fast = readSignedFast(outer.signed, PUBLIC_KEY_BYTES);
  const f = fast === null ? decodeSignedGeneric(outer.signed, maxBytes, opts) : checkFastFields(fast, opts);
  if ('ok' in f) return f;
  // rule: signer is a valid Ed25519 public key (its length is checked above)
  let signerId: string;
  try {
    signerId = peerIdFromPublicKey(f.signer);
  } catch {
    return { ok: false, code: 'bad-signer', detail: 'signer is not a valid Ed25519 public key' };
  }
  const digest = domainOf(f.kind).digest(outer.signed);
  return {
    ok: true,
    envelope: { kind: f.kind, cluster: f.cluster, seq: f.seq, time: f.time, body: f.body as B, signer: f.signer, signerId },
    digest,
    signature: outer.sig,
  };
}

/** The checks the fast reader's types leave (the same rules, in the same order, as the generic path). */
function checkFastFields(f: SignedFields, opts: OpenOptions): SignedFields | EnvelopeFailure {
  if (f.version !== ENVELOPE_VERSION) return { ok: false, code: 'bad-encoding', detail: `unsupported envelope version ${JSON.stringify(f.version)}` };
  if (!isKind(f.kind)) return { ok: false, code: 'bad-encoding', detail: 'envelope kind missing or malformed' };
  if (!opts.kinds.includes(f.kind)) return wrongKind(f.kind, opts);
  if (f.cluster !== opts.cluster) return wrongCluster(f.cluster, opts);
  return f;
}

function wrongKind(k: string, opts: OpenOptions): EnvelopeFailure {
  return { ok: false, code: 'wrong-kind', detail: `kind '${k}' not accepted here (expected ${opts.kinds.join(', ')})` };
}
function wrongCluster(c: string, opts: OpenOptions): EnvelopeFailure {
  return { ok: false, code: 'wrong-cluster', detail: `envelope is for cluster '${c.slice(0, CLUSTER_MAX_CHARS)}', not '${opts.cluster}'` };
}

/** The generic path: any canonical CBOR, checked rule by rule. */
function decodeSignedGeneric(signed: Uint8Array, maxBytes: number, opts: OpenOptions): SignedFields | EnvelopeFailure {
  // rule: signed part is canonical CBOR
  let value: unknown;
  try {
    value = decodeCanonical(signed, maxBytes);
  } catch (err) {
    const code = err instanceof CryptoError && err.code === 'ERR_CBOR_NON_CANONICAL' ? 'non-canonical' : 'bad-encoding';
    return { ok: false, code, detail: (err as Error).message };
  }
  // rule: closed schema (unknown fields are refused, never dropped)
  let rec: Record<string, unknown>;
  try {
    rec = expectRecord(value, FIELDS, 'envelope');
  } catch (err) {
    const code = err instanceof CryptoError && err.code === 'ERR_CBOR_UNKNOWN_FIELD' ? 'unknown-field' : 'bad-encoding';
    return { ok: false, code, detail: (err as Error).message };
  }
  const { v, k, c, s, q, t } = rec;
  if (v !== ENVELOPE_VERSION) return { ok: false, code: 'bad-encoding', detail: `unsupported envelope version ${JSON.stringify(v)}` };
  if (!('b' in rec)) return { ok: false, code: 'bad-encoding', detail: 'envelope has no body' };
  // rule: kind is one this receiver accepts here
  if (typeof k !== 'string' || !KIND_RE.test(k)) return { ok: false, code: 'bad-encoding', detail: 'envelope kind missing or malformed' };
  if (!opts.kinds.includes(k)) return wrongKind(k, opts);
  // rule: same cluster
  if (typeof c !== 'string') return { ok: false, code: 'bad-encoding', detail: 'envelope cluster missing' };
  if (c !== opts.cluster) return wrongCluster(c, opts);
  if (!Number.isSafeInteger(q) || (q as number) < 0) return { ok: false, code: 'bad-encoding', detail: 'envelope seq must be a non-negative integer' };
  if (!Number.isSafeInteger(t) || (t as number) < 0) return { ok: false, code: 'bad-encoding', detail: 'envelope time must be a non-negative integer' };
  // rule: signer is a 32-byte Ed25519 public key
  if (!(s instanceof Uint8Array) || s.byteLength !== PUBLIC_KEY_BYTES) return { ok: false, code: 'bad-signer', detail: `signer must be a ${PUBLIC_KEY_BYTES}-byte Ed25519 public key` };
  return { version: v, kind: k, cluster: c, signer: s, seq: q as number, time: t as number, body: rec['b'] };
}

/** Signature check (cached by digest: the digest covers signer and content). */
export function verifyDecoded(d: DecodedEnvelope, cache?: VerifiedCache, impl: Ed25519 = ed25519): boolean {
  if (cache?.has(d.digest) === true) return true;
  const ok = impl.verify(d.envelope.signer, d.digest, d.signature);
  if (ok) cache?.add(d.digest);
  return ok;
}

/** decode + verify; 'bad-signature' when the signature does not verify. */
export function openEnvelope<B = unknown>(bytes: Uint8Array, opts: OpenOptions & { cache?: VerifiedCache; impl?: Ed25519 }): DecodeResult<B> {
  const d = decodeEnvelope<B>(bytes, opts);
  if (!d.ok) return d;
  if (!verifyDecoded(d, opts.cache, opts.impl)) return { ok: false, code: 'bad-signature', detail: `signature by ${d.envelope.signerId} does not verify` };
  return d;
}
