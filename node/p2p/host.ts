/**
 * The ONE file that assembles libp2p (2.x). Everything else in fednode talks to the
 * `Host` interface below, so moving to libp2p 3.x touches this room only.
 *
 * Stack: tcp + pnet (cluster pre-shared key, XSalsa20 before anything else) + noise +
 * yamux; identify, ping; gossipsub (StrictNoSign, msgId = BLAKE3(topic || data), peer
 * scoring with a member bonus / non-member penalty, per-topic validators from
 * gossip.ts); discovery by mDNS (service tag derived from fednode + cluster id); the
 * mesh keeper (mesh.ts: bootstrap peers and every member, dialled with capped backoff from
 * the address book); one connection per peer pair (a duplicate is refused only while the
 * existing connection answers a ping); libp2p's own metrics (@libp2p/prometheus-metrics) on a prom-client
 * registry per host, where node/metrics adds fednode's and serves them.
 */
import { gossipsub } from '@chainsafe/libp2p-gossipsub';
import type { GossipSub, GossipsubOpts } from '@chainsafe/libp2p-gossipsub';
import { createPeerScoreParams, createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { StrictNoSign, TopicValidatorResult } from '@libp2p/interface';
import type { Connection, Libp2p, Message, PeerId, Stream } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { Registry } from 'prom-client';
import { hostMetrics } from './host-metrics.js';
import { blake3 } from '../../crypto/blake3.js';
import type { Identity } from '../../crypto/keys.js';
import { toLibp2pPrivateKey } from '../../crypto/keys.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { AddressBook } from './addr-book.js';
import type { AddrSource, LearnResult } from './addr-book.js';
import { DirectChannels } from './direct.js';
import type { DirectLimits, DirectStats } from './direct.js';
import { P2pError } from './errors.js';
import { GossipTopics, TOPIC_NAMES, topicString } from './gossip.js';
import type { BodyCheck, GossipHandler, GossipLimits, GossipStats, TopicName, Verdict } from './gossip.js';
import type { MemberSource } from './members.js';
import { MeshKeeper } from './mesh.js';
import type { MeshOptions, MeshStatus } from './mesh.js';
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
  /** Peers in our gossipsub mesh for `topic` (messages are forwarded along the mesh). */
  meshPeers(topic: TopicName): string[];
  /** The connection mesh: targets, connected, missing with reason (mesh.ts). */
  mesh(): MeshStatus;
  /** Addresses of a peer from outside the host (its signed advert): checked, kept, dialled if it is a missing target. */
  learnAddrs(peerId: string, addrs: readonly unknown[], source: AddrSource): LearnResult;
  /** Re-evaluate the mesh targets now (e.g. a height was decided: the validators may have changed). */
  meshChanged(): void;
}

/** Maximum gossip RPC frame (bytes): the largest topic message (256 KiB) plus protobuf/control overhead. */
const GOSSIP_RPC_MAX_BYTES = 512 * 1024;
/** Outbound buffer per peer stream: 8 MiB = 32 max-size messages queued before gossipsub drops the peer's writes. */
const GOSSIP_OUTBOUND_BUFFER_BYTES = 8 * 1024 * 1024;
/** gossipsub graylist score: below it a peer's RPCs are ignored, and it may not open direct channels. */
const GRAYLIST_THRESHOLD = -80;
/**
 * A non-preferred duplicate is refused only if the existing connection answers a ping within
 * this time: a peer restarted (kill -9, power loss) dials us before our old connection to it
 * has noticed it is dead, and refusing it would leave the pair unconnected until libp2p's
 * connection monitor (10 s ping) drops the dead one. 2 s is many LAN round trips.
 */
const LIVENESS_PING_MS = 2_000;
/** The higher peer id waits this long for the lower one to dial after an mDNS hit (both would dial otherwise). */
const MDNS_DIAL_GRACE_MS = 1_500;

/** mDNS service tag: per cluster (two clusters on one LAN never see each other) without publishing the id. */
export function mdnsServiceTag(cluster: string): string {
  const h = Buffer.from(blake3(new TextEncoder().encode(`fednode mdns ${cluster}`))).toString('hex').slice(0, 16);
  return `_fednode-${h}._udp.local`;
}

/** gossipsub message id: BLAKE3(topic || data). With StrictNoSign there is no seqno; identical bytes are the same message. */
export function messageId(topic: string, data: Uint8Array): Uint8Array {
  const t = new TextEncoder().encode(topic);
  const buf = new Uint8Array(t.length + data.length);
  buf.set(t, 0);
  buf.set(data, t.length);
  return blake3(buf);
}

export { backoffDelayMs } from './mesh-plan.js';

export async function createHost(init: HostInit): Promise<Host> {
  const log = (init.logger ?? nullLogger).child('p2p');
  const now = init.now ?? Date.now;
  const { cluster, members, identity } = init;
  const swarmKey = parseSwarmKey(init.swarmKey);
  const topics = new GossipTopics({ cluster, members, now, limits: init.gossip, bodyCheck: init.bodyCheck, logger: log.child('gossip') });
  const topicNames = new Map<string, TopicName>(TOPIC_NAMES.map((t) => [topicString(cluster, t), t]));
  // null: one attempt per peer and no redial (maxAttempts 1), for tests of the bare host.
  const backoff = init.reconnect === null ? { maxAttempts: 1 } : { ...init.reconnect };
  const bootstrap = new Map<string, string[]>();
  for (const a of init.bootstrap ?? []) {
    let id: string | null;
    try {
      id = multiaddr(a).getPeerId();
    } catch (e) {
      throw new P2pError('ERR_OPTIONS', `bootstrap address is not a multiaddr: ${a}`, { addr: a }, { cause: e });
    }
    if (id === null) throw new P2pError('ERR_OPTIONS', `bootstrap address must end in /p2p/<peer id>: ${a}`, { addr: a });
    bootstrap.set(id, [...(bootstrap.get(id) ?? []), a]);
  }
  const book = init.addressBook ?? AddressBook.inMemory();

  // Member bonus / non-member penalty (P5, app-specific score). Non-members sit below
  // gossipThreshold (no IHAVE/IWANT with them) and below 0 (pruned from meshes); each
  // rejected message adds P4 (invalid deliveries, squared) until they are graylisted.
  /** Set once the direct channels exist (below); the score function only runs after start. */
  let directRef: DirectChannels | null = null;
  const scoreParams = createPeerScoreParams({
    // minus the decaying penalty for rejected direct-channel frames (direct.ts)
    appSpecificScore: (p) => (members.isMember(p) ? 10 : -30) - (directRef?.penalty(p) ?? 0),
    appSpecificWeight: 1,
    // Home-lab nodes often share one public IP (NAT) or, in tests, 127.0.0.1: no colocation penalty.
    IPColocationFactorWeight: 0,
    topics: Object.fromEntries(
      [...topicNames.keys()].map((t) => [
        t,
        createTopicScoreParams({
          topicWeight: 1,
          // P3 (mesh delivery deficit) off: adverts come every 2 s, far below any useful rate threshold.
          meshMessageDeliveriesWeight: 0,
          // P4: each invalid message costs 10 * count^2, decaying by half each decay interval.
          invalidMessageDeliveriesWeight: -10,
          invalidMessageDeliveriesDecay: 0.5,
        }),
      ]),
    ),
  });
  const gossipOpts: Partial<GossipsubOpts> = {
    globalSignaturePolicy: StrictNoSign,
    msgIdFn: (msg: Message) => messageId(msg.topic, msg.data),
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    emitSelf: false,
    allowedTopics: [...topicNames.keys()],
    maxInboundDataLength: GOSSIP_RPC_MAX_BYTES,
    maxOutboundBufferSize: GOSSIP_OUTBOUND_BUFFER_BYTES,
    // Bounded protobuf decode per RPC: more than any honest peer sends in one frame.
    decodeRpcLimits: {
      maxSubscriptions: 16,
      maxMessages: 256,
      maxIhaveMessageIDs: 1024,
      maxIwantMessageIDs: 1024,
      maxIdontwantMessageIDs: 1024,
      maxControlMessages: 256,
      maxPeerInfos: 16,
    },
    // Inbound/outbound gossip streams per connection: one each is the protocol; 4 tolerates reconnect overlap.
    maxInboundStreams: 4,
    maxOutboundStreams: 4,
    scoreParams,
    scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: GRAYLIST_THRESHOLD, acceptPXThreshold: 100, opportunisticGraftThreshold: 5 },
    doPX: false,
  };

  let node: Libp2p | null = null;
  const hasOpenConnection = (peer: PeerId): boolean => node !== null && node.getConnections(peer).some((c) => c.status === 'open');
  const selfIdStr = identity.peerId;
  /** Is a connection with this direction the pair's preferred one (initiated by the lower peer id)? */
  const preferred = (peer: PeerId, direction: 'inbound' | 'outbound'): boolean => {
    const initiator = direction === 'outbound' ? selfIdStr : peer.toString();
    return initiator === (selfIdStr < peer.toString() ? selfIdStr : peer.toString());
  };

  const metricsRegistry = init.metrics === null ? null : (init.metrics?.registry ?? new Registry());

  const peerDiscovery: NonNullable<Parameters<typeof createLibp2p>[0]>['peerDiscovery'] = [];
  if (init.mdns !== null) {
    peerDiscovery.push(mdns({ serviceTag: mdnsServiceTag(cluster), interval: init.mdns?.intervalMs ?? 10_000 }));
  }

  const libp2p = await createLibp2p({
    start: false,
    privateKey: toLibp2pPrivateKey(identity),
    addresses: { listen: [...(init.listen ?? ['/ip4/0.0.0.0/tcp/0'])] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: swarmKey }),
    peerDiscovery,
    connectionManager: { maxConnections: init.maxConnections ?? 128 },
    ...(metricsRegistry === null ? {} : { metrics: hostMetrics(metricsRegistry) }),
    // One connection per peer pair, decided the same way on both sides: the preferred
    // connection is the one initiated by the lower peer id. A non-preferred connection
    // is refused once any connection is up (before identify or gossipsub see it); a
    // preferred one is always let in and displaces a non-preferred one (connection:open).
    connectionGater: {
      denyInboundUpgradedConnection: async (peer) => !preferred(peer, 'inbound') && (await existingAlive(peer)),
      denyOutboundUpgradedConnection: async (peer) => !preferred(peer, 'outbound') && (await existingAlive(peer)),
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub(gossipOpts),
    },
  });
  node = libp2p;
  /** Is there an open connection to `peer` that answers a ping? A dead one is closed here (see LIVENESS_PING_MS). */
  async function existingAlive(peer: PeerId): Promise<boolean> {
    if (!hasOpenConnection(peer)) return false;
    try {
      await libp2p.services.ping.ping(peer, { signal: AbortSignal.timeout(LIVENESS_PING_MS) });
      return true;
    } catch (e) {
      log.info('existing connection did not answer a ping; taking the new one', { peer: peer.toString(), err: e instanceof Error ? e.message : String(e) });
      for (const c of libp2p.getConnections(peer)) c.abort(new P2pError('ERR_PEER_UNRESPONSIVE', 'connection did not answer a liveness ping', { peer: peer.toString() }));
      return false;
    }
  }
  const selfId = libp2p.peerId.toString();
  // gossipsub() returns the GossipSub class typed as PubSub; the mesh view needs the class.
  const pubsub = libp2p.services.pubsub as GossipSub;

  for (const [t, name] of topicNames) {
    pubsub.topicValidators.set(t, (from, msg) => toResult(topics.validate(name, msg.data, from.toString())));
  }

  // --- one connection per peer pair -------------------------------------------------
  // Both sides keep the preferred connection (oldest among equals) and close the rest.
  // Closing a connection that gossipsub already had streams on would leave it with a
  // dead stream (it only resets on peer:disconnect), so a check runs shortly after:
  // if the surviving connection carries no outbound gossip stream, hang up and let the
  // reconnect logic redial once.
  const GOSSIP_STREAM_CHECK_MS = 2_000; // identify + gossipsub stream setup take a few RTTs
  const onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const peer = evt.detail.remotePeer;
    const open = libp2p.getConnections(peer).filter((c) => c.status === 'open');
    if (open.length < 2) return;
    // Among equally preferred ones the NEWEST stays: an older one may be from before the peer restarted.
    open.sort((a, b) => Number(preferred(peer, b.direction)) - Number(preferred(peer, a.direction)) || b.timeline.open - a.timeline.open);
    for (const extra of open.slice(1)) {
      log.debug('closing duplicate connection', { peer: peer.toString(), direction: extra.direction });
      extra.close().catch(() => undefined);
    }
    later(GOSSIP_STREAM_CHECK_MS, () => {
      const conns = libp2p.getConnections(peer).filter((c) => c.status === 'open');
      if (conns.length !== 1) return;
      if (conns[0]!.streams.some((st) => st.direction === 'outbound' && st.protocol?.startsWith('/meshsub/') === true)) return;
      log.info('gossip stream lost with a duplicate connection; reconnecting', { peer: peer.toString() });
      libp2p.hangUp(peer).catch(() => undefined);
    });
  };

  // --- discovery ---------------------------------------------------------------------
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let running = false;
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (running) fn();
    }, ms);
    timers.add(t);
  };
  const dialPeer = (peer: PeerId, why: string): Promise<boolean> =>
    libp2p.dial(peer).then(
      () => true,
      (err: unknown) => {
        log.debug('dial failed', { peer: peer.toString(), why, err: err instanceof Error ? err.message : String(err) });
        return false;
      },
    );
  const onDiscovery = (evt: CustomEvent<{ id: PeerId }>): void => {
    const peer = evt.detail.id;
    const id = peer.toString();
    if (id === selfId || hasOpenConnection(peer)) return;
    // Both sides hear each other's mDNS answer: the lower id dials now, the higher only
    // if still unconnected after a grace period (so normally exactly one dial happens).
    if (selfId < id) void dialPeer(peer, 'discovery');
    else later(MDNS_DIAL_GRACE_MS, () => void (hasOpenConnection(peer) ? undefined : dialPeer(peer, 'discovery-late')));
  };

  // --- direct channels (consensus messages point to point; see direct.ts) -------------------
  const direct = new DirectChannels({
    topics,
    members,
    now,
    limits: init.direct,
    logger: log.child('direct'),
    transport: {
      handle: (protocol, handler, opts) => libp2p.handle(protocol, ({ stream, connection }) => handler(stream, connection.remotePeer.toString()), opts),
      unhandle: (protocol) => libp2p.unhandle(protocol),
      openStream: (peerId, protocol) => {
        const conn = libp2p.getConnections(peerIdFromString(peerId)).find((c) => c.status === 'open');
        // Full negotiation (one round trip, once per channel): a peer without the protocol fails
        // here, before any frame is counted as sent, so its messages keep going by gossip.
        return conn === undefined ? null : conn.newStream(protocol);
      },
      acceptable: (peerId) => pubsub.getScore(peerId) > GRAYLIST_THRESHOLD,
    },
  });
  directRef = direct;

  // --- the mesh: every member connected to every member (bounded; mesh.ts) ------------------
  const keeper = new MeshKeeper({
    self: selfIdStr,
    members,
    ...(init.validators !== undefined ? { validators: init.validators } : {}),
    bootstrap,
    book,
    backoff,
    ...init.mesh,
    now,
    rand: Math.random,
    logger: log.child('mesh'),
    transport: {
      dial: async (peer, addrs) => {
        await libp2p.dial(addrs.map((a) => multiaddr(`${a}/p2p/${peer}`)));
      },
      isConnected: (peer) => hasOpenConnection(peerIdFromString(peer)),
    },
    // A direct channel that ended while the peer stayed connected (a duplicate connection
    // closed under it, an open that failed) is reopened here, not only at the next send.
    onConnectedTick: (peer) => direct.connected(peer),
  });
  const onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const id = evt.detail.toString();
    direct.closePeer(id);
    keeper.disconnected(id);
  };
  const onConnect = (evt: CustomEvent<PeerId>): void => {
    const id = evt.detail.toString();
    keeper.connected(id);
    direct.connected(id);
  };
  const onIdentify = (evt: CustomEvent<{ peerId: PeerId; listenAddrs: Array<{ toString(): string }> }>): void => {
    keeper.learn(evt.detail.peerId.toString(), evt.detail.listenAddrs.map((m) => m.toString()), 'identify');
  };
  // identify usually runs before a joiner's member.add is decided, when its addresses are not
  // yet kept (members only): a peer that becomes a member gets them from the peer store then.
  let offMembers: (() => void) | null = null;
  const onMembersChanged = (ev: { added: readonly string[] }): void => {
    for (const id of ev.added) {
      libp2p.peerStore.get(peerIdFromString(id)).then(
        (p) => void keeper.learn(id, p.addresses.map((a) => a.multiaddr.toString()), 'peer-store'),
        () => undefined, // not in the peer store: its advert will say
      );
    }
  };
  const onPeerUpdate = (evt: CustomEvent<{ peer: { id: PeerId; addresses: Array<{ multiaddr: { toString(): string } }> } }>): void => {
    const p = evt.detail.peer;
    if (p.addresses.length > 0) keeper.learn(p.id.toString(), p.addresses.map((a) => a.multiaddr.toString()), 'peer-store');
  };

  const requireRunning = (): void => {
    if (!running) throw new P2pError('ERR_HOST_NOT_STARTED', 'host is not started', {});
  };

  const host: Host = {
    peerId: selfId,
    members,
    metricsRegistry,
    async start() {
      if (running) return;
      libp2p.addEventListener('connection:open', onConnectionOpen);
      libp2p.addEventListener('peer:discovery', onDiscovery);
      libp2p.addEventListener('peer:disconnect', onDisconnect);
      libp2p.addEventListener('peer:connect', onConnect);
      libp2p.addEventListener('peer:identify', onIdentify);
      libp2p.addEventListener('peer:update', onPeerUpdate);
      await libp2p.start();
      for (const t of topicNames.keys()) pubsub.subscribe(t);
      await direct.start(['consensus']);
      running = true;
      keeper.start();
      offMembers = members.onChange(onMembersChanged);
      log.info('p2p host started', { peerId: selfId, addrs: host.addresses() });
    },
    async stop() {
      if (!running) return;
      running = false;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      offMembers?.();
      await keeper.stop();
      await direct.stop();
      topics.stop();
      libp2p.removeEventListener('peer:disconnect', onDisconnect);
      libp2p.removeEventListener('peer:connect', onConnect);
      libp2p.removeEventListener('peer:identify', onIdentify);
      libp2p.removeEventListener('peer:update', onPeerUpdate);
      libp2p.removeEventListener('connection:open', onConnectionOpen);
      libp2p.removeEventListener('peer:discovery', onDiscovery);
      await libp2p.stop();
      log.info('p2p host stopped', {});
    },
    addresses: () => libp2p.getMultiaddrs().map((m) => m.toString()),
    async publish(topic, envelopeBytes) {
      requireRunning();
      const lim = topics.limits[topic];
      if (envelopeBytes.length > lim.maxBytes) {
        throw new P2pError('ERR_PUBLISH_OVERSIZE', `${topic} message is ${envelopeBytes.length} bytes, limit ${lim.maxBytes}`, { topic, size: envelopeBytes.length });
      }
      const r = await pubsub.publish(topicString(cluster, topic), envelopeBytes);
      return { recipients: r.recipients.length };
    },
    sendDirect(topic, envelopeBytes, to) {
      requireRunning();
      const lim = topics.limits[topic];
      if (envelopeBytes.length > lim.maxBytes) {
        throw new P2pError('ERR_PUBLISH_OVERSIZE', `${topic} message is ${envelopeBytes.length} bytes, limit ${lim.maxBytes}`, { topic, size: envelopeBytes.length });
      }
      return direct.send(topic, envelopeBytes, to);
    },
    directStats: () => direct.stats(),
    directPeers: (topic) => direct.peers(topic),
    onMessage: (topic, handler) => topics.onMessage(topic, handler),
    peers() {
      const out: PeerSummary[] = [];
      for (const p of libp2p.getPeers()) {
        const conns = libp2p.getConnections(p).filter((c) => c.status === 'open');
        const id = p.toString();
        const rtts = conns.map((c) => c.rtt).filter((r): r is number => typeof r === 'number' && Number.isFinite(r));
        out.push({ peerId: id, member: members.isMember(id), addrs: conns.map((c) => c.remoteAddr.toString()), connections: conns.length, score: pubsub.getScore(id), rttMs: rtts.length > 0 ? Math.min(...rtts) : null });
      }
      return out;
    },
    async dial(addr) {
      requireRunning();
      const ma = multiaddr(addr);
      try {
        await libp2p.dial(ma);
      } catch (err) {
        // a simultaneous dial from the other side may have won (our duplicate was refused)
        const id = ma.getPeerId();
        if (id !== null && hasOpenConnection(peerIdFromString(id))) return;
        throw err;
      }
    },
    async hangUp(peerId) {
      await libp2p.hangUp(peerIdFromString(peerId));
    },
    async dialProtocol(peerId, protocol, opts) {
      requireRunning();
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
    topicPeers: (topic) => pubsub.getSubscribers(topicString(cluster, topic)).map((p) => p.toString()),
    meshPeers: (topic) => pubsub.getMeshPeers(topicString(cluster, topic)),
    mesh: () => keeper.status(),
    learnAddrs: (peerId, addrs, source) => keeper.learn(peerId, addrs, source),
    meshChanged: () => keeper.evaluate(),
  };
  return host;
}

function toResult(v: Verdict): TopicValidatorResult {
  switch (v) {
    case 'accept':
      return TopicValidatorResult.Accept;
    case 'ignore':
      return TopicValidatorResult.Ignore;
    case 'reject':
      return TopicValidatorResult.Reject;
  }
}
