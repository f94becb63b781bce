import { describe, expect, it } from 'vitest';
import {
  decideProfile,
  DEFAULT_PROFILE_POLICY,
  nodeLoad,
  profileForLoad,
  validateProfilePolicy,
  type PowerProfile,
  type ProfileInput,
  type ProfilePolicy,
  type ProfileState,
} from '../../../node/adverts/profile.js';

const AC = { source: 'ac' as const, batteryPct: null, charging: null };
const input = (load: number | null, over: Partial<ProfileInput> = {}): ProfileInput => ({ load, power: AC, maxGpuTempC: null, ...over });
const noHyst: ProfilePolicy = { ...DEFAULT_PROFILE_POLICY, loadHysteresis: 0, gpuCoolHysteresisC: 0 };

describe('profile policy: load thresholds (issue 3: eco < 0.2 <= balanced < 0.6 <= boost < 0.9 <= turbo)', () => {
  const table: [number, PowerProfile][] = [
    [0, 'eco'],
    [0.199, 'eco'],
    [0.2, 'balanced'],
    [0.599, 'balanced'],
    [0.6, 'boost'],
    [0.899, 'boost'],
    [0.9, 'turbo'],
    [3.5, 'turbo'],
  ];
  for (const [load, want] of table) {
    it(`load ${load} -> ${want} (no previous state)`, () => {
      expect(profileForLoad(load, DEFAULT_PROFILE_POLICY)).toBe(want);
      const d = decideProfile(input(load), DEFAULT_PROFILE_POLICY, null);
      expect(d.profile).toBe(want);
      expect(d.pinned).toBe(false);
      expect(d.reasons).toEqual(['load']);
    });
  }

  it('unknown load uses unknownLoadProfile first, then holds the previous level', () => {
    expect(decideProfile(input(null), DEFAULT_PROFILE_POLICY, null)).toMatchObject({ profile: 'balanced', reasons: ['load-unknown'] });
    const prev: ProfileState = { loadProfile: 'turbo', thermalDrop: false };
    expect(decideProfile(input(null), DEFAULT_PROFILE_POLICY, prev).profile).toBe('turbo');
  });

  it('thresholds come from the policy', () => {
    const p = { ...DEFAULT_PROFILE_POLICY, loadBalancedMin: 0.1, loadBoostMin: 0.3, loadTurboMin: 0.5 };
    expect(decideProfile(input(0.3), p, null).profile).toBe('boost');
    expect(decideProfile(input(0.5), p, null).profile).toBe('turbo');
  });
});

describe('profile policy: hysteresis on the way down', () => {
  const at = (load: number, prev: PowerProfile): PowerProfile => decideProfile(input(load), DEFAULT_PROFILE_POLICY, { loadProfile: prev, thermalDrop: false }).profile;

  it('going up switches at the threshold itself', () => {
    expect(at(0.6, 'balanced')).toBe('boost');
    expect(at(0.9, 'boost')).toBe('turbo');
    expect(at(0.2, 'eco')).toBe('balanced');
  });

  it('going down holds while load >= threshold - 0.05 and leaves below it (each edge)', () => {
    expect(at(0.85, 'turbo')).toBe('turbo');
    expect(at(0.849, 'turbo')).toBe('boost');
    expect(at(0.55, 'boost')).toBe('boost');
    expect(at(0.549, 'boost')).toBe('balanced');
    expect(at(0.15, 'balanced')).toBe('balanced');
    expect(at(0.149, 'balanced')).toBe('eco');
    const held = decideProfile(input(0.58), DEFAULT_PROFILE_POLICY, { loadProfile: 'boost', thermalDrop: false });
    expect(held.reasons).toEqual(['load-hysteresis']);
  });

  it('a big drop goes straight to the right level', () => {
    expect(at(0.1, 'turbo')).toBe('eco');
  });

  it('load wobbling on a threshold does not flap (with hysteresis) and does without', () => {
    const wobble = [0.61, 0.59, 0.6, 0.58, 0.62, 0.57];
    const run = (policy: ProfilePolicy): PowerProfile[] => {
      let prev: ProfileState | null = null;
      return wobble.map((l) => {
        const d = decideProfile(input(l), policy, prev);
        prev = d.state;
        return d.profile;
      });
    };
    expect(run(DEFAULT_PROFILE_POLICY)).toEqual(['boost', 'boost', 'boost', 'boost', 'boost', 'boost']);
    expect(run(noHyst)).toEqual(['boost', 'balanced', 'boost', 'balanced', 'boost', 'balanced']);
  });
});

describe('profile policy: battery and thermal', () => {
  const onBattery = (pct: number, charging: boolean | null = false) => ({ source: 'battery' as const, batteryPct: pct, charging });

  it('discharging battery below 20 % forces eco at any load; 20 % itself does not', () => {
    expect(decideProfile(input(0.95, { power: onBattery(19.9) }), DEFAULT_PROFILE_POLICY, null)).toMatchObject({ profile: 'eco', reasons: ['load', 'battery-critical'] });
    expect(decideProfile(input(0.95, { power: onBattery(20) }), DEFAULT_PROFILE_POLICY, null).profile).toBe('turbo');
  });

  it('low battery on AC, or charging, or with unknown percentage does not force eco', () => {
    expect(decideProfile(input(0.95, { power: { source: 'ac', batteryPct: 5, charging: true } }), DEFAULT_PROFILE_POLICY, null).profile).toBe('turbo');
    expect(decideProfile(input(0.95, { power: onBattery(5, true) }), DEFAULT_PROFILE_POLICY, null).profile).toBe('turbo');
    expect(decideProfile(input(0.95, { power: { source: 'battery', batteryPct: null, charging: false } }), DEFAULT_PROFILE_POLICY, null).profile).toBe('turbo');
  });

  it('GPU above 85 C drops one level; 85 C itself does not; eco stays eco', () => {
    expect(decideProfile(input(0.95, { maxGpuTempC: 86 }), DEFAULT_PROFILE_POLICY, null)).toMatchObject({ profile: 'boost', reasons: ['load', 'thermal-drop'] });
    expect(decideProfile(input(0.7, { maxGpuTempC: 85.5 }), DEFAULT_PROFILE_POLICY, null).profile).toBe('balanced');
    expect(decideProfile(input(0.3, { maxGpuTempC: 90 }), DEFAULT_PROFILE_POLICY, null).profile).toBe('eco');
    expect(decideProfile(input(0.1, { maxGpuTempC: 90 }), DEFAULT_PROFILE_POLICY, null).profile).toBe('eco');
    expect(decideProfile(input(0.95, { maxGpuTempC: 85 }), DEFAULT_PROFILE_POLICY, null).profile).toBe('turbo');
  });

  it('the thermal drop is released only at or below 80 C (5 C band), and the load level is remembered underneath', () => {
    const hot = decideProfile(input(0.95, { maxGpuTempC: 87 }), DEFAULT_PROFILE_POLICY, null);
    expect(hot.state).toEqual({ loadProfile: 'turbo', thermalDrop: true });
    const warm = decideProfile(input(0.95, { maxGpuTempC: 82 }), DEFAULT_PROFILE_POLICY, hot.state);
    expect(warm.profile).toBe('boost');
    const cool = decideProfile(input(0.95, { maxGpuTempC: 80 }), DEFAULT_PROFILE_POLICY, warm.state);
    expect(cool.profile).toBe('turbo');
    // Without a band, 82 C after 87 C releases at once.
    expect(decideProfile(input(0.95, { maxGpuTempC: 82 }), noHyst, hot.state).profile).toBe('turbo');
  });

  it('unknown GPU temperature is not hot', () => {
    expect(decideProfile(input(0.95, { maxGpuTempC: null }), DEFAULT_PROFILE_POLICY, { loadProfile: 'turbo', thermalDrop: true }).profile).toBe('turbo');
  });

  it('battery-critical wins over the thermal drop (both would lower; eco is the floor)', () => {
    expect(decideProfile(input(0.95, { maxGpuTempC: 90, power: onBattery(10) }), DEFAULT_PROFILE_POLICY, null).profile).toBe('eco');
  });
});

describe('profile policy: operator pin', () => {
  const pinned = (pin: PowerProfile, over: Partial<ProfilePolicy> = {}): ProfilePolicy => ({ ...DEFAULT_PROFILE_POLICY, pin, ...over });

  it('a pin wins over load and over the thermal drop', () => {
    expect(decideProfile(input(0.05), pinned('turbo'), null)).toMatchObject({ profile: 'turbo', pinned: true, reasons: ['load', 'pinned'] });
    expect(decideProfile(input(0.95, { maxGpuTempC: 95 }), pinned('boost'), null).profile).toBe('boost');
  });

  it('battery-critical still forces eco over a pin by default (safe), unless batteryOverridesPin is false', () => {
    const low = { power: { source: 'battery' as const, batteryPct: 12, charging: false } };
    expect(decideProfile(input(0.5, low), pinned('turbo'), null)).toMatchObject({ profile: 'eco', pinned: true, reasons: ['load', 'pinned', 'battery-critical'] });
    expect(decideProfile(input(0.5, low), pinned('turbo', { batteryOverridesPin: false }), null).profile).toBe('turbo');
  });

  it('state keeps following load under a pin, so unpinning resumes correctly', () => {
    const d = decideProfile(input(0.95), pinned('eco'), null);
    expect(d.profile).toBe('eco');
    expect(d.state.loadProfile).toBe('turbo');
    expect(decideProfile(input(0.88), DEFAULT_PROFILE_POLICY, d.state).profile).toBe('turbo');
  });
});

describe('policy validation and node load', () => {
  it('defaults are valid; bad thresholds are named', () => {
    expect(validateProfilePolicy(DEFAULT_PROFILE_POLICY)).toEqual([]);
    expect(validateProfilePolicy({ ...DEFAULT_PROFILE_POLICY, loadBoostMin: 0.1 })).toEqual(['load thresholds must increase: loadBalancedMin < loadBoostMin < loadTurboMin']);
    expect(validateProfilePolicy({ ...DEFAULT_PROFILE_POLICY, batteryEcoBelowPct: 120 })[0]).toMatch(/^batteryEcoBelowPct/);
    expect(validateProfilePolicy({ ...DEFAULT_PROFILE_POLICY, pin: 'warp' as PowerProfile })[0]).toMatch(/^pin must be/);
    expect(validateProfilePolicy({ ...DEFAULT_PROFILE_POLICY, loadHysteresis: Number.NaN })[0]).toMatch(/^loadHysteresis/);
  });

  it('node load is the busiest of requests/capacity, GPU utilisation and CPU load', () => {
    expect(nodeLoad({ inFlight: 3, queued: 1, capacity: 8, gpuUtilizationPct: [20, null], cpuLoad: 0.1 })).toBe(0.5);
    expect(nodeLoad({ inFlight: 0, queued: 0, capacity: 4, gpuUtilizationPct: [95], cpuLoad: 0.1 })).toBe(0.95);
    expect(nodeLoad({ inFlight: 0, queued: 0, capacity: 4, gpuUtilizationPct: [], cpuLoad: 1.5 })).toBe(1.5);
    expect(nodeLoad({ inFlight: 0, queued: 0, capacity: 0, gpuUtilizationPct: [null], cpuLoad: null })).toBeNull();
  });
});
