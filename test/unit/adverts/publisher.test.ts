import { describe, expect, it } from 'vitest';
import { identityFromSeed } from '../../../crypto/keys.js';
import type { AdvertBody } from '../../../node/adverts/advert.js';
import { openAdvertEnvelope } from '../../../node/adverts/envelope.js';
import { AdvertPublisher, DEFAULT_CHANGE_THRESHOLDS, isMaterialChange, type AdvertPublisherOptions, type PublishedAdvert } from '../../../node/adverts/publisher.js';
import { FakeScheduler, sampleBody } from '../../helpers/adverts.js';

const id = identityFromSeed(new Uint8Array(32).fill(7));
const CLUSTER = 'lab';

function setup(over: Partial<AdvertPublisherOptions> = {}) {
  const sched = new FakeScheduler();
  const t0 = sched.now();
  let body: AdvertBody = sampleBody();
  const sent: { bytes: Uint8Array; advert: PublishedAdvert; at: number }[] = [];
  let collects = 0;
  const pub = new AdvertPublisher({
    identity: id,
    cluster: CLUSTER,
    scheduler: sched,
    collect: () => {
      collects++;
      return Promise.resolve(body);
    },
    publish: (bytes, advert) => {
      sent.push({ bytes, advert, at: sched.now() - t0 });
    },
    ...over,
  });
  return {
    sched,
    pub,
    sent,
    set: (b: Partial<AdvertBody>) => (body = { ...body, ...b }),
    get collects() {
      return collects;
    },
  };
}

describe('advert publisher (fake clock, no real sleeps)', () => {
  it('publishes at start, then a heartbeat every 2 s when nothing changes', async () => {
    const s = setup();
    s.pub.start();
    await s.sched.advance(10_000);
    expect(s.sent.map((x) => x.at)).toEqual([0, 2000, 4000, 6000, 8000, 10_000]);
    expect(s.sent.map((x) => x.advert.reason)).toEqual(['first', 'heartbeat', 'heartbeat', 'heartbeat', 'heartbeat', 'heartbeat']);
    // polls every 250 ms in between: 8 per period
    expect(s.collects).toBe(41);
  });

  it('eventDriven: an idle node collects only for the keep-alive, not every 250 ms', async () => {
    const s = setup({ eventDriven: true });
    s.pub.start();
    await s.sched.advance(10_000);
    expect(s.sent.map((x) => x.at)).toEqual([0, 2000, 4000, 6000, 8000, 10_000]);
    expect(s.collects).toBe(6); // polling: 41 (the test above)
  });

  it('eventDriven: a poke collects at once, a burst of pokes once per pollMs, and a change it finds is published', async () => {
    const s = setup({ eventDriven: true });
    s.pub.start();
    await s.sched.advance(600);
    expect(s.collects).toBe(1);
    s.pub.poke(); // nothing changed: collected, not published
    await s.sched.advance(0);
    expect(s.collects).toBe(2);
    s.set({ models: ['llama3.1:8b'] });
    for (let i = 0; i < 10; i++) s.pub.poke(); // within 250 ms of the last collect: one collect, at 850
    await s.sched.advance(400);
    expect(s.collects).toBe(3);
    expect(s.sent.map((x) => [x.at, x.advert.reason])).toEqual([
      [0, 'first'],
      [850, 'models'],
    ]);
  });

  it('eventDriven: a change poked inside the rate bound is published when the bound ends, not at the keep-alive', async () => {
    const s = setup({ eventDriven: true, pollMs: 50 });
    s.pub.start();
    await s.sched.advance(0);
    s.set({ models: ['llama3.1:8b'] });
    s.pub.poke(); // at 0 + pollMs: inside minIntervalMs (200) of the first advert
    await s.sched.advance(1000);
    expect(s.sent.map((x) => [x.at, x.advert.reason])).toEqual([
      [0, 'first'],
      [200, 'models'],
    ]);
  });

  it('eventDriven: trigger publishes at once and a poke before start does nothing', async () => {
    const s = setup({ eventDriven: true });
    s.pub.poke();
    await s.sched.advance(100);
    expect(s.collects).toBe(0);
    s.pub.start();
    await s.sched.advance(500);
    s.pub.trigger();
    await s.sched.advance(0);
    expect(s.sent.map((x) => [x.at, x.advert.reason])).toEqual([
      [100, 'first'],
      [600, 'manual'],
    ]);
  });

  it('the period is configurable', async () => {
    const s = setup({ periodMs: 500, pollMs: 100 });
    s.pub.start();
    await s.sched.advance(2000);
    expect(s.sent.map((x) => x.at)).toEqual([0, 500, 1000, 1500, 2000]);
  });

  it('a material change is published at the next poll, not at the next heartbeat', async () => {
    const s = setup();
    s.pub.start();
    await s.sched.advance(600);
    s.set({ models: ['llama3.1:8b'] });
    await s.sched.advance(400);
    expect(s.sent.map((x) => [x.at, x.advert.reason])).toEqual([
      [0, 'first'],
      [750, 'models'],
    ]);
    // the heartbeat then counts from the last advert
    await s.sched.advance(2000);
    expect(s.sent.map((x) => x.at)).toEqual([0, 750, 2750]);
  });

  it('jitter (cpu load +0.1, GPU temperature +2 C) waits for the heartbeat', async () => {
    const s = setup();
    s.pub.start();
    await s.sched.advance(300);
    s.set({ cpuLoad: 0.35, gpus: [{ ...sampleBody().gpus[0]!, temperatureC: 63 }] });
    await s.sched.advance(1500);
    expect(s.sent).toHaveLength(1);
    await s.sched.advance(200);
    expect(s.sent.map((x) => [x.at, x.advert.reason])).toEqual([
      [0, 'first'],
      [2000, 'heartbeat'],
    ]);
    expect(s.sent[1]!.advert.body.cpuLoad).toBe(0.35);
  });

  it('rate bound: changing every poll still gives at most one advert per minIntervalMs', async () => {
    const s = setup({ minIntervalMs: 600 });
    s.pub.start();
    for (let i = 1; i <= 20; i++) {
      s.set({ inFlight: i % 2 });
      await s.sched.advance(250);
    }
    const at = s.sent.map((x) => x.at);
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(600);
    expect(at.length).toBeGreaterThanOrEqual(6); // still publishing, one per 750 ms poll-aligned slot
  });

  it('seq starts after startSeq, strictly increases, and each envelope verifies with it', async () => {
    const s = setup({ startSeq: 41 });
    s.pub.start();
    await s.sched.advance(4000);
    expect(s.sent.map((x) => x.advert.seq)).toEqual([42, 43, 44]);
    expect(s.pub.lastSeq).toBe(44);
    for (const x of s.sent) {
      const r = openAdvertEnvelope(x.bytes, { cluster: CLUSTER });
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.advert.seq).toBe(x.advert.seq);
        expect(r.advert.peerId).toBe(id.peerId);
        expect(r.advert.timeMs).toBe(x.advert.timeMs);
      }
    }
  });

  it('persistSeq runs before the advert leaves; a failed persist publishes nothing and reuses no seq', async () => {
    const events: string[] = [];
    let failNext = false;
    const s = setup({
      persistSeq: (seq) => {
        events.push(`persist ${seq}`);
        if (failNext) {
          failNext = false;
          return Promise.reject(new Error('disk full'));
        }
        return Promise.resolve();
      },
      publish: (_b, a) => void events.push(`publish ${a.seq}`),
    });
    s.pub.start();
    await s.sched.advance(0);
    failNext = true;
    await s.sched.advance(2000);
    await s.sched.advance(250);
    expect(events).toEqual(['persist 1', 'publish 1', 'persist 2', 'persist 2', 'publish 2']);
  });

  it('a throwing collect or publish never stops the loop', async () => {
    let n = 0;
    const s = setup({
      collect: () => (++n === 1 ? Promise.reject(new Error('probe broke')) : Promise.resolve(sampleBody())),
      publish: (_b, a) => (a.seq === 1 ? Promise.reject(new Error('no peers')) : undefined),
    });
    s.pub.start();
    await s.sched.advance(2500);
    expect(s.pub.lastSeq).toBe(2);
    expect(s.pub.lastPublished?.timeMs).toBe(s.sched.now() - 250);
  });

  it('one collect at a time: triggers during a slow collect do not stack', async () => {
    let release: () => void = () => undefined;
    let calls = 0;
    const s = setup({
      collect: () => {
        calls++;
        return new Promise<AdvertBody>((r) => (release = () => r(sampleBody())));
      },
    });
    s.pub.start();
    const running = s.sched.advance(0); // first tick blocks inside collect
    await Promise.resolve();
    s.pub.trigger();
    s.pub.trigger();
    expect(calls).toBe(1);
    expect(s.sched.pending).toBe(0);
    release();
    await running;
    expect(s.sent).toHaveLength(1);
    expect(s.sched.pending).toBe(1); // exactly one next tick armed
  });

  it('trigger publishes on the next tick even without a material change (after minIntervalMs)', async () => {
    const s = setup();
    s.pub.start();
    await s.sched.advance(1000);
    s.pub.trigger();
    await s.sched.advance(0);
    expect(s.sent.map((x) => [x.at, x.advert.reason])).toEqual([
      [0, 'first'],
      [1000, 'manual'],
    ]);
  });

  it('stop ends the loop', async () => {
    const s = setup();
    s.pub.start();
    await s.sched.advance(2000);
    await s.pub.stop();
    await s.sched.advance(10_000);
    expect(s.sent).toHaveLength(2);
    expect(s.sched.pending).toBe(0);
  });

  it('invalid options are typed config errors', () => {
    expect(() => setup({ periodMs: 0 })).toThrow(/periodMs must be a positive integer/);
    expect(() => setup({ startSeq: -1 })).toThrow(/startSeq/);
  });
});

describe('isMaterialChange', () => {
  const base = sampleBody();
  const gpu0 = base.gpus[0]!;
  const withGpu = (g: Partial<typeof gpu0>): AdvertBody => ({ ...base, gpus: [{ ...gpu0, ...g }] });
  const cases: [string, AdvertBody, string | null][] = [
    ['identical', base, null],
    ['model order only', { ...base, models: [...base.models].reverse() }, null],
    ['models', { ...base, models: ['x'] }, 'models'],
    ['inFlight', { ...base, inFlight: 2 }, 'inFlight'],
    ['queued', { ...base, queued: 1 }, 'queued'],
    ['capacity', { ...base, capacity: 8 }, 'capacity'],
    ['profile', { ...base, profile: 'boost' }, 'profile'],
    ['pin', { ...base, profilePinned: true }, 'profile'],
    ['apiUrl', { ...base, apiUrl: null }, 'apiUrl'],
    ['power source', { ...base, power: { source: 'battery', batteryPct: 80, charging: false } }, 'power source'],
    ['gpu removed', { ...base, gpus: [] }, 'gpu count'],
    ['gpu util +24', withGpu({ utilizationPct: 64 }), null],
    ['gpu util +25', withGpu({ utilizationPct: 65 }), 'gpu utilization'],
    ['gpu mem +2400 MiB (< 10 % of 24564)', withGpu({ memoryUsedMiB: 11400 }), null],
    ['gpu mem +2500 MiB', withGpu({ memoryUsedMiB: 11500 }), 'gpu memory used'],
    ['gpu temp +4', withGpu({ temperatureC: 65 }), null],
    ['gpu temp +5', withGpu({ temperatureC: 66 }), 'gpu temperature'],
    ['gpu temp unreadable', withGpu({ temperatureC: null }), 'gpu temperature'],
    ['gpu power +80 W (< 20 % of 450)', withGpu({ powerDrawW: 290.5 }), null],
    ['gpu power +90 W', withGpu({ powerDrawW: 300.5 }), 'gpu power draw'],
    ['cpu load +0.2', { ...base, cpuLoad: 0.45 }, null],
    ['cpu load +0.25', { ...base, cpuLoad: 0.5 }, 'cpu load'],
    ['mem +5 %', { ...base, memUsedBytes: base.memUsedBytes! + Math.round(0.05 * base.memTotalBytes!) }, null],
    ['mem +10 %', { ...base, memUsedBytes: base.memUsedBytes! + Math.ceil(0.1 * base.memTotalBytes!) }, 'memory used'],
    ['cpu package +10 W', { ...base, cpuPackageW: 55.2 }, null],
    ['cpu package +15 W', { ...base, cpuPackageW: 60.2 }, 'cpu package power'],
  ];
  for (const [name, next, want] of cases) {
    it(`${name} -> ${String(want)}`, () => {
      expect(isMaterialChange(base, next, DEFAULT_CHANGE_THRESHOLDS)).toBe(want);
    });
  }

  it('battery: 4 points is jitter, 5 is material, charging flips are material', () => {
    const onBat = { ...base, power: { source: 'battery' as const, batteryPct: 50, charging: false } };
    expect(isMaterialChange(onBat, { ...onBat, power: { ...onBat.power, batteryPct: 46 } })).toBeNull();
    expect(isMaterialChange(onBat, { ...onBat, power: { ...onBat.power, batteryPct: 45 } })).toBe('battery');
    expect(isMaterialChange(onBat, { ...onBat, power: { ...onBat.power, charging: true } })).toBe('charging');
  });
});
