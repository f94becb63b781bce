// Test/bench helper: N real libp2p nodes on 127.0.0.1 (TCP + noise + yamux), each with
// a simulated backend, an InferenceRouter, the forwarding server and an HTTP API.
// The "peer table" is live: each node sees the others' current load as a fresh advert
// (the adverts helper's gossip is not needed to test inference).
import { createLibp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Libp2p } from '@libp2p/interface';
import { identityFromSeed, toLibp2pPrivateKey } from '../../crypto/keys.js';
import type { Identity } from '../../crypto/keys.js';
import { BackendSet, SimulatedBackend } from '../../node/backends/index.js';
import type { Backend } from '../../node/backends/index.js';
import { ForwardClient, startForwardServer, forwardHostFromLibp2p, InferenceRouter } from '../../node/forward/index.js';
import type { ForwardServer } from '../../node/forward/index.js';
import type { Candidate } from '../../routing/policy.js';
import { createApiServer } from '../../node/api/server.js';
import type { ApiServer } from '../../node/api/server.js';

export const CLUSTER = 'testcluster';

export interface TestNode {
  name: string;
  identity: Identity;
  peerId: string;
  libp2p: Libp2p;
  backends: BackendSet;
  router: InferenceRouter;
  forwardServer: ForwardServer;
  forwardClient: ForwardClient;
  api: ApiServer;
  url: string;
  /** Extra load reported in this node's "advert" (to steer routing in tests). */
  fakeLoad: { inFlight: number };
  alive: boolean;
}

export async function makeLibp2p(identity: Identity): Promise<Libp2p> {
  return createLibp2p({
    privateKey: toLibp2pPrivateKey(identity),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
}

export interface ClusterOptions {
  size: number;
  /** Per node: backends (default: one simulated backend serving 'simulated' at zero delay); [] = routes only. */
  backends?: (i: number) => Backend[];
  /** Extra members allowed (peer ids) beyond the cluster's own. */
  seedBase?: number;
  maxRetries?: number;
  /** Forward server's keep-alive idle timeout. */
  idleTimeoutMs?: number;
  /** Router bounds (defaults: the router's 32 per peer, 256 in flight); the bench's 256 streams need them raised. */
  maxPerPeer?: number;
  maxInFlight?: number;
  /** Forward server's inbound bound (default 64). */
  maxConcurrent?: number;
}

/** The cluster's identities: seeds seedBase, seedBase + 1, ... */
export function clusterIdentities(size: number, seedBase = 1): Identity[] {
  return Array.from({ length: size }, (_, i) => identityFromSeed(new Uint8Array(32).fill(seedBase + i)));
}

/** A peer as a routing candidate, with the given load as a fresh advert. */
export function candidateOf(peerId: string, models: string[], load: { inFlight: number; queued: number; capacity: number }): Candidate {
  return {
    peerId,
    isLocal: false,
    models,
    advert: { inFlight: load.inFlight, queued: load.queued, capacity: load.capacity, gpuTempC: null, gpuUtilPct: null, powerSource: 'ac', batteryPct: null, profile: 'balanced', joulesPerToken: null, ageMs: 0 },
    rttMs: null,
  };
}

/** One node (libp2p host, backends, router, forward server, HTTP API); `peers` is its live peer table. */
export async function startNode(i: number, identity: Identity, members: ReadonlySet<string>, o: Omit<ClusterOptions, 'size' | 'seedBase'>, peers: (self: TestNode) => Candidate[]): Promise<TestNode> {
  const libp2p = await makeLibp2p(identity);
  const host = forwardHostFromLibp2p(libp2p);
  const bs = new BackendSet(o.backends?.(i) ?? [new SimulatedBackend({ tokensPerSecond: 0, concurrency: 8, models: ['simulated'] })]);
  await bs.refresh();
  const node = { name: `n${i}`, identity, peerId: identity.peerId, libp2p, backends: bs, fakeLoad: { inFlight: 0 }, alive: true } as TestNode;
  node.router = new InferenceRouter({
    localPeerId: identity.peerId,
    backends: bs,
    peers: () => peers(node),
    forward: (node.forwardClient = new ForwardClient({ host, identity, cluster: CLUSTER, maxOutboundStreams: o.maxPerPeer ?? 32 })),
    maxRetries: o.maxRetries ?? 2,
    ...(o.maxPerPeer === undefined ? {} : { maxPerPeer: o.maxPerPeer }),
    ...(o.maxInFlight === undefined ? {} : { maxInFlight: o.maxInFlight }),
  });
  node.forwardServer = await startForwardServer({
    host,
    cluster: CLUSTER,
    isMember: (p) => members.has(p),
    execute: node.router.localExecutor(),
    localPeerId: identity.peerId,
    ...(o.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: o.idleTimeoutMs }),
    ...(o.maxConcurrent === undefined ? {} : { maxConcurrent: o.maxConcurrent }),
    maxOutboundStreams: o.maxPerPeer ?? 32,
  });
  node.api = createApiServer({ router: node.router });
  node.url = (await node.api.listen()).url;
  return node;
}

export async function stopNode(n: TestNode): Promise<void> {
  await n.api.close();
  await n.forwardServer.stop().catch(() => undefined);
  await n.libp2p.stop();
}

export async function startCluster(o: ClusterOptions): Promise<{ nodes: TestNode[]; members: Set<string>; stop: () => Promise<void> }> {
  const identities = clusterIdentities(o.size, o.seedBase);
  const members = new Set(identities.map((id) => id.peerId));
  const nodes: TestNode[] = [];
  const peers = (self: TestNode): Candidate[] =>
    nodes
      .filter((n) => n !== self && n.alive)
      .map((n) => {
        const l = n.router.localLoad();
        return candidateOf(n.peerId, n.backends.modelIds(), { inFlight: l.inFlight + n.fakeLoad.inFlight, queued: l.queued, capacity: l.capacity });
      });
  for (let i = 0; i < o.size; i++) nodes.push(await startNode(i, identities[i]!, members, o, peers));
  // Full mesh; the peer store keeps addresses for re-dials.
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      await a.libp2p.peerStore.patch(peerIdFromString(b.peerId), { multiaddrs: b.libp2p.getMultiaddrs() });
      await a.libp2p.dial(peerIdFromString(b.peerId));
    }
  }
  return {
    nodes,
    members,
    stop: async () => {
      for (const n of nodes) await stopNode(n);
    },
  };
}
