/**
 * Simulated nodes' keys and the signature caches shared by every simulated node and seed.
 * Keys depend on the node index only, so signatures repeat across seeds and the caches hit.
 */
import { ed25519 } from '../crypto/ed25519.js';
import { identityFromSeed } from '../crypto/keys.js';
import type { Identity } from '../crypto/keys.js';

/** The cluster id every simulated run signs under. */
export const SIM_CLUSTER = 'simnet';
/** Node identities are fixed per index so signatures repeat across seeds and the caches hit. */
const identities: Identity[] = [];
export function identityOf(i: number): Identity {
  let id = identities[i];
  if (id === undefined) {
    const seed = new Uint8Array(32);
    seed[0] = 0x53;
    seed[1] = i & 0xff;
    seed[2] = (i >>> 8) & 0xff;
    id = identityFromSeed(seed);
    identities[i] = id;
  }
  return id;
}

export function bytesKey(...parts: Uint8Array[]): string {
  let s = '';
  for (const p of parts) s += String.fromCharCode.apply(null, p as unknown as number[]);
  return s;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Verification cache shared by all simulated nodes and seeds (as the issue allows), keyed by
 * the signature OBJECT: one signed message object reaches every node, so the first node pays
 * the Ed25519 check and the others find it by identity. An entry holds the (key, digest) it
 * was checked against, compared by identity then by bytes, so a forged re-labelling (same
 * signature, another signer or value) never reuses an honest verdict. Weak keys: nothing is
 * kept alive by the cache. Entries per signature: at most VERIFY_PER_SIG (a forger re-labels
 * one signature a few times; beyond that it is checked again, never trusted).
 */
const VERIFY_PER_SIG = 4;
const verifyCache = new WeakMap<Uint8Array, { pk: Uint8Array; digest: Uint8Array; ok: boolean }[]>();
/** Bytes-keyed fallback for equal signatures in different objects (a re-signed identical vote). Bound: cleared when full. */
const VERIFY_CACHE_MAX = 200_000;
const verifyBytesCache = new Map<string, boolean>();
export function cachedVerify(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  let list = verifyCache.get(signature);
  if (list !== undefined) {
    for (const e of list) if (e.pk === publicKey && e.digest === digest) return e.ok;
    for (const e of list) if (sameBytes(e.pk, publicKey) && sameBytes(e.digest, digest)) return e.ok;
  }
  const k = bytesKey(publicKey, digest, signature);
  let ok = verifyBytesCache.get(k);
  if (ok === undefined) {
    ok = ed25519.verify(publicKey, digest, signature);
    if (verifyBytesCache.size >= VERIFY_CACHE_MAX) verifyBytesCache.clear();
    verifyBytesCache.set(k, ok);
  }
  if (list === undefined) {
    list = [];
    verifyCache.set(signature, list);
  }
  if (list.length < VERIFY_PER_SIG) list.push({ pk: publicKey, digest, ok });
  return ok;
}

/** Ed25519 is deterministic, so caching (key, digest) -> signature changes nothing but speed. Same bound. */
const signCache = new Map<string, Uint8Array>();
export function cachedSign(id: Identity, digest: Uint8Array): Uint8Array {
  const k = bytesKey(id.publicKey, digest);
  let sig = signCache.get(k);
  if (sig === undefined) {
    sig = ed25519.sign(id.secretKey, digest);
    if (signCache.size >= VERIFY_CACHE_MAX) signCache.clear();
    signCache.set(k, sig);
  }
  return sig;
}

