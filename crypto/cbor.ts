/**
 * Deterministic CBOR (RFC 8949 §4.2.1 core deterministic encoding) for every
 * signed payload, through the strict codec in cbor-fast.ts (checked against
 * cborg's RFC 8949 encoder in the tests). Decoding accepts only the canonical
 * encoding: there is one and only one accepted encoding of each value (no
 * malleability: a signature can never be "re-wrapped" into different bytes
 * with equal meaning).
 */
import { CryptoError } from './errors.js';
import { CborFormatError, fastDecode, fastEncode } from './cbor-fast.js';

/** Default cap on one decoded document: 1 MiB. Larger gossip or stream payloads
 * are refused before parsing (a hostile peer cannot make us allocate more). */
export const CBOR_MAX_BYTES_DEFAULT = 1024 * 1024;

export function encodeCanonical(value: unknown): Uint8Array {
  try {
    return fastEncode(value);
  } catch (err) {
    throw new CryptoError('ERR_CBOR_ENCODE', `cannot encode value as CBOR: ${(err as Error).message}`, {}, { cause: err });
  }
}

export function decodeCanonical(bytes: Uint8Array, maxBytes: number = CBOR_MAX_BYTES_DEFAULT): unknown {
  if (bytes.byteLength > maxBytes) {
    throw new CryptoError('ERR_CBOR_OVERSIZE', `CBOR input of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes}`, { size: bytes.byteLength, maxBytes });
  }
  if (bytes.byteLength === 0) {
    throw new CryptoError('ERR_CBOR_DECODE', 'empty CBOR input', {});
  }
  try {
    return fastDecode(bytes);
  } catch (err) {
    if (err instanceof CborFormatError && err.nonCanonical) {
      throw new CryptoError('ERR_CBOR_NON_CANONICAL', `CBOR input is not in deterministic (RFC 8949 core) encoding: ${err.message}`, { size: bytes.byteLength });
    }
    throw new CryptoError('ERR_CBOR_DECODE', `malformed CBOR: ${(err as Error).message}`, {}, { cause: err });
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Closed-schema check: `value` must be a plain map whose keys are all in `allowed`.
 * Unknown keys are rejected by name (a newer peer's field is not silently dropped
 * from a signed message, which would make us sign or store something different).
 */
export function expectRecord(value: unknown, allowed: readonly string[], what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new CryptoError('ERR_CBOR_SCHEMA', `${what}: expected a map`, { what });
  }
  const rec = value as Record<string, unknown>;
  for (const key of Object.keys(rec)) {
    if (!allowed.includes(key)) {
      throw new CryptoError('ERR_CBOR_UNKNOWN_FIELD', `${what}: unknown field '${key}'`, { what, field: key });
    }
  }
  return rec;
}
