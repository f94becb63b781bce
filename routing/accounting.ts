/**
 * This router's own count of requests per peer: sent and not yet seen finish, plus
 * the count at the moment the peer's latest advert arrived (how many of ours that
 * advert already includes). Pure state, no clock: the caller tells it what happened.
 */
import { RoutingError } from './errors.js';
import type { OwnLoad } from './policy.js';

/** Default bound on tracked peers: a home lab has tens of nodes; 1024 leaves room and caps memory. */
export const DEFAULT_MAX_PEERS = 1024;
/** Outstanding per peer is capped: a leak (lost finish) can never grow a counter without bound. */
export const MAX_OUTSTANDING_PER_PEER = 1_000_000;

interface Entry {
  outstanding: number;
  outstandingAtAdvert: number;
  advertSeq: number | null;
}

export class RoutingAccounting {
  readonly maxPeers: number;
  private readonly peers = new Map<string, Entry>();

  constructor(maxPeers: number = DEFAULT_MAX_PEERS) {
    if (!Number.isInteger(maxPeers) || maxPeers < 1) throw new RoutingError('ERR_ROUTING_PARAMS', 'maxPeers must be an integer >= 1', { maxPeers });
    this.maxPeers = maxPeers;
  }

  private entry(peerId: string): Entry {
    let e = this.peers.get(peerId);
    if (e === undefined) {
      if (this.peers.size >= this.maxPeers) this.evictOne();
      e = { outstanding: 0, outstandingAtAdvert: 0, advertSeq: null };
      this.peers.set(peerId, e);
    }
    return e;
  }

  /** Evict an idle peer first (nothing outstanding); else the oldest inserted. */
  private evictOne(): void {
    for (const [id, e] of this.peers) {
      if (e.outstanding === 0) {
        this.peers.delete(id);
        return;
      }
    }
    const first = this.peers.keys().next();
    if (first.done !== true) this.peers.delete(first.value);
  }

  /** A request was sent to (or started locally on) `peerId`. */
  onSent(peerId: string): void {
    const e = this.entry(peerId);
    e.outstanding = Math.min(MAX_OUTSTANDING_PER_PEER, e.outstanding + 1);
  }

  /** A request to `peerId` finished (success, error or abort: every onSent gets exactly one). */
  onFinished(peerId: string): void {
    const e = this.peers.get(peerId);
    if (e === undefined) return;
    e.outstanding = Math.max(0, e.outstanding - 1);
    // The advert counted at most what is still outstanding of ours.
    e.outstandingAtAdvert = Math.min(e.outstandingAtAdvert, e.outstanding);
  }

  /**
   * A new advert from `peerId` arrived (seq = its sequence number). Snapshot our
   * outstanding count: the advert already includes those requests. Same seq twice is a no-op.
   */
  onAdvert(peerId: string, seq: number): void {
    const e = this.entry(peerId);
    if (e.advertSeq !== null && seq <= e.advertSeq) return;
    e.advertSeq = seq;
    e.outstandingAtAdvert = e.outstanding;
  }

  /** Forget a peer (it left the cluster). */
  forget(peerId: string): void {
    this.peers.delete(peerId);
  }

  get(peerId: string): OwnLoad {
    const e = this.peers.get(peerId);
    return e === undefined ? { outstanding: 0, outstandingAtAdvert: 0 } : { outstanding: e.outstanding, outstandingAtAdvert: e.outstandingAtAdvert };
  }

  /** Plain-data view for rankCandidates({ own }). */
  snapshot(): Record<string, OwnLoad> {
    const out: Record<string, OwnLoad> = {};
    for (const [id, e] of this.peers) out[id] = { outstanding: e.outstanding, outstandingAtAdvert: e.outstandingAtAdvert };
    return out;
  }

  get size(): number {
    return this.peers.size;
  }
}
