/**
 * Small time series for the dashboard's plots (issue 17): per member, load (in-flight plus
 * queued over capacity), hottest GPU temperature and tokens per second, one sample every
 * `intervalMs`, the last `samples` kept. Pure given the times passed in.
 */

/** 2 s (the advert period) x 150 = the last 5 minutes. */
export const HISTORY_INTERVAL_MS = 2_000;
export const HISTORY_SAMPLES = 150;
/** Members tracked: the member list's own bound (node/p2p/members.ts). */
export const HISTORY_PEERS_MAX = 1_024;

export interface HistoryPoint {
  /** Unix ms of the sample. */
  readonly t: number;
  /** (inFlight + queued) / capacity; null when the member serves nothing. */
  readonly load: number | null;
  readonly tempC: number | null;
  readonly tokensPerS: number | null;
}

export class History {
  private readonly series = new Map<string, HistoryPoint[]>();
  constructor(readonly samples = HISTORY_SAMPLES) {}

  /** Record one sample for each member present; members absent from `points` keep their past (a gone member's line stops). */
  record(points: ReadonlyMap<string, HistoryPoint>): void {
    for (const [peer, p] of points) {
      let s = this.series.get(peer);
      if (s === undefined) {
        if (this.series.size >= HISTORY_PEERS_MAX) continue; // bounded: a new member beyond the bound is not plotted
        s = [];
        this.series.set(peer, s);
      }
      s.push(p);
      if (s.length > this.samples) s.shift();
    }
  }

  /** Forget members no longer in the cluster. */
  retain(members: ReadonlySet<string>): void {
    for (const k of [...this.series.keys()]) if (!members.has(k)) this.series.delete(k);
  }

  toJSON(): Record<string, HistoryPoint[]> {
    return Object.fromEntries([...this.series].map(([k, v]) => [k, [...v]]));
  }
}
