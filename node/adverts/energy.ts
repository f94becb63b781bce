/**
 * This node's energy per generated token, measured: at each hardware sample the runtime
 * passes the total tokens its backends have generated so far and the GPUs' power draw; the
 * meter turns the difference since the previous sample into tokens/s and, when tokens were
 * generated and the draw is known, into joules per token (draw / tokens/s), smoothed.
 *
 * PURE (time and readings are inputs). The estimate is KEPT while the node is idle: routing
 * compares members by it, and an idle member falling back to a default would look cheaper or
 * dearer than it measured, moving traffic back and forth (the light-load consolidation would
 * flap). It is the average cost while serving, GPU idle draw included.
 */
import { AdvertError } from './advert.js';

export interface EnergyReading {
  /** Tokens per second over the last window, null when none were generated in it. */
  readonly tokensPerS: number | null;
  /** Smoothed joules per token, null until a window had both tokens and a power reading. */
  readonly joulesPerToken: number | null;
}

export interface EnergyMeterOptions {
  /** Weight of a new window in the average. @default 0.25 (about the last 4 windows, ~8 s at the 2 s hardware cadence) */
  readonly smoothing?: number;
  /** Windows shorter than this are merged into the next (a token count over 10 ms is noise). @default 500 */
  readonly minWindowMs?: number;
}

export class EnergyMeter {
  private readonly smoothing: number;
  private readonly minWindowMs: number;
  private last: { atMs: number; tokens: number } | null = null;
  private tps: number | null = null;
  private jpt: number | null = null;

  constructor(o: EnergyMeterOptions = {}) {
    this.smoothing = o.smoothing ?? 0.25;
    this.minWindowMs = o.minWindowMs ?? 500;
    if (!(this.smoothing > 0 && this.smoothing <= 1)) throw new AdvertError('ERR_ADVERT_CONFIG', `energy smoothing must be in (0, 1], got ${this.smoothing}`, { option: 'smoothing' });
    if (!(this.minWindowMs > 0)) throw new AdvertError('ERR_ADVERT_CONFIG', `energy minWindowMs must be > 0, got ${this.minWindowMs}`, { option: 'minWindowMs' });
  }

  /**
   * One sample: `tokensTotal` generated since start (monotonic), `gpuPowerW` the summed draw of the
   * GPUs now (null: no GPU or unreadable). A counter that went backwards restarts the window.
   */
  sample(atMs: number, tokensTotal: number, gpuPowerW: number | null): EnergyReading {
    const prev = this.last;
    if (prev === null || tokensTotal < prev.tokens || atMs < prev.atMs) {
      this.last = { atMs, tokens: tokensTotal };
      return this.reading;
    }
    const dtMs = atMs - prev.atMs;
    if (dtMs < this.minWindowMs) return this.reading;
    this.last = { atMs, tokens: tokensTotal };
    const tokens = tokensTotal - prev.tokens;
    this.tps = tokens > 0 ? (tokens * 1000) / dtMs : null;
    if (this.tps !== null && gpuPowerW !== null && Number.isFinite(gpuPowerW) && gpuPowerW > 0) {
      const j = gpuPowerW / this.tps;
      this.jpt = this.jpt === null ? j : this.jpt + (j - this.jpt) * this.smoothing;
    }
    return this.reading;
  }

  get reading(): EnergyReading {
    return { tokensPerS: this.tps, joulesPerToken: this.jpt };
  }
}

/** Summed power draw of the GPUs that report one; null when none does. */
export function gpuPowerDrawW(gpus: readonly { readonly powerDrawW: number | null }[] | null): number | null {
  const ws = (gpus ?? []).map((g) => g.powerDrawW).filter((w): w is number => w !== null && Number.isFinite(w));
  return ws.length === 0 ? null : ws.reduce((a, b) => a + b, 0);
}
