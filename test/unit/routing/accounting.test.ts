// The router's own accounting (routing/accounting.ts) and the RTT table (routing/rtt.ts).
import { describe, it, expect } from 'vitest';
import { RoutingAccounting } from '../../../routing/accounting.js';
import { RttTable, RTT_SAMPLE_MAX_MS } from '../../../routing/rtt.js';
import { RoutingError } from '../../../routing/errors.js';

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

describe('RttTable (EWMA of pings)', () => {
  it('starts as the mean of the first samples, then moves by 1/window per sample; the sample count stays bounded', () => {
    const t = new RttTable({ windowSamples: 4 });
    expect(t.get('a')).toBeNull();
    t.onSample('a', 10);
    t.onSample('a', 20);
    expect(t.get('a')).toBeCloseTo(15, 9); // mean of 2
    t.onSample('a', 30);
    t.onSample('a', 40);
    expect(t.get('a')).toBeCloseTo(25, 9); // mean of 4
    expect(t.samples('a')).toBe(4);
    t.onSample('a', 125); // now an EWMA: one outlier moves it a quarter of the way
    expect(t.get('a')).toBeCloseTo(25 + (125 - 25) / 4, 9);
    for (let i = 0; i < 100; i++) t.onSample('a', 5);
    expect(t.samples('a')).toBe(4);
    expect(t.get('a')).toBeCloseTo(5, 3);
  });

  it('refuses readings that are no duration and bounds the peers it keeps', () => {
    const t = new RttTable({ maxPeers: 2 });
    for (const bad of [-1, Number.NaN, Infinity, RTT_SAMPLE_MAX_MS + 1]) expect(t.onSample('a', bad)).toBe(false);
    expect(t.get('a')).toBeNull();
    t.onSample('a', 1);
    t.onSample('b', 2);
    t.onSample('c', 3);
    expect(t.size).toBe(2);
    expect(t.get('a')).toBeNull(); // the oldest went
    expect(t.get('c')).toBe(3);
    expect(() => new RttTable({ windowSamples: 0 })).toThrow(RoutingError);
  });
});
