/**
 * Direct channels: one long-lived libp2p stream per (topic, member peer) carrying the
 * topic's signed envelopes as length-prefixed frames, point to point.
 *
 * Why: gossipsub floods. In a cluster where every validator is connected to every other
 * (the home-lab case: mDNS finds everyone), each consensus message published by one node
 * reaches each peer once from the author and again from every other mesh peer that relays
 * it: with n = 4, 9 transmissions for 3 useful ones, each paying pnet + noise + yamux and
 * gossipsub's bookkeeping. CometBFT's consensus reactor talks to its peers directly for the
 * same reason. The caller (node/consensus/driver.ts) sends on these channels and falls back
 * to gossip publish when a peer that must hear the message has no open channel (not
 * connected, channel still opening, an old node without the protocol, a peer too slow to
 * drain its queue), so a partly connected cluster still gets every message through relays.
 *
 * Frames are validated by the SAME checks and verdicts as gossip (GossipTopics.validate,
 * with the direct-only rule that the envelope's signer is the stream's remote peer: an
 * honest node never forwards someone else's envelope on a direct channel). A rejected frame
 * resets the stream and lowers the peer's gossip score (DIRECT_REJECT_PENALTY), as a rejected
 * gossip message does; a peer graylisted by its score cannot open a direct channel to us.
 */
import { pipe } from 'it-pipe';
import * as lp from 'it-length-prefixed';
import { pushable } from 'it-pushable';
import type { Pushable } from 'it-pushable';
import type { Stream } from '@libp2p/interface';
import type { Logger } from '../log.js';
import { P2pError } from './errors.js';
import { nullLogger } from '../log.js';
import type { GossipTopics, TopicName } from './gossip.js';
import { MEMBERS_MAX_DEFAULT } from './members.js';
import type { MemberSource } from './members.js';

/** it-length-prefixed's errors for framing no honest peer sends (not UnexpectedEOFError: a peer killed mid-frame). */
const GARBAGE_FRAMING = new Set(['InvalidMessageLengthError', 'InvalidDataLengthError', 'InvalidDataLengthLengthError']);
const closed = (why: string): P2pError => new P2pError('ERR_DIRECT_CLOSED', `direct channel closed: ${why}`);
const errText = (err: unknown): string => (err instanceof Error ? err.message : typeof err === 'string' ? err : 'unknown error');

/** `/fednode/direct/<topic>/1`: versioned like the gossip topics. */
export function directProtocol(topic: TopicName): string {
  return `/fednode/direct/${topic}/1.0.0`;
}

export interface DirectLimits {
  /**
   * Bytes queued on one outbound channel before it is closed as too slow: 8 MiB, as the gossip
   * outbound buffer (32 maximum-size consensus messages). A peer that cannot drain that much is
   * served by gossip (with its own bound) until a fresh channel opens.
   */
  maxQueuedBytes: number;
  /** Inbound direct streams per connection and protocol: one per peer, 2 tolerates a reopen overlap. */
  maxInboundStreams: number;
  /** First wait before reopening a channel whose open failed; doubles per failure. */
  retryBaseMs: number;
  /** Cap of that wait (an old node without the protocol is asked again at most once a minute). */
  retryMaxMs: number;
}

export const DEFAULT_DIRECT_LIMITS: DirectLimits = {
  maxQueuedBytes: 8 * 1024 * 1024,
  maxInboundStreams: 2,
  retryBaseMs: 1_000,
  retryMaxMs: 60_000,
};

/** What this module needs of libp2p (host.ts provides it). */
export interface DirectTransport {
  handle(protocol: string, handler: (stream: Stream, remotePeerId: string) => void, opts: { maxInboundStreams: number }): Promise<void>;
  unhandle(protocol: string): Promise<void>;
  /** A new stream over an already open connection; null when the peer is not connected (never dials). */
  openStream(peerId: string, protocol: string): Promise<Stream> | null;
  /** May this peer open a channel to us (not graylisted by its gossip score)? */
  acceptable(peerId: string): boolean;
}

/**
 * Score penalty per rejected direct frame, subtracted from the peer's gossipsub app-specific
 * score (host.ts): a member (+10) drops below the gossip threshold (-10) with its second
 * rejected frame and is graylisted (-80) with its fifth, which also bars it from opening direct
 * channels. It halves every DIRECT_PENALTY_HALF_LIFE_MS, so a peer that stops recovers within a
 * minute or two. Kept here rather than as a gossipsub behaviour penalty (P7), whose decay is
 * shared with gossipsub's own penalties (graft backoff, broken promises).
 */
export const DIRECT_REJECT_PENALTY = 20;
export const DIRECT_PENALTY_HALF_LIFE_MS = 10_000;
/** Retry entries kept: topics x members (the member bound, 1,024) with room for 4 topics. */
const RETRY_MAX = 4 * 1024;
/** Peers with a penalty remembered (the member bound); the oldest entry goes first. */
const PENALTIES_MAX = MEMBERS_MAX_DEFAULT;

export interface DirectStats {
  /** Frames queued on an open channel. */
  sent: number;
  /** Sends to a peer without an open channel (the caller's fallback covers them). */
  missing: number;
  /** Channels opened / failed to open / closed because their queue was over the bound. */
  opened: number;
  openFailures: number;
  overflowClosed: number;
  /** Frames received (before validation) and inbound streams refused (not a member, graylisted). */
  received: number;
  inboundRefused: number;
  /** Streams reset because a frame was rejected or did not parse (oversize length prefix). */
  rejectedStreams: number;
  /** Open outbound channels now. */
  channels: number;
}

interface Outbound {
  state: 'opening' | 'open';
  queue: Pushable<Uint8Array> | null;
  stream: Stream | null;
}

interface Retry {
  failures: number;
  notBeforeMs: number;
}

export interface DirectChannelsOptions {
  topics: GossipTopics;
  members: MemberSource;
  transport: DirectTransport;
  now?: () => number;
  limits?: Partial<DirectLimits>;
  logger?: Logger;
}

export class DirectChannels {
  private readonly topics: GossipTopics;
  private readonly members: MemberSource;
  private readonly t: DirectTransport;
  private readonly now: () => number;
  private readonly limits: DirectLimits;
  private readonly log: Logger;
  /** key `${topic} ${peer}`; at most topics x members entries (the member bound, 1,024). */
  private readonly out = new Map<string, Outbound>();
  /** Open failures per key, same bound; removed on success. */
  private readonly retry = new Map<string, Retry>();
  private readonly inbound = new Set<Stream>();
  /** Rejected-frame penalties: value at `atMs`, halving every DIRECT_PENALTY_HALF_LIFE_MS. */
  private readonly penalties = new Map<string, { value: number; atMs: number }>();
  private readonly handled: TopicName[] = [];
  private unsubscribeMembers: (() => void) | null = null;
  private running = false;
  private readonly c: Omit<DirectStats, 'channels'> = { sent: 0, missing: 0, opened: 0, openFailures: 0, overflowClosed: 0, received: 0, inboundRefused: 0, rejectedStreams: 0 };

  constructor(o: DirectChannelsOptions) {
    this.topics = o.topics;
    this.members = o.members;
    this.t = o.transport;
    this.now = o.now ?? Date.now;
    this.limits = { ...DEFAULT_DIRECT_LIMITS, ...o.limits };
    this.log = o.logger ?? nullLogger;
  }

  async start(topics: readonly TopicName[]): Promise<void> {
    if (this.running) return;
    this.running = true;
    for (const topic of topics) {
      await this.t.handle(directProtocol(topic), (stream, remote) => this.accept(topic, stream, remote), { maxInboundStreams: this.limits.maxInboundStreams });
      this.handled.push(topic);
    }
    // A removed member's channels go at once (it may still be connected for a while); a new
    // member already connected gets its channels now, before the first message needs them.
    this.unsubscribeMembers = this.members.onChange((ev) => {
      for (const peer of ev.removed) this.closePeer(peer);
      for (const peer of ev.added) this.connected(peer);
    });
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unsubscribeMembers?.();
    this.unsubscribeMembers = null;
    for (const topic of this.handled.splice(0)) await this.t.unhandle(directProtocol(topic)).catch(() => undefined);
    for (const key of [...this.out.keys()]) this.close(key);
    for (const s of this.inbound) s.abort(closed('host stopping'));
    this.inbound.clear();
    this.retry.clear();
  }

  /**
   * Queue `bytes` (one signed envelope of `topic`) to each peer of `to` that has an open
   * channel. Peers without one are returned in `missing` (and a channel is opened for the next
   * message when the peer is a connected member); the caller decides whether to fall back.
   */
  send(topic: TopicName, bytes: Uint8Array, to: readonly string[]): { sent: string[]; missing: string[] } {
    const sent: string[] = [];
    const missing: string[] = [];
    if (!this.running) return { sent, missing: [...to] };
    let frame: Uint8Array | null = null;
    for (const peer of to) {
      const key = `${topic} ${peer}`;
      const ch = this.out.get(key);
      if (ch?.state === 'open' && ch.queue !== null) {
        if (ch.queue.readableLength > this.limits.maxQueuedBytes) {
          this.c.overflowClosed++;
          this.log.info('direct channel over its queue bound; closing (gossip carries on)', { topic, peer });
          this.close(key);
          missing.push(peer);
          continue;
        }
        frame ??= lp.encode.single(bytes).subarray();
        ch.queue.push(frame);
        sent.push(peer);
        continue;
      }
      missing.push(peer);
      if (ch === undefined) this.open(topic, peer);
    }
    this.c.sent += sent.length;
    this.c.missing += missing.length;
    return { sent, missing };
  }

  /** Peers with an open outbound channel for `topic`. */
  peers(topic: TopicName): string[] {
    const out: string[] = [];
    const prefix = `${topic} `;
    for (const [key, ch] of this.out) if (ch.state === 'open' && key.startsWith(prefix)) out.push(key.slice(prefix.length));
    return out;
  }

  stats(): DirectStats {
    let channels = 0;
    for (const ch of this.out.values()) if (ch.state === 'open') channels++;
    return { ...this.c, channels };
  }

  /** The peer's current rejected-frame penalty (0 when none), for its gossip score. */
  penalty(peer: string): number {
    const p = this.penalties.get(peer);
    if (p === undefined) return 0;
    const v = p.value * 0.5 ** (Math.max(0, this.now() - p.atMs) / DIRECT_PENALTY_HALF_LIFE_MS);
    if (v < 0.5) {
      this.penalties.delete(peer);
      return 0;
    }
    return v;
  }

  private penalize(peer: string): void {
    const value = this.penalty(peer) + DIRECT_REJECT_PENALTY;
    this.penalties.delete(peer);
    if (this.penalties.size >= PENALTIES_MAX) {
      const oldest = this.penalties.keys().next().value;
      if (oldest !== undefined) this.penalties.delete(oldest);
    }
    this.penalties.set(peer, { value, atMs: this.now() });
  }

  /**
   * A peer connected (or became a member): open its channels now, so the first consensus
   * message after a (re)connect goes direct and status shows the channel while the cluster is
   * idle. Members only; a peer in open-retry backoff waits for it.
   */
  connected(peer: string): void {
    if (!this.running) return;
    for (const topic of this.handled) if (!this.out.has(`${topic} ${peer}`)) this.open(topic, peer);
  }

  /** Close every channel with a peer (disconnected or removed). */
  closePeer(peer: string): void {
    for (const key of [...this.out.keys()]) if (key.endsWith(` ${peer}`)) this.close(key);
    // A reconnect opens at once (the wait after a channel ended was for a live connection).
    for (const [key, r] of [...this.retry]) if (key.endsWith(` ${peer}`) && r.failures === 0) this.retry.delete(key);
  }

  private open(topic: TopicName, peer: string): void {
    const key = `${topic} ${peer}`;
    if (!this.members.isMember(peer)) return;
    const r = this.retry.get(key);
    if (r !== undefined && this.now() < r.notBeforeMs) return;
    const pending = this.t.openStream(peer, directProtocol(topic));
    if (pending === null) return; // not connected: gossip reaches it through relays, if at all
    const ch: Outbound = { state: 'opening', queue: null, stream: null };
    this.out.set(key, ch);
    pending.then(
      (stream) => {
        if (this.out.get(key) !== ch || !this.running) {
          stream.abort(closed('no longer wanted'));
          return;
        }
        const queue = pushable<Uint8Array>();
        ch.state = 'open';
        ch.queue = queue;
        ch.stream = stream;
        this.retry.delete(key);
        this.c.opened++;
        const ended = (err?: unknown): void => {
          if (err !== undefined) this.log.debug('direct channel closed', { topic, peer, err: errText(err) });
          if (this.out.get(key) !== ch) return;
          this.out.delete(key);
          queue.end();
          stream.abort(closed('ended'));
          // Reopened by the next send or the mesh keeper's tick, but not before retryBaseMs: a
          // peer that resets every channel (or a flapping link) is not asked again in a loop.
          if (this.running && (this.retry.size < RETRY_MAX || this.retry.has(key))) this.retry.set(key, { failures: 0, notBeforeMs: this.now() + this.limits.retryBaseMs });
        };
        stream.sink(queue).then(() => ended(), ended);
        // The receiver never writes: its end of the stream closing or resetting (a rejected
        // frame, the peer stopping) ends our read side, and with it the channel. A sink blocked
        // on an empty queue would not notice until the next frame.
        void (async () => {
          for await (const chunk of stream.source) void chunk; // nothing is expected; bytes are ignored
        })().then(() => ended(), ended);
      },
      (err: unknown) => {
        this.c.openFailures++;
        if (this.out.get(key) === ch) this.out.delete(key);
        const failures = (this.retry.get(key)?.failures ?? 0) + 1;
        const wait = Math.min(this.limits.retryMaxMs, this.limits.retryBaseMs * 2 ** Math.min(failures - 1, 30));
        if (this.retry.size < RETRY_MAX || this.retry.has(key)) this.retry.set(key, { failures, notBeforeMs: this.now() + wait });
        this.log.debug('direct channel did not open', { topic, peer, failures, err: errText(err) });
      },
    );
  }

  private close(key: string): void {
    const ch = this.out.get(key);
    if (ch === undefined) return;
    this.out.delete(key);
    ch.queue?.end();
    ch.stream?.abort(closed('closed by this node'));
  }

  /** An inbound channel: frames through the gossip checks until the peer closes it or sends garbage. */
  private accept(topic: TopicName, stream: Stream, remote: string): void {
    if (!this.running || !this.members.isMember(remote) || !this.t.acceptable(remote)) {
      this.c.inboundRefused++;
      stream.abort(new P2pError('ERR_DIRECT_REFUSED', 'direct channel refused: not a member in good standing', { peer: remote }));
      return;
    }
    this.inbound.add(stream);
    const maxDataLength = this.topics.limits[topic].maxBytes;
    let rejected = false;
    void pipe(
      stream.source,
      (source) => lp.decode(source, { maxDataLength }),
      async (frames) => {
        for await (const frame of frames) {
          this.c.received++;
          // [direct] the envelope's signer must be the stream's (authenticated) remote peer
          if (this.topics.validate(topic, frame.subarray(), remote, { signer: remote }) === 'reject') {
            rejected = true;
            break;
          }
        }
      },
    )
      .catch((err: unknown) => {
        // A length prefix that is malformed or over the bound is garbage from this peer. A reset
        // or closed stream, or a frame cut short (the peer stopped or was killed mid-write), is not.
        if (err instanceof Error && GARBAGE_FRAMING.has(err.name)) rejected = true;
        this.log.debug('direct channel ended with an error', { topic, remote, garbage: rejected, err: errText(err) });
      })
      .finally(() => {
        this.inbound.delete(stream);
        if (rejected && this.running) {
          this.c.rejectedStreams++;
          this.penalize(remote);
          stream.abort(new P2pError('ERR_DIRECT_REJECTED', 'direct channel reset: a frame was rejected', { peer: remote }));
        } else {
          stream.close().catch((err: unknown) => stream.abort(closed(errText(err))));
        }
      });
  }
}
