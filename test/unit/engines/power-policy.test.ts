// The profile policy's power triggers (queue -> at least boost; thermal throttle -> at most balanced)
// and the GPU power query parser on the recorded H200 answer.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decideProfile, DEFAULT_PROFILE_POLICY } from '../../../node/adverts/profile.js';
import type { ProfileInput } from '../../../node/adverts/profile.js';
import { gpuPowerArgs, parseGpuPower } from '../../../node/probes/gpu-power.js';
import { clampLimit } from '../../../node/probes/power-actuator.js';

const base: ProfileInput = { load: 0.1, power: { source: 'ac', batteryPct: null, charging: null }, maxGpuTempC: 50 };

describe('profile triggers', () => {
  it('more than 10 queued: at least boost; 10 is not enough', () => {
    expect(decideProfile({ ...base, queued: 10 }, DEFAULT_PROFILE_POLICY, null).profile).toBe('eco');
    const d = decideProfile({ ...base, queued: 11 }, DEFAULT_PROFILE_POLICY, null);
    expect(d.profile).toBe('boost');
    expect(d.reasons).toContain('queue-boost');
    expect(decideProfile({ ...base, load: 0.95, queued: 50 }, DEFAULT_PROFILE_POLICY, null).profile).toBe('turbo'); // at least, not exactly
  });

  it('a thermal throttle reason: at most balanced, even with a long queue', () => {
    const d = decideProfile({ ...base, load: 0.95, thermalThrottle: true }, DEFAULT_PROFILE_POLICY, null);
    expect(d.profile).toBe('balanced');
    expect(d.reasons).toContain('thermal-throttle');
    expect(decideProfile({ ...base, queued: 40, thermalThrottle: true }, DEFAULT_PROFILE_POLICY, null).profile).toBe('balanced');
    expect(decideProfile({ ...base, thermalThrottle: true }, DEFAULT_PROFILE_POLICY, null).profile).toBe('eco'); // never raises
    expect(decideProfile({ ...base, load: 0.95, thermalThrottle: null }, DEFAULT_PROFILE_POLICY, null).profile).toBe('turbo'); // unknown is not throttled
  });

  it('a pinned profile is not moved by either trigger; battery-critical still wins', () => {
    const pinned = { ...DEFAULT_PROFILE_POLICY, pin: 'turbo' as const };
    expect(decideProfile({ ...base, thermalThrottle: true, queued: 50 }, pinned, null).profile).toBe('turbo');
    expect(decideProfile({ ...base, queued: 50, power: { source: 'battery', batteryPct: 5, charging: false } }, DEFAULT_PROFILE_POLICY, null).profile).toBe('eco');
  });
});

describe('GPU power query', () => {
  it('reads limits and throttle reasons from the recorded H200 answer (csv with header and units)', () => {
    const text = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'probes', 'nvidia-smi', 'real', 'h200-580.173.02-linux.csv'), 'utf8');
    expect(parseGpuPower(text, null)).toEqual([{ index: 0, powerLimitW: 700, minLimitW: 200, maxLimitW: 700, thermalThrottle: false }]);
  });

  it('reads its own noheader,nounits query and the pre-535 field names', () => {
    const fields = gpuPowerArgs(false)[0]!.slice('--query-gpu='.length).split(',');
    expect(parseGpuPower('0, 300.00, 100.00, 450.00, Not Active, Active\n1, [N/A], [N/A], [N/A], [N/A], [N/A]\ngarbage line\n', fields)).toEqual([
      { index: 0, powerLimitW: 300, minLimitW: 100, maxLimitW: 450, thermalThrottle: true },
      { index: 1, powerLimitW: null, minLimitW: null, maxLimitW: null, thermalThrottle: null },
    ]);
    const legacy = gpuPowerArgs(true)[0]!.slice('--query-gpu='.length).split(',');
    expect(parseGpuPower('0, 300.00, 100.00, 450.00, Active, Not Active\n', legacy)[0]?.thermalThrottle).toBe(true);
  });

  it('clamps a profile limit to the GPU own range', () => {
    const g = { index: 0, powerLimitW: 700, minLimitW: 200, maxLimitW: 700, thermalThrottle: false };
    expect(clampLimit(100, g)).toBe(200); // eco on an H200: its minimum
    expect(clampLimit(400, g)).toBe(400);
    expect(clampLimit(900, g)).toBe(700);
  });
});
