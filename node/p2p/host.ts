/**
 * The ONE room that assembles libp2p (2.x): this file and its parts host-*.ts. Everything
 * else in fednode talks to the `Host` interface below, so moving to libp2p 3.x touches this
 * room only.
 *
 * Stack (host-libp2p.ts): tcp + pnet (cluster pre-shared key, XSalsa20 before anything else)
 * + noise + yamux; identify, ping; discovery by mDNS (service tag derived from fednode +
 * cluster id); libp2p's own metrics (@libp2p/prometheus-metrics) on a prom-client registry per
 * host, where node/metrics adds fednode's and serves them. gossipsub (host-gossip.ts:
 * StrictNoSign, msgId = BLAKE3(topic || data), peer scoring with a member bonus / non-member
 * penalty, per-topic validators from gossip.ts). One connection per peer pair (host-pairs.ts: a
 * duplicate is refused only while the existing connection answers a ping). The mesh keeper and
 * the direct channels (host-mesh.ts: bootstrap peers and every member, dialled with capped
 * backoff from the address book). This file: the options, the assembly, start/stop and the API.
 */
import type { GossipSub } from '@chainsafe/libp2p-gossipsub';
import type { Stream, SubscriptionChangeData } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { Registry } from 'prom-client';
import type { Identity } from '../../crypto/keys.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { AddressBook } from './addr-book.js';
import type { AddrSource, LearnResult } from './addr-book.js';
import type { DirectChannels, DirectLimits, DirectStats } from './direct.js';
import { P2pError } from './errors.js';
import { GossipTopics, TOPIC_NAMES, topicString } from './gossip.js';
import type { BodyCheck, GossipHandler, GossipLimits, GossipStats, TopicName } from './gossip.js';
import { gossipsubOptions, installValidators } from './host-gossip.js';
import { buildLibp2p, pnetFailureLog } from './host-libp2p.js';
import type { HostNode } from './host-libp2p.js';
import { createDirect, createKeeper, meshEvents } from './host-mesh.js';
import type { MeshEvents } from './host-mesh.js';
import { PairGate, pairListeners } from './host-pairs.js';
import type { MemberSource } from './members.js';
import type { MeshKeeper, MeshOptions, MeshStatus } from './mesh.js';
import type { PnetFailureCounter, PnetFailureStats } from './pnet-failures.js';
import { parseSwarmKey } from './psk.js';

export type { Stream } from '@libp2p/interface';

export interface MdnsOptions {
  /** Query interval. @default 10_000 (libp2p's default; discovery also answers others' queries at once) */
  intervalMs?: number;
}

export interface ReconnectOptions {
  /** First retry delay. @default 500 */
  baseMs?: number;
  /** Delay cap (doubling stops here). @default 30_000 */
  maxMs?: number;
  /** Failed dials in a row before a peer is parked until new address information, a disconnect or a membership change. @default 120 (~1 h at the cap) */
  maxAttempts?: number;
  /** Dials in flight at once (mesh keeper). @default 8 */
  maxInFlight?: number;
}

export interface HostInit {
  identity: Identity;
  cluster: string;
  /** swarm.key file bytes (see psk.ts). */
  swarmKey: Uint8Array;
  members: MemberSource;
  /** @default ['/ip4/0.0.0.0/tcp/0'] */
  listen?: readonly string[];
  /** Multiaddrs ending in /p2p/<peer id>. @default [] */
  bootstrap?: readonly string[];
  /** mDNS discovery; null disables it. @default {} (on) */
  mdns?: MdnsOptions | null;
  /** Backoff of the mesh keeper's dials to missing members and bootstrap peers (mesh.ts); null: dial each once, never again. @default {} */
  reconnect?: ReconnectOptions | null;
  /** Where peers' addresses are kept (addr-book.ts; the runtime opens the data directory's file). @default an in-memory book */
  addressBook?: AddressBook;
  /** Validators of the current height: targets of the mesh even beyond its full-mesh bound. @default none */
  validators?: () => readonly string[];
  /** Mesh bounds (mesh.ts). @default full mesh up to 64 other members, else 32 random + validators */
  mesh?: MeshOptions;
  /** Topic limits (see DEFAULT_GOSSIP_LIMITS in gossip.ts). */
  gossip?: Partial<GossipLimits>;
  /** Direct channel bounds (see DEFAULT_DIRECT_LIMITS in direct.ts). */
  direct?: Partial<DirectLimits>;
  /** Body schema checks per topic, e.g. `{ adverts: (b) => { const r = parseAdvertBody(b); return r.ok ? null : r.detail } }`. @default none (body opaque) */
  bodyCheck?: Partial<Record<TopicName, BodyCheck>>;
  /**
   * libp2p metrics (@libp2p/prometheus-metrics) into a prom-client registry of this
   * host (never prom-client's global one, so in-process hosts do not mix their
   * numbers); node/metrics adds fednode's counters and serves them. null disables.
   * @default {} (on, with a new Registry)
   */
  metrics?: { registry?: Registry } | null;
  /** Bound on open connections. @default 128 (a home lab has tens of nodes; headroom for churn) */
  maxConnections?: number;
  logger?: Logger;
  /** Injected clock (unix ms) for gossip freshness. @default Date.now */
  now?: () => number;
}

export interface PeerSummary {
  peerId: string;
  member: boolean;
  addrs: string[];
  connections: number;
  /** gossipsub's score of the peer (member bonus, invalid messages, behaviour penalties incl. rejected direct frames). */
  score: number;
  /** Latest round-trip time libp2p's connection monitor measured on an open connection (ping every 10 s), ms; null before the first. */
  rttMs: number | null;
}

export interface Host {
  readonly peerId: string;
  readonly members: MemberSource;
  /** Connections that failed the cluster key (pnet) check: count, last time, recent addresses (pnet-failures.ts). */
  pnetFailures(): PnetFailureStats;
  /** The registry holding libp2p's metrics for this host (null when metrics are off). */
  readonly metricsRegistry: Registry | null;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Listen addresses with /p2p/<id>. */
  addresses(): string[];
  /** Publish an envelope (already signed). Works with zero peers (recipients 0). */
  publish(topic: TopicName, envelopeBytes: Uint8Array): Promise<{ recipients: number }>;
  /**
   * Send an envelope (signed by this node) straight to each peer of `to` over its direct
   * channel (direct.ts), without gossip's relays. `missing`: peers without an open channel
   * right now (one is being opened for a connected member); publish() reaches them through
   * the mesh. Throws ERR_PUBLISH_OVERSIZE like publish().
   */
  sendDirect(topic: TopicName, envelopeBytes: Uint8Array, to: readonly string[]): { sent: string[]; missing: string[] };
  directStats(): DirectStats;
  /** Peers with an open outbound direct channel for `topic`. */
  directPeers(topic: TopicName): string[];
  onMessage(topic: TopicName, handler: GossipHandler): () => void;
  peers(): PeerSummary[];
  dial(addr: string): Promise<void>;
  /** Close every connection to a peer (e.g. a member that was removed). Members are redialled by the reconnect logic. */
  hangUp(peerId: string): Promise<void>;
  dialProtocol(peerId: string, protocol: string, opts?: { signal?: AbortSignal }): Promise<Stream>;
  handle(protocol: string, handler: (stream: Stream, remotePeerId: string) => void, opts?: { maxInboundStreams?: number }): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  stats(): GossipStats;
  /** Peers we know to be subscribed to `topic` (readiness checks, tests). */
  topicPeers(topic: TopicName): string[];
  /**
   * `handler(peerId)` each time a peer says it subscribes to `topic` (gossipsub sends its
   * subscriptions on every new connection, so a reconnect or restart is seen too). Returns
   * the unsubscribe.
   */
  onSubscribe(topic: TopicName, handler: (peerId: string) => void): () => void;
  /** Peers in our gossipsub mesh for `topic` (messages are forwarded along the mesh). */
  meshPeers(topic: TopicName): string[];
  /** The connection mesh: targets, connected, missing with reason (mesh.ts). */
  mesh(): MeshStatus;
  /** Addresses of a peer from outside the host (its signed advert): checked, kept, dialled if it is a missing target. */
  learnAddrs(peerId: string, addrs: readonly unknown[], source: AddrSource): LearnResult;
  /** Re-evaluate the mesh targets now (e.g. a height was decided: the validators may have changed). */
  meshChanged(): void;
}

export { messageId } from './host-gossip.js';
export { mdnsServiceTag } from './host-libp2p.js';
export { backoffDelayMs } from './mesh-plan.js';

export async function createHost(init: HostInit): Promise<Host> {
  const log = (init.logger ?? nullLogger).child('p2p');
  const pnet = pnetFailureLog(init.now ?? Date.now, log);
  const now = init.now ?? Date.now;
  const { cluster, members, identity } = init;
  const swarmKey = parseSwarmKey(init.swarmKey);
  const topics = new GossipTopics({ cluster, members, now, limits: init.gossip, bodyCheck: init.bodyCheck, logger: log.child('gossip') });
  const topicNames = new Map<string, TopicName>(TOPIC_NAMES.map((t) => [topicString(cluster, t), t]));
  // null: one attempt per peer and no redial (maxAttempts 1), for tests of the bare host.
  const backoff = init.reconnect === null ? { maxAttempts: 1 } : { ...init.reconnect };
  const bootstrap = bootstrapPeers(init.bootstrap ?? []);
  const book = init.addressBook ?? AddressBook.inMemory();
  /** Set once the direct channels exist (below); the score function only runs after start. */
  let directRef: DirectChannels | null = null;
  const gossipOpts = gossipsubOptions(topicNames, members, (p) => directRef?.penalty(p) ?? 0);
  const gate = new PairGate(identity.peerId, log);
  const metricsRegistry = init.metrics === null ? null : (init.metrics?.registry ?? new Registry());
  const libp2p = await buildLibp2p({ init, swarmKey, pnet, gossipOpts, gater: gate.gater(), metricsRegistry });
  gate.node = libp2p;
  // gossipsub() returns the GossipSub class typed as PubSub; the mesh view needs the class.
  const pubsub = libp2p.services.pubsub as GossipSub;
  installValidators(pubsub, topics, topicNames);
  const run = new RunState();
  const pairs = pairListeners(libp2p, gate, (ms, fn) => run.later(ms, fn), log);
  const direct = createDirect(libp2p, pubsub, { topics, members, now, init, log });
  directRef = direct;
  const keeper = createKeeper(libp2p, gate, direct, { init, self: identity.peerId, members, bootstrap, book, backoff, now, log });
  const events = meshEvents(libp2p, direct, keeper, members);
  return hostApi({ libp2p, pubsub, gate, run, log, cluster, members, topics, topicNames, pnet, metricsRegistry, pairs, events, direct, keeper });
}

/** Bootstrap multiaddrs by peer id; each must end in /p2p/<peer id> (ERR_OPTIONS otherwise). */
function bootstrapPeers(addrs: readonly string[]): Map<string, string[]> {
  const bootstrap = new Map<string, string[]>();
  for (const a of addrs) {
    let id: string | null;
    try {
      id = multiaddr(a).getPeerId();
    } catch (e) {
      throw new P2pError('ERR_OPTIONS', `bootstrap address is not a multiaddr: ${a}`, { addr: a }, { cause: e });
    }
    if (id === null) throw new P2pError('ERR_OPTIONS', `bootstrap address must end in /p2p/<peer id>: ${a}`, { addr: a });
    bootstrap.set(id, [...(bootstrap.get(id) ?? []), a]);
  }
  return bootstrap;
}

/** Whether the host runs, and its timers: cleared at stop, and one firing after stop does nothing. */
class RunState {
  running = false;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.running) fn();
    }, ms);
    this.timers.add(t);
  }

  clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  require(): void {
    if (!this.running) throw new P2pError('ERR_HOST_NOT_STARTED', 'host is not started', {});
  }
}

/** The assembled host's parts, as its API and its start/stop use them. */
interface HostParts {
  readonly libp2p: HostNode;
  readonly pubsub: GossipSub;
  readonly gate: PairGate;
  readonly run: RunState;
  readonly log: Logger;
  readonly cluster: string;
  readonly members: MemberSource;
  readonly topics: GossipTopics;
  readonly topicNames: ReadonlyMap<string, TopicName>;
  readonly pnet: PnetFailureCounter;
  readonly metricsRegistry: Registry | null;
  readonly pairs: { listen(): void; unlisten(): void };
  readonly events: MeshEvents;
  readonly direct: DirectChannels;
  readonly keeper: MeshKeeper;
}

/** start(): listeners, libp2p, subscriptions, direct channels, mesh keeper; stop() undoes them. */
function lifecycle(h: HostParts, addresses: () => string[]): Pick<Host, 'start' | 'stop'> {
  const { libp2p, run, log, keeper, direct } = h;
  return {
    async start() {
      if (run.running) return;
      h.pairs.listen();
      h.events.listen();
      await libp2p.start();
      for (const t of h.topicNames.keys()) h.pubsub.subscribe(t);
      await direct.start(['consensus']);
      run.running = true;
      keeper.start();
      h.events.watchMembers();
      log.info('p2p host started', { peerId: libp2p.peerId.toString(), addrs: addresses() });
    },
    async stop() {
      if (!run.running) return;
      run.running = false;
      run.clear();
      h.events.unwatchMembers();
      await keeper.stop();
      await direct.stop();
      h.topics.stop();
      h.events.unlisten();
      h.pairs.unlisten();
      await libp2p.stop();
      log.info('p2p host stopped', {});
    },
  };
}

/** ERR_PUBLISH_OVERSIZE over the topic's limit (publish and sendDirect alike). */
function checkSize(topics: GossipTopics, topic: TopicName, envelopeBytes: Uint8Array): void {
  const lim = topics.limits[topic];
  if (envelopeBytes.length > lim.maxBytes) {
    throw new P2pError('ERR_PUBLISH_OVERSIZE', `${topic} message is ${envelopeBytes.length} bytes, limit ${lim.maxBytes}`, { topic, size: envelopeBytes.length });
  }
}

function peerSummaries(h: HostParts): PeerSummary[] {
  const out: PeerSummary[] = [];
  for (const p of h.libp2p.getPeers()) {
    const conns = h.libp2p.getConnections(p).filter((c) => c.status === 'open');
    const id = p.toString();
    const rtts = conns.map((c) => c.rtt).filter((r): r is number => typeof r === 'number' && Number.isFinite(r));
    out.push({ peerId: id, member: h.members.isMember(id), addrs: conns.map((c) => c.remoteAddr.toString()), connections: conns.length, score: h.pubsub.getScore(id), rttMs: rtts.length > 0 ? Math.min(...rtts) : null });
  }
  return out;
}

function hostApi(h: HostParts): Host {
  const { libp2p, pubsub, run, cluster, topics, direct, keeper } = h;
  const addresses = (): string[] => libp2p.getMultiaddrs().map((m) => m.toString());
  return {
    peerId: libp2p.peerId.toString(),
    members: h.members,
    metricsRegistry: h.metricsRegistry,
    ...lifecycle(h, addresses),
    addresses,
    async publish(topic, envelopeBytes) {
      run.require();
      checkSize(topics, topic, envelopeBytes);
      const r = await pubsub.publish(topicString(cluster, topic), envelopeBytes);
      return { recipients: r.recipients.length };
    },
    sendDirect(topic, envelopeBytes, to) {
      run.require();
      checkSize(topics, topic, envelopeBytes);
      return direct.send(topic, envelopeBytes, to);
    },
    directStats: () => direct.stats(),
    directPeers: (topic) => direct.peers(topic),
    onMessage: (topic, handler) => topics.onMessage(topic, handler),
    peers: () => peerSummaries(h),
    async dial(addr) {
      run.require();
      const ma = multiaddr(addr);
      try {
        await libp2p.dial(ma);
      } catch (err) {
        // a simultaneous dial from the other side may have won (our duplicate was refused)
        const id = ma.getPeerId();
        if (id !== null && h.gate.hasOpenConnection(peerIdFromString(id))) return;
        throw err;
      }
    },
    async hangUp(peerId) {
      await libp2p.hangUp(peerIdFromString(peerId));
    },
    async dialProtocol(peerId, protocol, opts) {
      run.require();
      return libp2p.dialProtocol(peerIdFromString(peerId), protocol, opts?.signal === undefined ? {} : { signal: opts.signal });
    },
    async handle(protocol, handler, opts) {
      // 32 concurrent inbound streams per connection by default: inference requests in flight from one peer.
      await libp2p.handle(protocol, ({ stream, connection }) => handler(stream, connection.remotePeer.toString()), {
        maxInboundStreams: opts?.maxInboundStreams ?? 32,
      });
    },
    async unhandle(protocol) {
      await libp2p.unhandle(protocol);
    },
    stats: () => topics.stats(),
    pnetFailures: () => h.pnet.stats(),
    topicPeers: (topic) => pubsub.getSubscribers(topicString(cluster, topic)).map((p) => p.toString()),
    onSubscribe: (topic, handler) => {
      const t = topicString(cluster, topic);
      const listener = (evt: CustomEvent<SubscriptionChangeData>): void => {
        if (evt.detail.subscriptions.some((x) => x.subscribe && x.topic === t)) handler(evt.detail.peerId.toString());
      };
      pubsub.addEventListener('subscription-change', listener);
      return () => pubsub.removeEventListener('subscription-change', listener);
    },
    meshPeers: (topic) => pubsub.getMeshPeers(topicString(cluster, topic)),
    mesh: () => keeper.status(),
    learnAddrs: (peerId, addrs, source) => keeper.learn(peerId, addrs, source),
    meshChanged: () => keeper.evaluate(),
  };
}
