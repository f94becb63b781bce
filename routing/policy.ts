/**
 * The routing policy: a PURE function from (candidates, this router's own accounting,
 * params, seed) to a ranked list of candidates. No I/O, no clock, no randomness: time
 * arrives as each advert's age, randomness as a caller-provided seed. The simnet and
 * the runtime call exactly this code.
 *
 * Why local accounting: adverts are stale by up to one period (2 s). A router that
 * trusts only adverts sends every request of that period to the same "least-loaded"
 * peer (herding). Each router knows exactly how many requests IT has sent to each
 * peer and not yet seen finish, so the estimate of a peer's load is
 *
 *   others  = max(0, advert.inFlight + advert.queued - ownAtAdvert)   (stale part, not ours)
 *   others' = blend(others, meanOthers, staleness)                    (trust old news less)
 *   load    = others' + ownNow                                        (fresh part: exact)
 *
 * where ownAtAdvert is how many of OUR requests the advert already counted (our
 * outstanding count when that advert arrived): subtracting it avoids counting our
 * own requests twice. The score is (load + 1) / (capacity * profileFactor), i.e. the
 * expected occupancy after this request is added, plus small penalties (GPU
 * utilisation, heat, battery). Ties are broken by a hash of (seed, peerId) so that
 * several routers with equal views do not all pick the same peer.
 */
import { RoutingError } from './errors.js';

export type PowerProfile = 'eco' | 'balanced' | 'boost' | 'turbo';
export type PowerSource = 'ac' | 'battery' | 'unknown';

/** The load fields of a member's latest advert, as the routing policy needs them. */
export interface AdvertLoad {
  /** Requests running on that member when the advert was made. */
  inFlight: number;
  /** Requests waiting in that member's queue when the advert was made. */
  queued: number;
  /** Requests the member runs at once (its concurrency); >= 1. */
  capacity: number;
  /** Hottest GPU temperature in Celsius, null when unknown / no GPU. */
  gpuTempC: number | null;
  /** GPU utilisation 0..100, null when unknown. */
  gpuUtilPct: number | null;
  powerSource: PowerSource;
  /** Battery level 0..100, null when no battery. */
  batteryPct: number | null;
  profile: PowerProfile;
  /** How old the advert is, in ms, at the time of the decision (input: the caller owns the clock). */
  ageMs: number;
}

export interface Candidate {
  peerId: string;
  /** True for this node itself: local execution is just another candidate (no hop). */
  isLocal: boolean;
  /** Models the member serves (from its advert / local backends). */
  models: readonly string[];
  /** Latest advert's load, null when no advert has been seen yet. */
  advert: AdvertLoad | null;
}

/** This router's own accounting for one peer (see RoutingAccounting). */
export interface OwnLoad {
  /** Requests this router sent to the peer and has not seen finish. */
  outstanding: number;
  /** Our outstanding count when the peer's latest advert arrived (already counted in it). */
  outstandingAtAdvert: number;
}

/** Anything with get(peerId): a Map, or a RoutingAccounting (no snapshot copy per request). */
export interface OwnLoadLookup {
  get(peerId: string): OwnLoad | undefined;
}

export interface PolicyParams {
  /** Battery level (%) under which a battery-powered member is avoided. @default 20 */
  batteryFloorPct: number;
  /** GPU temperature (C) above which a member is avoided. @default 85 (typical consumer GPUs throttle at 83-90 C) */
  tempCeilingC: number;
  /** Adverts older than this are considered dead: member goes to the fallback tier. @default 10000 (5 advert periods of 2 s) */
  maxAdvertAgeMs: number;
  /**
   * Staleness half-life: the advert's view of OTHERS' load is blended toward the mean of
   * all candidates with this half-life of advert age. @default 250. Measured with
   * routing/simulate.ts (5 routers, 1 s requests, 2 s adverts): 0 (ignore the
   * per-peer part) balanced best when all load comes through routers, 250 is within a
   * few % of it (steady max/mean 1.49-1.60 over 120 s, burst end 1.07-1.08) while a fresh advert
   * still reports load that did not come through routers; 500 was worse and 2000
   * herded in bursts. Our own count stays exact whatever the age.
   */
  stalenessHalfLifeMs: number;
  /** Weight of GPU utilisation (0..1 of a request per 100 %). @default 0.25 */
  utilWeight: number;
  /** Penalty per degree C above (ceiling - 10). @default 0.05 */
  heatWeight: number;
  /** Penalty added when on battery (in requests-equivalent per capacity unit). @default 0.5 */
  batteryWeight: number;
  /** Throughput factor per power profile (capacity multiplier). @default eco 0.6, balanced 1, boost 1.2, turbo 1.4 */
  profileFactor: Readonly<Record<PowerProfile, number>>;
  /** Scores within this relative distance count as a tie (broken by the seeded hash). @default 0.02 */
  tieEpsilon: number;
}

export const DEFAULT_POLICY_PARAMS: PolicyParams = Object.freeze({
  batteryFloorPct: 20,
  tempCeilingC: 85,
  maxAdvertAgeMs: 10_000,
  stalenessHalfLifeMs: 250,
  utilWeight: 0.25,
  heatWeight: 0.05,
  batteryWeight: 0.5,
  profileFactor: Object.freeze({ eco: 0.6, balanced: 1, boost: 1.2, turbo: 1.4 }),
  tieEpsilon: 0.02,
});

export interface RankInput {
  model: string;
  candidates: readonly Candidate[];
  /** Own accounting per peerId; missing peers count as zero. */
  own: Readonly<Record<string, OwnLoad>> | OwnLoadLookup;
  params?: Partial<PolicyParams>;
  /** Tie-break seed (e.g. a hash of the request id): different requests break ties differently. */
  seed: number;
}

export type Tier = 'preferred' | 'fallback';

export interface RankedCandidate {
  peerId: string;
  isLocal: boolean;
  /** 'fallback' = battery below floor, too hot, advert too old or missing; used only after every 'preferred'. */
  tier: Tier;
  /** Lower is better. */
  score: number;
  /** Estimated requests on the member now (others' stale part + ours). */
  estimatedLoad: number;
  /** Why it was put in the fallback tier (empty when preferred). */
  reasons: readonly string[];
}

export interface RankResult {
  /** Best first; failover walks this list. Empty when nobody serves the model. */
  ranked: RankedCandidate[];
  /** Members that do not serve the model (peerIds), for error messages. */
  notServing: string[];
}

export function resolveParams(p: Partial<PolicyParams> | undefined): PolicyParams {
  const params: PolicyParams = { ...DEFAULT_POLICY_PARAMS, ...(p ?? {}), profileFactor: { ...DEFAULT_POLICY_PARAMS.profileFactor, ...(p?.profileFactor ?? {}) } };
  const nonNeg: (keyof PolicyParams)[] = ['batteryFloorPct', 'maxAdvertAgeMs', 'stalenessHalfLifeMs', 'utilWeight', 'heatWeight', 'batteryWeight', 'tieEpsilon'];
  for (const k of nonNeg) {
    const v = params[k];
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0) throw new RoutingError('ERR_ROUTING_PARAMS', `routing param ${k} must be a number >= 0`, { param: k, value: v });
  }
  if (!Number.isFinite(params.tempCeilingC)) throw new RoutingError('ERR_ROUTING_PARAMS', 'routing param tempCeilingC must be finite', { value: params.tempCeilingC });
  for (const [k, v] of Object.entries(params.profileFactor)) {
    if (!Number.isFinite(v) || v <= 0) throw new RoutingError('ERR_ROUTING_PARAMS', `profile factor ${k} must be > 0`, { profile: k, value: v });
  }
  return params;
}

/** FNV-1a 32-bit over (seed, text): deterministic tie-break, no Math.random. */
export function tieHash(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  h = Math.imul(h, 0x01000193) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix32) so nearby seeds give unrelated orders
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function ownOf(own: RankInput['own'], peerId: string): OwnLoad {
  const v = typeof own.get === 'function' ? (own as OwnLoadLookup).get(peerId) : (own as Readonly<Record<string, OwnLoad>>)[peerId];
  return v ?? { outstanding: 0, outstandingAtAdvert: 0 };
}

function finiteNonNeg(x: number): number {
  return Number.isFinite(x) && x > 0 ? x : 0;
}

/** Rank the candidates that serve `input.model`, best first. Pure and deterministic. */
export function rankCandidates(input: RankInput): RankResult {
  const params = resolveParams(input.params);
  const serving: Candidate[] = [];
  const notServing: string[] = [];
  const seen = new Set<string>();
  for (const c of input.candidates) {
    if (seen.has(c.peerId)) continue; // a member listed twice counts once
    seen.add(c.peerId);
    if (c.models.includes(input.model)) serving.push(c);
    else notServing.push(c.peerId);
  }
  // Others' load per candidate (stale part), and its mean, for the staleness blend.
  const others = serving.map((c) => {
    if (c.advert === null) return 0;
    const own = ownOf(input.own, c.peerId);
    return Math.max(0, finiteNonNeg(c.advert.inFlight) + finiteNonNeg(c.advert.queued) - finiteNonNeg(own.outstandingAtAdvert));
  });
  const meanOthers = others.length === 0 ? 0 : others.reduce((a, b) => a + b, 0) / others.length;

  const ranked: (RankedCandidate & { tie: number })[] = serving.map((c, i) => {
    const own = ownOf(input.own, c.peerId);
    const reasons: string[] = [];
    const a = c.advert;
    let capacity = 1;
    let profile = 1;
    let penalty = 0;
    let othersNow = 0;
    if (a === null) {
      if (!c.isLocal) reasons.push('no advert yet');
    } else {
      capacity = Math.max(1, finiteNonNeg(a.capacity));
      profile = params.profileFactor[a.profile] ?? 1;
      const age = finiteNonNeg(a.ageMs);
      // Trust in the advert's view of others halves every half-life: old news drifts to the mean.
      const trust = params.stalenessHalfLifeMs === 0 ? 0 : Math.pow(0.5, age / params.stalenessHalfLifeMs);
      othersNow = (others[i] ?? 0) * trust + meanOthers * (1 - trust);
      if (!c.isLocal && age > params.maxAdvertAgeMs) reasons.push(`advert ${Math.round(age)} ms old > ${params.maxAdvertAgeMs} ms`);
      if (a.powerSource === 'battery' && a.batteryPct !== null && a.batteryPct < params.batteryFloorPct) {
        reasons.push(`battery ${a.batteryPct}% < floor ${params.batteryFloorPct}%`);
      }
      if (a.gpuTempC !== null && a.gpuTempC > params.tempCeilingC) reasons.push(`gpu ${a.gpuTempC} C > ceiling ${params.tempCeilingC} C`);
      if (a.gpuUtilPct !== null) penalty += params.utilWeight * Math.min(100, finiteNonNeg(a.gpuUtilPct)) / 100 / capacity;
      if (a.gpuTempC !== null) penalty += params.heatWeight * Math.max(0, a.gpuTempC - (params.tempCeilingC - 10));
      if (a.powerSource === 'battery') penalty += params.batteryWeight / capacity;
    }
    const estimatedLoad = othersNow + finiteNonNeg(own.outstanding);
    const score = (estimatedLoad + 1) / (capacity * profile) + penalty;
    return {
      peerId: c.peerId,
      isLocal: c.isLocal,
      tier: reasons.length === 0 ? 'preferred' : 'fallback',
      score,
      estimatedLoad,
      reasons,
      tie: tieHash(input.seed, c.peerId),
    };
  });
  ranked.sort((x, y) => {
    if (x.tier !== y.tier) return x.tier === 'preferred' ? -1 : 1;
    const scale = Math.max(Math.abs(x.score), Math.abs(y.score), 1e-9);
    if (Math.abs(x.score - y.score) / scale > params.tieEpsilon) return x.score - y.score;
    if (x.tie !== y.tie) return x.tie - y.tie;
    return x.peerId < y.peerId ? -1 : x.peerId > y.peerId ? 1 : 0;
  });
  return { ranked: ranked.map(({ tie: _tie, ...r }) => r), notServing };
}
