import { describe, expect, it } from 'vitest';
import { identityFromSeed } from '../../../crypto/keys.js';
import { createAdvertEnvelope, openAdvertEnvelope, type ReceivedAdvert } from '../../../node/adverts/envelope.js';
import { PeerTable } from '../../../node/adverts/peer-table.js';
import { sampleBody } from '../../helpers/adverts.js';

const adv = (peerId: string, seq: number, over: Partial<ReceivedAdvert> = {}): ReceivedAdvert => ({ peerId, seq, timeMs: 1000 + seq, body: sampleBody({ inFlight: seq % 5 }), ...over });
const T = 1_700_000_000_000;

describe('peer table', () => {
  it('keeps the latest advert per peer; snapshot is sorted with age and state', () => {
    const t = new PeerTable({ maxPeers: 5 });
    expect(t.offer(adv('b', 1), T)).toBe('accepted');
    expect(t.offer(adv('a', 4), T + 100)).toBe('accepted');
    expect(t.offer(adv('b', 2), T + 500)).toBe('accepted');
    const s = t.snapshot(T + 1000);
    expect(s.map((p) => [p.peerId, p.seq, p.ageMs, p.state])).toEqual([
      ['a', 4, 900, 'live'],
      ['b', 2, 500, 'live'],
    ]);
    expect(s[1]!.advert.inFlight).toBe(2);
  });

  it('ignores replayed and older adverts (seq <= last seen)', () => {
    const t = new PeerTable({ maxPeers: 5 });
    t.offer(adv('a', 10), T);
    expect(t.offer(adv('a', 10), T + 1)).toBe('replay');
    expect(t.offer(adv('a', 9, { body: sampleBody({ capacity: 99 }) }), T + 2)).toBe('replay');
    expect(t.get('a', T + 3)?.advert.capacity).toBe(4);
    expect(t.get('a', T + 3)?.ageMs).toBe(3); // a replay does not refresh the age
    expect(t.isNewer('a', 10)).toBe(false);
    expect(t.isNewer('a', 11)).toBe(true);
    expect(t.isNewer('unknown', 0)).toBe(true);
  });

  it('staleness transitions at each edge: live <= 3 periods < stale <= 10 periods < gone', () => {
    const t = new PeerTable({ maxPeers: 5, periodMs: 2000 });
    t.offer(adv('a', 1), T);
    expect(t.get('a', T + 6000)?.state).toBe('live');
    expect(t.get('a', T + 6001)?.state).toBe('stale');
    expect(t.get('a', T + 20_000)?.state).toBe('stale');
    expect(t.get('a', T + 20_001)).toBeNull();
    expect(t.snapshot(T + 20_001)).toEqual([]); // gone is never shown, even before prune
    expect(t.size).toBe(1);
    expect(t.prune(T + 20_000)).toEqual([]);
    expect(t.prune(T + 20_001)).toEqual(['a']);
    expect(t.size).toBe(0);
  });

  it('a fresh advert makes a stale peer live again', () => {
    const t = new PeerTable({ maxPeers: 5, periodMs: 1000 });
    t.offer(adv('a', 1), T);
    expect(t.get('a', T + 5000)?.state).toBe('stale');
    t.offer(adv('a', 2), T + 5000);
    expect(t.get('a', T + 5000)).toMatchObject({ state: 'live', ageMs: 0, seq: 2 });
  });

  it('after a peer is gone and removed, its old adverts are still replays; a newer seq brings it back', () => {
    const t = new PeerTable({ maxPeers: 5, periodMs: 1000 });
    t.offer(adv('a', 7), T);
    expect(t.prune(T + 10_001)).toEqual(['a']);
    expect(t.offer(adv('a', 7), T + 10_002)).toBe('replay');
    expect(t.offer(adv('a', 3), T + 10_002)).toBe('replay');
    expect(t.lastSeq('a')).toBe(7);
    expect(t.offer(adv('a', 8), T + 10_003)).toBe('accepted');
    expect(t.get('a', T + 10_003)?.state).toBe('live');
  });

  it('is bounded by maxPeers: a new peer is refused while the table is full of live/stale peers', () => {
    const t = new PeerTable({ maxPeers: 2, periodMs: 1000 });
    t.offer(adv('a', 1), T);
    t.offer(adv('b', 1), T + 5000);
    expect(t.offer(adv('c', 1), T + 6000)).toBe('full');
    expect(t.offer(adv('a', 2), T + 6000)).toBe('accepted'); // existing peers still update
    // 'b' (received at +5000) is gone only when older than 10 periods: at +15 001, not at +15 000
    expect(t.offer(adv('c', 1), T + 15_000)).toBe('full');
    expect(t.offer(adv('c', 1), T + 15_001)).toBe('accepted'); // prune on demand made room
    expect(t.size).toBe(2);
    expect(t.snapshot(T + 15_001).map((p) => [p.peerId, p.state])).toEqual([
      ['a', 'stale'], // refreshed at +6000: 9001 ms old, over 3 periods
      ['c', 'live'],
    ]);
  });

  it('tombstones are bounded too (oldest removal forgotten first)', () => {
    const t = new PeerTable({ maxPeers: 2, periodMs: 1000 });
    for (const [i, p] of ['a', 'b', 'c'].entries()) {
      t.offer(adv(p, 5), T + i);
      t.remove(p);
    }
    expect(t.lastSeq('a')).toBeNull();
    expect(t.lastSeq('b')).toBe(5);
    expect(t.lastSeq('c')).toBe(5);
  });

  it('retain keeps only current members', () => {
    const t = new PeerTable({ maxPeers: 5 });
    t.offer(adv('a', 1), T);
    t.offer(adv('b', 1), T);
    expect(t.retain(new Set(['b']))).toEqual(['a']);
    expect(t.snapshot(T).map((p) => p.peerId)).toEqual(['b']);
  });

  it('a clock stepping back gives age 0, never negative', () => {
    const t = new PeerTable({ maxPeers: 5 });
    t.offer(adv('a', 1), T);
    expect(t.get('a', T - 5000)?.ageMs).toBe(0);
  });

  it('invalid options are refused', () => {
    expect(() => new PeerTable({ maxPeers: 0 })).toThrow(/maxPeers/);
    expect(() => new PeerTable({ maxPeers: 3, staleAfterPeriods: 10, goneAfterPeriods: 10 })).toThrow(/goneAfterPeriods/);
  });

  it('end to end with real envelopes: a verified advert goes in, its replay is ignored', () => {
    const id = identityFromSeed(new Uint8Array(32).fill(9));
    const t = new PeerTable({ maxPeers: 3 });
    const bytes = createAdvertEnvelope(id, { cluster: 'lab', seq: 5, timeMs: T, body: sampleBody() });
    for (const expected of ['accepted', 'replay'] as const) {
      const r = openAdvertEnvelope(bytes, { cluster: 'lab' });
      expect(r.ok).toBe(true);
      if (r.ok) expect(t.offer(r.advert, T + 10)).toBe(expected);
    }
    expect(t.snapshot(T + 10)[0]?.peerId).toBe(id.peerId);
  });
});
