/**
 * CPU package power from RAPL (Linux powercap, /sys/class/powercap/intel-rapl:N;
 * AMD Zen exposes the same files). energy_uj is a cumulative counter in µJ that wraps
 * at max_energy_range_uj, so watts need two samples: W = ΔµJ / Δms / 1000.
 * Since Linux 5.10 (CVE-2020-8694) energy_uj is readable only by root by default:
 * permission denied is a normal outcome and gives null, never a guess.
 */
import { readTrimmed, readUint, type SysfsReader } from './sysfs.js';

export const POWERCAP_ROOT = '/sys/class/powercap';

/** Top-level package zones only: intel-rapl:0, intel-rapl:1 (sockets). Sub-zones (intel-rapl:0:0 core,
 *  dram) are parts of the package, and intel-rapl-mmio:0 repeats package-0: both would double count. */
const PACKAGE_ZONE = /^intel-rapl:\d{1,3}$/;

/** Above this interval the counter may have wrapped more than once (262 kJ range / 200 W ≈ 22 min); a
 *  minute keeps the reading recent too. Longer gaps restart the measurement instead of guessing. */
export const RAPL_MAX_INTERVAL_MS = 60_000;

export interface RaplZoneSample {
  readonly zone: string;
  readonly name: string | null;
  readonly energyUj: number;
  /** Wrap point; null when unreadable (a wrap then makes the reading null). */
  readonly maxEnergyRangeUj: number | null;
}

export type RaplSample =
  | { readonly ok: true; readonly atMs: number; readonly zones: readonly RaplZoneSample[] }
  | { readonly ok: false; readonly reason: 'no-rapl' | 'permission-denied' | 'unreadable'; readonly detail: string };

/** One reading of every package zone's counter at `atMs` (the caller's clock). */
export async function readRaplSample(reader: SysfsReader, atMs: number, root: string = POWERCAP_ROOT): Promise<RaplSample> {
  const names = await reader.list(root);
  const zones = (names ?? []).filter((n) => PACKAGE_ZONE.test(n)).sort();
  if (zones.length === 0) return { ok: false, reason: 'no-rapl', detail: `no intel-rapl:N zone under ${root}` };
  const out: RaplZoneSample[] = [];
  for (const zone of zones) {
    const dir = `${root}/${zone}`;
    const r = await reader.read(`${dir}/energy_uj`);
    if (!r.ok) {
      if (r.code === 'EACCES' || r.code === 'EPERM') return { ok: false, reason: 'permission-denied', detail: `${dir}/energy_uj: ${r.code} (root only since Linux 5.10)` };
      return { ok: false, reason: 'unreadable', detail: `${dir}/energy_uj: ${r.code}` };
    }
    const t = r.text.trim();
    if (!/^\d{1,16}$/.test(t) || !Number.isSafeInteger(Number(t))) return { ok: false, reason: 'unreadable', detail: `${dir}/energy_uj: not a counter` };
    out.push({ zone, name: await readTrimmed(reader, `${dir}/name`), energyUj: Number(t), maxEnergyRangeUj: await readUint(reader, `${dir}/max_energy_range_uj`) });
  }
  return { ok: true, atMs, zones: out };
}

/** Package watts between two samples (summed over sockets); null when not computable. Pure. */
export function raplWatts(a: RaplSample & { ok: true }, b: RaplSample & { ok: true }): number | null {
  const dtMs = b.atMs - a.atMs;
  if (!(dtMs > 0) || dtMs > RAPL_MAX_INTERVAL_MS) return null;
  if (a.zones.length !== b.zones.length) return null;
  let totalUj = 0;
  for (let i = 0; i < b.zones.length; i++) {
    const za = a.zones[i];
    const zb = b.zones[i];
    if (za === undefined || zb === undefined || za.zone !== zb.zone) return null;
    let d = zb.energyUj - za.energyUj;
    if (d < 0) {
      // The counter wrapped once (the interval bound rules out twice).
      const range = zb.maxEnergyRangeUj;
      if (range === null || range <= 0 || za.energyUj > range) return null;
      d += range;
    }
    totalUj += d;
  }
  const watts = totalUj / dtMs / 1000;
  // Above 2 kW for CPU packages of one host is a counter glitch, not a reading.
  if (!Number.isFinite(watts) || watts > 2000) return null;
  return Math.round(watts * 10) / 10;
}

export interface RaplReading {
  readonly watts: number | null;
  readonly reason: string | null;
}

/**
 * Keeps the previous sample so each call returns the average power since the last
 * one: called from the advert loop, no extra sleep is needed. The first call (and the
 * first after a gap over RAPL_MAX_INTERVAL_MS) returns null with reason 'warming up'.
 */
export class RaplMeter {
  private prev: (RaplSample & { ok: true }) | null = null;
  constructor(
    private readonly reader: SysfsReader,
    private readonly root: string = POWERCAP_ROOT,
  ) {}

  async sample(nowMs: number): Promise<RaplReading> {
    const s = await readRaplSample(this.reader, nowMs, this.root);
    if (!s.ok) {
      this.prev = null;
      return { watts: null, reason: `${s.reason}: ${s.detail}` };
    }
    const prev = this.prev;
    this.prev = s;
    if (prev === null) return { watts: null, reason: 'warming up (first sample)' };
    const w = raplWatts(prev, s);
    return w === null ? { watts: null, reason: 'not computable from the last two samples' } : { watts: w, reason: null };
  }
}
