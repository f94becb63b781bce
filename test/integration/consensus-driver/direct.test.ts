// The driver's wire: proposals, votes and ops go point to point on direct channels when every
// validator is connected to every other (no gossip copies), and fall back to gossip publish
// (flood and relay) when a validator has no channel: a partly connected cluster still decides
// everything, on every node, through relays.
import { afterEach, describe, expect, it } from 'vitest';
import { pattern, startDriverCluster, waitFor, type DriverCluster } from '../../helpers/consensus-driver.js';

let cluster: DriverCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

async function commitAll(c: DriverCluster, count: number, prefix: string): Promise<number> {
  const { nodes } = c;
  const receipts = await Promise.all(Array.from({ length: count }, (_, k) => nodes[k % nodes.length]!.consensus.submit([pattern(`${prefix}${k}`)])));
  const top = Math.max(...receipts.map((r) => r.height));
  await waitFor(() => nodes.every((x) => x.consensus.status().decidedHeight >= top), 15_000, 'every node at the top height');
  return top;
}

describe('consensus messages on direct channels', () => {
  it('fully connected: sent point to point (gossip at most while channels open), status says direct to all', async () => {
    // No status gossip during the test (period 10 min), so the gossip topic has nothing to carry
    // unless the driver falls back to it.
    cluster = await startDriverCluster(4, { extra: () => ({ statusIntervalMs: 600_000 }) });
    const { nodes } = cluster;
    await commitAll(cluster, 4, 'warm'); // opens the channels (their first messages also go by gossip)
    const fallbacks = nodes.map((x) => x.consensus.counters().gossipFallbacks);
    const accepted = nodes.map((x) => x.host.stats().consensus.accept);
    const directReceived = nodes.map((x) => x.host.directStats().received);
    let last = 0;
    for (let i = 0; i < 5; i++) last = (await nodes[i % 4]!.consensus.submit([pattern(`seq${i}`)])).height; // one height each
    await waitFor(() => nodes.every((x) => x.consensus.status().decidedHeight >= last), 10_000, 'every node at the last height');
    for (const [i, x] of nodes.entries()) {
      expect(x.consensus.counters().gossipFallbacks, `node ${i} fell back to gossip`).toBe(fallbacks[i]);
      expect(x.host.directStats().channels).toBe(3);
      // every proposal, vote and op of the 5 heights arrived directly (at least 2 votes from each of 3 peers per height)
      expect(x.host.directStats().received - directReceived[i]!).toBeGreaterThanOrEqual(5 * 6);
    }
    // and gossip carried nothing at all (no flood, no relayed copies): every message the topic's
    // validator accepted was a direct frame
    for (const [i, x] of nodes.entries()) {
      expect(x.host.stats().consensus.accept - accepted[i]!, `node ${i}: accepted beyond its direct frames`).toBe(x.host.directStats().received - directReceived[i]!);
    }
    expect(new Set(nodes.map((x) => x.consensus.status().registryHash)).size).toBe(1);
    // status says so: every other validator reached directly
    for (const x of nodes) expect(x.consensus.status().wire).toEqual({ direct: 3, withoutChannel: [], gossipFallbacks: x.consensus.counters().gossipFallbacks });
  });

  it('partly connected (node 4 linked to node 1 only): falls back to gossip and every node decides everything', async () => {
    cluster = await startDriverCluster(4, { linked: (i, j) => !(i === 3 && j !== 0) });
    const { nodes } = cluster;
    expect(nodes[3]!.host.peers().filter((p) => p.connections > 0).map((p) => p.peerId)).toEqual([nodes[0]!.host.peerId]);
    await commitAll(cluster, 20, 'p');
    const names = Array.from({ length: 20 }, (_, k) => `p${k}`).sort();
    for (const x of nodes) expect(x.consensus.registry().patterns.map((p) => p.name).sort()).toEqual(names);
    expect(new Set(nodes.map((x) => x.consensus.status().registryHash)).size).toBe(1);
    // nodes 2, 3 and 4 have no channel to one validator each, so they published by gossip as well
    for (const i of [1, 2, 3]) expect(nodes[i]!.consensus.counters().gossipFallbacks).toBeGreaterThan(0);
    // node 4 heard nodes 2 and 3 only through node 1's gossip relays
    expect(nodes[3]!.host.stats().consensus.accept).toBeGreaterThan(0);
    // status names the validators without a channel (what `fednode status` and `doctor` show)
    const peer = (i: number): string => nodes[i]!.host.peerId;
    expect(nodes[0]!.consensus.status().wire.withoutChannel).toEqual([]);
    expect(nodes[1]!.consensus.status().wire.withoutChannel).toEqual([peer(3)]);
    expect(nodes[2]!.consensus.status().wire.withoutChannel).toEqual([peer(3)]);
    expect([...nodes[3]!.consensus.status().wire.withoutChannel].sort()).toEqual([peer(1), peer(2)].sort());
    expect(nodes[3]!.consensus.status().wire.direct).toBe(1);
  });
});
