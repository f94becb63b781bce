// Shared test helpers for test/adverts: a valid advert body and a fake scheduler
// whose time only moves when the test says so (no real sleeps).
import type { AdvertBody } from '../../node/adverts/advert.js';
import type { Scheduler, TimerHandle } from '../../node/adverts/publisher.js';

export function sampleBody(over: Partial<AdvertBody> = {}): AdvertBody {
  return {
    models: ['llama3.1:8b', 'qwen2.5:7b'],
    inFlight: 1,
    queued: 0,
    capacity: 4,
    gpus: [
      { index: 0, name: 'NVIDIA GeForce RTX 4090', memoryTotalMiB: 24564, memoryUsedMiB: 9000, utilizationPct: 40, temperatureC: 61, powerDrawW: 210.5, powerLimitW: 450 },
    ],
    cpuLoad: 0.25,
    memUsedBytes: 12 * 2 ** 30,
    memTotalBytes: 64 * 2 ** 30,
    power: { source: 'ac', batteryPct: null, charging: null },
    cpuPackageW: 45.2,
    profile: 'balanced',
    profilePinned: false,
    apiUrl: 'http://192.168.1.20:8080/v1',
    tokensPerS: null,
    joulesPerToken: null,
    addrs: ['/ip4/192.168.1.20/tcp/4701', '/ip4/127.0.0.1/tcp/4701'],
    ...over,
  };
}

interface Timer {
  at: number;
  order: number;
  fn: () => void | Promise<void>;
  cancelled: boolean;
}

/** Timers fire in time order when `advance` moves the clock; their promises are awaited. */
export class FakeScheduler implements Scheduler {
  private t: number;
  private order = 0;
  private timers: Timer[] = [];
  constructor(startMs = 1_700_000_000_000) {
    this.t = startMs;
  }
  now(): number {
    return this.t;
  }
  schedule(delayMs: number, fn: () => void | Promise<void>): TimerHandle {
    const timer: Timer = { at: this.t + Math.max(0, delayMs), order: this.order++, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }
  get pending(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }
  /** Move time forward by `ms`, running every timer due on the way (including ones they schedule). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers = this.timers.filter((x) => !x.cancelled);
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.order - b.order)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = Math.max(this.t, due.at);
      await due.fn();
    }
    this.t = end;
  }
}
