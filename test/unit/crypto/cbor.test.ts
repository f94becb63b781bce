import { describe, expect, it } from 'vitest';
import { encode as cborgEncode, rfc8949EncodeOptions } from 'cborg';
import { decodeCanonical, encodeCanonical, expectRecord } from '../../../crypto/cbor.js';
import { CryptoError } from '../../../crypto/errors.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CryptoError) return err.code;
    throw err;
  }
  return 'no error';
}

// A tiny seeded PRNG so the random values are the same on every run.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 7 : 9));
  switch (pick) {
    case 0:
      return (Math.floor(r() * 2 ** Math.floor(r() * 53)) * (r() < 0.3 ? -1 : 1)) || 0; // no -0: see its own test
    case 1: {
      const choices = [2 ** 60, -(2 ** 53), 0.5, -1.5, 1e300, 3.4028234663852886e38, 65504, 5.960464477539063e-8, 0.1, -2.5e-10, 1 / 3, 100000.5];
      return choices[Math.floor(r() * choices.length)];
    }
    case 2:
      return ['', 'a', 'vote', 'ünïcödé ✓', 'x'.repeat(30), 'y'.repeat(300)][Math.floor(r() * 6)];
    case 3:
      return new Uint8Array(Math.floor(r() * 40)).map(() => Math.floor(r() * 256));
    case 4:
      return r() < 0.5;
    case 5:
      return null;
    case 6:
      return Math.floor(r() * 30);
    case 7: {
      const n = Math.floor(r() * 5);
      return Array.from({ length: n }, () => randomValue(r, depth + 1));
    }
    default: {
      const n = Math.floor(r() * 6);
      const o: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) o[['a', 'b', 'aa', 'kind', 'z', 'body', 'ab', 'x'.repeat(25)][Math.floor(r() * 8)]!] = randomValue(r, depth + 1);
      return o;
    }
  }
}

describe('canonical CBOR encoding', () => {
  it('matches cborg with RFC 8949 options on 2,000 random values, and round-trips', () => {
    const r = prng(42);
    for (let i = 0; i < 2000; i++) {
      const v = randomValue(r, 0);
      const ours = encodeCanonical(v);
      expect(hex(ours)).toBe(hex(cborgEncode(v, rfc8949EncodeOptions)));
      expect(decodeCanonical(ours)).toEqual(v);
    }
  });

  it('sorts map keys by encoded bytes (shorter first), whatever the insertion order', () => {
    expect(hex(encodeCanonical({ bb: 1, a: 2, c: 3 }))).toBe(hex(encodeCanonical({ c: 3, a: 2, bb: 1 })));
    // {"a":2,"c":3,"bb":1}
    expect(hex(encodeCanonical({ bb: 1, a: 2, c: 3 }))).toBe('a3616102616303626262' + '01');
  });

  it('uses the shortest integer and float forms (RFC 8949 appendix A examples)', () => {
    const cases: [unknown, string][] = [
      [0, '00'],
      [23, '17'],
      [24, '1818'],
      [1000, '1903e8'],
      [1000000, '1a000f4240'],
      [-1, '20'],
      [-1000, '3903e7'],
      [1.5, 'f93e00'],
      [65504, '19ffe0'], // integral: an integer, not a float
      [100000.5, 'fa47c35040'],
      [1.1, 'fb3ff199999999999a'],
      [5.960464477539063e-8, 'f90001'],
      [-0, '00'], // -0 is the integer 0 (as cborg): signed zero does not survive, by design
      [2 ** 60, 'fa5d800000'], // integral beyond 2^53: a float
      [true, 'f5'],
      [null, 'f6'],
      ['IETF', '6449455446'],
      [new Uint8Array([1, 2, 3, 4]), '4401020304'],
    ];
    for (const [v, want] of cases) expect(hex(encodeCanonical(v)), String(v)).toBe(want);
  });

  it('refuses values it cannot encode deterministically', () => {
    for (const bad of [NaN, Infinity, -Infinity, undefined, new Map(), Symbol('x'), () => 1]) {
      expect(codeOf(() => encodeCanonical(bad))).toBe('ERR_CBOR_ENCODE');
    }
  });
});

describe('canonical CBOR decoding rejects everything but the one canonical form', () => {
  const nonCanonical: [string, string][] = [
    ['1817', 'integer 23 in two bytes'],
    ['190017', 'integer 23 in three bytes'],
    ['5f4101ff', 'indefinite-length byte string'],
    ['9f01ff', 'indefinite-length array'],
    ['a2616201616101', 'map keys out of order {"b":1,"a":1}'],
    ['a2616101616101', 'duplicate map key'],
    ['fa3fc00000', 'float 1.5 in single precision'],
    ['f93c00', 'integral value 1.0 as a float'],
    ['780161', 'one-character string with a one-byte length'],
  ];
  for (const [h, why] of nonCanonical) {
    it(`non-canonical: ${why}`, () => {
      expect(codeOf(() => decodeCanonical(fromHex(h)))).toBe('ERR_CBOR_NON_CANONICAL');
    });
  }

  const malformed: [string, string][] = [
    ['', 'empty input'],
    ['19', 'truncated integer'],
    ['44010203', 'truncated byte string'],
    ['83010203ff', 'trailing bytes'],
    ['c11a514b67b0', 'a tag'],
    ['f7', 'undefined'],
    ['f97e00', 'NaN'],
    ['a10101', 'integer map key'],
    ['62c328', 'invalid UTF-8'],
    ['9b0010000000000000', 'array count beyond the input'],
    ['1bffffffffffffffff', 'integer beyond 2^53'],
  ];
  for (const [h, why] of malformed) {
    it(`malformed: ${why}`, () => {
      expect(codeOf(() => decodeCanonical(fromHex(h)))).toBe('ERR_CBOR_DECODE');
    });
  }

  it('refuses oversize input before parsing it', () => {
    expect(codeOf(() => decodeCanonical(new Uint8Array(2048), 1024))).toBe('ERR_CBOR_OVERSIZE');
  });

  it('refuses nesting deeper than the bound without overflowing the stack', () => {
    const deep = new Uint8Array(100_000).fill(0x81); // [[[[...
    expect(codeOf(() => decodeCanonical(deep))).toBe('ERR_CBOR_DECODE');
  });

  it('does not let a "__proto__" key re-prototype the result', () => {
    // {"__proto__": {"polluted": 1}}
    const bytes = encodeCanonical(JSON.parse('{"__proto__":{"polluted":1}}'));
    expect(codeOf(() => decodeCanonical(bytes))).toBe('ERR_CBOR_DECODE');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('closed schemas', () => {
  it('accepts known fields and names the unknown one', () => {
    expect(expectRecord({ a: 1 }, ['a', 'b'], 'thing')).toEqual({ a: 1 });
    try {
      expectRecord({ a: 1, evil: 2 }, ['a', 'b'], 'thing');
      expect.unreachable();
    } catch (err) {
      expect((err as CryptoError).code).toBe('ERR_CBOR_UNKNOWN_FIELD');
      expect((err as CryptoError).data['field']).toBe('evil');
    }
    expect(codeOf(() => expectRecord([1], ['a'], 'thing'))).toBe('ERR_CBOR_SCHEMA');
    expect(codeOf(() => expectRecord(null, ['a'], 'thing'))).toBe('ERR_CBOR_SCHEMA');
  });
});
