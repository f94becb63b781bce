/**
 * Power profile policy. PURE: no I/O, no clock; the caller passes readings and the
 * previous state, and keeps the returned state for the next call.
 *
 * Order of rules (each one named in `reasons`):
 * 1. load level: eco < loadBalancedMin <= balanced < loadBoostMin <= boost < loadTurboMin <= turbo,
 *    with hysteresis on the way down (see below);
 * 2. an operator pin replaces the load level (and rule 3);
 * 3. GPU hotter than gpuHotAboveC drops one level (eco stays eco), released only once every
 *    GPU is at or below gpuHotAboveC - gpuCoolHysteresisC;
 * 3b. more than queueBoostAbove requests queued: at least boost (the design's trigger: a queue
 *    that long needs every watt the GPU has);
 * 3c. a thermal throttle reason reported by nvidia-smi (sw/hw thermal slowdown): at most
 *    throttleMaxProfile (balanced): the GPU is already slowing itself, more power only heats it;
 *    it wins over 3b. Neither applies to a pinned profile (see "Thermal vs pin");
 * 4. on battery (discharging) below batteryEcoBelowPct: eco, EVEN WHEN PINNED (batteryOverridesPin,
 *    default true). Why: a pin is set once and forgotten; running a laptop at turbo on its last 20 %
 *    ends in an unclean power-off, which loses in-flight requests and takes a voter out of consensus
 *    without a goodbye. Eco keeps the node serving longer. An operator who really wants the pin to
 *    win can set batteryOverridesPin = false.
 *
 * Thermal vs pin: the pin wins over the thermal drop, as the issue says ("an operator can pin it");
 * the GPU's own firmware still throttles at its slowdown temperature, so hardware is protected anyway.
 *
 * Hysteresis (why): a node's load is partly its own queue, and a profile change moves load (routing
 * prefers higher profiles), so load sitting on a threshold would flap every advert (2 s) and make every
 * advert a "material change". Going UP needs load >= threshold; going DOWN needs load < threshold -
 * loadHysteresis. Same idea for temperature (5 C, about the spread of one second of GPU temperature
 * readings under a changing load).
 */

export const POWER_PROFILES = ['eco', 'balanced', 'boost', 'turbo'] as const;
export type PowerProfile = (typeof POWER_PROFILES)[number];

export function isPowerProfile(x: unknown): x is PowerProfile {
  return typeof x === 'string' && (POWER_PROFILES as readonly string[]).includes(x);
}

const levelOf = (p: PowerProfile): number => POWER_PROFILES.indexOf(p);
const profileAt = (i: number): PowerProfile => POWER_PROFILES[Math.max(0, Math.min(POWER_PROFILES.length - 1, i))] ?? 'eco';

export interface ProfilePolicy {
  /** @default 0.2 (issue 3) */
  readonly loadBalancedMin: number;
  /** @default 0.6 (issue 3) */
  readonly loadBoostMin: number;
  /** @default 0.9 (issue 3) */
  readonly loadTurboMin: number;
  /** Going down a level needs load below threshold - this. 0 disables. @default 0.05 (see header) */
  readonly loadHysteresis: number;
  /** Discharging battery below this percent forces eco. @default 20 (issue 3) */
  readonly batteryEcoBelowPct: number;
  /** Any GPU above this temperature (C) drops one level. @default 85 (issue 3) */
  readonly gpuHotAboveC: number;
  /** The thermal drop is released at or below gpuHotAboveC - this. 0 disables. @default 5 (see header) */
  readonly gpuCoolHysteresisC: number;
  /** Operator pin; null follows the policy. @default null */
  readonly pin: PowerProfile | null;
  /** Battery-critical eco applies even to a pinned profile. @default true (safe: see header) */
  readonly batteryOverridesPin: boolean;
  /** Profile used while load is unknown (no reading at all). @default 'balanced' */
  readonly unknownLoadProfile: PowerProfile;
  /** More queued requests than this: at least boost. @default 10 (the design's trigger) */
  readonly queueBoostAbove: number;
  /** While a GPU reports thermal throttling: at most this profile. @default 'balanced' (the design's trigger) */
  readonly throttleMaxProfile: PowerProfile;
}

export const DEFAULT_PROFILE_POLICY: ProfilePolicy = Object.freeze({
  loadBalancedMin: 0.2,
  loadBoostMin: 0.6,
  loadTurboMin: 0.9,
  loadHysteresis: 0.05,
  batteryEcoBelowPct: 20,
  gpuHotAboveC: 85,
  gpuCoolHysteresisC: 5,
  pin: null,
  batteryOverridesPin: true,
  unknownLoadProfile: 'balanced',
  queueBoostAbove: 10,
  throttleMaxProfile: 'balanced',
});

/** Problems with a policy (empty when valid); config loading turns these into its own error. */
export function validateProfilePolicy(p: ProfilePolicy): string[] {
  const errs: string[] = [];
  const fin = (k: keyof ProfilePolicy, v: unknown, min: number, max: number): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) errs.push(`${k} must be a number in [${min}, ${max}], got ${String(v)}`);
  };
  fin('loadBalancedMin', p.loadBalancedMin, 0, 100);
  fin('loadBoostMin', p.loadBoostMin, 0, 100);
  fin('loadTurboMin', p.loadTurboMin, 0, 100);
  fin('loadHysteresis', p.loadHysteresis, 0, 1);
  fin('batteryEcoBelowPct', p.batteryEcoBelowPct, 0, 100);
  fin('gpuHotAboveC', p.gpuHotAboveC, 0, 200);
  fin('gpuCoolHysteresisC', p.gpuCoolHysteresisC, 0, 50);
  if (errs.length === 0 && !(p.loadBalancedMin < p.loadBoostMin && p.loadBoostMin < p.loadTurboMin)) {
    errs.push('load thresholds must increase: loadBalancedMin < loadBoostMin < loadTurboMin');
  }
  if (p.pin !== null && !isPowerProfile(p.pin)) errs.push(`pin must be one of ${POWER_PROFILES.join(', ')} or null`);
  fin('queueBoostAbove', p.queueBoostAbove, 0, 1_000_000);
  if (!isPowerProfile(p.throttleMaxProfile)) errs.push(`throttleMaxProfile must be one of ${POWER_PROFILES.join(', ')}`);
  if (!isPowerProfile(p.unknownLoadProfile)) errs.push(`unknownLoadProfile must be one of ${POWER_PROFILES.join(', ')}`);
  if (typeof p.batteryOverridesPin !== 'boolean') errs.push('batteryOverridesPin must be a boolean');
  return errs;
}

export interface ProfileInput {
  /** Node load as a fraction (see nodeLoad); null when nothing could be read. */
  readonly load: number | null;
  /** Power source as in the advert. */
  readonly power: { readonly source: 'ac' | 'battery' | null; readonly batteryPct: number | null; readonly charging: boolean | null };
  /** Hottest GPU temperature (C), null when no GPU temperature is known. */
  readonly maxGpuTempC: number | null;
  /** Requests waiting on this node's backends; absent/null = unknown (no queue trigger). */
  readonly queued?: number | null;
  /** Any GPU reports a sw/hw thermal slowdown (nvidia-smi clocks_event_reasons); absent/null = unknown. */
  readonly thermalThrottle?: boolean | null;
}

/** What the next decision needs to remember (hysteresis). */
export interface ProfileState {
  readonly loadProfile: PowerProfile;
  readonly thermalDrop: boolean;
}

export type ProfileReason = 'load' | 'load-hysteresis' | 'load-unknown' | 'pinned' | 'thermal-drop' | 'queue-boost' | 'thermal-throttle' | 'battery-critical';

export interface ProfileDecision {
  readonly profile: PowerProfile;
  readonly pinned: boolean;
  readonly reasons: readonly ProfileReason[];
  /** Pass back as `prev` next time. */
  readonly state: ProfileState;
}

/** The load level without hysteresis. */
export function profileForLoad(load: number, p: ProfilePolicy): PowerProfile {
  if (load >= p.loadTurboMin) return 'turbo';
  if (load >= p.loadBoostMin) return 'boost';
  if (load >= p.loadBalancedMin) return 'balanced';
  return 'eco';
}

function loadWithHysteresis(load: number, prev: PowerProfile | null, p: ProfilePolicy): { profile: PowerProfile; held: boolean } {
  const raw = profileForLoad(load, p);
  if (prev === null || levelOf(raw) >= levelOf(prev)) return { profile: raw, held: false };
  // Going down: the level is left only once load < threshold - band (load == threshold - band holds).
  // The 1e-9 absorbs binary rounding (0.85 + 0.05 is 0.8999999999999999 in doubles).
  const lowered = profileForLoad(load + p.loadHysteresis + 1e-9, p);
  const profile = levelOf(lowered) < levelOf(prev) ? lowered : prev;
  return { profile, held: profile !== raw };
}

export function decideProfile(input: ProfileInput, policy: ProfilePolicy, prev: ProfileState | null): ProfileDecision {
  const reasons: ProfileReason[] = [];
  // 1. load
  let loadProfile: PowerProfile;
  if (input.load === null || !Number.isFinite(input.load)) {
    loadProfile = prev?.loadProfile ?? policy.unknownLoadProfile;
    reasons.push('load-unknown');
  } else {
    const r = loadWithHysteresis(Math.max(0, input.load), prev?.loadProfile ?? null, policy);
    loadProfile = r.profile;
    reasons.push(r.held ? 'load-hysteresis' : 'load');
  }
  // 3 (state kept even while pinned, so unpinning resumes correctly). Thermal hysteresis.
  const t = input.maxGpuTempC;
  let thermalDrop: boolean;
  if (t === null || !Number.isFinite(t)) thermalDrop = false; // unknown is not hot: never invented
  else if (t > policy.gpuHotAboveC) thermalDrop = true;
  else thermalDrop = (prev?.thermalDrop ?? false) && t > policy.gpuHotAboveC - policy.gpuCoolHysteresisC;

  let profile: PowerProfile;
  const pinned = policy.pin !== null;
  if (policy.pin !== null) {
    profile = policy.pin;
    reasons.push('pinned');
  } else {
    profile = loadProfile;
    if (thermalDrop) {
      profile = profileAt(levelOf(profile) - 1);
      reasons.push('thermal-drop');
    }
    const q = input.queued;
    if (q !== undefined && q !== null && q > policy.queueBoostAbove && levelOf(profile) < levelOf('boost')) {
      profile = 'boost';
      reasons.push('queue-boost');
    }
    if (input.thermalThrottle === true && levelOf(profile) > levelOf(policy.throttleMaxProfile)) {
      profile = policy.throttleMaxProfile;
      reasons.push('thermal-throttle');
    }
  }
  // 4. battery critical
  const pct = input.power.batteryPct;
  const batteryCritical = input.power.source === 'battery' && input.power.charging !== true && pct !== null && pct < policy.batteryEcoBelowPct;
  if (batteryCritical && (!pinned || policy.batteryOverridesPin)) {
    profile = 'eco';
    reasons.push('battery-critical');
  }
  return { profile, pinned, reasons, state: { loadProfile, thermalDrop } };
}

export interface LoadInputs {
  readonly inFlight: number;
  readonly queued: number;
  readonly capacity: number;
  readonly gpuUtilizationPct: readonly (number | null)[];
  readonly cpuLoad: number | null;
}

/**
 * The node's load as one fraction: the highest of request load ((inFlight + queued) /
 * capacity), busiest GPU utilisation / 100, and CPU load (load average per core). The
 * busiest resource is what limits the node, so the maximum (not a mean) sets the profile.
 * Null only when none of them is known (capacity 0 and no GPU or CPU reading).
 */
export function nodeLoad(x: LoadInputs): number | null {
  const parts: number[] = [];
  if (x.capacity > 0) parts.push((x.inFlight + x.queued) / x.capacity);
  for (const u of x.gpuUtilizationPct) if (u !== null && Number.isFinite(u)) parts.push(u / 100);
  if (x.cpuLoad !== null && Number.isFinite(x.cpuLoad)) parts.push(x.cpuLoad);
  if (parts.length === 0) return null;
  return Math.max(...parts);
}
