/**
 * Round-trip time per member, smoothed: an exponentially weighted moving average of the
 * RTT samples libp2p's connection monitor takes (a ping every 10 s per connection; the
 * runtime feeds each new reading in). Pure state, no clock: the caller says what was measured.
 *
 * The average starts as the plain mean of the first samples and, once it has
 * `windowSamples` of them, moves by 1/windowSamples per sample: an EWMA over about the last
 * `windowSamples` pings, with a sample count that never grows past that bound. One slow ping
 * (a GC pause, a burst on the link) moves the estimate by an eighth, not to the outlier.
 */
import { RoutingError } from './errors.js';

/** @default 8 samples: at one ping per 10 s the estimate follows a link that changed within ~1-2 minutes. */
export const RTT_WINDOW_SAMPLES_DEFAULT = 8;
/** Peers tracked: a home lab has tens of members; 1024 matches the accounting's bound and caps memory. */
export const RTT_MAX_PEERS_DEFAULT = 1024;
/** Samples above this are broken readings (a stalled connection), not a link: 60 s. */
export const RTT_SAMPLE_MAX_MS = 60_000;

interface Entry {
  ewmaMs: number;
  /** Samples folded in, at most windowSamples. */
  samples: number;
}

export class RttTable {
  readonly windowSamples: number;
  readonly maxPeers: number;
  private readonly peers = new Map<string, Entry>();

  constructor(o: { windowSamples?: number; maxPeers?: number } = {}) {
    this.windowSamples = o.windowSamples ?? RTT_WINDOW_SAMPLES_DEFAULT;
    this.maxPeers = o.maxPeers ?? RTT_MAX_PEERS_DEFAULT;
    for (const [k, v] of [['windowSamples', this.windowSamples], ['maxPeers', this.maxPeers]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RoutingError('ERR_ROUTING_PARAMS', `RttTable ${k} must be an integer >= 1`, { [k]: v });
    }
  }

  /** One RTT measurement of `peerId`, ms. Returns false (and changes nothing) for a value that is not a duration. */
  onSample(peerId: string, rttMs: number): boolean {
    if (!Number.isFinite(rttMs) || rttMs < 0 || rttMs > RTT_SAMPLE_MAX_MS) return false;
    let e = this.peers.get(peerId);
    if (e === undefined) {
      if (this.peers.size >= this.maxPeers) {
        const oldest = this.peers.keys().next();
        if (oldest.done !== true) this.peers.delete(oldest.value);
      }
      e = { ewmaMs: rttMs, samples: 1 };
      this.peers.set(peerId, e);
      return true;
    }
    e.samples = Math.min(this.windowSamples, e.samples + 1);
    e.ewmaMs += (rttMs - e.ewmaMs) / e.samples;
    return true;
  }

  /** Smoothed RTT in ms, null when never measured. */
  get(peerId: string): number | null {
    return this.peers.get(peerId)?.ewmaMs ?? null;
  }

  samples(peerId: string): number {
    return this.peers.get(peerId)?.samples ?? 0;
  }

  forget(peerId: string): void {
    this.peers.delete(peerId);
  }

  get size(): number {
    return this.peers.size;
  }
}
