/**
 * Advert publisher: polls `collect()` on an injected scheduler and publishes a signed
 * advert when something material changed (see isMaterialChange) and at least every
 * `periodMs` (heartbeat; the peer table's staleness is counted in these periods).
 *
 * Bounded: one collect/publish at a time (a slow collect delays the next tick, ticks
 * never pile up), no queue (only the latest body matters), and at most one advert
 * per `minIntervalMs` however fast things change.
 *
 * seq: strictly increasing. The runtime passes the last seq it used (persisted) as
 * `startSeq`; the first advert carries startSeq + 1. `persistSeq` (optional) is awaited
 * BEFORE each advert leaves, so a crash never reuses a seq peers have already seen
 * (they would ignore it as a replay). A runtime without persistence can pass
 * startSeq = current unix ms: seqs then stay increasing across restarts unless the
 * clock goes back.
 */
import type { Identity } from '../../crypto/keys.js';
import { nullLogger, type Logger } from '../log.js';
import { assertPositiveInt, type AdvertBody, type AdvertGpu } from './advert.js';
import { createAdvertEnvelope } from './envelope.js';

export interface TimerHandle {
  cancel(): void;
}

/** Clock + one-shot timers. A fake one in tests advances time without sleeping. */
export interface Scheduler {
  /** Unix ms. */
  now(): number;
  /** Run `fn` once after `delayMs`. A returned promise is awaited by fake schedulers (tests). */
  schedule(delayMs: number, fn: () => void | Promise<void>): TimerHandle;
}

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  schedule(delayMs, fn) {
    const t = setTimeout(() => {
      void Promise.resolve()
        .then(fn)
        .catch(() => undefined);
    }, delayMs);
    return { cancel: () => clearTimeout(t) };
  },
};

/** What counts as a material change; a difference below these is jitter, not news. */
export interface ChangeThresholds {
  /** CPU load per core. @default 0.25 (a quarter of the machine) */
  readonly cpuLoad: number;
  /** Host memory used, fraction of total. @default 0.1 */
  readonly memFraction: number;
  /** GPU memory used, fraction of the GPU's total (a model load/unload is several GiB). @default 0.1 */
  readonly gpuMemFraction: number;
  /** GPU utilisation, percentage points. @default 25 */
  readonly gpuUtilPct: number;
  /** GPU temperature, C. @default 5 (the thermal policy's hysteresis band) */
  readonly gpuTempC: number;
  /** GPU power draw, fraction of the power limit (of 300 W when the limit is unknown). @default 0.2 */
  readonly gpuPowerFraction: number;
  /** Battery, percentage points. @default 5 */
  readonly batteryPct: number;
  /** CPU package power, W. @default 15 */
  readonly cpuPackageW: number;
}

export const DEFAULT_CHANGE_THRESHOLDS: ChangeThresholds = Object.freeze({
  cpuLoad: 0.25,
  memFraction: 0.1,
  gpuMemFraction: 0.1,
  gpuUtilPct: 25,
  gpuTempC: 5,
  gpuPowerFraction: 0.2,
  batteryPct: 5,
  cpuPackageW: 15,
});

/** |a - b| >= min, with null <-> number always material (a reading appeared or vanished). */
function moved(a: number | null, b: number | null, min: number): boolean {
  if (a === null || b === null) return a !== b;
  return Math.abs(a - b) >= min;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((x, i) => x === sb[i]);
}

function gpuChange(a: AdvertGpu, b: AdvertGpu, t: ChangeThresholds): string | null {
  if (a.index !== b.index || a.name !== b.name) return 'gpu identity';
  if (a.memoryTotalMiB !== b.memoryTotalMiB) return 'gpu memory total';
  if (a.powerLimitW !== b.powerLimitW) return 'gpu power limit';
  const total = b.memoryTotalMiB ?? a.memoryTotalMiB;
  if (moved(a.memoryUsedMiB, b.memoryUsedMiB, total !== null && total > 0 ? total * t.gpuMemFraction : 1024)) return 'gpu memory used';
  if (moved(a.utilizationPct, b.utilizationPct, t.gpuUtilPct)) return 'gpu utilization';
  if (moved(a.temperatureC, b.temperatureC, t.gpuTempC)) return 'gpu temperature';
  if (moved(a.powerDrawW, b.powerDrawW, (b.powerLimitW ?? 300) * t.gpuPowerFraction)) return 'gpu power draw';
  return null;
}

/**
 * Why `next` is worth an advert before the heartbeat, or null when it is only jitter.
 * Always material: models, request counts (inFlight, queued: routing reads them),
 * capacity, profile and pin, API address, power source and charging, the GPU set.
 * Material past a threshold: the measured quantities in ChangeThresholds.
 */
export function isMaterialChange(prev: AdvertBody, next: AdvertBody, t: ChangeThresholds = DEFAULT_CHANGE_THRESHOLDS): string | null {
  if (!sameList(prev.models, next.models)) return 'models';
  if (prev.capacity !== next.capacity) return 'capacity';
  if (prev.inFlight !== next.inFlight) return 'inFlight';
  if (prev.queued !== next.queued) return 'queued';
  if (prev.profile !== next.profile || prev.profilePinned !== next.profilePinned) return 'profile';
  if (prev.apiUrl !== next.apiUrl) return 'apiUrl';
  if (prev.power.source !== next.power.source) return 'power source';
  if (prev.power.charging !== next.power.charging) return 'charging';
  if (moved(prev.power.batteryPct, next.power.batteryPct, t.batteryPct)) return 'battery';
  if (prev.gpus.length !== next.gpus.length) return 'gpu count';
  for (let i = 0; i < next.gpus.length; i++) {
    const a = prev.gpus[i];
    const b = next.gpus[i];
    if (a === undefined || b === undefined) return 'gpu count';
    const why = gpuChange(a, b, t);
    if (why !== null) return why;
  }
  if (moved(prev.cpuLoad, next.cpuLoad, t.cpuLoad)) return 'cpu load';
  if (prev.memTotalBytes !== next.memTotalBytes) return 'memory total';
  const memTotal = next.memTotalBytes ?? prev.memTotalBytes;
  if (moved(prev.memUsedBytes, next.memUsedBytes, memTotal !== null && memTotal > 0 ? memTotal * t.memFraction : 1)) return 'memory used';
  if (moved(prev.cpuPackageW, next.cpuPackageW, t.cpuPackageW)) return 'cpu package power';
  return null;
}

export interface PublishedAdvert {
  readonly seq: number;
  readonly timeMs: number;
  readonly body: AdvertBody;
  /** 'first', 'heartbeat', 'manual' or the material change (see isMaterialChange). */
  readonly reason: string;
}

export interface AdvertPublisherOptions {
  readonly identity: Identity;
  readonly cluster: string;
  readonly scheduler: Scheduler;
  /** The node's current state (use cached probe readings: see pollMs). */
  readonly collect: () => Promise<AdvertBody>;
  /** Hand the signed bytes to gossip. Awaited; a throw is logged and the seq stays used. */
  readonly publish: (bytes: Uint8Array, advert: PublishedAdvert) => void | Promise<void>;
  /** Last seq this node used (persisted); the first advert is startSeq + 1. @default 0 */
  readonly startSeq?: number;
  /** Awaited before the advert with this seq leaves. @default none */
  readonly persistSeq?: (seq: number) => void | Promise<void>;
  /** Heartbeat: an advert at least this often. @default 2000 (issue 3: "at least every 2 s") */
  readonly periodMs?: number;
  /** How often collect() runs to look for a material change. It should return within this
   *  (probe hardware on its own loop and return cached values). With `eventDriven`, the least
   *  spacing between two collects after pokes instead. @default 250 */
  readonly pollMs?: number;
  /** Collect only when poked (poke(), trigger()) or when the keep-alive is due, never on a timer
   *  of its own: an idle node then wakes for nothing (issue 15). The owner must poke on every
   *  change collect() could see. @default false (poll every pollMs) */
  readonly eventDriven?: boolean;
  /** Rate bound: no two adverts closer than this. @default 200 (at most 5 adverts/s per node) */
  readonly minIntervalMs?: number;
  readonly thresholds?: ChangeThresholds;
  readonly logger?: Logger;
}

export const ADVERT_PERIOD_MS_DEFAULT = 2000;

export class AdvertPublisher {
  private readonly periodMs: number;
  private readonly pollMs: number;
  private readonly minIntervalMs: number;
  private readonly thresholds: ChangeThresholds;
  private readonly log: Logger;
  private seq: number;
  private last: PublishedAdvert | null = null;
  private timer: TimerHandle | null = null;
  private running: Promise<void> | null = null;
  private started = false;
  private stopped = false;
  private forceNext = false;
  private readonly eventDriven: boolean;
  /** eventDriven: something may have changed since the last collect. */
  private dirty = false;
  private lastPollAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: AdvertPublisherOptions) {
    this.periodMs = opts.periodMs ?? ADVERT_PERIOD_MS_DEFAULT;
    this.pollMs = opts.pollMs ?? 250;
    this.minIntervalMs = opts.minIntervalMs ?? 200;
    this.eventDriven = opts.eventDriven ?? false;
    this.thresholds = opts.thresholds ?? DEFAULT_CHANGE_THRESHOLDS;
    this.log = opts.logger ?? nullLogger;
    this.seq = opts.startSeq ?? 0;
    assertPositiveInt(this.periodMs, 'periodMs');
    assertPositiveInt(this.pollMs, 'pollMs');
    assertPositiveInt(this.minIntervalMs, 'minIntervalMs');
    if (this.seq !== 0) assertPositiveInt(this.seq, 'startSeq');
  }

  /** Last seq used (published or reserved). */
  get lastSeq(): number {
    return this.seq;
  }

  get lastPublished(): PublishedAdvert | null {
    return this.last;
  }

  /** Begin: the first advert goes out on the first tick (now). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.arm(0);
  }

  /** Publish on the next tick whatever changed (e.g. the operator pinned a profile). */
  trigger(): void {
    if (!this.started || this.stopped) return;
    this.forceNext = true;
    this.dirty = true;
    if (this.running === null) this.arm(0);
  }

  /**
   * A reading collect() sees may have changed (load, a finished hardware sample): with
   * `eventDriven`, collect and look for a material change, no sooner than pollMs after the
   * previous collect (a burst of pokes costs one collect per pollMs). Without it, a no-op: the
   * poll timer looks anyway.
   */
  poke(): void {
    if (!this.eventDriven || !this.started || this.stopped) return;
    // already dirty with a tick armed: that tick is already at the earliest allowed time (the
    // router pokes on every request start and end; no timer churn per request)
    if (this.dirty && this.timer !== null) return;
    this.dirty = true;
    if (this.running === null) this.arm(this.nextDelay());
  }

  /** Stop ticking; resolves once a tick in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    if (this.running !== null) await this.running;
  }

  private arm(delayMs: number): void {
    if (this.stopped) return;
    this.timer?.cancel();
    this.timer = this.opts.scheduler.schedule(Math.max(0, delayMs), () => this.tick());
  }

  /** One poll: collect, decide, maybe publish, then arm the next tick. */
  private tick(): Promise<void> {
    this.timer = null;
    if (this.stopped || this.running !== null) return this.running ?? Promise.resolve();
    const p = this.poll().finally(() => {
      this.running = null;
      if (!this.stopped) this.arm(this.nextDelay());
    });
    this.running = p;
    return p;
  }

  private nextDelay(): number {
    if (this.last === null) return this.pollMs; // the first collect failed: retry at poll rate
    const now = this.opts.scheduler.now();
    const untilHeartbeat = this.last.timeMs + this.periodMs - now;
    if (!this.eventDriven) return Math.max(0, Math.min(this.pollMs, untilHeartbeat));
    if (!this.dirty) return Math.max(0, untilHeartbeat);
    return Math.max(0, Math.min(this.lastPollAt + this.pollMs - now, untilHeartbeat));
  }

  private async poll(): Promise<void> {
    this.lastPollAt = this.opts.scheduler.now();
    this.dirty = false; // a poke while collecting sets it again: the finally re-arms for it
    let body: AdvertBody;
    try {
      body = await this.opts.collect();
    } catch (err) {
      this.log.warn('advert collect failed', { err });
      this.dirty = true; // eventDriven: try again pollMs on
      return;
    }
    if (this.stopped) return;
    const now = this.opts.scheduler.now();
    const last = this.last;
    let reason: string | null;
    if (last === null) reason = 'first';
    else if (now - last.timeMs >= this.periodMs) reason = 'heartbeat';
    else if (now - last.timeMs < this.minIntervalMs) {
      reason = null; // rate bound; the change is caught next tick
      this.dirty = true; // eventDriven: that next tick must come (pollMs on), not wait for the keep-alive
    } else if (this.forceNext) reason = 'manual';
    else reason = isMaterialChange(last.body, body, this.thresholds);
    if (reason === null) return;
    this.forceNext = false;
    await this.publishBody(body, now, reason);
  }

  private async publishBody(body: AdvertBody, timeMs: number, reason: string): Promise<void> {
    const seq = this.seq + 1;
    let bytes: Uint8Array;
    try {
      bytes = createAdvertEnvelope(this.opts.identity, { cluster: this.opts.cluster, seq, timeMs, body });
    } catch (err) {
      this.log.error('own advert is invalid, not published', { err });
      return;
    }
    try {
      await this.opts.persistSeq?.(seq);
    } catch (err) {
      this.log.error('cannot persist advert seq, not published', { err, seq });
      return;
    }
    this.seq = seq;
    const advert: PublishedAdvert = { seq, timeMs, body, reason };
    this.last = advert;
    try {
      await this.opts.publish(bytes, advert);
    } catch (err) {
      this.log.warn('advert publish failed', { err, seq });
    }
  }
}
