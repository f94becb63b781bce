import { describe, expect, it } from 'vitest';
import { createEnvelope, decodeEnvelope, openEnvelope, verifyDecoded, ENVELOPE_MAX_BYTES_DEFAULT } from '../../../crypto/envelope.js';
import type { DecodeResult, EnvelopeFields } from '../../../crypto/envelope.js';
import { encodeCanonical, decodeCanonical } from '../../../crypto/cbor.js';
import { identityFromSeed } from '../../../crypto/keys.js';
import { ed25519, nobleEd25519 } from '../../../crypto/ed25519.js';
import { domain } from '../../../crypto/blake3.js';
import { VerifiedCache } from '../../../crypto/verify-cache.js';
import { CryptoError } from '../../../crypto/errors.js';

const alice = identityFromSeed(new Uint8Array(32).fill(1));
const mallory = identityFromSeed(new Uint8Array(32).fill(2));
const fields: EnvelopeFields<{ height: number; value: Uint8Array }> = {
  kind: 'vote',
  cluster: 'lab-1',
  seq: 7,
  time: 1_763_000_000_000,
  body: { height: 12, value: new Uint8Array(32).fill(9) },
};
const opts = { kinds: ['vote'], cluster: 'lab-1' };

function failCode(r: DecodeResult): string {
  return r.ok ? 'ok' : r.code;
}

/** Split a wire envelope into its signed map and signature (test-side parser). */
function parts(wire: Uint8Array): { signed: Record<string, unknown>; sig: Uint8Array } {
  const outer = decodeCanonical(wire) as [Uint8Array, Uint8Array];
  return { signed: decodeCanonical(outer[0]) as Record<string, unknown>, sig: outer[1] };
}
/** Re-frame a (possibly modified) signed map with a signature. */
function reframe(signed: unknown, sig: Uint8Array): Uint8Array {
  return encodeCanonical([encodeCanonical(signed), sig]);
}
/** Sign a modified map properly as `who` (a well-formed but semantically bad envelope). */
function resign(signed: Record<string, unknown>, who = alice): Uint8Array {
  const bytes = encodeCanonical(signed);
  const kind = typeof signed['k'] === 'string' ? signed['k'] : 'vote';
  return encodeCanonical([bytes, ed25519.sign(who.secretKey, domain(`fednode/v1/${kind}`).digest(bytes))]);
}

describe('signed envelopes', () => {
  it('round-trip: create -> open returns every field and the signer', () => {
    const wire = createEnvelope(alice, fields);
    const r = openEnvelope<{ height: number; value: Uint8Array }>(wire, opts);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.envelope.kind).toBe('vote');
    expect(r.envelope.cluster).toBe('lab-1');
    expect(r.envelope.seq).toBe(7);
    expect(r.envelope.time).toBe(fields.time);
    expect(r.envelope.body.height).toBe(12);
    expect(Buffer.from(r.envelope.body.value).equals(Buffer.from(fields.body.value))).toBe(true);
    expect(r.envelope.signerId).toBe(alice.peerId);
    expect(r.digest.byteLength).toBe(32);
  });

  it('is deterministic: same fields, same bytes (Ed25519 and CBOR both deterministic)', () => {
    expect(Buffer.from(createEnvelope(alice, fields)).equals(Buffer.from(createEnvelope(alice, fields)))).toBe(true);
  });

  it('verifies with the reference implementation too', () => {
    const r = openEnvelope(createEnvelope(alice, fields), { ...opts, impl: nobleEd25519 });
    expect(r.ok).toBe(true);
  });

  describe('tampering with each field is caught', () => {
    const wire = createEnvelope(alice, fields);
    const { signed, sig } = parts(wire);
    const cases: [string, (m: Record<string, unknown>) => void][] = [
      ['seq', (m) => (m['q'] = 8)],
      ['time', (m) => (m['t'] = 1)],
      ['body', (m) => (m['b'] = { height: 13, value: new Uint8Array(32).fill(9) })],
      ['signer (claiming to be someone else)', (m) => (m['s'] = mallory.publicKey)],
    ];
    for (const [name, mutate] of cases) {
      it(name, () => {
        const m = { ...signed };
        mutate(m);
        expect(failCode(openEnvelope(reframe(m, sig), opts))).toBe('bad-signature');
      });
    }
    it('cluster (moved to another cluster)', () => {
      const m = { ...signed, c: 'lab-2' };
      expect(failCode(openEnvelope(reframe(m, sig), { kinds: ['vote'], cluster: 'lab-2' }))).toBe('bad-signature');
    });
    it('kind (replayed as another kind: the digest domain differs)', () => {
      const m = { ...signed, k: 'advert' };
      expect(failCode(openEnvelope(reframe(m, sig), { kinds: ['advert'], cluster: 'lab-1' }))).toBe('bad-signature');
    });
    it('signature bits', () => {
      for (let i = 0; i < 64; i += 7) {
        const bad = sig.slice();
        bad[i]! ^= 0x01;
        expect(failCode(openEnvelope(reframe(signed, bad), opts))).toBe('bad-signature');
      }
    });
    it('any single byte of the wire form', () => {
      for (let i = 0; i < wire.byteLength; i++) {
        const bad = wire.slice();
        bad[i]! ^= 0x04;
        const r = openEnvelope(bad, opts);
        expect(r.ok, `byte ${i}`).toBe(false);
      }
    });
  });

  describe('every rejection code', () => {
    it('oversize', () => {
      const r = openEnvelope(new Uint8Array(ENVELOPE_MAX_BYTES_DEFAULT + 1), opts);
      expect(failCode(r)).toBe('oversize');
      expect(failCode(openEnvelope(createEnvelope(alice, fields), { ...opts, maxBytes: 16 }))).toBe('oversize');
    });
    it('bad-encoding: garbage, empty, truncated, trailing bytes, wrong frame', () => {
      const wire = createEnvelope(alice, fields);
      expect(failCode(openEnvelope(new Uint8Array(0), opts))).toBe('bad-encoding');
      expect(failCode(openEnvelope(new TextEncoder().encode('{"kind":"vote"}'), opts))).toBe('bad-encoding');
      for (const cut of [1, 2, 10, wire.byteLength - 1]) expect(failCode(openEnvelope(wire.subarray(0, cut), opts)), `cut ${cut}`).toBe('bad-encoding');
      const longer = new Uint8Array(wire.byteLength + 1);
      longer.set(wire);
      expect(failCode(openEnvelope(longer, opts))).toBe('bad-encoding');
      const { signed, sig } = parts(wire);
      expect(failCode(openEnvelope(reframe(signed, sig.subarray(0, 63)), opts))).toBe('bad-encoding');
      expect(failCode(openEnvelope(encodeCanonical([encodeCanonical(signed), sig, 1]), opts))).toBe('bad-encoding');
    });
    it('bad-encoding: schema violations (missing body, version, seq type)', () => {
      const { signed } = parts(createEnvelope(alice, fields));
      const noBody = { ...signed };
      delete noBody['b'];
      expect(failCode(openEnvelope(resign(noBody), opts))).toBe('bad-encoding');
      expect(failCode(openEnvelope(resign({ ...signed, v: 2 }), opts))).toBe('bad-encoding');
      expect(failCode(openEnvelope(resign({ ...signed, q: -1 }), opts))).toBe('bad-encoding');
      expect(failCode(openEnvelope(resign({ ...signed, q: 1.5 }), opts))).toBe('bad-encoding');
      expect(failCode(openEnvelope(resign({ ...signed, t: 'now' }), opts))).toBe('bad-encoding');
    });
    it('non-canonical: the same map with its keys out of order', () => {
      const { signed, sig } = parts(createEnvelope(alice, fields));
      // hand-build the map with "v" first: a valid CBOR map, but not canonical
      const entries = Object.entries(signed).sort(([a], [b]) => (a === 'v' ? -1 : b === 'v' ? 1 : 0));
      const head = Uint8Array.of(0xa0 + entries.length);
      const chunks = [head, ...entries.flatMap(([k, v]) => [encodeCanonical(k), encodeCanonical(v)])];
      const body = Buffer.concat(chunks);
      const wire = Buffer.concat([Uint8Array.of(0x82), Uint8Array.of(0x58, body.byteLength), body, Uint8Array.of(0x58, 64), sig]);
      expect(failCode(openEnvelope(wire, opts))).toBe('non-canonical');
    });
    it('non-canonical: a non-minimal length in the frame', () => {
      const wire = createEnvelope(alice, fields);
      // signature length 64 written with a 2-byte length (0x59 0x00 0x40)
      const at = wire.byteLength - 66;
      expect(wire[at]).toBe(0x58);
      const bad = Buffer.concat([wire.subarray(0, at), Uint8Array.of(0x59, 0x00, 0x40), wire.subarray(at + 2)]);
      expect(failCode(openEnvelope(bad, opts))).toBe('non-canonical');
    });
    it('unknown-field', () => {
      const { signed } = parts(createEnvelope(alice, fields));
      expect(failCode(openEnvelope(resign({ ...signed, x: 1 }), opts))).toBe('unknown-field');
    });
    it('wrong-kind', () => {
      expect(failCode(openEnvelope(createEnvelope(alice, { ...fields, kind: 'advert' }), opts))).toBe('wrong-kind');
    });
    it('wrong-cluster', () => {
      expect(failCode(openEnvelope(createEnvelope(alice, { ...fields, cluster: 'other' }), opts))).toBe('wrong-cluster');
    });
    it('bad-signer', () => {
      const { signed } = parts(createEnvelope(alice, fields));
      expect(failCode(openEnvelope(resign({ ...signed, s: new Uint8Array(31) }), opts))).toBe('bad-signer');
      expect(failCode(openEnvelope(resign({ ...signed, s: 'alice' }), opts))).toBe('bad-signer');
    });
    it('bad-signature: signed by someone else than the named signer', () => {
      const { signed } = parts(createEnvelope(alice, fields));
      expect(failCode(openEnvelope(resign(signed, mallory), opts))).toBe('bad-signature');
    });
  });

  it('never throws on random garbage', () => {
    let s = 1;
    for (let i = 0; i < 3000; i++) {
      const n = (i * 13) % 400;
      const b = new Uint8Array(n);
      for (let j = 0; j < n; j++) {
        s = (s * 1103515245 + 12345) >>> 0;
        b[j] = s >>> 24;
      }
      if (i % 3 === 0 && n > 0) b[0] = 0x82;
      expect(() => openEnvelope(b, opts)).not.toThrow();
    }
  });

  it('decode does no signature work; verifyDecoded does, and the cache skips repeats', () => {
    const wire = createEnvelope(alice, fields);
    const d = decodeEnvelope(wire, opts);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    const cache = new VerifiedCache(2);
    expect(verifyDecoded(d, cache)).toBe(true);
    expect(cache.size).toBe(1);
    expect(verifyDecoded(d, cache)).toBe(true);
    expect(cache.hits).toBe(1);
    // a forged copy is never cached and never passes
    const { signed, sig } = parts(wire);
    const forged = decodeEnvelope(reframe({ ...signed, q: 99 }, sig), opts);
    expect(forged.ok && verifyDecoded(forged, cache)).toBe(false);
    expect(cache.size).toBe(1);
  });

  it('the verified cache is bounded and evicts the oldest', () => {
    const cache = new VerifiedCache(3);
    for (let i = 0; i < 10; i++) cache.add(new Uint8Array(32).fill(i));
    expect(cache.size).toBe(3);
    expect(cache.has(new Uint8Array(32).fill(9))).toBe(true);
    expect(cache.has(new Uint8Array(32).fill(0))).toBe(false);
    expect(() => new VerifiedCache(0)).toThrow(RangeError);
  });

  it('refuses to sign invalid local fields with a typed error', () => {
    for (const bad of [{ kind: 'Bad Kind' }, { cluster: '' }, { seq: -1 }, { seq: 1.5 }, { time: -5 }]) {
      try {
        createEnvelope(alice, { ...fields, ...bad });
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(CryptoError);
        expect((err as CryptoError).code).toBe('ERR_CBOR_SCHEMA');
      }
    }
  });
});
