// Unit tests of the pure routing policy and the accounting helper.
import { describe, it, expect } from 'vitest';
import { rankCandidates, tieHash, DEFAULT_POLICY_PARAMS, resolveParams } from '../../../routing/policy.js';
import type { AdvertLoad, Candidate } from '../../../routing/policy.js';
import { RoutingAccounting } from '../../../routing/accounting.js';
import { RoutingError } from '../../../routing/errors.js';

const load = (o: Partial<AdvertLoad> = {}): AdvertLoad => ({
  inFlight: 0, queued: 0, capacity: 4, gpuTempC: 60, gpuUtilPct: 0, powerSource: 'ac', batteryPct: null, profile: 'balanced', ageMs: 0, ...o,
});
const cand = (peerId: string, advert: AdvertLoad | null, models = ['m'], isLocal = false): Candidate => ({ peerId, isLocal, models, advert });
const order = (r: ReturnType<typeof rankCandidates>): string[] => r.ranked.map((c) => c.peerId);

describe('rankCandidates', () => {
  it('keeps only members serving the model and ranks by load per capacity', () => {
    const r = rankCandidates({
      model: 'm',
      candidates: [cand('a', load({ inFlight: 3 })), cand('b', load({ inFlight: 1 })), cand('c', load(), ['other']), cand('d', load({ inFlight: 2, capacity: 8 }))],
      own: {},
      seed: 1,
    });
    expect(order(r)).toEqual(['d', 'b', 'a']);
    expect(r.notServing).toEqual(['c']);
  });

  it('returns an empty ranking when nobody serves the model', () => {
    const r = rankCandidates({ model: 'x', candidates: [cand('a', load())], own: {}, seed: 0 });
    expect(r.ranked).toEqual([]);
    expect(r.notServing).toEqual(['a']);
  });

  it('does not double count our own requests already in the advert', () => {
    // a's advert shows 4 in flight, all four of them ours (counted when the advert came in);
    // b's advert shows 2 from others and none of ours. a is really less loaded by others.
    const own = new Map([['a', { outstanding: 4, outstandingAtAdvert: 4 }]]);
    const r = rankCandidates({ model: 'm', candidates: [cand('a', load({ inFlight: 4 })), cand('b', load({ inFlight: 2 }))], own, seed: 1, params: { stalenessHalfLifeMs: 1e9 } });
    const a = r.ranked.find((c) => c.peerId === 'a')!;
    expect(a.estimatedLoad).toBe(4); // 4 - 4 ours at advert + 4 ours now, not 8
    // requests we sent since the advert count on top
    const r2 = rankCandidates({ model: 'm', candidates: [cand('a', load({ inFlight: 1 })), cand('b', load({ inFlight: 1 }))], own: { a: { outstanding: 3, outstandingAtAdvert: 0 } }, seed: 1 });
    expect(order(r2)).toEqual(['b', 'a']);
  });

  it('puts low-battery and too-hot members in the fallback tier, used only when nothing else serves', () => {
    const hot = cand('hot', load({ gpuTempC: 92 }));
    const flat = cand('flat', load({ powerSource: 'battery', batteryPct: 10 }));
    const busy = cand('busy', load({ inFlight: 40 }));
    const r = rankCandidates({ model: 'm', candidates: [hot, flat, busy], own: {}, seed: 3 });
    expect(order(r)[0]).toBe('busy');
    expect(r.ranked.slice(1).every((c) => c.tier === 'fallback')).toBe(true);
    expect(r.ranked.find((c) => c.peerId === 'hot')!.reasons[0]).toContain('92 C > ceiling 85 C');
    expect(r.ranked.find((c) => c.peerId === 'flat')!.reasons[0]).toContain('battery 10% < floor 20%');
    // only fallbacks left: still served
    const only = rankCandidates({ model: 'm', candidates: [hot, flat], own: {}, seed: 3 });
    expect(only.ranked).toHaveLength(2);
    // configurable floor/ceiling
    const relaxed = rankCandidates({ model: 'm', candidates: [hot, flat], own: {}, seed: 3, params: { tempCeilingC: 95, batteryFloorPct: 5 } });
    expect(relaxed.ranked.every((c) => c.tier === 'preferred')).toBe(true);
  });

  it('treats stale or missing adverts as fallback but the local node with no advert as preferred', () => {
    const r = rankCandidates({
      model: 'm',
      candidates: [cand('old', load({ ageMs: 60_000 })), cand('none', null), cand('self', null, ['m'], true)],
      own: {},
      seed: 1,
    });
    expect(r.ranked[0]).toMatchObject({ peerId: 'self', tier: 'preferred', isLocal: true });
    expect(r.ranked.slice(1).map((c) => c.tier)).toEqual(['fallback', 'fallback']);
  });

  it('uses power profile as a capacity factor (turbo beats eco at equal load)', () => {
    const r = rankCandidates({ model: 'm', candidates: [cand('eco', load({ inFlight: 2, profile: 'eco' })), cand('turbo', load({ inFlight: 2, profile: 'turbo' }))], own: {}, seed: 1 });
    expect(order(r)).toEqual(['turbo', 'eco']);
  });

  it('breaks ties by the seed deterministically, and different seeds spread the choice', () => {
    const cs = ['a', 'b', 'c', 'd', 'e'].map((p) => cand(p, load()));
    const first = (seed: number): string => order(rankCandidates({ model: 'm', candidates: cs, own: {}, seed }))[0]!;
    expect(first(42)).toBe(first(42));
    const picks = new Set(Array.from({ length: 50 }, (_, i) => first(i)));
    expect(picks.size).toBe(5);
    expect(tieHash(1, 'a')).not.toBe(tieHash(2, 'a'));
  });

  it('blends old adverts toward the mean (an old "idle" report is trusted less)', () => {
    const cs = [cand('a', load({ inFlight: 0, ageMs: 4000 })), cand('b', load({ inFlight: 8 }))];
    const a = rankCandidates({ model: 'm', candidates: cs, own: {}, seed: 1 }).ranked.find((c) => c.peerId === 'a')!;
    expect(a.estimatedLoad).toBeGreaterThan(3.5); // mean 4, trust 2^-8
    expect(a.estimatedLoad).toBeLessThan(4);
  });

  it('validates params with a typed error', () => {
    expect(() => resolveParams({ batteryFloorPct: -1 })).toThrow(RoutingError);
    expect(() => resolveParams({ profileFactor: { ...DEFAULT_POLICY_PARAMS.profileFactor, eco: 0 } })).toThrow(/profile factor eco/);
  });
});

describe('RoutingAccounting', () => {
  it('counts sent/finished, snapshots at adverts, never goes negative', () => {
    const acc = new RoutingAccounting();
    acc.onSent('a');
    acc.onSent('a');
    acc.onAdvert('a', 1);
    acc.onSent('a');
    expect(acc.get('a')).toEqual({ outstanding: 3, outstandingAtAdvert: 2 });
    acc.onAdvert('a', 1); // same seq: no-op
    expect(acc.get('a').outstandingAtAdvert).toBe(2);
    acc.onFinished('a');
    acc.onFinished('a');
    expect(acc.get('a')).toEqual({ outstanding: 1, outstandingAtAdvert: 1 });
    acc.onFinished('a');
    acc.onFinished('a');
    expect(acc.get('a').outstanding).toBe(0);
    expect(acc.get('zzz')).toEqual({ outstanding: 0, outstandingAtAdvert: 0 });
  });

  it('is bounded: evicts idle peers first', () => {
    const acc = new RoutingAccounting(3);
    acc.onSent('busy');
    acc.onAdvert('idle1', 1);
    acc.onAdvert('idle2', 1);
    acc.onSent('new');
    expect(acc.size).toBe(3);
    expect(acc.get('busy').outstanding).toBe(1);
    expect(acc.snapshot()['idle1']).toBeUndefined();
    expect(() => new RoutingAccounting(0)).toThrow(RoutingError);
  });
});
