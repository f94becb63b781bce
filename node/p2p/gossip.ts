/**
 * Gossip topics, their validators and their queues. Independent of libp2p: the host
 * hands every received message to `validate()` (gossipsub's topic validator) and
 * publishes through gossipsub; this module decides Accept / Ignore / Reject and feeds
 * accepted messages through a bounded queue to the application handlers.
 *
 * As Lodestar's gossip validation: each check names its rule, cheapest first; checks
 * return typed error codes, and the code becomes a verdict in ONE place
 * (`verdictFor`). Reject lowers the propagating peer's gossipsub score (P4 invalid
 * deliveries); Ignore drops without penalty.
 */
import { decodeEnvelope, verifyDecoded } from '../../crypto/envelope.js';
import type { DecodedEnvelope, Envelope, EnvelopeErrorCode } from '../../crypto/envelope.js';
import { VerifiedCache } from '../../crypto/verify-cache.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import type { MemberSource } from './members.js';

export type TopicName = 'adverts' | 'consensus';
export const TOPIC_NAMES: readonly TopicName[] = ['adverts', 'consensus'];

/** `fednode/<cluster>/<name>/1`: the version suffix lets a future wire format run beside this one. */
export function topicString(cluster: string, t: TopicName): string {
  return `fednode/${cluster}/${t}/1`;
}

export type Verdict = 'accept' | 'ignore' | 'reject';

/** Why a message was not accepted. */
export type GossipErrorCode = EnvelopeErrorCode | 'not-member' | 'not-member-relayed' | 'not-sender' | 'replay' | 'too-old' | 'too-new' | 'bad-body' | 'internal';

/**
 * THE place where a validation outcome becomes a verdict.
 * Reject = the peer forwarded something no honest peer would (penalised);
 * Ignore = could come from an honest peer (late relay, clock skew, our own bug).
 */
export function verdictFor(code: GossipErrorCode): Verdict {
  switch (code) {
    case 'oversize':
    case 'bad-encoding':
    case 'non-canonical':
    case 'unknown-field':
    case 'wrong-kind':
    case 'wrong-cluster':
    case 'bad-signer':
    case 'not-member':
    case 'bad-body':
    case 'bad-signature':
    case 'not-sender': // a direct channel carries its remote peer's own envelopes only (see direct.ts)
      return 'reject';
    case 'replay': // the same advert relayed late by an honest mesh peer
    case 'too-old': // honest but delayed
    case 'too-new': // signer's clock ahead of ours: not the relay's fault
    case 'internal': // our bug must not cost an honest peer its score
    case 'not-member-relayed': // a member relaying a signer we do not count yet: membership is
      // decided by consensus, and a node a height behind (catching up, just restarted) does not
      // yet know a newly admitted member that its peers already relay. Not the relay's fault.
      return 'ignore';
  }
}

export interface TopicLimits {
  /** Largest envelope accepted on the topic (bytes). */
  maxBytes: number;
  /** Envelope kinds the topic carries. */
  kinds: readonly string[];
  /** Oldest accepted envelope time relative to our clock (ms). */
  maxAgeMs: number;
  /** How far the signer's clock may run ahead of ours (ms). */
  maxFutureMs: number;
  /** Entries held between validation and the application handler. */
  queueMax: number;
}

export interface GossipLimits {
  adverts: TopicLimits;
  consensus: TopicLimits;
  /** Senders whose last advert seq is remembered (LRU). */
  seqTrackMax: number;
  /** Verified-signature cache entries (shared by both topics). */
  verifiedCacheEntries: number;
}

export const DEFAULT_GOSSIP_LIMITS: GossipLimits = {
  adverts: {
    // An advert is ~1 KiB (a few GPUs, a model list); 64 KiB leaves room for 16 GPUs
    // and hundreds of model names while bounding what a member can make us decode.
    maxBytes: 64 * 1024,
    kinds: ['advert'],
    // Adverts come every 2 s and a peer is "gone" after 10 periods (20 s): anything
    // older than 30 s carries no news.
    maxAgeMs: 30_000,
    // Home-lab clocks are NTP-synced to well under a second; 5 s tolerates a bad one.
    maxFutureMs: 5_000,
    // One pending advert per sender (drop-oldest per sender) and at most the member
    // bound of senders: a newer advert makes an older undelivered one worthless.
    queueMax: 1024,
  },
  consensus: {
    // Proposals carry pattern batches; the envelope layer's default bound (256 KiB).
    maxBytes: 256 * 1024,
    kinds: ['proposal', 'vote', 'status', 'ops'],
    // Consensus rounds time out in seconds; votes older than 2 minutes are history
    // that catch-up fetches by request, not gossip.
    maxAgeMs: 120_000,
    maxFutureMs: 5_000,
    // 4096 ~ 100 validators x 4 message types x ~10 rounds of backlog; when full, the
    // NEWEST is dropped (Lodestar-style for ordered work: the head of the queue is
    // what the state machine needs next; dropped messages are refetched by catch-up).
    queueMax: 4096,
  },
  // 4x the member bound (1024): non-member senders never get here (rejected earlier).
  seqTrackMax: 4096,
  verifiedCacheEntries: 16_384,
};

export interface GossipDelivery {
  topic: TopicName;
  envelope: Envelope;
  /** The envelope's wire bytes as received. */
  bytes: Uint8Array;
  /** The peer that propagated it to us (not necessarily the signer). */
  from: string;
  receivedMs: number;
}

export interface TopicStats {
  accept: number;
  ignore: number;
  reject: number;
  byCode: Partial<Record<GossipErrorCode, number>>;
  /** Accepted messages dropped by the queue's drop policy before delivery. */
  queueDropped: number;
  delivered: number;
  handlerErrors: number;
  queued: number;
}
export type GossipStats = Record<TopicName, TopicStats>;

export type GossipHandler = (d: GossipDelivery) => void | Promise<void>;

type Check = { ok: true; decoded: DecodedEnvelope } | { ok: false; code: GossipErrorCode; detail: string };

/** Bounded queue between validation and the application. */
interface DeliveryQueue {
  push(d: GossipDelivery): boolean; // false when something was dropped
  shift(): GossipDelivery | undefined;
  readonly size: number;
}

/** Adverts: keyed by signer; a newer advert replaces the sender's pending one (drop oldest per sender); when full, the oldest sender's entry goes. */
class LatestPerSenderQueue implements DeliveryQueue {
  private readonly m = new Map<string, GossipDelivery>();
  constructor(private readonly max: number) {}
  push(d: GossipDelivery): boolean {
    const key = d.envelope.signerId;
    let dropped = this.m.delete(key);
    if (this.m.size >= this.max) {
      const oldest = this.m.keys().next().value;
      if (oldest !== undefined) this.m.delete(oldest);
      dropped = true;
    }
    this.m.set(key, d);
    return !dropped;
  }
  shift(): GossipDelivery | undefined {
    const first = this.m.entries().next().value;
    if (first === undefined) return undefined;
    this.m.delete(first[0]);
    return first[1];
  }
  get size(): number {
    return this.m.size;
  }
}

/** Consensus: FIFO; when full the NEW message is dropped (order matters to the state machine). */
class DropNewestQueue implements DeliveryQueue {
  private items: GossipDelivery[] = [];
  private head = 0;
  constructor(private readonly max: number) {}
  push(d: GossipDelivery): boolean {
    if (this.size >= this.max) return false;
    this.items.push(d);
    return true;
  }
  shift(): GossipDelivery | undefined {
    if (this.head >= this.items.length) return undefined;
    const d = this.items[this.head];
    this.items[this.head] = undefined as unknown as GossipDelivery;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return d;
  }
  get size(): number {
    return this.items.length - this.head;
  }
}

/**
 * Application schema check of an envelope body (e.g. node/adverts' parseAdvertBody):
 * null when valid, else a short reason. Injected so this layer stays schema-agnostic.
 */
export type BodyCheck = (body: unknown, kind: string) => string | null;

export interface GossipTopicsOptions {
  cluster: string;
  /** Per-topic body schema checks; a failing body is rejected ('bad-body'). */
  bodyCheck?: Partial<Record<TopicName, BodyCheck>>;
  members: MemberSource;
  /** Injected clock (unix ms). */
  now: () => number;
  limits?: Partial<GossipLimits>;
  logger?: Logger;
}

function emptyStats(): TopicStats {
  return { accept: 0, ignore: 0, reject: 0, byCode: {}, queueDropped: 0, delivered: 0, handlerErrors: 0, queued: 0 };
}

/** Merge user limits over the defaults (per topic, field by field). */
export function resolveGossipLimits(l: Partial<GossipLimits> | undefined): GossipLimits {
  return {
    adverts: { ...DEFAULT_GOSSIP_LIMITS.adverts, ...l?.adverts },
    consensus: { ...DEFAULT_GOSSIP_LIMITS.consensus, ...l?.consensus },
    seqTrackMax: l?.seqTrackMax ?? DEFAULT_GOSSIP_LIMITS.seqTrackMax,
    verifiedCacheEntries: l?.verifiedCacheEntries ?? DEFAULT_GOSSIP_LIMITS.verifiedCacheEntries,
  };
}

export class GossipTopics {
  readonly limits: GossipLimits;
  private readonly cluster: string;
  private readonly members: MemberSource;
  private readonly bodyCheck: Partial<Record<TopicName, BodyCheck>>;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly verified: VerifiedCache;
  /** Last accepted advert seq per signer (LRU by re-insertion, bounded by seqTrackMax). */
  private readonly lastSeq = new Map<string, number>();
  private readonly queues: Record<TopicName, DeliveryQueue>;
  private readonly handlers: Record<TopicName, Set<GossipHandler>> = { adverts: new Set(), consensus: new Set() };
  private readonly counters: GossipStats = { adverts: emptyStats(), consensus: emptyStats() };
  private readonly pumping: Record<TopicName, boolean> = { adverts: false, consensus: false };
  private stopped = false;

  constructor(o: GossipTopicsOptions) {
    this.cluster = o.cluster;
    this.members = o.members;
    this.bodyCheck = o.bodyCheck ?? {};
    this.now = o.now;
    this.log = o.logger ?? nullLogger;
    this.limits = resolveGossipLimits(o.limits);
    this.verified = new VerifiedCache(this.limits.verifiedCacheEntries);
    this.queues = {
      adverts: new LatestPerSenderQueue(this.limits.adverts.queueMax),
      consensus: new DropNewestQueue(this.limits.consensus.queueMax),
    };
  }

  /** The checks, cheapest first; returns the first failing rule or the decoded envelope. */
  /**
   * `expect.signer`: the envelope must be signed by this peer (direct channels, where the
   * stream's remote peer is authenticated by the connection and never relays).
   */
  check(topic: TopicName, data: Uint8Array, from: string | null = null, expect: { signer?: string } = {}): Check {
    const lim = this.limits[topic];
    // [size] bound work before anything else touches the bytes
    if (data.length > lim.maxBytes) return { ok: false, code: 'oversize', detail: `${data.length} > ${lim.maxBytes} bytes` };
    // [decode] [kind] [cluster] canonical CBOR envelope of a kind this topic carries, for our cluster (no signature yet)
    const d = decodeEnvelope(data, { kinds: lim.kinds, cluster: this.cluster, maxBytes: lim.maxBytes });
    if (!d.ok) {
      // envelope codes other than bad-signature map 1:1 (decode never checks signatures)
      const code: GossipErrorCode = d.code === 'bad-signature' ? 'bad-encoding' : d.code;
      return { ok: false, code, detail: d.detail };
    }
    const env = d.envelope;
    // [sender] on a direct channel, only the remote peer's own envelopes
    if (expect.signer !== undefined && env.signerId !== expect.signer) return { ok: false, code: 'not-sender', detail: `signer ${env.signerId} is not the sending peer ${expect.signer}` };
    // [member] only cluster members may speak (non-members with the PSK connect but are not heard)
    if (!this.members.isMember(env.signerId)) {
      // a non-member speaking for itself is penalised; a member relaying it is not (see verdictFor)
      const relayed = from !== null && from !== env.signerId && this.members.isMember(from);
      return { ok: false, code: relayed ? 'not-member-relayed' : 'not-member', detail: `signer ${env.signerId} is not a member` };
    }
    // [freshness: time window] the signer's clock, within tolerance of ours
    const now = this.now();
    if (env.time < now - lim.maxAgeMs) return { ok: false, code: 'too-old', detail: `time ${env.time} older than ${lim.maxAgeMs} ms` };
    if (env.time > now + lim.maxFutureMs) return { ok: false, code: 'too-new', detail: `time ${env.time} ahead by more than ${lim.maxFutureMs} ms` };
    // [freshness: seq] adverts replace each other: seq must grow per signer (replay/older -> ignore)
    if (topic === 'adverts') {
      const last = this.lastSeq.get(env.signerId);
      if (last !== undefined && env.seq <= last) return { ok: false, code: 'replay', detail: `seq ${env.seq} <= last seen ${last}` };
    }
    // [body] the application's schema for this topic (cheap next to Ed25519)
    const bodyCheck = this.bodyCheck[topic];
    if (bodyCheck !== undefined) {
      const why = bodyCheck(env.body, env.kind);
      if (why !== null) return { ok: false, code: 'bad-body', detail: why };
    }
    // [signature] the expensive check last; cached by digest (same message from several peers)
    if (!verifyDecoded(d, this.verified)) return { ok: false, code: 'bad-signature', detail: 'Ed25519 signature does not verify' };
    return { ok: true, decoded: d };
  }

  /**
   * gossipsub's topic validator (and direct channels'): never throws (a peer sending garbage cannot crash
   * the node); on Accept the message is queued for the handlers.
   */
  validate(topic: TopicName, data: Uint8Array, from: string, expect: { signer?: string } = {}): Verdict {
    const c = this.counters[topic];
    let r: Check;
    try {
      r = this.check(topic, data, from, expect);
    } catch (err) {
      this.log.warn('validator failed', { topic, from, err: err instanceof Error ? err.message : String(err) });
      r = { ok: false, code: 'internal', detail: 'validator threw' };
    }
    if (!r.ok) {
      const verdict = verdictFor(r.code);
      c[verdict]++;
      c.byCode[r.code] = (c.byCode[r.code] ?? 0) + 1;
      if (verdict === 'reject') this.log.debug('gossip rejected', { topic, from, code: r.code, detail: r.detail });
      return verdict;
    }
    c.accept++;
    const env = r.decoded.envelope;
    if (topic === 'adverts') this.noteSeq(env.signerId, env.seq);
    this.enqueue(topic, { topic, envelope: env, bytes: data, from, receivedMs: this.now() });
    return 'accept';
  }

  /** Record our own published advert seq so a relayed copy of it is not re-delivered. */
  noteSeq(signerId: string, seq: number): void {
    this.lastSeq.delete(signerId);
    if (this.lastSeq.size >= this.limits.seqTrackMax) {
      const oldest = this.lastSeq.keys().next().value;
      if (oldest !== undefined) this.lastSeq.delete(oldest);
    }
    this.lastSeq.set(signerId, seq);
  }

  onMessage(topic: TopicName, handler: GossipHandler): () => void {
    this.handlers[topic].add(handler);
    return () => {
      this.handlers[topic].delete(handler);
    };
  }

  stats(): GossipStats {
    const out = {} as GossipStats;
    for (const t of TOPIC_NAMES) {
      const c = this.counters[t];
      out[t] = { ...c, byCode: { ...c.byCode }, queued: this.queues[t].size };
    }
    return out;
  }

  stop(): void {
    this.stopped = true;
  }

  private enqueue(topic: TopicName, d: GossipDelivery): void {
    if (!this.queues[topic].push(d)) this.counters[topic].queueDropped++;
    if (!this.pumping[topic]) {
      this.pumping[topic] = true;
      setImmediate(() => void this.pump(topic));
    }
  }

  /** Drain one topic's queue into its handlers, one message at a time (handlers may be async). */
  private async pump(topic: TopicName): Promise<void> {
    const q = this.queues[topic];
    const c = this.counters[topic];
    try {
      for (let d = q.shift(); d !== undefined && !this.stopped; d = q.shift()) {
        for (const h of [...this.handlers[topic]]) {
          try {
            await h(d);
          } catch (err) {
            c.handlerErrors++;
            this.log.warn('gossip handler failed', { topic, err: err instanceof Error ? err.message : String(err) });
          }
        }
        c.delivered++;
      }
    } finally {
      this.pumping[topic] = false;
    }
  }
}
