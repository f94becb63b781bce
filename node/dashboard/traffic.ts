/**
 * Traffic as this node routed it (issue 17): requests per second and time to first token per
 * serving member over a sliding window, failovers, 429s and errors, from the request
 * observations (node/metrics/requests.ts). Pure given the times passed in: no clock of its own.
 *
 * Tokens per second per member come from the members' own adverts (each measures what it
 * generated, whoever routed it); requests per second here count what THIS entry point routed.
 */
import type { RequestObservation } from '../metrics/requests.js';

/** Window for the rates: 10 s smooths one request per few seconds into a readable rate. */
export const TRAFFIC_WINDOW_MS = 10_000;
/** Observations kept for the window: 10 s at 400 req/s; beyond, the oldest go first (rates then under-read, never grow memory). */
export const TRAFFIC_EVENTS_MAX = 4_096;

export interface PeerTraffic {
  readonly reqPerS: number;
  readonly tokensOutPerS: number;
  /** Median time to first token of the window's requests served by the member, ms (null: none). */
  readonly ttftMsP50: number | null;
}

export interface TrafficSummary {
  readonly windowMs: number;
  readonly reqPerS: number;
  readonly tokensOutPerS: number;
  readonly ttftMsP50: number | null;
  readonly perPeer: Readonly<Record<string, PeerTraffic>>;
  /** Totals since start. */
  readonly totals: { readonly requests: number; readonly failovers: number; readonly busy: number; readonly errors: number };
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export class TrafficBook {
  private readonly events: RequestObservation[] = [];
  private requests = 0;
  private failovers = 0;
  private busy = 0;
  private errors = 0;

  add(o: RequestObservation): void {
    this.requests++;
    if (o.attempts > 1) this.failovers += o.attempts - 1;
    if (o.outcome === 'busy') this.busy++;
    if (o.outcome === 'error') this.errors++;
    this.events.push(o);
    if (this.events.length > TRAFFIC_EVENTS_MAX) this.events.shift();
  }

  summary(nowMs: number): TrafficSummary {
    const from = nowMs - TRAFFIC_WINDOW_MS;
    while (this.events.length > 0 && (this.events[0] as RequestObservation).endMs < from) this.events.shift();
    const s = TRAFFIC_WINDOW_MS / 1000;
    const byPeer = new Map<string, RequestObservation[]>();
    for (const e of this.events) {
      if (e.servedBy === null) continue;
      const l = byPeer.get(e.servedBy) ?? [];
      l.push(e);
      byPeer.set(e.servedBy, l);
    }
    const perPeer: Record<string, PeerTraffic> = {};
    for (const [peer, l] of byPeer) {
      perPeer[peer] = { reqPerS: l.length / s, tokensOutPerS: l.reduce((a, e) => a + e.completionTokens, 0) / s, ttftMsP50: median(l.flatMap((e) => (e.ttftMs === null ? [] : [e.ttftMs]))) };
    }
    const ok = this.events.filter((e) => e.outcome === 'ok');
    return {
      windowMs: TRAFFIC_WINDOW_MS,
      reqPerS: this.events.length / s,
      tokensOutPerS: ok.reduce((a, e) => a + e.completionTokens, 0) / s,
      ttftMsP50: median(ok.flatMap((e) => (e.ttftMs === null ? [] : [e.ttftMs]))),
      perPeer,
      totals: { requests: this.requests, failovers: this.failovers, busy: this.busy, errors: this.errors },
    };
  }
}
