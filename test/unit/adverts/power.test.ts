import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { probePowerSupply } from '../../../node/probes/power-supply.js';
import { RaplMeter, raplWatts, readRaplSample } from '../../../node/probes/rapl.js';
import { memorySysfsReader, nodeSysfsReader } from '../../../node/probes/sysfs.js';
import { readSystem } from '../../../node/probes/system.js';
import { createHardwareProbe } from '../../../node/probes/index.js';

const fixtures = fileURLToPath(new URL('../../fixtures/probes/', import.meta.url));
const ps = (name: string): string => join(fixtures, 'power_supply', name);

describe('power_supply on fixture trees (real fs reader)', () => {
  it('desktop: Mains online is ac; a wireless mouse battery (scope=Device) is ignored', async () => {
    const r = await probePowerSupply(nodeSysfsReader, ps('desktop'));
    expect(r).toEqual({ source: 'ac', batteryPct: null, charging: null, batteries: [], externalOnline: ['ACAD'] });
  });

  it('laptop on battery at 15 %: source battery, not charging, capacity read', async () => {
    const r = await probePowerSupply(nodeSysfsReader, ps('laptop-battery-15'));
    expect(r).toMatchObject({ source: 'battery', batteryPct: 15, charging: false, externalOnline: [] });
    expect(r?.batteries).toEqual([{ name: 'BAT0', pct: 15, status: 'discharging', fullUwh: 56_100_000 }]);
  });

  it('laptop charging, charge_* units without a capacity file: pct from charge_now/charge_full, weight via voltage', async () => {
    const r = await probePowerSupply(nodeSysfsReader, ps('laptop-charging'));
    expect(r).toMatchObject({ source: 'ac', batteryPct: 63, charging: true, externalOnline: ['ADP1'] });
    expect(r?.batteries[0]).toEqual({ name: 'BAT1', pct: 63, status: 'charging', fullUwh: 46_200_000 });
  });

  it('two batteries are aggregated by energy, not averaged: 50 % of 23.48 Wh + 10 % of 72 Wh = 19.8 %', async () => {
    const r = await probePowerSupply(nodeSysfsReader, ps('laptop-two-batteries'));
    expect(r?.source).toBe('battery');
    expect(r?.batteryPct).toBe(19.8);
    expect(r?.charging).toBe(false);
  });

  it('an empty class directory, or none at all, is null (never assumed AC)', async () => {
    expect(await probePowerSupply(nodeSysfsReader, ps('empty'))).toBeNull();
    expect(await probePowerSupply(nodeSysfsReader, ps('does-not-exist'))).toBeNull();
  });

  it('unreadable attributes (EACCES) give null, never an invented value', async () => {
    const reader = memorySysfsReader({
      '/ps/AC/type': { error: 'EACCES' },
      '/ps/AC/online': { error: 'EACCES' },
      '/ps/BAT0/type': 'Battery',
      '/ps/BAT0/status': { error: 'EACCES' },
      '/ps/BAT0/capacity': { error: 'EACCES' },
    });
    expect(await probePowerSupply(reader, '/ps')).toBeNull();
  });

  it('battery without external supply info: Full means source unknown, Discharging means battery', async () => {
    const full = memorySysfsReader({ '/ps/BAT0/type': 'Battery', '/ps/BAT0/status': 'Full', '/ps/BAT0/capacity': '100' });
    expect(await probePowerSupply(full, '/ps')).toMatchObject({ source: null, batteryPct: 100, charging: false });
    const dis = memorySysfsReader({ '/ps/BAT0/type': 'Battery', '/ps/BAT0/status': 'Discharging', '/ps/BAT0/capacity': '40' });
    expect(await probePowerSupply(dis, '/ps')).toMatchObject({ source: 'battery', batteryPct: 40, charging: false });
  });

  it('an empty bay (present=0) is not a battery; a mix of weighted and unweighted batteries is averaged', async () => {
    const r = await probePowerSupply(
      memorySysfsReader({
        '/ps/AC/type': 'Mains',
        '/ps/AC/online': '1',
        '/ps/BAT0/type': 'Battery',
        '/ps/BAT0/present': '0',
        '/ps/BAT1/type': 'Battery',
        '/ps/BAT1/status': 'Not charging',
        '/ps/BAT1/capacity': '80',
        '/ps/BAT2/type': 'Battery',
        '/ps/BAT2/status': 'Unknown',
        '/ps/BAT2/energy_now': '30',
        '/ps/BAT2/energy_full': '100',
      }),
      '/ps',
    );
    expect(r?.batteries.map((b) => b.name)).toEqual(['BAT1', 'BAT2']);
    expect(r).toMatchObject({ source: 'ac', batteryPct: 55, charging: false });
  });
});

describe('RAPL powercap', () => {
  it('reads only top-level package zones (not sub-zones, not the mmio duplicate) from a fixture tree', async () => {
    const s = await readRaplSample(nodeSysfsReader, 1000, join(fixtures, 'powercap', 'two-sockets'));
    expect(s).toEqual({
      ok: true,
      atMs: 1000,
      zones: [
        { zone: 'intel-rapl:0', name: 'package-0', energyUj: 123456789, maxEnergyRangeUj: 262143328850 },
        { zone: 'intel-rapl:1', name: 'package-1', energyUj: 987654321, maxEnergyRangeUj: 262143328850 },
      ],
    });
  });

  it('no RAPL zones is null with a reason', async () => {
    const s = await readRaplSample(nodeSysfsReader, 0, join(fixtures, 'powercap', 'no-rapl'));
    expect(s).toMatchObject({ ok: false, reason: 'no-rapl' });
    expect(await readRaplSample(nodeSysfsReader, 0, join(fixtures, 'powercap', 'missing'))).toMatchObject({ ok: false, reason: 'no-rapl' });
  });

  it('permission denied on energy_uj (Linux >= 5.10 default) is null with that reason', async () => {
    const reader = memorySysfsReader({ '/pc/intel-rapl:0/energy_uj': { error: 'EACCES' }, '/pc/intel-rapl:0/name': 'package-0' });
    const m = new RaplMeter(reader, '/pc');
    const r = await m.sample(0);
    expect(r.watts).toBeNull();
    expect(r.reason).toMatch(/^permission-denied/);
  });

  const zone = (energyUj: number, max: number | null = 262_143_328_850) => ({ zone: 'intel-rapl:0', name: 'package-0', energyUj, maxEnergyRangeUj: max });

  it('two samples give watts: 45 J over 1 s is 45 W; summed over sockets', () => {
    expect(raplWatts({ ok: true, atMs: 0, zones: [zone(1_000_000)] }, { ok: true, atMs: 1000, zones: [zone(46_000_000)] })).toBe(45);
    const two = (a: number, b: number, at: number) => ({ ok: true as const, atMs: at, zones: [zone(a), { ...zone(b), zone: 'intel-rapl:1' }] });
    expect(raplWatts(two(0, 0, 0), two(20_000_000, 30_000_000, 2000))).toBe(25);
  });

  it('handles one counter wrap with max_energy_range_uj', () => {
    const max = 262_143_328_850;
    // 10 J before the wrap point, 20 J after it: 30 J in 2 s.
    const w = raplWatts({ ok: true, atMs: 0, zones: [zone(max - 10_000_000)] }, { ok: true, atMs: 2000, zones: [zone(20_000_000)] });
    expect(w).toBe(15);
  });

  it('a wrap without a known range, a zero or too long interval, or a changed zone set is null', () => {
    expect(raplWatts({ ok: true, atMs: 0, zones: [zone(50, null)] }, { ok: true, atMs: 1000, zones: [zone(10, null)] })).toBeNull();
    expect(raplWatts({ ok: true, atMs: 1000, zones: [zone(1)] }, { ok: true, atMs: 1000, zones: [zone(2)] })).toBeNull();
    expect(raplWatts({ ok: true, atMs: 0, zones: [zone(1)] }, { ok: true, atMs: 61_000, zones: [zone(2)] })).toBeNull();
    expect(raplWatts({ ok: true, atMs: 0, zones: [zone(1)] }, { ok: true, atMs: 1000, zones: [] })).toBeNull();
  });

  describe('RaplMeter over a real tree that changes between samples', () => {
    let dir = '';
    afterAll(async () => {
      if (dir !== '') await rm(dir, { recursive: true, force: true });
    });
    it('first sample warms up, the next gives the average since the previous one', async () => {
      dir = await mkdtemp(join(tmpdir(), 'fednode-rapl-'));
      await cp(join(fixtures, 'powercap', 'two-sockets'), dir, { recursive: true });
      const m = new RaplMeter(nodeSysfsReader, dir);
      expect(await m.sample(10_000)).toEqual({ watts: null, reason: 'warming up (first sample)' });
      // +60 J on socket 0, +40 J on socket 1, in 2 s: 50 W.
      await writeFile(join(dir, 'intel-rapl:0', 'energy_uj'), `${123456789 + 60_000_000}\n`);
      await writeFile(join(dir, 'intel-rapl:1', 'energy_uj'), `${987654321 + 40_000_000}\n`);
      expect(await m.sample(12_000)).toEqual({ watts: 50, reason: null });
      // Unchanged counters: 0 W, a real value.
      expect(await m.sample(13_000)).toEqual({ watts: 0, reason: null });
    });
  });
});

describe('cpu load and memory', () => {
  it('load is the 1-minute average per logical CPU; memory used = total - free', () => {
    const r = readSystem({ loadavg: () => [6, 4, 2], cpuCount: () => 8, totalmem: () => 32 * 2 ** 30, freemem: () => 8 * 2 ** 30 });
    expect(r).toEqual({ cpuLoad: 0.75, memUsedBytes: 24 * 2 ** 30, memTotalBytes: 32 * 2 ** 30 });
  });

  it('impossible readings are null', () => {
    const r = readSystem({ loadavg: () => [], cpuCount: () => 0, totalmem: () => 10, freemem: () => 20 });
    expect(r).toEqual({ cpuLoad: null, memUsedBytes: null, memTotalBytes: null });
  });
});

describe('createHardwareProbe wires the probes together', () => {
  it('reads GPU, power, RAPL and system from injected sources', async () => {
    const probe = createHardwareProbe({
      runner: () => Promise.resolve({ ok: true, stdout: '0, GPU-x, NVIDIA H200, 143771, 100, 50, 60, 300.5, 700.00\n' }),
      sysfs: nodeSysfsReader,
      powerSupplyRoot: ps('laptop-battery-15'),
      powercapRoot: join(fixtures, 'powercap', 'no-rapl'),
      system: { loadavg: () => [1, 1, 1], cpuCount: () => 4, totalmem: () => 100, freemem: () => 40 },
    });
    const s = await probe.read(5000);
    expect(s.atMs).toBe(5000);
    expect(s.gpus?.[0]?.utilizationPct).toBe(50);
    expect(s.power?.source).toBe('battery');
    expect(s.cpuPackageW).toBeNull();
    expect(s.cpuPackageReason).toMatch(/^no-rapl/);
    expect(s.system).toEqual({ cpuLoad: 0.25, memUsedBytes: 60, memTotalBytes: 100 });
  });
});
