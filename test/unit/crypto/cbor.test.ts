import { describe, expect, it } from 'vitest';
import { encode as cborgEncode, rfc8949EncodeOptions } from 'cborg';
import { decodeCanonical, encodeCanonical, expectRecord } from '../../../crypto/cbor.js';
import { CryptoError } from '../../../crypto/errors.js';
import { prng, randomValue } from './random-values.js';

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

describe('short-text interning in the decoder', () => {
  it('returns the right string for 5,000 distinct short keys and values (forcing slot collisions), twice over', () => {
    const words = Array.from({ length: 5000 }, (_, i) => `k${i.toString(36)}${'z'.repeat(i % 12)}`);
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < words.length; i += 50) {
        const chunk = words.slice(i, i + 50);
        const value = Object.fromEntries(chunk.map((w) => [w, w]));
        expect(decodeCanonical(encodeCanonical(value))).toEqual(value);
      }
    }
  });

  it('still decodes short non-ASCII text strictly and the empty string as empty', () => {
    expect(decodeCanonical(encodeCanonical({ a: 'ü', b: '', c: 'é✓' }))).toEqual({ a: 'ü', b: '', c: 'é✓' });
    expect(codeOf(() => decodeCanonical(fromHex('62c328')))).toBe('ERR_CBOR_DECODE');
  });
});
