// Unit tests of the pure routing policy (routing/policy.ts): every term can move a ranking,
// the tiers, the accounting corrections, the energy term's fade with cluster load, RTT handling.
import { describe, it, expect } from 'vitest';
import { rankCandidates, tieHash, resolveParams, DEFAULT_POLICY_PARAMS } from '../../../routing/policy.js';
import type { AdvertLoad, Candidate, PolicyParamsInput, RankResult } from '../../../routing/policy.js';
import { ROUTE_WEIGHT_NAMES } from '../../../base/route-weights.js';
import type { RouteWeightName } from '../../../base/route-weights.js';
import { RoutingError } from '../../../routing/errors.js';

const load = (o: Partial<AdvertLoad> = {}): AdvertLoad => ({
  inFlight: 0, queued: 0, capacity: 4, gpuTempC: 60, gpuUtilPct: 0, powerSource: 'ac', batteryPct: null, profile: 'balanced', joulesPerToken: null, ageMs: 0, ...o,
});
const cand = (peerId: string, advert: AdvertLoad | null, o: Partial<Candidate> = {}): Candidate => ({ peerId, isLocal: false, models: ['m'], advert, rttMs: 1, ...o });
const rank = (candidates: Candidate[], params?: PolicyParamsInput, seed = 1): RankResult => rankCandidates({ model: 'm', candidates, own: {}, seed, ...(params ? { params } : {}) });
const order = (r: RankResult): string[] => r.ranked.map((c) => c.peerId);
const byId = (r: RankResult, id: string) => r.ranked.find((c) => c.peerId === id)!;

describe('rankCandidates: serving, accounting, tiers', () => {
  it('keeps only members serving the model and ranks by load per capacity', () => {
    const r = rank([cand('a', load({ inFlight: 3 })), cand('b', load({ inFlight: 1 })), cand('c', load(), { models: ['other'] }), cand('d', load({ inFlight: 2, capacity: 8 }))]);
    expect(order(r)).toEqual(['d', 'b', 'a']);
    expect(r.notServing).toEqual(['c']);
    expect(rankCandidates({ model: 'x', candidates: [cand('a', load())], own: {}, seed: 0 }).ranked).toEqual([]);
  });

  it('does not double count our own requests already in the advert', () => {
    const own = new Map([['a', { outstanding: 4, outstandingAtAdvert: 4 }]]);
    const r = rankCandidates({ model: 'm', candidates: [cand('a', load({ inFlight: 4 })), cand('b', load({ inFlight: 2 }))], own, seed: 1, params: { stalenessHalfLifeMs: 1e9 } });
    expect(byId(r, 'a').estimatedLoad).toBe(4); // 4 - 4 ours at advert + 4 ours now, not 8
    const r2 = rankCandidates({ model: 'm', candidates: [cand('a', load({ inFlight: 1 })), cand('b', load({ inFlight: 1 }))], own: { a: { outstanding: 3, outstandingAtAdvert: 0 } }, seed: 1 });
    expect(order(r2)).toEqual(['b', 'a']);
  });

  it('puts low-battery and too-hot members in the fallback tier, used only when nothing else serves; the floor and ceiling are params', () => {
    const hot = cand('hot', load({ gpuTempC: 92 }));
    const flat = cand('flat', load({ powerSource: 'battery', batteryPct: 10 }));
    const busy = cand('busy', load({ inFlight: 40 }));
    const r = rank([hot, flat, busy], undefined, 3);
    expect(order(r)[0]).toBe('busy');
    expect(r.ranked.slice(1).every((c) => c.tier === 'fallback')).toBe(true);
    expect(byId(r, 'hot').reasons).toEqual(['gpu 92 C > ceiling 85 C']);
    expect(byId(r, 'flat').reasons).toEqual(['battery 10% < floor 20%']);
    expect(rank([hot, flat]).ranked).toHaveLength(2);
    expect(rank([hot, flat], { tempCeilingC: 95, batteryFloorPct: 5 }).ranked.every((c) => c.tier === 'preferred')).toBe(true);
    // the local node is judged by exactly the same rules
    const selfHot = rank([cand('self', load({ gpuTempC: 92 }), { isLocal: true, rttMs: 0 }), cand('r', load({ inFlight: 3 }))]);
    expect(order(selfHot)).toEqual(['r', 'self']);
    expect(byId(selfHot, 'self')).toMatchObject({ tier: 'fallback', reasons: ['gpu 92 C > ceiling 85 C'] });
  });

  it('treats stale or missing adverts as fallback but the local node with no advert as preferred', () => {
    const r = rank([cand('old', load({ ageMs: 60_000 })), cand('none', null), cand('self', null, { isLocal: true })]);
    expect(r.ranked[0]).toMatchObject({ peerId: 'self', tier: 'preferred', isLocal: true, rttMs: 0, rttSource: 'local' });
    expect(r.ranked.slice(1).map((c) => c.tier)).toEqual(['fallback', 'fallback']);
  });

  it('breaks ties by the seed deterministically, and different seeds spread the choice', () => {
    const cs = ['a', 'b', 'c', 'd', 'e'].map((p) => cand(p, load()));
    const first = (seed: number): string => order(rank(cs, undefined, seed))[0]!;
    expect(first(42)).toBe(first(42));
    expect(new Set(Array.from({ length: 50 }, (_, i) => first(i))).size).toBe(5);
    expect(tieHash(1, 'a')).not.toBe(tieHash(2, 'a'));
  });

  it('blends old adverts toward the mean (an old "idle" report is trusted less)', () => {
    const a = byId(rank([cand('a', load({ inFlight: 0, ageMs: 4000 })), cand('b', load({ inFlight: 8 }))]), 'a');
    expect(a.estimatedLoad).toBeGreaterThan(3.5); // mean 4, trust 2^-16
    expect(a.estimatedLoad).toBeLessThan(4);
  });

  it('costs a request that would queue more than one that gets a slot', () => {
    // cap 1 with one running: the next request queues (load term 2 + queue 1 = 3); cap 4 with 3 running: the last slot (1.0).
    const r = rank([cand('small', load({ capacity: 1, inFlight: 1 })), cand('big', load({ capacity: 4, inFlight: 3 }))]);
    expect(byId(r, 'small').terms.load).toBeCloseTo(3, 9);
    expect(byId(r, 'big').terms.load).toBeCloseTo(1, 9);
    expect(byId(rank([cand('small', load({ capacity: 1, inFlight: 1 }))], { queuePenalty: 0 }), 'small').terms.load).toBeCloseTo(2, 9);
  });
});

describe('rankCandidates: the score is one term per known weight', () => {
  it('the terms add up to the score and each is reported', () => {
    const r = rank([cand('a', load({ inFlight: 1, gpuTempC: 80, powerSource: 'battery', batteryPct: 90, joulesPerToken: 3 }), { rttMs: 40 }), cand('b', load({ joulesPerToken: 1 }))]);
    const a = byId(r, 'a');
    expect(a.score).toBeCloseTo(a.terms.load + a.terms.latency + a.terms.energy + a.terms.heat + a.terms.battery, 12);
    expect(a.terms.load).toBeCloseTo(2 / 4, 9);
    expect(a.terms.latency).toBeCloseTo((0.5 * 40) / 100, 9);
    expect(a.terms.heat).toBeCloseTo(0.05 * (80 - 75), 9);
    expect(a.terms.battery).toBeCloseTo(0.5 / 4, 9);
    expect(a.terms.energy).toBeGreaterThan(0); // 3 J x2 on battery vs the best 1 J, under light load
    expect(a).toMatchObject({ joulesPerToken: 6, energySource: 'measured', rttMs: 40, rttSource: 'measured' });
  });

  // For each weight: X is worse on that term only, Y carries one more request. With the weight at 0,
  // X wins on load; with a large weight, Y wins. A name with no term (or a dead term) fails here.
  const flips: Record<RouteWeightName, { x: Candidate; y: Candidate; high: number }> = {
    load: { x: cand('x', load({ inFlight: 1 }), { rttMs: 0 }), y: cand('y', load(), { rttMs: 60 }), high: 10 },
    latency: { x: cand('x', load(), { rttMs: 200 }), y: cand('y', load({ inFlight: 1 }), { rttMs: 0 }), high: 5 },
    power: { x: cand('x', load({ joulesPerToken: 4 })), y: cand('y', load({ inFlight: 1, joulesPerToken: 1 })), high: 4 },
    heat: { x: cand('x', load({ gpuTempC: 84 })), y: cand('y', load({ inFlight: 1, gpuTempC: 50 })), high: 5 },
    battery: { x: cand('x', load({ powerSource: 'battery', batteryPct: 90 })), y: cand('y', load({ inFlight: 1 })), high: 5 },
  };
  it.each(ROUTE_WEIGHT_NAMES.map((n) => [n]))('weight %s moves the ranking', (name) => {
    const { x, y, high } = flips[name];
    const base = name === 'load' ? { load: 1, latency: 1 } : { load: 1 };
    const zeroed = Object.fromEntries(ROUTE_WEIGHT_NAMES.map((n) => [n, 0]));
    expect(order(rank([x, y], { weights: { ...zeroed, ...base, [name]: 0 } }))[0]).toBe('x');
    expect(order(rank([x, y], { weights: { ...zeroed, ...base, [name]: high } }))[0]).toBe('y');
  });

  it('the power profile is not a capacity factor: eco and turbo at equal load and measured energy tie', () => {
    const r = rank([cand('eco', load({ inFlight: 2, profile: 'eco', joulesPerToken: 2 })), cand('turbo', load({ inFlight: 2, profile: 'turbo', joulesPerToken: 2 }))]);
    expect(byId(r, 'eco').score).toBeCloseTo(byId(r, 'turbo').score, 12);
    // unmeasured: the per-profile default; eco is never dearer than balanced, turbo is
    const d = DEFAULT_POLICY_PARAMS.energyDefaultJPerToken;
    expect(d.eco).toBeLessThanOrEqual(d.balanced);
    const r2 = rank([cand('eco', load({ profile: 'eco' })), cand('turbo', load({ profile: 'turbo' }))]);
    expect(order(r2)).toEqual(['eco', 'turbo']);
    expect(byId(r2, 'turbo')).toMatchObject({ energySource: 'profile default', joulesPerToken: d.turbo });
  });

  it('the energy term is full under light cluster load and off under heavy load (pure balance)', () => {
    // efficient e (1 J) with one more request than dear d (3 J): light load, e wins
    const light = rank([cand('e', load({ inFlight: 1, joulesPerToken: 1 })), cand('d', load({ joulesPerToken: 3 }))]);
    expect(light.lightness).toBe(1);
    expect(order(light)[0]).toBe('e');
    // the same pair in a busy cluster (others near capacity): the less loaded d wins, energy term 0
    const busy = [cand('e', load({ inFlight: 4, joulesPerToken: 1 })), cand('d', load({ inFlight: 3, joulesPerToken: 3 })), cand('o1', load({ inFlight: 4 })), cand('o2', load({ inFlight: 4 }))];
    const heavy = rank(busy);
    expect(heavy.clusterLoad).toBeGreaterThan(0.7);
    expect(heavy.lightness).toBe(0);
    expect(byId(heavy, 'd').terms.energy).toBe(0);
    expect(order(heavy)[0]).toBe('d');
  });

  it('battery energy counts double; a member without a measurement uses its profile default', () => {
    const r = rank([cand('bat', load({ powerSource: 'battery', batteryPct: 80, joulesPerToken: 1 })), cand('ac', load({ joulesPerToken: 1 }))]);
    expect(byId(r, 'bat').joulesPerToken).toBe(2);
    expect(byId(r, 'ac').joulesPerToken).toBe(1);
  });

  it('a far member loses a tie to a near one; an unmeasured RTT counts as the mean of the measured ones', () => {
    for (let seed = 0; seed < 20; seed++) expect(order(rank([cand('far', load(), { rttMs: 50 }), cand('near', load(), { rttMs: 1 })], undefined, seed))[0]).toBe('near');
    const r = rank([cand('a', load(), { rttMs: 10 }), cand('b', load(), { rttMs: 30 }), cand('u', load(), { rttMs: null })]);
    expect(byId(r, 'u')).toMatchObject({ rttMs: 20, rttSource: 'mean of measured' });
    expect(byId(rank([cand('u', load(), { rttMs: null })]), 'u')).toMatchObject({ rttMs: 0, rttSource: 'none measured' });
  });
});

describe('resolveParams', () => {
  it('merges partial weights with the defaults and validates with a typed error naming the param', () => {
    expect(resolveParams({ weights: { latency: 2 } }).weights).toEqual({ load: 1, latency: 2, power: 0.25, heat: 1, battery: 1 });
    expect(() => resolveParams({ batteryFloorPct: -1 })).toThrow(RoutingError);
    expect(() => resolveParams({ weights: { load: -1 } })).toThrow(/weights.load/);
    expect(() => resolveParams({ weights: { foo: 1 } as never })).toThrow(/weights.foo must be one of load, latency, power, heat, battery/);
    expect(() => resolveParams({ lightLoadBelow: 0.8, balanceAbove: 0.7 })).toThrow(/balanceAbove/);
    expect(() => resolveParams({ energyDefaultJPerToken: { eco: 0 } })).toThrow(/energyDefaultJPerToken.eco/);
  });
});
