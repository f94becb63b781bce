/**
 * The libp2p node of a host (host.ts): tcp + pnet (cluster pre-shared key, XSalsa20 before
 * anything else; failures counted and logged at most once a minute) + noise + yamux;
 * identify, ping and gossipsub; mDNS discovery; the connection bound, the pair gater
 * (host-pairs.ts) and libp2p's metrics on the host's registry.
 */
import { gossipsub } from '@chainsafe/libp2p-gossipsub';
import type { GossipsubEvents, GossipsubOpts } from '@chainsafe/libp2p-gossipsub';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import type { Identify } from '@libp2p/identify';
import type { ConnectionGater, Libp2p, PubSub } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { ping } from '@libp2p/ping';
import type { Ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { createLibp2p } from 'libp2p';
import type { Registry } from 'prom-client';
import { blake3 } from '../../crypto/blake3.js';
import { toLibp2pPrivateKey } from '../../crypto/keys.js';
import type { Logger } from '../log.js';
import { hostMetrics } from './host-metrics.js';
import type { HostInit } from './host.js';
import { countPnetFailures, PnetFailureCounter } from './pnet-failures.js';

/**
 * libp2p's connection monitor pings every connection this often (a new stream each time); the
 * round trip feeds routing's latency term (inference.ts reads connection.rtt) and a failed ping
 * aborts the connection, which is how a peer that vanished without closing (power cut, a
 * suspended laptop) is noticed. 20 s (libp2p's default is 10 s): on an idle 3-node cluster the
 * pings were about a fifth of each node's network messages (issue 15, `npm run bench -- idle`:
 * 0.93 -> 0.85 % of a core, with 30 s 0.75 %); a silent peer is cut within 20 s plus the
 * ping's timeout, and the latency term gets a sample every 20 s (LAN round trips change slowly).
 */
export const CONNECTION_PING_MS = 20_000;

/** The libp2p node with the services a host runs. */
export type HostNode = Libp2p<{ identify: Identify; ping: Ping; pubsub: PubSub<GossipsubEvents> }>;

/** mDNS service tag: per cluster (two clusters on one LAN never see each other) without publishing the id. */
export function mdnsServiceTag(cluster: string): string {
  const h = Buffer.from(blake3(new TextEncoder().encode(`fednode mdns ${cluster}`))).toString('hex').slice(0, 16);
  return `_fednode-${h}._udp.local`;
}

/** Cluster-key failures: counted always, logged at most once a minute (a misconfigured peer redials every few seconds). */
export function pnetFailureLog(now: () => number, log: Logger): PnetFailureCounter {
  const pnet = new PnetFailureCounter(now);
  let pnetLoggedMs = -Infinity;
  let pnetUnlogged = 0;
  pnet.onFailure((f) => {
    pnetUnlogged++;
    if (f.atMs - pnetLoggedMs < 60_000) return;
    log.warn('connection failed the cluster key check: this node or that peer has a different swarm.key', { remote: f.remoteAddr, error: f.error, failures: pnetUnlogged, total: pnet.stats().failures });
    pnetLoggedMs = f.atMs;
    pnetUnlogged = 0;
  });
  return pnet;
}

export interface Libp2pParts {
  readonly init: HostInit;
  /** The parsed swarm key (psk.ts). */
  readonly swarmKey: Uint8Array;
  readonly pnet: PnetFailureCounter;
  readonly gossipOpts: Partial<GossipsubOpts>;
  readonly gater: ConnectionGater;
  readonly metricsRegistry: Registry | null;
}

/** The libp2p node, created and not started. */
export async function buildLibp2p(a: Libp2pParts): Promise<HostNode> {
  const { init, metricsRegistry } = a;
  const peerDiscovery: NonNullable<Parameters<typeof createLibp2p>[0]>['peerDiscovery'] = [];
  if (init.mdns !== null) {
    peerDiscovery.push(mdns({ serviceTag: mdnsServiceTag(init.cluster), interval: init.mdns?.intervalMs ?? 10_000 }));
  }
  return createLibp2p({
    start: false,
    privateKey: toLibp2pPrivateKey(init.identity),
    addresses: { listen: [...(init.listen ?? ['/ip4/0.0.0.0/tcp/0'])] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: countPnetFailures(preSharedKey({ psk: a.swarmKey }), a.pnet, init.now ?? Date.now),
    peerDiscovery,
    connectionManager: { maxConnections: init.maxConnections ?? 128 },
    connectionMonitor: { pingInterval: CONNECTION_PING_MS },
    ...(metricsRegistry === null ? {} : { metrics: hostMetrics(metricsRegistry) }),
    connectionGater: a.gater,
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub(a.gossipOpts),
    },
  });
}
