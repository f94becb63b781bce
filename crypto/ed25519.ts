/**
 * Ed25519 behind one small interface, with three implementations:
 * - sodium-native (libsodium, native addon): the fastest measured here
 *   (sign ~56K/s, verify ~20K/s on one core) and the default when it loads;
 * - node:crypto (OpenSSL): the fallback when the addon cannot load;
 * - @noble/curves: the portable pure-JS reference the tests cross-check against.
 *
 * Verification rules must be the same on every node (a signature one node
 * accepts and another rejects would split consensus). All three are run in
 * strict RFC 8032 mode: noble with `zip215: false`; libsodium and OpenSSL reject
 * non-canonical S and encodings. libsodium additionally rejects small-order
 * public keys; no honest key is small-order, so honest traffic verifies alike.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { ed25519 as noble } from '@noble/curves/ed25519.js';

export const PUBLIC_KEY_BYTES = 32;
export const SECRET_KEY_BYTES = 64; // seed (32) || public key (32), as libsodium and libp2p
export const SIGNATURE_BYTES = 64;

export interface Ed25519 {
  readonly name: 'sodium-native' | 'node:crypto' | '@noble/curves';
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * Sign into `out` (exactly SIGNATURE_BYTES long), e.g. straight into a frame being built.
   * With sodium-native this saves the 64-byte result and, when `out` and `message` are views
   * of off-heap memory (an ArrayBuffer of their own, a slab), the copy V8 makes to move a
   * small on-heap typed array off the heap before native code may read or write it.
   */
  signInto(out: Uint8Array, secretKey: Uint8Array, message: Uint8Array): void;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

function wellFormed(publicKey: Uint8Array, signature: Uint8Array): boolean {
  return publicKey.byteLength === PUBLIC_KEY_BYTES && signature.byteLength === SIGNATURE_BYTES;
}

export const nobleEd25519: Ed25519 = {
  name: '@noble/curves',
  sign: (secretKey, message) => noble.sign(message, secretKey.subarray(0, 32)),
  signInto: (out, secretKey, message) => out.set(noble.sign(message, secretKey.subarray(0, 32))),
  verify: (publicKey, message, signature) => {
    if (!wellFormed(publicKey, signature)) return false;
    try {
      return noble.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false; // malformed point or scalar: not a valid signature
    }
  },
};

// node:crypto needs KeyObjects; building one costs more than a signature, so
// they are cached. Bound: one per member key in use (clusters are tens of
// nodes); 1,024 leaves room for churn, oldest evicted first.
const KEY_CACHE_MAX = 1024;
const privateKeys = new Map<string, KeyObject>();
const publicKeys = new Map<string, KeyObject>();
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function cached(map: Map<string, KeyObject>, raw: Uint8Array, make: () => KeyObject): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  let k = map.get(id);
  if (k === undefined) {
    if (map.size >= KEY_CACHE_MAX) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    k = make();
    map.set(id, k);
  }
  return k;
}

function nodeSignRaw(secretKey: Uint8Array, message: Uint8Array): Buffer {
  const seed = secretKey.subarray(0, 32);
  const key = cached(privateKeys, seed, () => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' }));
  return nodeSign(null, message, key);
}

export const nodeEd25519: Ed25519 = {
  name: 'node:crypto',
  sign: (secretKey, message) => new Uint8Array(nodeSignRaw(secretKey, message)),
  signInto: (out, secretKey, message) => out.set(nodeSignRaw(secretKey, message)),
  verify: (publicKey, message, signature) => {
    if (!wellFormed(publicKey, signature)) return false;
    try {
      const key = cached(publicKeys, publicKey, () => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' }));
      return nodeVerify(null, message, key, signature);
    } catch {
      return false;
    }
  },
};

interface Sodium {
  crypto_sign_detached(sig: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
  crypto_sign_verify_detached(sig: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

function loadSodium(): Sodium | null {
  if (process.env['FEDNODE_ED25519'] !== undefined && process.env['FEDNODE_ED25519'] !== 'sodium-native') return null;
  try {
    return createRequire(import.meta.url)('sodium-native') as Sodium;
  } catch {
    return null; // no prebuilt addon for this platform: fall back to node:crypto
  }
}

const sodium = loadSodium();

export const sodiumEd25519: Ed25519 | null =
  sodium === null
    ? null
    : {
        name: 'sodium-native',
        sign: (secretKey, message) => {
          const sig = new Uint8Array(SIGNATURE_BYTES);
          sodium.crypto_sign_detached(sig, message, secretKey);
          return sig;
        },
        signInto: (out, secretKey, message) => sodium.crypto_sign_detached(out, message, secretKey),
        verify: (publicKey, message, signature) => {
          if (!wellFormed(publicKey, signature)) return false;
          return sodium.crypto_sign_verify_detached(signature, message, publicKey);
        },
      };

function choose(): Ed25519 {
  const want = process.env['FEDNODE_ED25519'];
  if (want === 'node:crypto') return nodeEd25519;
  if (want === '@noble/curves') return nobleEd25519;
  return sodiumEd25519 ?? nodeEd25519;
}

/** The implementation every envelope uses: the fastest correct one that loads
 * (FEDNODE_ED25519 may force one, for tests and the benchmark). */
export const ed25519: Ed25519 = choose();

/** Public key (32 bytes) of a 32-byte seed (pure JS; key generation is rare). */
export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  return noble.getPublicKey(seed);
}
