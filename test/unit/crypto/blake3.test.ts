import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { blake3 as wasmBlake3 } from 'hash-wasm';
import { blake3, createKeyedDigest, deriveKey, domain, LARGE_INPUT_BYTES, CHUNK_BYTES } from '../../../crypto/blake3.js';
import { createSmallKeyed, SMALL_MAX_BYTES } from '../../../crypto/blake3-small.js';
import { CryptoError } from '../../../crypto/errors.js';

interface Vectors {
  key: string;
  context_string: string;
  cases: { input_len: number; hash: string; keyed_hash: string; derive_key: string }[];
}
const vectors = JSON.parse(readFileSync(new URL('../../fixtures/crypto/blake3-vectors.json', import.meta.url), 'utf8')) as Vectors;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
function input(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

describe('BLAKE3 against the official test vectors', () => {
  const key = new TextEncoder().encode(vectors.key);
  const keyed = createKeyedDigest(key);

  it('has vectors on both sides of the small/large split', () => {
    expect(vectors.cases.some((c) => c.input_len >= LARGE_INPUT_BYTES)).toBe(true);
    expect(vectors.cases.some((c) => c.input_len < LARGE_INPUT_BYTES)).toBe(true);
  });

  for (const c of vectors.cases) {
    it(`hash, keyed_hash and derive_key of ${c.input_len} bytes`, async () => {
      const data = input(c.input_len);
      expect(hex(blake3(data))).toBe(c.hash);
      // before and after the reusable hasher is ready (noble path, then hash-wasm/native)
      expect(hex(keyed.digest(data))).toBe(c.keyed_hash);
      await keyed.ready;
      expect(hex(keyed.digest(data))).toBe(c.keyed_hash);
      expect(hex(deriveKey(vectors.context_string, data))).toBe(c.derive_key);
    });
  }
});

describe('BLAKE3 agrees with @noble/hashes across the implementation boundaries', () => {
  // Sizes straddle the 64 KiB small/large split, the 1 MiB chunk size (where
  // blake3-wasm 3.0 goes wrong) and 10 MiB (where its one-shot hash aborts).
  const sizes = [0, 1, 63, 64, 65, 1024, LARGE_INPUT_BYTES - 1, LARGE_INPUT_BYTES, LARGE_INPUT_BYTES + 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 17, 10 * CHUNK_BYTES, 16 * CHUNK_BYTES];
  const key = new Uint8Array(32).map((_, i) => (i * 7 + 3) & 0xff);
  const keyed = createKeyedDigest(key);

  // The reference: @noble/hashes up to a few chunks; beyond, hash-wasm's one-shot BLAKE3 (an
  // independent build, ~20x faster than noble: 16 MiB through noble took 3.5 s of the unit tier).
  const NOBLE_MAX_BYTES = 4 * CHUNK_BYTES;
  for (const n of sizes) {
    it(`${n} bytes`, async () => {
      await keyed.ready;
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i++) data[i] = (i * 31 + (i >> 8)) & 0xff;
      const plain = n <= NOBLE_MAX_BYTES ? hex(nobleBlake3(data)) : await wasmBlake3(data);
      const keyedRef = n <= NOBLE_MAX_BYTES ? hex(nobleBlake3(data, { key })) : await wasmBlake3(data, 256, key);
      expect(hex(blake3(data))).toBe(plain);
      expect(hex(keyed.digest(data))).toBe(keyedRef);
    });
  }

  it('is stable under load: many interleaved keyed and plain digests stay correct', async () => {
    await keyed.ready;
    const other = createKeyedDigest(new Uint8Array(32).fill(1));
    await other.ready;
    for (let i = 0; i < 2000; i++) {
      const data = new Uint8Array((i * 37) % 3000).fill(i & 0xff);
      const a = keyed.digest(data);
      const b = other.digest(data);
      const c = blake3(data);
      if (i % 97 === 0) {
        expect(hex(a)).toBe(hex(nobleBlake3(data, { key })));
        expect(hex(b)).toBe(hex(nobleBlake3(data, { key: new Uint8Array(32).fill(1) })));
        expect(hex(c)).toBe(hex(nobleBlake3(data)));
      }
    }
  });
});

describe('the one-chunk keyed path (blake3-small.ts, WebAssembly generated at load)', () => {
  const keys = [new Uint8Array(32), new Uint8Array(32).fill(0xff), new Uint8Array(32).map((_, i) => (i * 13 + 5) & 0xff)];
  const data = (n: number, salt: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * 31 + salt + (i >> 6)) & 0xff);

  it('equals @noble/hashes for every length 0..1025 under three keys, through digest and digestTransient', () => {
    expect(SMALL_MAX_BYTES).toBe(1024);
    keys.forEach((key, k) => {
      const kd = createKeyedDigest(key);
      for (let n = 0; n <= SMALL_MAX_BYTES + 1; n++) {
        const m = data(n, k);
        const want = hex(nobleBlake3(m, { key }));
        expect(hex(kd.digest(m))).toBe(want);
        expect(hex(kd.digestTransient(m))).toBe(want);
      }
    });
  });

  it('keeps each key in its own slot, and digest() returns a copy the next call does not touch', () => {
    const a = createKeyedDigest(keys[1]!);
    const b = createKeyedDigest(keys[2]!);
    const m = data(142, 9);
    const fromA = a.digest(m);
    const transientB = b.digestTransient(m);
    expect(hex(transientB)).toBe(hex(nobleBlake3(m, { key: keys[2]! })));
    a.digestTransient(data(7, 1)); // overwrites the transient result, not the copy
    expect(hex(fromA)).toBe(hex(nobleBlake3(m, { key: keys[1]! })));
    expect(hex(transientB)).not.toBe(hex(nobleBlake3(m, { key: keys[2]! })));
  });

  it('refuses more than one chunk, a bad slot and a short key by name instead of hashing wrongly', () => {
    const s = createSmallKeyed()!;
    expect(() => s.digestView(0, new Uint8Array(SMALL_MAX_BYTES + 1))).toThrow(/at most 1024 bytes/);
    expect(() => s.digestView(256, new Uint8Array(1))).toThrow(/slot 256/);
    expect(() => s.setKey(-1, new Uint8Array(32))).toThrow(/key slot/);
    expect(() => s.setKey(0, new Uint8Array(31))).toThrow(/31 bytes/);
  });

  it('zero-pads each last block whatever the previous input left in WASM memory', () => {
    const s = createSmallKeyed();
    expect(s).not.toBeNull();
    s!.setKey(0, keys[2]!);
    s!.digestView(0, new Uint8Array(1024).fill(0xee)); // leave non-zero bytes behind
    for (const n of [0, 1, 63, 64, 65, 127, 128, 129, 1000]) {
      const m = data(n, 3);
      expect(hex(s!.digestView(0, m))).toBe(hex(nobleBlake3(m, { key: keys[2]! })));
    }
  });
});

describe('digest domains', () => {
  it('separate message kinds: same bytes, different digests', () => {
    const m = new TextEncoder().encode('same bytes');
    const a = domain('fednode/v1/vote').digest(m);
    const b = domain('fednode/v1/advert').digest(m);
    expect(hex(a)).not.toBe(hex(b));
    expect(hex(a)).not.toBe(hex(blake3(m)));
  });

  it('key the digest by BLAKE3 derive-key of the context', () => {
    const m = new Uint8Array([1, 2, 3]);
    const k = deriveKey('fednode/v1/vote', new TextEncoder().encode('fednode digest key'));
    expect(hex(domain('fednode/v1/vote').digest(m))).toBe(hex(nobleBlake3(m, { key: k })));
  });

  it('returns the same domain object for a context', () => {
    expect(domain('fednode/v1/vote')).toBe(domain('fednode/v1/vote'));
  });

  it('refuses malformed contexts with a typed error', () => {
    expect(() => domain('vote')).toThrow(CryptoError);
    try {
      domain('fednode/v1/BAD KIND');
    } catch (err) {
      expect((err as CryptoError).code).toBe('ERR_BLAKE3_CONTEXT');
    }
    expect(() => createKeyedDigest(new Uint8Array(31))).toThrow(/32 bytes/);
  });
});
