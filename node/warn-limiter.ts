/**
 * Rate-limited warnings: the first warning of a kind in a window is logged; the rest are
 * counted and summarised once the window ends ("N more in the last 10 s"), so a burst of
 * 429s, rejected gossip or refused dials writes a few lines, not thousands. Counters per
 * kind are kept for metrics (`counts()`).
 */
import type { LogData, Logger } from './log.js';

/** Kinds tracked; a new kind beyond this shares the '(other)' entry (bounds memory on a hostile key space). */
export const MAX_WARNING_KINDS = 256;

export interface WarningCount {
  /** Warnings of this kind since start. */
  total: number;
  /** Of those, not written as a line of their own (summarised). */
  suppressed: number;
}

export interface WarnLimiterOptions {
  /** @default 10000 (the summary says "in the last 10 s") */
  windowMs?: number;
  now?: () => number;
  /** Timer to write a summary when a window ends quietly. @default setTimeout (unref'd) */
  schedule?: (fn: () => void, ms: number) => void;
}

interface Window {
  startedMs: number;
  pending: number;
  lastMsg: string;
  timerSet: boolean;
}

export class WarnLimiter {
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void, ms: number) => void;
  private readonly windows = new Map<string, Window>();
  private readonly totals = new Map<string, WarningCount>();

  constructor(
    private readonly log: Logger,
    opts: WarnLimiterOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 10_000;
    this.now = opts.now ?? Date.now;
    this.schedule =
      opts.schedule ??
      ((fn, ms) => {
        setTimeout(fn, ms).unref();
      });
  }

  /** Logs `msg` unless a warning of `kind` was logged within the window; then counts it. */
  warn(kind: string, msg: string, data?: LogData): void {
    const k = this.totals.has(kind) || this.totals.size < MAX_WARNING_KINDS ? kind : '(other)';
    const c = this.totals.get(k) ?? { total: 0, suppressed: 0 };
    c.total++;
    this.totals.set(k, c);
    const t = this.now();
    const w = this.windows.get(k);
    if (w !== undefined && t - w.startedMs < this.windowMs) {
      w.pending++;
      w.lastMsg = msg;
      c.suppressed++;
      if (!w.timerSet) {
        w.timerSet = true;
        this.schedule(() => this.flush(k), Math.max(0, w.startedMs + this.windowMs - t));
      }
      return;
    }
    if (w !== undefined) this.summarise(k, w);
    this.windows.set(k, { startedMs: t, pending: 0, lastMsg: msg, timerSet: false });
    this.log.warn(msg, data === undefined ? { kind: k } : { ...data, kind: k });
  }

  /** Writes the summary of `kind`'s window if it has ended with warnings left unwritten. */
  flush(kind: string): void {
    const w = this.windows.get(kind);
    if (w === undefined) return;
    if (this.now() - w.startedMs < this.windowMs) {
      w.timerSet = false;
      if (w.pending > 0) {
        w.timerSet = true;
        this.schedule(() => this.flush(kind), Math.max(0, w.startedMs + this.windowMs - this.now()));
      }
      return;
    }
    this.summarise(kind, w);
    this.windows.delete(kind);
  }

  private summarise(kind: string, w: Window): void {
    if (w.pending === 0) return;
    const s = Math.round(this.windowMs / 1000);
    this.log.warn(`${w.lastMsg} (${w.pending} more in the last ${s} s)`, { kind, suppressed: w.pending, windowMs: this.windowMs });
    w.pending = 0;
  }

  /** Counters per kind (metrics). */
  counts(): Readonly<Record<string, WarningCount>> {
    return Object.fromEntries([...this.totals].map(([k, v]) => [k, { ...v }]));
  }
}
