import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { identityFromSeed } from '../../../crypto/keys.js';
import { ADVERT_LIMITS, parseAdvertBody } from '../../../node/adverts/advert.js';
import { buildAdvertBody, createAdvertCollector, decideForReadings, type ServingState } from '../../../node/adverts/collect.js';
import { openAdvertEnvelope } from '../../../node/adverts/envelope.js';
import { DEFAULT_PROFILE_POLICY, type ProfilePolicy } from '../../../node/adverts/profile.js';
import { AdvertPublisher } from '../../../node/adverts/publisher.js';
import { createHardwareProbe, nodeSysfsReader, type HardwareProbe, type HardwareSnapshot } from '../../../node/probes/index.js';
import { FakeScheduler } from '../../helpers/adverts.js';

const fixtures = fileURLToPath(new URL('../../fixtures/probes/', import.meta.url));

function snapshot(over: Partial<HardwareSnapshot> = {}): HardwareSnapshot {
  return {
    atMs: 0,
    gpus: [{ index: 0, uuid: 'GPU-x', name: 'NVIDIA H200', memoryTotalMiB: 143771, memoryUsedMiB: 1000, utilizationPct: 10, temperatureC: 40, powerDrawW: 100, powerLimitW: 700 }],
    gpuReason: null,
    gpuSkipped: [],
    power: null,
    cpuPackageW: null,
    cpuPackageReason: 'no-rapl',
    system: { cpuLoad: 0.05, memUsedBytes: 100, memTotalBytes: 1000 },
    ...over,
  };
}
const idle: ServingState = { models: ['m'], inFlight: 0, queued: 0, capacity: 4 };

describe('building the advert body', () => {
  it('maps readings to the schema (uuid is not advertised) and the result validates', () => {
    const d = decideForReadings(snapshot(), idle, DEFAULT_PROFILE_POLICY, null);
    const b = buildAdvertBody(snapshot(), idle, d, 'http://10.0.0.2:8080/v1');
    expect(b.gpus[0]).not.toHaveProperty('uuid');
    expect(b).toMatchObject({ profile: 'eco', profilePinned: false, power: { source: null, batteryPct: null, charging: null }, cpuPackageW: null });
    expect(parseAdvertBody(b).ok).toBe(true);
  });

  it('cuts real-world serving state to the advert bounds instead of failing', () => {
    const many = Array.from({ length: ADVERT_LIMITS.maxModels + 10 }, (_, i) => `model-${String(i).padStart(3, '0')}`);
    const serving: ServingState = { models: [...many, 'model-000', 'x'.repeat(500), 'bad\nname', ''], inFlight: -2, queued: 1e9, capacity: 2.7 };
    const d = decideForReadings(snapshot(), serving, DEFAULT_PROFILE_POLICY, null);
    const b = buildAdvertBody(snapshot(), serving, d, null);
    expect(b.models).toHaveLength(ADVERT_LIMITS.maxModels);
    expect(b.models[0]).toBe('model-000');
    expect(b).toMatchObject({ inFlight: 0, queued: ADVERT_LIMITS.maxRequests, capacity: 2 });
    expect(parseAdvertBody(b).ok).toBe(true);
  });

  it('profile inputs: the hottest GPU and the busiest resource count', () => {
    const hw = snapshot({
      gpus: [
        { index: 0, uuid: null, name: 'A', memoryTotalMiB: 1, memoryUsedMiB: 0, utilizationPct: 95, temperatureC: 70, powerDrawW: null, powerLimitW: null },
        { index: 1, uuid: null, name: 'B', memoryTotalMiB: 1, memoryUsedMiB: 0, utilizationPct: 5, temperatureC: 88, powerDrawW: null, powerLimitW: null },
      ],
    });
    expect(decideForReadings(hw, idle, DEFAULT_PROFILE_POLICY, null)).toMatchObject({ profile: 'boost', reasons: ['load', 'thermal-drop'] });
  });
});

describe('advert collector', () => {
  it('probes hardware once per refresh interval, answers from the cached snapshot, one probe in flight', async () => {
    let t = 0;
    let reads = 0;
    let release: (() => void) | null = null;
    const hardware: HardwareProbe = {
      read: (nowMs) => {
        reads++;
        if (reads === 1) return Promise.resolve(snapshot({ atMs: nowMs }));
        return new Promise((r) => (release = () => r(snapshot({ atMs: nowMs, system: { cpuLoad: 0.95, memUsedBytes: 1, memTotalBytes: 2 } }))));
      },
    };
    const c = createAdvertCollector({ hardware, serving: () => idle, now: () => t, apiUrl: null, hardwareRefreshMs: 1000 });
    expect((await c.collect()).cpuLoad).toBe(0.05);
    t = 999;
    await c.collect();
    expect(reads).toBe(1);
    t = 1000;
    expect((await c.collect()).cpuLoad).toBe(0.05); // refresh started, not awaited
    await c.collect();
    await c.collect();
    expect(reads).toBe(2); // still one probe in flight
    release!();
    await new Promise<void>((r) => setImmediate(r));
    const b = await c.collect();
    expect(b.cpuLoad).toBe(0.95);
    expect(b.profile).toBe('turbo');
    expect(c.decision?.reasons).toEqual(['load']);
  });

  it('a pin set at run time applies on the next collect', async () => {
    let policy: ProfilePolicy = DEFAULT_PROFILE_POLICY;
    const c = createAdvertCollector({ hardware: { read: (n) => Promise.resolve(snapshot({ atMs: n })) }, serving: () => idle, now: () => 0, policy: () => policy, apiUrl: null });
    expect(await c.collect()).toMatchObject({ profile: 'eco', profilePinned: false });
    policy = { ...DEFAULT_PROFILE_POLICY, pin: 'turbo' };
    expect(await c.collect()).toMatchObject({ profile: 'turbo', profilePinned: true });
  });

  it('a failing probe gives an advert of nulls, not a crash', async () => {
    const c = createAdvertCollector({ hardware: { read: () => Promise.reject(new Error('boom')) }, serving: () => idle, now: () => 0, apiUrl: null });
    const b = await c.collect();
    expect(b).toMatchObject({ gpus: [], cpuLoad: null, memTotalBytes: null, power: { source: null } });
    expect(parseAdvertBody(b).ok).toBe(true);
  });
});

describe('probes -> collector -> publisher -> envelope (fixtures, fake clock)', () => {
  it('a laptop at 15 % on battery with a busy GPU advertises eco, signed and verifiable', async () => {
    const sched = new FakeScheduler();
    const hardware = createHardwareProbe({
      runner: () => Promise.resolve({ ok: true, stdout: '0, GPU-6e5d, NVIDIA GeForce RTX 3060 Laptop GPU, 6144, 5900, 97, 79, [Not Supported], [Not Supported]\n' }),
      sysfs: nodeSysfsReader,
      powerSupplyRoot: `${fixtures}power_supply/laptop-battery-15`,
      powercapRoot: `${fixtures}powercap/no-rapl`,
      system: { loadavg: () => [2, 2, 2], cpuCount: () => 8, totalmem: () => 16 * 2 ** 30, freemem: () => 4 * 2 ** 30 },
    });
    const collector = createAdvertCollector({ hardware, serving: () => ({ models: ['llama3.2:3b'], inFlight: 1, queued: 0, capacity: 1 }), now: () => sched.now(), apiUrl: 'http://127.0.0.1:11435/v1' });
    const id = identityFromSeed(new Uint8Array(32).fill(3));
    const sent: Uint8Array[] = [];
    const pub = new AdvertPublisher({ identity: id, cluster: 'lab', scheduler: sched, collect: () => collector.collect(), publish: (b) => void sent.push(b) });
    pub.start();
    await sched.advance(0);
    expect(sent).toHaveLength(1);
    const r = openAdvertEnvelope(sent[0]!, { cluster: 'lab' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.advert.body).toMatchObject({
      profile: 'eco',
      power: { source: 'battery', batteryPct: 15, charging: false },
      gpus: [{ name: 'NVIDIA GeForce RTX 3060 Laptop GPU', utilizationPct: 97, powerDrawW: null, powerLimitW: null }],
      cpuLoad: 0.25,
      memUsedBytes: 12 * 2 ** 30,
    });
    expect(collector.decision?.reasons).toContain('battery-critical');
    await pub.stop();
  });
});
