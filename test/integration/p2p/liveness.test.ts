// A peer whose old connection is dead but not yet noticed (a half-open TCP connection: the
// machine lost power, the NAT dropped the mapping) dials again: the connection gater pings
// the existing connection before refusing the newcomer as a duplicate, finds it dead, closes
// it and lets the new one in. The dead connection is made real: the first connection runs
// through a TCP relay on 127.0.0.1 that then stops forwarding without closing either socket.
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSwarmKey } from '../../../node/p2p/psk.js';
import type { TestNode } from '../../helpers/p2p.js';
import { ident, startNode, stopAll, waitFor } from '../../helpers/p2p.js';

interface Relay {
  port: number;
  /** Stop forwarding in both directions; both sockets stay open (nothing is closed or reset). */
  freeze(): void;
  close(): Promise<void>;
}

async function relayTo(port: number): Promise<Relay> {
  const sockets: Socket[] = [];
  let frozen = false;
  const server: Server = createServer((inbound) => {
    const up = createConnection({ host: '127.0.0.1', port });
    sockets.push(inbound, up);
    inbound.on('data', (b) => void (frozen ? undefined : up.write(b)));
    up.on('data', (b) => void (frozen ? undefined : inbound.write(b)));
    inbound.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('relay has no port');
  return {
    port: addr.port,
    freeze: () => {
      frozen = true;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const nodes: TestNode[] = [];
let relay: Relay | null = null;
afterAll(async () => {
  await stopAll(nodes);
  await relay?.close();
});

describe('duplicate connection handling with a dead old connection', () => {
  it('a peer whose old connection went silent is let in by its new dial (liveness ping), not refused as a duplicate', async () => {
    const swarmKey = generateSwarmKey();
    const [x, y] = [ident(41), ident(42)];
    const genesis = [x.peerId, y.peerId];
    // low initiates the first (preferred) connection; high's later dial is a non-preferred one
    const [lowId, highId] = x.peerId < y.peerId ? [x, y] : [y, x];
    const extra = { reconnect: null } as const; // the mesh keeper tries each peer once, never again: the dials that matter are the test's
    const low = await startNode(lowId, { swarmKey, genesis, extra });
    const high = await startNode(highId, { swarmKey, genesis, extra });
    nodes.push(low, high);
    relay = await relayTo(Number(/\/tcp\/(\d+)/.exec(high.host.addresses()[0]!)![1]));
    await low.host.dial(`/ip4/127.0.0.1/tcp/${relay.port}/p2p/${high.host.peerId}`);
    await waitFor(() => high.host.peers().some((p) => p.peerId === low.host.peerId && p.connections === 1), 10_000, 'relayed connection');

    // high goes away without low noticing: the relay stops forwarding (no FIN, no RST reaches
    // low), then high stops. low still holds an "open" connection to high.
    relay.freeze();
    await high.host.stop();
    expect(low.host.peers().find((p) => p.peerId === highId.peerId)?.connections).toBe(1);
    // high comes back (same identity, new port) and dials low: a non-preferred connection
    // (high initiates) while low holds an open one; low pings the old one, finds it dead, takes the new
    const again = await startNode(highId, { swarmKey, genesis, extra });
    nodes.push(again);
    await again.host.dial(low.host.addresses().find((a) => a.includes('/127.0.0.1/'))!);
    // (high's side is up as soon as its own upgrade is; low's gater first waits for the ping)
    const viaRelay = (a: string): boolean => a.includes(`/tcp/${relay!.port}/`);
    await waitFor(() => low.host.peers().some((p) => p.peerId === highId.peerId && p.connections === 1 && !p.addrs.some(viaRelay)), 10_000, 'low takes the new connection');
    await waitFor(() => again.host.peers().some((p) => p.peerId === low.host.peerId && p.connections === 1), 10_000, 'high connected again');
    // gossip flows over the new connection: low's gossipsub sees high subscribed again
    await waitFor(() => low.host.topicPeers('adverts').includes(highId.peerId) && again.host.topicPeers('adverts').includes(low.host.peerId), 10_000, 'gossip subscriptions over the new connection');
  }, 60_000);
});
