/**
 * BLAKE3 digests with per-message-kind domain separation.
 *
 * The implementation choice lives in this file alone (measured on this kind of
 * machine, Node 20, one core; see `npm run bench -- crypto`):
 * - keyed inputs of one chunk (<= 1 KiB: every vote, status and advert): our own
 *   WebAssembly function (blake3-small.ts: 0.37 µs for a 142-byte vote against
 *   hash-wasm's 0.55, 0.10 against 0.44 for 64 B), which also leaves the digest
 *   off the V8 heap for the signer (digestTransient);
 * - other small inputs (< 64 KiB): hash-wasm's BLAKE3 with ONE reusable
 *   hasher per context (~1 µs per 200 B; no per-call WASM allocation, unlike
 *   blake3-wasm 2.x's keyedHash, which leaks a hasher per call);
 * - large inputs: the native Rust BLAKE3 from @napi-rs/blake-hash (~3.9 GB/s on
 *   1 MiB vs ~1.0 GB/s for blake3-wasm 3.0 and ~0.45 GB/s for hash-wasm), fed in
 *   1 MiB chunks; if the native addon cannot load, hash-wasm is used in 1 MiB chunks.
 * blake3-wasm 3.0.0 is NOT used at run time: it needs an npm override to install,
 * its load() installs process-wide exception handlers that rethrow, one-shot
 * hash() of >= 10 MiB aborts its WASM module for good, and update() with a chunk
 * over 1 MiB returns a wrong digest silently. It stays a devDependency as a bench
 * baseline only. Tests compare all paths with the official vectors and @noble/hashes
 * from 0 B to 16 MiB, and the one-chunk path at every length from 0 to 1,025 B.
 *
 * Domain separation: digest(kind, m) = BLAKE3-keyed(K_ctx, m) where
 * K_ctx = BLAKE3-derive-key(context, "fednode digest key"). The context key is
 * derived once per context and its hasher reused.
 */
import { createRequire } from 'node:module';
import { createBLAKE3 } from 'hash-wasm';
import type { IHasher } from 'hash-wasm/dist/lib/WASMInterface.js';
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { createSmallKeyed, SMALL_KEY_SLOTS, SMALL_MAX_BYTES } from './blake3-small.js';
import { CryptoError } from './errors.js';

interface NativeHasher {
  update(input: Uint8Array): NativeHasher;
  digestBuffer(): Uint8Array;
}
interface NativeBlake3 {
  Blake3Hasher: { new (): NativeHasher; newKeyed(key: Uint8Array): NativeHasher };
}

function loadNative(): NativeBlake3 | null {
  if (process.env['FEDNODE_BLAKE3_NATIVE'] === '0') return null;
  try {
    const req = createRequire(import.meta.url);
    return req('@napi-rs/blake-hash') as NativeBlake3;
  } catch {
    return null; // no prebuilt binary for this platform: hash-wasm serves all sizes
  }
}

const native = loadNative();
/** Which implementation serves large inputs (reported by the bench and `doctor`). */
export const blake3LargeImplementation: 'native' | 'hash-wasm' = native === null ? 'hash-wasm' : 'native';

/** Inputs at or above this size go to the large-input path: below it the
 * per-call cost of the native binding dominates (~3 µs), above it throughput does. */
export const LARGE_INPUT_BYTES = 64 * 1024;
/** Chunk size fed to any streaming hasher (blake3-wasm 3.0 returns wrong digests
 * above 1 MiB per update; we keep every implementation under that bound). */
export const CHUNK_BYTES = 1024 * 1024;

const plainHasher: IHasher = await createBLAKE3(256);

function feed(h: { update(x: Uint8Array): unknown }, data: Uint8Array): void {
  for (let off = 0; off < data.byteLength; off += CHUNK_BYTES) {
    h.update(data.subarray(off, Math.min(off + CHUNK_BYTES, data.byteLength)));
  }
}

function wasmDigest(h: IHasher, data: Uint8Array): Uint8Array {
  h.init();
  // one update for the common case (every envelope): feed's subarray per chunk
  // is an allocation the small path does not need
  if (data.byteLength <= CHUNK_BYTES) h.update(data);
  else feed(h, data);
  return h.digest('binary');
}

/** Plain BLAKE3-256 of `data`. */
export function blake3(data: Uint8Array): Uint8Array {
  if (native !== null && data.byteLength >= LARGE_INPUT_BYTES) {
    const h = new native.Blake3Hasher();
    feed(h, data);
    return new Uint8Array(h.digestBuffer());
  }
  return wasmDigest(plainHasher, data);
}

/** A reusable keyed BLAKE3 hasher (keyed mode, 32-byte key). */
export interface KeyedDigest {
  readonly key: Uint8Array;
  /** 32-byte keyed BLAKE3 digest of `data` (a plain function: no `this`). */
  readonly digest: (data: Uint8Array) => Uint8Array;
  /**
   * The same digest, in memory off the V8 heap that the next digest call of any KeyedDigest
   * overwrites: for handing straight to native code (the signer) without a copy. Never keep it.
   */
  readonly digestTransient: (data: Uint8Array) => Uint8Array;
  /** Resolves when the reusable fast hasher is in place (before that, digests
   * are computed by @noble/hashes: equal results, slower). */
  readonly ready: Promise<void>;
}

/** Keyed one-chunk inputs (<= 1 KiB: every vote, status and advert) go to blake3-small.ts; null without WebAssembly. */
const small = createSmallKeyed();
let smallSlots = 0;
/** digestTransient's result where the small path does not serve (off the V8 heap too). */
const transientScratch = new Uint8Array(new ArrayBuffer(32));

export interface DigestDomain extends KeyedDigest {
  readonly context: string;
}

/** BLAKE3 derive-key mode (32-byte output): used once per context, so the
 * portable implementation is enough. */
export function deriveKey(context: string, material: Uint8Array): Uint8Array {
  return nobleBlake3(material, { context: new TextEncoder().encode(context) });
}

/** Keyed BLAKE3 with one reusable hasher: small inputs through hash-wasm,
 * large ones through the native addon (both fed in 1 MiB chunks). */
export function createKeyedDigest(key: Uint8Array): KeyedDigest {
  if (key.byteLength !== 32) throw new CryptoError('ERR_BLAKE3_CONTEXT', `BLAKE3 key must be 32 bytes, got ${key.byteLength}`, {});
  const k = new Uint8Array(key);
  let hasher: IHasher | null = null;
  // hash-wasm's factory is async while users are created synchronously (at
  // module load); until the reusable hasher is ready @noble/hashes computes the
  // same digest, so none is ever wrong or blocked.
  const ready = createBLAKE3(256, k).then((h) => {
    hasher = h;
  });
  // a key slot in the small path's WASM memory while there are slots (then hash-wasm serves all sizes)
  const slot = small !== null && smallSlots < SMALL_KEY_SLOTS ? smallSlots++ : -1;
  if (slot >= 0) small!.setKey(slot, k);
  const general = (data: Uint8Array): Uint8Array => {
    if (native !== null && data.byteLength >= LARGE_INPUT_BYTES) {
      const h = native.Blake3Hasher.newKeyed(k);
      feed(h, data);
      return new Uint8Array(h.digestBuffer());
    }
    if (hasher !== null) return wasmDigest(hasher, data);
    return nobleBlake3(data, { key: k });
  };
  return {
    key: k,
    ready,
    digest(data: Uint8Array): Uint8Array {
      if (slot >= 0 && data.byteLength <= SMALL_MAX_BYTES) return small!.digestView(slot, data).slice();
      return general(data);
    },
    digestTransient(data: Uint8Array): Uint8Array {
      if (slot >= 0 && data.byteLength <= SMALL_MAX_BYTES) return small!.digestView(slot, data);
      transientScratch.set(general(data));
      return transientScratch;
    },
  };
}

const DOMAIN_KEY_MATERIAL = new TextEncoder().encode('fednode digest key');
/** Contexts are a closed, small set fixed in code (one per message kind); the
 * bound only guards against a caller deriving contexts from input. */
const MAX_DOMAINS = 256;
const domains = new Map<string, DigestDomain>();
const CONTEXT_RE = /^fednode\/v[0-9]+\/[a-z0-9][a-z0-9.-]{0,63}$/;

/** The digest domain for `context` (e.g. `fednode/v1/vote`), created once. */
export function domain(context: string): DigestDomain {
  const found = domains.get(context);
  if (found !== undefined) return found;
  if (!CONTEXT_RE.test(context)) {
    throw new CryptoError('ERR_BLAKE3_CONTEXT', `invalid digest context '${context}' (expected fednode/v<N>/<kind>)`, { context });
  }
  if (domains.size >= MAX_DOMAINS) {
    throw new CryptoError('ERR_BLAKE3_CONTEXT', `too many digest contexts (limit ${MAX_DOMAINS})`, { context });
  }
  const kd = createKeyedDigest(deriveKey(context, DOMAIN_KEY_MATERIAL));
  // kd.digest uses no `this`: taken as is, not wrapped in one more call per message
  const d: DigestDomain = { context, key: kd.key, ready: kd.ready, digest: kd.digest, digestTransient: kd.digestTransient };
  domains.set(context, d);
  return d;
}
