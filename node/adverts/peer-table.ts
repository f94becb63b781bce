/**
 * Latest advert per member, with staleness. PURE given `nowMs` (no clock, no I/O):
 * the runtime passes the time; tests and the simnet drive it directly.
 *
 * Age is measured from when THIS node accepted the advert, not from the signer's
 * `timeMs`: home-lab clocks drift, and a peer's clock must not make it look fresh.
 *   live:  ageMs <= staleAfterPeriods x periodMs
 *   stale: staleAfterPeriods x periodMs < ageMs <= goneAfterPeriods x periodMs
 *   gone:  ageMs > goneAfterPeriods x periodMs (removed by prune; never shown)
 *
 * Replays: an advert whose seq is <= the last seq seen from that peer is ignored, even
 * after the peer went and was removed (its last seq is kept as a tombstone, bounded),
 * so an old signed advert of a dead node cannot make it look alive again. This is why
 * the publisher's seq must survive restarts (see publisher.ts).
 */
import { AdvertError, assertPositiveInt, type AdvertBody } from './advert.js';
import type { ReceivedAdvert } from './envelope.js';

export type PeerState = 'live' | 'stale';

export interface PeerTableOptions {
  /** Advert heartbeat period of the cluster. @default 2000 (publisher default) */
  readonly periodMs?: number;
  /** @default 3 (issue 3) */
  readonly staleAfterPeriods?: number;
  /** @default 10 (issue 3) */
  readonly goneAfterPeriods?: number;
  /** Bound: the cluster's member count (the gossip validator admits only members). */
  readonly maxPeers: number;
}

export interface PeerSnapshot {
  readonly peerId: string;
  readonly seq: number;
  /** Signer's clock when it published (informational). */
  readonly timeMs: number;
  readonly advert: AdvertBody;
  /** Since this node accepted the advert. */
  readonly ageMs: number;
  readonly state: PeerState;
}

/** accepted: stored. replay: seq <= last seen from this peer. full: a new peer while maxPeers are live or stale. */
export type OfferResult = 'accepted' | 'replay' | 'full';

interface Entry {
  readonly advert: ReceivedAdvert;
  readonly receivedAtMs: number;
}

export class PeerTable {
  readonly periodMs: number;
  readonly staleAfterMs: number;
  readonly goneAfterMs: number;
  readonly maxPeers: number;
  private readonly entries = new Map<string, Entry>();
  /** Last seq of removed peers, oldest removal first; bounded by maxPeers (one per possible member). */
  private readonly tombstones = new Map<string, number>();

  constructor(opts: PeerTableOptions) {
    this.periodMs = opts.periodMs ?? 2000;
    const stale = opts.staleAfterPeriods ?? 3;
    const gone = opts.goneAfterPeriods ?? 10;
    assertPositiveInt(this.periodMs, 'periodMs');
    assertPositiveInt(stale, 'staleAfterPeriods');
    assertPositiveInt(gone, 'goneAfterPeriods');
    assertPositiveInt(opts.maxPeers, 'maxPeers');
    if (gone <= stale) throw new AdvertError('ERR_ADVERT_CONFIG', `goneAfterPeriods (${gone}) must exceed staleAfterPeriods (${stale})`, { option: 'goneAfterPeriods' });
    this.staleAfterMs = stale * this.periodMs;
    this.goneAfterMs = gone * this.periodMs;
    this.maxPeers = opts.maxPeers;
  }

  /** Peers stored (live, stale, or gone but not yet pruned). */
  get size(): number {
    return this.entries.size;
  }

  /** Highest seq seen from `peerId` (including removed peers), or null. */
  lastSeq(peerId: string): number | null {
    return this.entries.get(peerId)?.advert.seq ?? this.tombstones.get(peerId) ?? null;
  }

  /** Cheap freshness check for gossip validators, before the signature check. */
  isNewer(peerId: string, seq: number): boolean {
    const last = this.lastSeq(peerId);
    return last === null || seq > last;
  }

  /** Store a verified advert received at `nowMs`. */
  offer(advert: ReceivedAdvert, nowMs: number): OfferResult {
    if (!this.isNewer(advert.peerId, advert.seq)) return 'replay';
    if (!this.entries.has(advert.peerId) && this.entries.size >= this.maxPeers) {
      this.prune(nowMs);
      if (this.entries.size >= this.maxPeers) return 'full';
    }
    this.tombstones.delete(advert.peerId);
    this.entries.set(advert.peerId, { advert, receivedAtMs: nowMs });
    return 'accepted';
  }

  /** Remove peers gone at `nowMs`; returns their ids (sorted). */
  prune(nowMs: number): string[] {
    const removed: string[] = [];
    for (const [id, e] of this.entries) {
      if (this.ageOf(e, nowMs) > this.goneAfterMs) removed.push(id);
    }
    for (const id of removed.sort()) this.remove(id);
    return removed;
  }

  /** Forget a peer now (e.g. it left the membership); its seq stays as a tombstone. */
  remove(peerId: string): boolean {
    const e = this.entries.get(peerId);
    if (e === undefined) return false;
    this.entries.delete(peerId);
    this.tombstones.delete(peerId);
    this.tombstones.set(peerId, e.advert.seq);
    while (this.tombstones.size > this.maxPeers) {
      const oldest = this.tombstones.keys().next();
      if (oldest.done === true) break;
      this.tombstones.delete(oldest.value);
    }
    return true;
  }

  /** Keep only these members (after a membership change); returns removed ids. */
  retain(members: ReadonlySet<string>): string[] {
    const removed = [...this.entries.keys()].filter((id) => !members.has(id)).sort();
    for (const id of removed) this.remove(id);
    return removed;
  }

  get(peerId: string, nowMs: number): PeerSnapshot | null {
    const e = this.entries.get(peerId);
    return e === undefined ? null : this.view(peerId, e, nowMs);
  }

  /** Live and stale peers at `nowMs`, sorted by peerId (gone ones are never shown, pruned or not). */
  snapshot(nowMs: number): PeerSnapshot[] {
    const out: PeerSnapshot[] = [];
    for (const [id, e] of this.entries) {
      const v = this.view(id, e, nowMs);
      if (v !== null) out.push(v);
    }
    return out.sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0));
  }

  private ageOf(e: Entry, nowMs: number): number {
    return Math.max(0, nowMs - e.receivedAtMs); // a clock step back makes age 0, never negative
  }

  private view(peerId: string, e: Entry, nowMs: number): PeerSnapshot | null {
    const ageMs = this.ageOf(e, nowMs);
    if (ageMs > this.goneAfterMs) return null;
    return { peerId, seq: e.advert.seq, timeMs: e.advert.timeMs, advert: e.advert.body, ageMs, state: ageMs > this.staleAfterMs ? 'stale' : 'live' };
  }
}
