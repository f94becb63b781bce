// The validators and queues without libp2p (injected clock, in-memory member source).
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '../../../crypto/envelope.js';
import { GossipTopics, topicString, verdictFor } from '../../../node/p2p/gossip.js';
import type { GossipDelivery } from '../../../node/p2p/gossip.js';
import { InviteMemberSource } from '../../../node/p2p/members.js';
import { advert, CLUSTER, ident, waitFor } from '../../helpers/p2p.js';

const T0 = 1_700_000_000_000;

function setup(): { g: GossipTopics; clock: { t: number } } {
  const clock = { t: T0 };
  const members = new InviteMemberSource({ cluster: CLUSTER, genesis: [ident(1).peerId, ident(2).peerId], now: () => clock.t });
  return { g: new GossipTopics({ cluster: CLUSTER, members, now: () => clock.t }), clock };
}

describe('gossip validation (one verdict per rule, cheapest first)', () => {
  it('names topics per cluster and version', () => {
    expect(topicString('c1', 'adverts')).toBe('fednode/c1/adverts/1');
    expect(topicString('c1', 'consensus')).toBe('fednode/c1/consensus/1');
  });

  it('accepts a fresh member advert', () => {
    const { g } = setup();
    expect(g.validate('adverts', advert(ident(1), 1, {}, CLUSTER, T0), 'p')).toBe('accept');
  });

  it.each([
    ['oversize', () => new Uint8Array(64 * 1024 + 1), 'reject'],
    ['bad-encoding', () => new Uint8Array([0xff, 1, 2]), 'reject'],
    ['wrong-kind', () => createEnvelope(ident(1), { kind: 'vote', cluster: CLUSTER, seq: 1, time: T0, body: {} }), 'reject'],
    ['wrong-cluster', () => advert(ident(1), 1, {}, 'other-cluster', T0), 'reject'],
    ['not-member', () => advert(ident(7), 1, {}, CLUSTER, T0), 'reject'],
    ['too-old', () => advert(ident(1), 1, {}, CLUSTER, T0 - 31_000), 'ignore'],
    ['too-new', () => advert(ident(1), 1, {}, CLUSTER, T0 + 6_000), 'ignore'],
    [
      'bad-signature',
      () => {
        const b = advert(ident(1), 1, {}, CLUSTER, T0);
        b[b.length - 5]! ^= 0x40;
        return b;
      },
      'reject',
    ],
  ] as const)('%s -> %s', (code, make, verdict) => {
    const { g } = setup();
    expect(g.validate('adverts', make(), 'p')).toBe(verdict);
    const s = g.stats().adverts;
    expect(s.byCode[code]).toBe(1);
    expect(s[verdict]).toBe(1);
    expect(s.accept).toBe(0);
  });

  it('a non-member speaking for itself is rejected; a member relaying it is only ignored (membership views lag by a height)', () => {
    const { g } = setup();
    const outsider = ident(7);
    const msg = advert(outsider, 1, {}, CLUSTER, T0);
    expect(g.validate('adverts', msg, outsider.peerId)).toBe('reject'); // the outsider itself
    expect(g.validate('adverts', msg, ident(2).peerId)).toBe('ignore'); // a member relaying it
    expect(g.validate('adverts', msg, ident(9).peerId)).toBe('reject'); // another non-member relaying it
    const s = g.stats().adverts;
    expect(s.byCode['not-member']).toBe(2);
    expect(s.byCode['not-member-relayed']).toBe(1);
    expect(verdictFor('not-member-relayed')).toBe('ignore');
  });

  it('replay: same or lower seq from a signer is ignored, a higher one accepted', () => {
    const { g } = setup();
    expect(g.validate('adverts', advert(ident(1), 5, { a: 1 }, CLUSTER, T0), 'p')).toBe('accept');
    expect(g.validate('adverts', advert(ident(1), 5, { a: 2 }, CLUSTER, T0), 'p')).toBe('ignore');
    expect(g.validate('adverts', advert(ident(1), 3, { a: 3 }, CLUSTER, T0), 'p')).toBe('ignore');
    expect(g.validate('adverts', advert(ident(2), 1, {}, CLUSTER, T0), 'p')).toBe('accept'); // per signer
    expect(g.validate('adverts', advert(ident(1), 6, {}, CLUSTER, T0), 'p')).toBe('accept');
    expect(g.stats().adverts.byCode.replay).toBe(2);
  });

  it('a bad signature never advances the replay window', () => {
    const { g } = setup();
    const forged = advert(ident(1), 100, {}, CLUSTER, T0);
    forged[forged.length - 1]! ^= 1;
    expect(g.validate('adverts', forged, 'p')).toBe('reject');
    expect(g.validate('adverts', advert(ident(1), 2, {}, CLUSTER, T0), 'p')).toBe('accept');
  });

  it('consensus topic takes its kinds and refuses adverts', () => {
    const { g } = setup();
    const vote = createEnvelope(ident(2), { kind: 'vote', cluster: CLUSTER, seq: 1, time: T0, body: { h: 1 } });
    expect(g.validate('consensus', vote, 'p')).toBe('accept');
    expect(g.validate('consensus', advert(ident(2), 1, {}, CLUSTER, T0), 'p')).toBe('reject');
  });

  it('garbage of every shape never throws and is never accepted', () => {
    const { g } = setup();
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const good = advert(ident(1), 1, { x: 1 }, CLUSTER, T0);
    for (let i = 0; i < 500; i++) {
      const b = i % 2 === 0 ? new Uint8Array(rnd() % 300).map(() => rnd() & 0xff) : good.slice();
      if (i % 2 === 1) b[rnd() % b.length]! ^= 1 << rnd() % 8;
      const v = g.validate(i % 4 < 2 ? 'adverts' : 'consensus', b, 'p');
      expect(['reject', 'ignore']).toContain(v);
    }
  });

  it('an injected body check rejects a signed advert whose body breaks the schema', () => {
    const clock = { t: T0 };
    const members = new InviteMemberSource({ cluster: CLUSTER, genesis: [ident(1).peerId], now: () => clock.t });
    const g = new GossipTopics({ cluster: CLUSTER, members, now: () => clock.t, bodyCheck: { adverts: (b) => (typeof b === 'object' && b !== null && 'load' in b ? null : 'missing load') } });
    expect(g.validate('adverts', advert(ident(1), 1, { load: 1 }, CLUSTER, T0), 'p')).toBe('accept');
    expect(g.validate('adverts', advert(ident(1), 2, { nope: 1 }, CLUSTER, T0), 'p')).toBe('reject');
    expect(g.stats().adverts.byCode['bad-body']).toBe(1);
  });

  it('every error code maps to a verdict in one place', () => {
    expect(verdictFor('not-member')).toBe('reject');
    expect(verdictFor('replay')).toBe('ignore');
    expect(verdictFor('internal')).toBe('ignore');
  });
});

describe('gossip queues (bounded, stated drop policy)', () => {
  it('adverts: a newer advert replaces the sender pending one (drop oldest per sender)', async () => {
    const { g } = setup();
    const got: GossipDelivery[] = [];
    g.onMessage('adverts', (d) => {
      got.push(d);
    });
    // three adverts in one tick: only the newest per sender survives in the queue
    g.validate('adverts', advert(ident(1), 1, {}, CLUSTER, T0), 'p');
    g.validate('adverts', advert(ident(2), 1, {}, CLUSTER, T0), 'p');
    g.validate('adverts', advert(ident(1), 2, {}, CLUSTER, T0), 'p');
    await waitFor(() => g.stats().adverts.queued === 0 && got.length >= 2, 2000, 'drain');
    expect(got.map((d) => [d.envelope.signerId, d.envelope.seq])).toEqual([
      [ident(2).peerId, 1],
      [ident(1).peerId, 2],
    ]);
    expect(g.stats().adverts.queueDropped).toBe(1);
    expect(g.stats().adverts.delivered).toBe(2);
  });

  it('consensus: when full the newest is dropped, order kept; a failing handler does not stop delivery', async () => {
    const clock = { t: T0 };
    const members = new InviteMemberSource({ cluster: CLUSTER, genesis: [ident(1).peerId], now: () => clock.t });
    const g = new GossipTopics({ cluster: CLUSTER, members, now: () => clock.t, limits: { consensus: { maxBytes: 4096, kinds: ['vote'], maxAgeMs: 60_000, maxFutureMs: 5_000, queueMax: 3 } } });
    const seqs: number[] = [];
    g.onMessage('consensus', () => {
      throw new Error('handler bug');
    });
    g.onMessage('consensus', (d) => {
      seqs.push(d.envelope.seq);
    });
    for (let i = 1; i <= 5; i++) g.validate('consensus', createEnvelope(ident(1), { kind: 'vote', cluster: CLUSTER, seq: i, time: T0, body: {} }), 'p');
    await waitFor(() => seqs.length >= 3 && g.stats().consensus.queued === 0, 2000, 'drain');
    expect(seqs).toEqual([1, 2, 3]);
    const s = g.stats().consensus;
    expect(s.queueDropped).toBe(2);
    expect(s.handlerErrors).toBe(3);
    expect(s.accept).toBe(5);
  });
});
