/**
 * CPU load and memory through an injectable source (node:os in production).
 */
import { availableParallelism, freemem, loadavg, totalmem } from 'node:os';

export interface SystemSource {
  /** 1, 5, 15 minute load averages (os.loadavg; zeros on Windows). */
  loadavg(): readonly number[];
  /** Logical CPUs this process may use. */
  cpuCount(): number;
  totalmem(): number;
  freemem(): number;
}

export const nodeSystemSource: SystemSource = {
  loadavg: () => loadavg(),
  cpuCount: () => availableParallelism(),
  totalmem: () => totalmem(),
  freemem: () => freemem(),
};

export interface SystemReading {
  /** 1-minute load average / logical CPUs: 1.0 = every CPU busy; may exceed 1. null when unreadable. */
  readonly cpuLoad: number | null;
  readonly memUsedBytes: number | null;
  readonly memTotalBytes: number | null;
}

/** Load above this many times the CPU count is a broken reading (the advert bound is the same). */
export const MAX_CPU_LOAD = 1000;

export function readSystem(src: SystemSource): SystemReading {
  const cores = src.cpuCount();
  const one = src.loadavg()[0];
  let cpuLoad: number | null = null;
  if (Number.isInteger(cores) && cores > 0 && one !== undefined && Number.isFinite(one) && one >= 0) {
    const v = one / cores;
    cpuLoad = v <= MAX_CPU_LOAD ? Math.round(v * 1000) / 1000 : null;
  }
  const total = src.totalmem();
  const free = src.freemem();
  const memOk = Number.isSafeInteger(total) && Number.isSafeInteger(free) && total > 0 && free >= 0 && free <= total;
  return { cpuLoad, memUsedBytes: memOk ? total - free : null, memTotalBytes: memOk ? total : null };
}
