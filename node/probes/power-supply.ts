/**
 * Power source from /sys/class/power_supply (Linux power_supply class, see
 * Documentation/ABI/testing/sysfs-class-power in the kernel tree).
 *
 * What is reported, and only when read:
 * - source 'ac' when an external supply (type Mains or USB*) says online=1, or a
 *   battery says Charging (it cannot charge from itself);
 * - source 'battery' when a battery says Discharging, or batteries exist and every
 *   external supply says online=0;
 * - null otherwise (a desktop without power_supply entries is NOT assumed to be on AC).
 * Peripheral batteries (scope=Device: mice, headsets) are ignored.
 */
import { readTrimmed, readUint, type SysfsReader } from './sysfs.js';

export const POWER_SUPPLY_ROOT = '/sys/class/power_supply';

export type BatteryStatus = 'charging' | 'discharging' | 'full' | 'not-charging' | 'unknown';

export interface BatteryReading {
  readonly name: string;
  /** 0..100, from `capacity`, else energy_now/energy_full, else charge_now/charge_full; null when none readable. */
  readonly pct: number | null;
  readonly status: BatteryStatus;
  /** Full energy in µWh (energy_full, or charge_full x voltage_min_design); the weight when aggregating. */
  readonly fullUwh: number | null;
}

export interface PowerSupplyReading {
  readonly source: 'ac' | 'battery' | null;
  /** Aggregate over batteries weighted by full energy (mean when weights are missing); null without batteries. */
  readonly batteryPct: number | null;
  /** true: some battery charging; false: batteries present, none charging; null: unknown / no battery. */
  readonly charging: boolean | null;
  readonly batteries: readonly BatteryReading[];
  /** Names of external supplies (Mains/USB) that say online=1. */
  readonly externalOnline: readonly string[];
}

const STATUS: Record<string, BatteryStatus> = {
  charging: 'charging',
  discharging: 'discharging',
  full: 'full',
  'not charging': 'not-charging',
};

const round1 = (x: number): number => Math.round(x * 10) / 10;
const clampPct = (x: number): number => Math.min(100, Math.max(0, x));

async function readBattery(reader: SysfsReader, dir: string, name: string): Promise<BatteryReading | null> {
  const present = await readTrimmed(reader, `${dir}/present`);
  if (present === '0') return null; // an empty battery bay
  const statusText = (await readTrimmed(reader, `${dir}/status`))?.toLowerCase() ?? 'unknown';
  const status = STATUS[statusText] ?? 'unknown';
  const capacity = await readUint(reader, `${dir}/capacity`);
  const energyNow = await readUint(reader, `${dir}/energy_now`);
  const energyFull = await readUint(reader, `${dir}/energy_full`);
  const chargeNow = await readUint(reader, `${dir}/charge_now`);
  const chargeFull = await readUint(reader, `${dir}/charge_full`);
  const voltage = await readUint(reader, `${dir}/voltage_min_design`);
  let pct: number | null = null;
  if (capacity !== null && capacity <= 100) pct = capacity;
  else if (energyNow !== null && energyFull !== null && energyFull > 0) pct = round1(clampPct((100 * energyNow) / energyFull));
  else if (chargeNow !== null && chargeFull !== null && chargeFull > 0) pct = round1(clampPct((100 * chargeNow) / chargeFull));
  let fullUwh: number | null = null;
  if (energyFull !== null && energyFull > 0) fullUwh = energyFull;
  else if (chargeFull !== null && chargeFull > 0 && voltage !== null && voltage > 0) fullUwh = Math.round((chargeFull * voltage) / 1e6); // µAh x µV / 1e6 = µWh
  if (pct === null && status === 'unknown') return null; // nothing readable: not reported
  return { name, pct, status, fullUwh };
}

/** Read the power source; null when nothing is readable (never invented). */
export async function probePowerSupply(reader: SysfsReader, root: string = POWER_SUPPLY_ROOT): Promise<PowerSupplyReading | null> {
  const names = await reader.list(root);
  if (names === null || names.length === 0) return null;
  const batteries: BatteryReading[] = [];
  const externalOnline: string[] = [];
  let externalOffline = 0;
  for (const name of names) {
    const dir = `${root}/${name}`;
    const type = await readTrimmed(reader, `${dir}/type`);
    if (type === null) continue;
    const scope = await readTrimmed(reader, `${dir}/scope`);
    if (scope === 'Device') continue; // peripheral (mouse, headset): not this machine's power
    if (type === 'Mains' || type.startsWith('USB')) {
      const online = await readTrimmed(reader, `${dir}/online`);
      if (online === '1') externalOnline.push(name);
      else if (online === '0') externalOffline += 1;
    } else if (type === 'Battery') {
      const b = await readBattery(reader, dir, name);
      if (b !== null) batteries.push(b);
    }
  }
  const anyCharging = batteries.some((b) => b.status === 'charging');
  const anyDischarging = batteries.some((b) => b.status === 'discharging');
  let source: PowerSupplyReading['source'] = null;
  if (externalOnline.length > 0 || anyCharging) source = 'ac';
  else if (anyDischarging || (batteries.length > 0 && externalOffline > 0)) source = 'battery';

  const withPct = batteries.filter((b) => b.pct !== null);
  let batteryPct: number | null = null;
  if (withPct.length > 0) {
    const weighted = withPct.every((b) => b.fullUwh !== null);
    if (weighted) {
      const total = withPct.reduce((s, b) => s + (b.fullUwh ?? 0), 0);
      batteryPct = round1(withPct.reduce((s, b) => s + (b.pct ?? 0) * (b.fullUwh ?? 0), 0) / total);
    } else {
      batteryPct = round1(withPct.reduce((s, b) => s + (b.pct ?? 0), 0) / withPct.length);
    }
  }
  const knownStatus = batteries.some((b) => b.status !== 'unknown');
  const charging = batteries.length === 0 || !knownStatus ? null : anyCharging;
  if (source === null && batteries.length === 0) return null;
  return { source, batteryPct, charging, batteries, externalOnline };
}
