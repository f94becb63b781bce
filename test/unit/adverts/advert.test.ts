import { describe, expect, it } from 'vitest';
import { encodeCanonical } from '../../../crypto/cbor.js';
import { createEnvelope } from '../../../crypto/envelope.js';
import { identityFromSeed } from '../../../crypto/keys.js';
import { VerifiedCache } from '../../../crypto/verify-cache.js';
import { ADVERT_FIELDS, ADVERT_LIMITS, AdvertError, encodeAdvertBody, parseAdvertBody, type AdvertBody } from '../../../node/adverts/advert.js';
import { ADVERT_KIND, ADVERT_MAX_BYTES, createAdvertEnvelope, decodeAdvertEnvelope, openAdvertEnvelope } from '../../../node/adverts/envelope.js';
import { sampleBody } from '../../helpers/adverts.js';

const alice = identityFromSeed(new Uint8Array(32).fill(1));
const mallory = identityFromSeed(new Uint8Array(32).fill(2));
const CLUSTER = 'lab-cluster-1';

function mutate(f: (b: Record<string, unknown>) => void): unknown {
  const b = structuredClone(sampleBody()) as unknown as Record<string, unknown>;
  f(b);
  return b;
}

function rejects(value: unknown, code: string, field: string): void {
  const r = parseAdvertBody(value);
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.code).toBe(code);
    expect(r.field).toBe(field);
  }
}

describe('advert body schema', () => {
  it('accepts a valid body and returns the same data', () => {
    expect(parseAdvertBody(sampleBody())).toEqual({ ok: true, body: sampleBody() });
  });

  it('accepts a body of nulls where readings are missing (nothing invented)', () => {
    const b = sampleBody({
      gpus: [{ index: 0, name: 'Tesla T4', memoryTotalMiB: null, memoryUsedMiB: null, utilizationPct: null, temperatureC: null, powerDrawW: null, powerLimitW: null }],
      cpuLoad: null,
      memUsedBytes: null,
      memTotalBytes: null,
      power: { source: null, batteryPct: null, charging: null },
      cpuPackageW: null,
      apiUrl: null,
    });
    expect(parseAdvertBody(b).ok).toBe(true);
  });

  it('rejects unknown fields at every level, by name', () => {
    rejects(mutate((b) => (b['extra'] = 1)), 'unknown-field', 'extra');
    rejects(mutate((b) => ((b['power'] as Record<string, unknown>)['voltage'] = 12)), 'unknown-field', 'power.voltage');
    rejects(mutate((b) => (((b['gpus'] as unknown[])[0] as Record<string, unknown>)['uuid'] = 'GPU-x')), 'unknown-field', 'gpus[0].uuid');
  });

  it('rejects missing fields and non-maps', () => {
    rejects(mutate((b) => delete b['capacity']), 'missing-field', 'capacity');
    rejects(null, 'not-a-map', '');
    rejects([1, 2], 'not-a-map', '');
    rejects(new Uint8Array(3), 'not-a-map', '');
    rejects(mutate((b) => (b['power'] = 'ac')), 'not-a-map', 'power');
  });

  it('rejects out-of-range numbers (percent 0..100, non-negative counts, temperatures)', () => {
    rejects(mutate((b) => (((b['gpus'] as unknown[])[0] as Record<string, unknown>)['utilizationPct'] = 100.5)), 'out-of-range', 'gpus[0].utilizationPct');
    rejects(mutate((b) => ((b['power'] as Record<string, unknown>)['batteryPct'] = -1)), 'out-of-range', 'power.batteryPct');
    rejects(mutate((b) => (b['inFlight'] = -1)), 'out-of-range', 'inFlight');
    rejects(mutate((b) => (b['queued'] = ADVERT_LIMITS.maxRequests + 1)), 'out-of-range', 'queued');
    rejects(mutate((b) => (((b['gpus'] as unknown[])[0] as Record<string, unknown>)['temperatureC'] = 250)), 'out-of-range', 'gpus[0].temperatureC');
    rejects(mutate((b) => (b['cpuPackageW'] = 5000)), 'out-of-range', 'cpuPackageW');
    rejects(mutate((b) => (b['cpuLoad'] = -0.1)), 'out-of-range', 'cpuLoad');
  });

  it('rejects wrong types: non-integer counts, NaN, bad enums, bad URLs', () => {
    rejects(mutate((b) => (b['capacity'] = 2.5)), 'wrong-type', 'capacity');
    rejects(mutate((b) => (b['cpuLoad'] = Number.NaN)), 'wrong-type', 'cpuLoad');
    rejects(mutate((b) => (b['profile'] = 'warp')), 'wrong-type', 'profile');
    rejects(mutate((b) => ((b['power'] as Record<string, unknown>)['source'] = 'solar')), 'wrong-type', 'power.source');
    rejects(mutate((b) => ((b['power'] as Record<string, unknown>)['charging'] = 1)), 'wrong-type', 'power.charging');
    rejects(mutate((b) => (b['profilePinned'] = 'yes')), 'wrong-type', 'profilePinned');
    rejects(mutate((b) => (b['apiUrl'] = 'ftp://x/')), 'wrong-type', 'apiUrl');
    rejects(mutate((b) => (b['apiUrl'] = 'not a url')), 'wrong-type', 'apiUrl');
    rejects(mutate((b) => (b['models'] = ['ok', 'bad\u001b[31m'])), 'wrong-type', 'models[1]');
  });

  it('rejects oversize arrays and strings at their stated bounds (and accepts the bound itself)', () => {
    const models = Array.from({ length: ADVERT_LIMITS.maxModels }, (_, i) => `m${i}`);
    expect(parseAdvertBody(sampleBody({ models })).ok).toBe(true);
    rejects(sampleBody({ models: [...models, 'one-more'] }), 'too-long', 'models');
    const gpu = sampleBody().gpus[0]!;
    const gpus = Array.from({ length: ADVERT_LIMITS.maxGpus + 1 }, (_, index) => ({ ...gpu, index }));
    rejects(sampleBody({ gpus }), 'too-long', 'gpus');
    rejects(sampleBody({ models: ['x'.repeat(ADVERT_LIMITS.maxModelChars + 1)] }), 'too-long', 'models[0]');
    expect(parseAdvertBody(sampleBody({ models: ['x'.repeat(ADVERT_LIMITS.maxModelChars)] })).ok).toBe(true);
    rejects(sampleBody({ apiUrl: `http://h/${'a'.repeat(ADVERT_LIMITS.maxApiUrlChars)}` }), 'too-long', 'apiUrl');
  });

  it('rejects duplicates and inconsistent memory', () => {
    rejects(sampleBody({ models: ['a', 'a'] }), 'duplicate', 'models');
    const gpu = sampleBody().gpus[0]!;
    rejects(sampleBody({ gpus: [gpu, gpu] }), 'duplicate', 'gpus');
    rejects(sampleBody({ memUsedBytes: 10, memTotalBytes: 5 }), 'inconsistent', 'memUsedBytes');
  });

  it('addrs: canonical dialable TCP addresses only; wildcards, garbage, /p2p, duplicates and more than 8 are rejected by index', () => {
    const { addrs: _a, ...old } = sampleBody();
    expect(parseAdvertBody(old)).toEqual({ ok: true, body: old }); // an older node's body: no addrs, still valid
    expect(parseAdvertBody(sampleBody({ addrs: ['/ip6/fd00::5/tcp/4701', '/dns4/gpu-box.lan/tcp/4701'] })).ok).toBe(true);
    rejects(mutate((b) => (b['addrs'] = ['/ip4/0.0.0.0/tcp/4701'])), 'wrong-type', 'addrs[0]');
    rejects(mutate((b) => (b['addrs'] = ['/ip4/10.0.0.2/tcp/4701', '/ip6/::/tcp/4701'])), 'wrong-type', 'addrs[1]');
    rejects(mutate((b) => (b['addrs'] = ['not an address'])), 'wrong-type', 'addrs[0]');
    rejects(mutate((b) => (b['addrs'] = ['/ip4/10.0.0.2/udp/4701'])), 'wrong-type', 'addrs[0]');
    rejects(mutate((b) => (b['addrs'] = ['/ip4/10.0.0.2/tcp/0'])), 'wrong-type', 'addrs[0]');
    rejects(mutate((b) => (b['addrs'] = [`/ip4/10.0.0.2/tcp/1/p2p/${alice.peerId}`])), 'wrong-type', 'addrs[0]');
    rejects(mutate((b) => (b['addrs'] = [7])), 'wrong-type', 'addrs[0]');
    rejects(mutate((b) => (b['addrs'] = ['/ip4/10.0.0.2/tcp/1', '/ip4/10.0.0.2/tcp/1'])), 'duplicate', 'addrs');
    rejects(mutate((b) => (b['addrs'] = Array.from({ length: 9 }, (_, i) => `/ip4/10.0.0.${i + 1}/tcp/1`))), 'too-long', 'addrs');
    expect(parseAdvertBody(sampleBody({ addrs: Array.from({ length: 8 }, (_, i) => `/ip4/10.0.0.${i + 1}/tcp/1`) })).ok).toBe(true);
  });

  it('encodeAdvertBody drops extra properties of the caller object and throws a typed error on invalid input', () => {
    const withExtra = { ...sampleBody(), debug: 'x' } as AdvertBody;
    expect(Object.keys(encodeAdvertBody(withExtra))).toEqual([...ADVERT_FIELDS]);
    try {
      encodeAdvertBody(sampleBody({ inFlight: -3 }));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AdvertError);
      expect((err as AdvertError).code).toBe('ERR_ADVERT_INVALID');
      expect((err as AdvertError).data).toMatchObject({ reason: 'out-of-range', field: 'inFlight' });
    }
  });
});

describe('advert envelope', () => {
  it('round trip: signed by the node, opened by a peer with the same body, seq, time and signer', () => {
    const bytes = createAdvertEnvelope(alice, { cluster: CLUSTER, seq: 7, timeMs: 1_700_000_000_123, body: sampleBody() });
    const r = openAdvertEnvelope(bytes, { cluster: CLUSTER });
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.advert).toEqual({ peerId: alice.peerId, seq: 7, timeMs: 1_700_000_000_123, body: sampleBody() });
  });

  it('a forged signature (one byte flipped, or another key re-signing with alice as signer) is rejected', () => {
    const bytes = createAdvertEnvelope(alice, { cluster: CLUSTER, seq: 1, timeMs: 1, body: sampleBody() });
    const flipped = bytes.slice();
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
    expect(openAdvertEnvelope(flipped, { cluster: CLUSTER })).toMatchObject({ ok: false, code: 'bad-signature' });
    // mallory signs with her key but claims alice's public key as signer
    const forged = createEnvelope({ ...mallory, publicKey: alice.publicKey, peerId: alice.peerId }, { kind: ADVERT_KIND, cluster: CLUSTER, seq: 2, time: 2, body: sampleBody() });
    expect(openAdvertEnvelope(forged, { cluster: CLUSTER })).toMatchObject({ ok: false, code: 'bad-signature' });
    // a body changed after signing (same signature) fails too
    const tampered = createAdvertEnvelope(alice, { cluster: CLUSTER, seq: 1, timeMs: 1, body: sampleBody({ capacity: 99 }) });
    const sigA = bytes.subarray(bytes.length - 64);
    const spliced = tampered.slice();
    spliced.set(sigA, spliced.length - 64);
    expect(openAdvertEnvelope(spliced, { cluster: CLUSTER })).toMatchObject({ ok: false, code: 'bad-signature' });
  });

  it('the cheap decode skips the signature; the verified cache makes the second open free', () => {
    const bytes = createAdvertEnvelope(alice, { cluster: CLUSTER, seq: 3, timeMs: 3, body: sampleBody() });
    const cache = new VerifiedCache(4);
    expect(openAdvertEnvelope(bytes, { cluster: CLUSTER, cache }).ok).toBe(true);
    expect(cache.size).toBe(1);
    expect(openAdvertEnvelope(bytes, { cluster: CLUSTER, cache }).ok).toBe(true);
    expect(cache.hits).toBe(1);
    const flipped = bytes.slice();
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1;
    expect(decodeAdvertEnvelope(flipped, { cluster: CLUSTER }).ok).toBe(true); // no signature check here
  });

  it('wrong cluster, wrong kind, garbage and oversize are rejected with their codes', () => {
    const bytes = createAdvertEnvelope(alice, { cluster: CLUSTER, seq: 1, timeMs: 1, body: sampleBody() });
    expect(openAdvertEnvelope(bytes, { cluster: 'other' })).toMatchObject({ ok: false, code: 'wrong-cluster' });
    const vote = createEnvelope(alice, { kind: 'vote', cluster: CLUSTER, seq: 1, time: 1, body: {} });
    expect(openAdvertEnvelope(vote, { cluster: CLUSTER })).toMatchObject({ ok: false, code: 'wrong-kind' });
    expect(openAdvertEnvelope(new Uint8Array([1, 2, 3]), { cluster: CLUSTER })).toMatchObject({ ok: false, code: 'bad-encoding' });
    expect(openAdvertEnvelope(new Uint8Array(ADVERT_MAX_BYTES + 1), { cluster: CLUSTER })).toMatchObject({ ok: false, code: 'oversize' });
  });

  it('a validly signed envelope with an invalid body is rejected as bad-body (a member sending garbage)', () => {
    const bad = createEnvelope(alice, { kind: ADVERT_KIND, cluster: CLUSTER, seq: 1, time: 1, body: { ...sampleBody(), extra: true } });
    expect(openAdvertEnvelope(bad, { cluster: CLUSTER })).toMatchObject({ ok: false, code: 'bad-body', bodyError: 'unknown-field' });
    const outOfRange = createEnvelope(alice, { kind: ADVERT_KIND, cluster: CLUSTER, seq: 1, time: 1, body: { ...sampleBody(), queued: -5 } });
    expect(openAdvertEnvelope(outOfRange, { cluster: CLUSTER })).toMatchObject({ ok: false, code: 'bad-body', bodyError: 'out-of-range' });
  });

  it('a body at every bound fits under ADVERT_MAX_BYTES', () => {
    const gpu = { index: 0, name: 'G'.repeat(ADVERT_LIMITS.maxGpuNameChars), memoryTotalMiB: 143771.5, memoryUsedMiB: 143770.5, utilizationPct: 99.5, temperatureC: 85.5, powerDrawW: 699.99, powerLimitW: 700.01 };
    const body = sampleBody({
      models: Array.from({ length: ADVERT_LIMITS.maxModels }, (_, i) => `${i}`.padStart(ADVERT_LIMITS.maxModelChars, 'm')),
      gpus: Array.from({ length: ADVERT_LIMITS.maxGpus }, (_, index) => ({ ...gpu, index })),
      apiUrl: `http://${'h'.repeat(ADVERT_LIMITS.maxApiUrlChars - 7)}`,
      addrs: Array.from({ length: 8 }, (_, i) => `/dns4/${String(i).padStart(230, 'h')}/tcp/65535`),
    });
    const size = encodeCanonical(encodeAdvertBody(body)).byteLength;
    expect(size).toBeLessThan(ADVERT_MAX_BYTES - 512);
    const bytes = createAdvertEnvelope(alice, { cluster: CLUSTER, seq: 1, timeMs: 1, body });
    expect(openAdvertEnvelope(bytes, { cluster: CLUSTER }).ok).toBe(true);
  });

  it('refuses to sign an invalid body or a negative seq', () => {
    expect(() => createAdvertEnvelope(alice, { cluster: CLUSTER, seq: 1, timeMs: 1, body: sampleBody({ capacity: -1 }) })).toThrow(AdvertError);
    expect(() => createAdvertEnvelope(alice, { cluster: CLUSTER, seq: -1, timeMs: 1, body: sampleBody() })).toThrow(/seq/);
  });
});
