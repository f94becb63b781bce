import { describe, expect, it } from 'vitest';
import { encodeCanonical, decodeCanonical } from '../../../crypto/cbor.js';
import { readSignedFast, withSignedEncoded } from '../../../crypto/envelope-codec.js';
import type { SignedFields } from '../../../crypto/envelope-codec.js';
import { createEnvelope, decodeEnvelope } from '../../../crypto/envelope.js';
import { identityFromSeed } from '../../../crypto/keys.js';
import { prng, randomValue } from './random-values.js';

const signer = identityFromSeed(new Uint8Array(32).fill(5));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function fieldsOf(r: () => number, i: number): SignedFields {
  return { version: 1, kind: i % 2 === 0 ? 'vote' : 'advert', cluster: 'lab-' + String(i % 7), signer: signer.publicKey, seq: i * 977, time: 1_763_000_000_000 + i, body: randomValue(r, 1) };
}

function generic(f: SignedFields): Uint8Array {
  return encodeCanonical({ v: f.version, k: f.kind, c: f.cluster, s: f.signer, q: f.seq, t: f.time, b: f.body });
}

describe('envelope signed-map codec (hand-written layout around the generic codec)', () => {
  it('writes the same bytes as the generic canonical encoder on 1,000 random bodies', () => {
    const r = prng(7);
    for (let i = 0; i < 1000; i++) {
      const f = fieldsOf(r, i);
      const mine = withSignedEncoded(f, (b) => hex(b));
      expect(mine).toBe(hex(generic(f)));
    }
  });

  it('writes the generic bytes past the (cluster, kind) cache bound too: 600 pairs, each twice, with non-ASCII ids', () => {
    const r = prng(11);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 600; i++) {
        const f = { ...fieldsOf(r, i), cluster: i % 5 === 0 ? `lab-é-${i}` : `lab-${i}`, kind: i % 3 === 0 ? 'vote' : `kind${i % 4}` };
        expect(withSignedEncoded(f, (b) => hex(b))).toBe(hex(generic(f)));
      }
    }
  });

  it('reads back exactly what it wrote, and the generic decoder agrees', () => {
    const r = prng(8);
    for (let i = 0; i < 300; i++) {
      const f = fieldsOf(r, i);
      const bytes = generic(f);
      const back = readSignedFast(bytes, 32);
      expect(back).not.toBeNull();
      const g = decodeCanonical(bytes) as Record<string, unknown>;
      expect(back).toEqual({ version: g['v'], kind: g['k'], cluster: g['c'], signer: g['s'], seq: g['q'], time: g['t'], body: g['b'] });
    }
  });

  it('returns null (leaving the verdict to the generic path) for every other layout', () => {
    const base = { v: 1, k: 'vote', c: 'lab-1', s: signer.publicKey, q: 1, t: 2, b: { x: 1 } };
    const variants: Record<string, unknown>[] = [
      { ...base, extra: 1 }, // unknown field
      { v: 1, k: 'vote', c: 'lab-1', s: signer.publicKey, q: 1, t: 2 }, // no body
      { ...base, q: -1 }, // negative seq
      { ...base, t: 1.5 }, // float time
      { ...base, c: 7 }, // cluster not text
      { ...base, s: new Uint8Array(31) }, // short signer
      { ...base, v: 'one' }, // version not an integer
    ];
    for (const v of variants) expect(readSignedFast(encodeCanonical(v), 32)).toBeNull();
    const ok = encodeCanonical(base);
    expect(readSignedFast(ok, 32)).not.toBeNull();
    expect(readSignedFast(Uint8Array.of(...ok, 0x00), 32)).toBeNull(); // trailing byte
    expect(readSignedFast(ok.subarray(0, ok.byteLength - 1), 32)).toBeNull(); // truncated
    const nonMinimal = Uint8Array.from(ok);
    // seq 1 as a one-byte argument (0x18 0x01) instead of the immediate 0x01
    const qAt = hex(ok).indexOf('6171') / 2 + 2;
    const stretched = Uint8Array.of(...nonMinimal.subarray(0, qAt), 0x18, 0x01, ...nonMinimal.subarray(qAt + 1));
    expect(readSignedFast(stretched, 32)).toBeNull();
  });

  it('leaves createEnvelope output decodable with equal fields through both paths', () => {
    const r = prng(9);
    for (let i = 0; i < 100; i++) {
      const f = fieldsOf(r, i);
      const wire = createEnvelope(signer, { kind: f.kind, cluster: f.cluster, seq: f.seq, time: f.time, body: f.body });
      const d = decodeEnvelope(wire, { kinds: [f.kind], cluster: f.cluster });
      expect(d.ok).toBe(true);
      if (d.ok) expect(d.envelope.body).toEqual(decodeCanonical(encodeCanonical(f.body)));
    }
  });

  it('refuses an undefined body by name instead of signing an envelope without one', () => {
    expect(() => createEnvelope(signer, { kind: 'vote', cluster: 'lab-1', seq: 1, time: 1, body: undefined })).toThrow(/body cannot be undefined/);
  });
});
