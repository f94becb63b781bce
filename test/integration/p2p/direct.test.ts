// Direct channels (node/p2p/direct.ts) over real libp2p on 127.0.0.1: point-to-point delivery
// through the gossip checks, no relay copies, bad frames rejected and scored down without
// crashing the receiver, non-members refused, and the "missing" answer that makes callers
// fall back to gossip.
import { afterEach, describe, expect, it } from 'vitest';
import { pipe } from 'it-pipe';
import * as lp from 'it-length-prefixed';
import { createEnvelope } from '../../../crypto/envelope.js';
import type { GossipDelivery } from '../../../node/p2p/gossip.js';
import type { Stream } from '../../../node/p2p/host.js';
import { directProtocol } from '../../../node/p2p/direct.js';
import { P2pError } from '../../../node/p2p/errors.js';
import { CLUSTER, ident, startCluster, startNode, stopAll, waitFor, type TestNode } from '../../helpers/p2p.js';

function vote(id: ReturnType<typeof ident>, seq: number, body: unknown = new Uint8Array([1, 2, 3, seq & 0xff])): Uint8Array {
  return createEnvelope(id, { kind: 'vote', cluster: CLUSTER, seq, time: Date.now(), body });
}

/**
 * One raw frame on a stream the receiver is about to reset: the write may never finish once the
 * stream is reset (yamux keeps waiting for a window update), so it is given a second at most.
 */
async function sendRaw(s: Stream, frame: Uint8Array): Promise<void> {
  await Promise.race([pipe([frame], (src) => lp.encode(src), s.sink).catch(() => undefined), new Promise((res) => setTimeout(res, 1_000))]);
}

/** Send until the channel is open (the first send opens it and answers "missing"). */
async function openChannel(from: TestNode, to: TestNode): Promise<void> {
  let seq = 1_000_000;
  await waitFor(() => from.host.sendDirect('consensus', vote(from.id, seq++), [to.host.peerId]).sent.length === 1, 10_000, 'direct channel');
}

describe('direct channels', () => {
  let nodes: TestNode[] = [];
  afterEach(async () => {
    await stopAll(nodes);
    nodes = [];
  });

  it('delivers a signed envelope point to point, once, through the gossip checks', async () => {
    ({ nodes } = await startCluster(3));
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    // channels open when a member connects, before any message needs them
    await waitFor(() => a.host.directPeers('consensus').length === 2, 10_000, 'channels opened on connect');
    expect(a.host.directPeers('consensus').sort()).toEqual([b.host.peerId, c.host.peerId].sort());
    const got: Record<string, GossipDelivery[]> = { b: [], c: [] };
    b.host.onMessage('consensus', (d) => void got['b']!.push(d));
    c.host.onMessage('consensus', (d) => void got['c']!.push(d));
    const r = a.host.sendDirect('consensus', vote(a.id, 7, new Uint8Array([7])), [b.host.peerId]);
    expect(r).toEqual({ sent: [b.host.peerId], missing: [] });
    await waitFor(() => got['b']!.some((d) => d.envelope.seq === 7), 5_000, 'delivery');
    // no relay: the direct frame never reaches c (a only sent it to b). A barrier, not a sleep:
    // b then sends c frames of its own, one by gossip and one direct; once both are in, anything
    // b relayed on receiving seq 7 (queued before them on those streams) would be in too.
    await openChannel(b, c);
    await b.host.publish('consensus', vote(b.id, 2_000_000));
    expect(b.host.sendDirect('consensus', vote(b.id, 2_000_001), [c.host.peerId]).sent).toEqual([c.host.peerId]);
    await waitFor(() => [2_000_000, 2_000_001].every((q) => got['c']!.some((x) => x.envelope.seq === q)), 5_000, 'b -> c barrier');
    expect(got['c']!.filter((d) => d.envelope.seq === 7)).toHaveLength(0);
    expect(got['b']!.filter((d) => d.envelope.seq === 7)).toHaveLength(1);
    const d = got['b']!.find((x) => x.envelope.seq === 7)!;
    expect(d.from).toBe(a.host.peerId);
    expect(d.envelope.signerId).toBe(a.host.peerId);
    expect(a.host.directStats().channels).toBe(2);
    expect(b.host.directStats().received).toBeGreaterThan(0);

    // a peer that hangs up or stops ends its channels without being taken for a sender of garbage
    await a.host.hangUp(b.host.peerId);
    await c.host.stop();
    await waitFor(() => !a.host.directPeers('consensus').includes(b.host.peerId), 5_000, 'a-b channel closed');
    await waitFor(() => b.host.peers().every((p) => p.peerId !== c.host.peerId), 5_000, 'c gone from b');
    // (a penalty is only ever applied together with a counted stream reset)
    for (const x of [a, b]) expect(x.host.directStats().rejectedStreams).toBe(0);
  });

  it('rejects a relayed envelope, garbage and an oversize frame: stream reset, counted, peer still served', async () => {
    ({ nodes } = await startCluster(3));
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
    await openChannel(a, b);
    // b's gossip score of a against that of c, which behaves: a rejected frame puts a below c
    const scoreAt = (x: TestNode) => (): number => b.host.peers().find((p) => p.peerId === x.host.peerId)?.score ?? NaN;
    const scoreOfA = scoreAt(a);
    const scoreOfC = scoreAt(c);
    // someone else's (validly signed) envelope on a's direct channel: a direct channel carries its peer's own only
    a.host.sendDirect('consensus', vote(c.id, 5), [b.host.peerId]);
    await waitFor(() => (b.host.stats().consensus.byCode['not-sender'] ?? 0) === 1, 5_000, 'not-sender reject');
    await waitFor(() => b.host.directStats().rejectedStreams === 1, 5_000, 'stream reset');
    expect(b.host.stats().consensus.reject).toBeGreaterThanOrEqual(1);
    await waitFor(() => scoreOfA() < scoreOfC() - 5, 5_000, 'score lowered'); // scored down (behaviour penalty)
    // the channel was reset; a reopens it and honest frames flow again
    await waitFor(() => !a.host.directPeers('consensus').includes(b.host.peerId), 5_000, 'channel dropped');
    await openChannel(a, b);
    const got: number[] = [];
    b.host.onMessage('consensus', (d) => void got.push(d.envelope.seq));
    a.host.sendDirect('consensus', vote(a.id, 42), [b.host.peerId]);
    await waitFor(() => got.includes(42), 5_000, 'delivery after reset');

    // garbage that is not an envelope at all
    a.host.sendDirect('consensus', new Uint8Array([0xff, 0x00, 0x13, 0x37]), [b.host.peerId]);
    await waitFor(() => b.host.directStats().rejectedStreams === 2, 5_000, 'garbage reset');
    expect(b.host.stats().consensus.byCode['bad-encoding']).toBe(1);

    // a raw stream announcing a frame over the topic bound (256 KiB): refused before it is read
    const s = await a.host.dialProtocol(b.host.peerId, directProtocol('consensus'));
    const big = new Uint8Array(256 * 1024 + 1);
    await sendRaw(s, big);
    await waitFor(() => b.host.directStats().rejectedStreams === 3, 5_000, 'oversize reset');
    await waitFor(() => scoreOfA() < scoreOfC() - 5, 5_000, 'score lowered again');

    // sendDirect itself refuses what no peer would accept
    expect(() => a.host.sendDirect('consensus', big, [b.host.peerId])).toThrow(P2pError);
    // b is alive and serving
    await openChannel(a, b);
    a.host.sendDirect('consensus', vote(a.id, 43), [b.host.peerId]);
    await waitFor(() => got.includes(43), 5_000, 'delivery after garbage');
  });

  it('refuses a non-member\'s channel and answers "missing" for a peer without the protocol', async () => {
    const { nodes: two, swarmKey, genesis } = await startCluster(2);
    nodes = two;
    const [a, b] = nodes as [TestNode, TestNode];
    // a non-member with the swarm key: it connects, but may not open a direct channel
    const outsider = await startNode(ident(9), { swarmKey, genesis });
    nodes.push(outsider);
    await outsider.host.dial(a.host.addresses()[0]!);
    const got: GossipDelivery[] = [];
    a.host.onMessage('consensus', (d) => void got.push(d));
    const s = await outsider.host.dialProtocol(a.host.peerId, directProtocol('consensus')).catch(() => null);
    if (s !== null) await sendRaw(s, vote(outsider.id, 1));
    await waitFor(() => a.host.directStats().inboundRefused >= 1, 5_000, 'refusal');
    expect(got).toHaveLength(0);

    // b stops serving the protocol (as a node of an older version) and the two reconnect:
    // a's channel cannot open again, so a answers "missing" (its caller falls back to gossip)
    await b.host.unhandle(directProtocol('consensus'));
    const failuresBefore = a.host.directStats().openFailures;
    await a.host.hangUp(b.host.peerId);
    await waitFor(() => a.host.directPeers('consensus').length === 0, 5_000, 'channel closed with the connection');
    await a.host.dial(b.host.addresses()[0]!);
    await waitFor(() => a.host.directStats().openFailures === failuresBefore + 1, 5_000, 'open failure on reconnect');
    for (let i = 0; i < 3; i++) {
      expect(a.host.sendDirect('consensus', vote(a.id, 100 + i), [b.host.peerId]).missing).toEqual([b.host.peerId]);
      await new Promise((res) => setTimeout(res, 100));
    }
    // backoff: that one failure, then no new attempt within the first second
    expect(a.host.directStats().openFailures).toBe(failuresBefore + 1);
    expect(a.host.directStats().channels).toBe(0);
  });
});
