// This node's energy per token (node/adverts/energy.ts) and the two advert fields that carry it.
import { describe, expect, it } from 'vitest';
import { ADVERT_LIMITS, encodeAdvertBody, parseAdvertBody } from '../../../node/adverts/advert.js';
import { buildAdvertBody } from '../../../node/adverts/collect.js';
import { EnergyMeter, gpuPowerDrawW } from '../../../node/adverts/energy.js';
import type { HardwareSnapshot } from '../../../node/probes/index.js';
import { sampleBody } from '../../helpers/adverts.js';

describe('EnergyMeter', () => {
  it('turns token counts and GPU draw into tokens/s and smoothed joules per token, kept while idle', () => {
    const m = new EnergyMeter({ smoothing: 0.5 });
    expect(m.sample(0, 0, 200)).toEqual({ tokensPerS: null, joulesPerToken: null });
    expect(m.sample(2000, 200, 200)).toEqual({ tokensPerS: 100, joulesPerToken: 2 }); // 200 W / 100 tokens/s
    expect(m.sample(4000, 600, 200)).toEqual({ tokensPerS: 200, joulesPerToken: 1.5 }); // 1 J, averaged with 2
    // idle: no tokens, the draw falls; the estimate stays (an idle member is not cheaper than it measured)
    expect(m.sample(6000, 600, 30)).toEqual({ tokensPerS: null, joulesPerToken: 1.5 });
    // no GPU reading: tokens/s still measured, energy untouched
    expect(m.sample(8000, 800, null)).toEqual({ tokensPerS: 100, joulesPerToken: 1.5 });
  });

  it('merges windows that are too short and restarts on a counter that went back', () => {
    const m = new EnergyMeter({ minWindowMs: 500 });
    m.sample(0, 0, 100);
    expect(m.sample(100, 50, 100).tokensPerS).toBeNull(); // 100 ms: merged into the next window
    expect(m.sample(1000, 100, 100).tokensPerS).toBe(100);
    expect(m.sample(2000, 10, 100).tokensPerS).toBe(100); // counter reset: a new window starts, nothing invented
    expect(m.sample(3000, 110, 100).tokensPerS).toBe(100);
    expect(() => new EnergyMeter({ smoothing: 0 })).toThrow(/smoothing/);
  });

  it('sums the draw of the GPUs that report one', () => {
    expect(gpuPowerDrawW([{ powerDrawW: 100 }, { powerDrawW: null }, { powerDrawW: 50.5 }])).toBe(150.5);
    expect(gpuPowerDrawW([{ powerDrawW: null }])).toBeNull();
    expect(gpuPowerDrawW(null)).toBeNull();
  });
});

describe('advert energy fields', () => {
  it('are validated like every reading: bounded, finite, non-negative', () => {
    expect(parseAdvertBody(sampleBody({ tokensPerS: 42.5, joulesPerToken: 1.8 }))).toEqual({ ok: true, body: sampleBody({ tokensPerS: 42.5, joulesPerToken: 1.8 }) });
    for (const [field, bad] of [['tokensPerS', -1], ['joulesPerToken', ADVERT_LIMITS.maxJoulesPerToken + 1], ['tokensPerS', 'fast']] as const) {
      const r = parseAdvertBody({ ...sampleBody(), [field]: bad });
      expect(r.ok ? null : r.field).toBe(field);
    }
  });

  it('absent in a body from an older node means not measured (null)', () => {
    const { tokensPerS: _t, joulesPerToken: _j, ...old } = sampleBody();
    expect(parseAdvertBody(old)).toEqual({ ok: true, body: sampleBody() });
    expect(encodeAdvertBody(sampleBody({ joulesPerToken: 2 })).joulesPerToken).toBe(2);
  });

  it('the node puts its meter reading in its own advert; an out-of-bounds reading becomes null, never a false value', () => {
    const hw: HardwareSnapshot = { atMs: 0, gpus: null, gpuReason: 'none', gpuSkipped: [], power: null, cpuPackageW: null, cpuPackageReason: null, system: { cpuLoad: null, memUsedBytes: null, memTotalBytes: null } };
    const decision = { profile: 'balanced', pinned: false, reasons: [], state: null } as unknown as Parameters<typeof buildAdvertBody>[2];
    const serving = { models: ['m'], inFlight: 0, queued: 0, capacity: 4 };
    expect(buildAdvertBody(hw, { ...serving, energy: { tokensPerS: 50, joulesPerToken: 3 } }, decision, null)).toMatchObject({ tokensPerS: 50, joulesPerToken: 3 });
    expect(buildAdvertBody(hw, { ...serving, energy: { tokensPerS: 50, joulesPerToken: 1e9 } }, decision, null)).toMatchObject({ tokensPerS: 50, joulesPerToken: null });
    expect(buildAdvertBody(hw, serving, decision, null)).toMatchObject({ tokensPerS: null, joulesPerToken: null });
  });
});
