/**
 * Builds this node's advert body from hardware readings, the serving state (from
 * backends / the API) and the profile policy. The hardware is probed on its own
 * cadence (nvidia-smi can take up to its 3 s timeout) and collect() answers from the
 * latest snapshot, so the publisher's poll stays quick.
 */
import { nullLogger, type Logger } from '../log.js';
import type { HardwareProbe, HardwareSnapshot } from '../probes/index.js';
import { ADVERT_LIMITS, assertPositiveInt, toAdvertGpu, type AdvertBody, type AdvertGpu } from './advert.js';
import { decideProfile, DEFAULT_PROFILE_POLICY, nodeLoad, type ProfileDecision, type ProfilePolicy, type ProfileState } from './profile.js';

export interface ServingState {
  readonly models: readonly string[];
  readonly inFlight: number;
  readonly queued: number;
  readonly capacity: number;
  /** This node's energy readings (node/adverts/energy.ts); absent = not measured. */
  readonly energy?: { readonly tokensPerS: number | null; readonly joulesPerToken: number | null };
}

/** A reading outside the advert's bounds is not trusted (null), never clamped into a false value. */
const boundedOrNull = (x: number | null, max: number): number | null => (x !== null && Number.isFinite(x) && x >= 0 && x <= max ? x : null);

const clampCount = (n: number): number => (Number.isFinite(n) ? Math.min(ADVERT_LIMITS.maxRequests, Math.max(0, Math.floor(n))) : 0);

/**
 * Pure: the advert body for these readings. Inputs beyond the advert's bounds are cut
 * to fit (models sorted, de-duplicated, over-long ids dropped, at most maxModels), so
 * real-world input never makes the node's own advert invalid.
 */
export function buildAdvertBody(hw: HardwareSnapshot, serving: ServingState, decision: ProfileDecision, apiUrl: string | null): AdvertBody {
  // eslint-disable-next-line no-control-regex
  const printable = (m: string): boolean => m.length > 0 && m.length <= ADVERT_LIMITS.maxModelChars && !/[\u0000-\u001f\u007f-\u009f]/.test(m);
  const models = [...new Set(serving.models.filter(printable))].sort().slice(0, ADVERT_LIMITS.maxModels);
  const gpus: AdvertGpu[] = (hw.gpus ?? []).slice(0, ADVERT_LIMITS.maxGpus).map(toAdvertGpu);
  return {
    models,
    inFlight: clampCount(serving.inFlight),
    queued: clampCount(serving.queued),
    capacity: clampCount(serving.capacity),
    gpus,
    cpuLoad: hw.system.cpuLoad,
    memUsedBytes: hw.system.memUsedBytes,
    memTotalBytes: hw.system.memTotalBytes,
    power: hw.power === null ? { source: null, batteryPct: null, charging: null } : { source: hw.power.source, batteryPct: hw.power.batteryPct, charging: hw.power.charging },
    cpuPackageW: hw.cpuPackageW,
    profile: decision.profile,
    profilePinned: decision.pinned,
    apiUrl,
    tokensPerS: boundedOrNull(serving.energy?.tokensPerS ?? null, ADVERT_LIMITS.maxTokensPerS),
    joulesPerToken: boundedOrNull(serving.energy?.joulesPerToken ?? null, ADVERT_LIMITS.maxJoulesPerToken),
  };
}

/** Pure: the profile decision for these readings (see profile.ts). */
export function decideForReadings(hw: HardwareSnapshot, serving: ServingState, policy: ProfilePolicy, prev: ProfileState | null): ProfileDecision {
  const temps = (hw.gpus ?? []).map((g) => g.temperatureC).filter((t): t is number => t !== null);
  return decideProfile(
    {
      load: nodeLoad({ inFlight: serving.inFlight, queued: serving.queued, capacity: serving.capacity, gpuUtilizationPct: (hw.gpus ?? []).map((g) => g.utilizationPct), cpuLoad: hw.system.cpuLoad }),
      power: hw.power === null ? { source: null, batteryPct: null, charging: null } : hw.power,
      maxGpuTempC: temps.length > 0 ? Math.max(...temps) : null,
      queued: serving.queued,
      thermalThrottle: hw.thermalThrottle ?? null,
    },
    policy,
    prev,
  );
}

export interface AdvertCollectorOptions {
  readonly hardware: HardwareProbe;
  readonly serving: () => ServingState;
  /** Unix ms (the publisher's scheduler.now). */
  readonly now: () => number;
  /** Read on every collect, so a pin set through the control API applies at once. @default DEFAULT_PROFILE_POLICY */
  readonly policy?: () => ProfilePolicy;
  readonly apiUrl: string | null;
  /** Hardware is re-probed when the snapshot is this old. @default 1000 (half the advert period) */
  readonly hardwareRefreshMs?: number;
  readonly logger?: Logger;
}

export interface AdvertCollector {
  collect(): Promise<AdvertBody>;
  /** Latest hardware snapshot (for `status` / `doctor`), null before the first probe. */
  readonly hardware: HardwareSnapshot | null;
  /** Latest profile decision with its reasons, null before the first collect. */
  readonly decision: ProfileDecision | null;
}

export function createAdvertCollector(opts: AdvertCollectorOptions): AdvertCollector {
  const refreshMs = opts.hardwareRefreshMs ?? 1000;
  assertPositiveInt(refreshMs, 'hardwareRefreshMs');
  const log = opts.logger ?? nullLogger;
  let hw: HardwareSnapshot | null = null;
  let decision: ProfileDecision | null = null;
  // At most one probe in flight: a hung nvidia-smi never stacks up child processes.
  let refreshing: Promise<void> | null = null;
  const refresh = (): Promise<void> => {
    refreshing ??= opts.hardware
      .read(opts.now())
      .then((s) => {
        hw = s;
      })
      .catch((err: unknown) => log.warn('hardware probe failed', { err }))
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  };
  return {
    async collect() {
      if (hw === null) await refresh();
      else if (opts.now() - hw.atMs >= refreshMs) void refresh();
      const snapshot: HardwareSnapshot = hw ?? {
        atMs: opts.now(),
        gpus: null,
        gpuReason: 'not probed yet',
        gpuSkipped: [],
        power: null,
        cpuPackageW: null,
        cpuPackageReason: 'not probed yet',
        system: { cpuLoad: null, memUsedBytes: null, memTotalBytes: null },
      };
      const serving = opts.serving();
      const policy = opts.policy?.() ?? DEFAULT_PROFILE_POLICY;
      decision = decideForReadings(snapshot, serving, policy, decision?.state ?? null);
      return buildAdvertBody(snapshot, serving, decision, opts.apiUrl);
    },
    get hardware() {
      return hw;
    },
    get decision() {
      return decision;
    },
  };
}
