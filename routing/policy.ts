/**
 * The routing policy: a PURE function from (candidates, this router's own accounting,
 * params, seed) to a ranked list of candidates with the terms of each score. No I/O, no
 * clock, no randomness: time arrives as each advert's age, RTTs as measured numbers,
 * randomness as a caller-provided seed. The simnet and the runtime call exactly this code,
 * and the node itself is a candidate like any other (its own readings in the same form).
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
 * where ownAtAdvert is how many of OUR requests the advert already counted.
 *
 * The score (lower is better) is a sum of one term per weight name (base/route-weights.ts),
 * each weight from the policy in force (routing/in-force.ts):
 *
 *   load     w.load    * (occupancy + queuePenalty * queued share + GPU use by others)
 *   latency  w.latency * rttMs / latencyUnitMs
 *   energy   w.power   * energyScale * excess energy per token over the best * lightness
 *   heat     w.heat    * heatPerC * degrees within heatBandC of the ceiling
 *   battery  w.battery * batteryPenalty / capacity, when on battery
 *
 * `lightness` is 1 while the cluster (as this router sees it) is lightly loaded and fades to 0
 * as it fills: under light load traffic consolidates on the members that spend the least
 * energy per token (the others stay idle, in eco); under heavy load the score is pure balance.
 * The power profile is not a capacity factor (it was: eco 0.6, which pushed work away from
 * efficient nodes): capacity is what the member advertises, and the profile only picks the
 * default energy estimate when the member has not measured its own.
 *
 * Ties (scores within tieEpsilon) are broken by a hash of (seed, peerId) so that several
 * routers with equal views do not all pick the same peer.
 */
import { ROUTE_WEIGHT_NAMES } from '../base/route-weights.js';
import type { RouteWeightName } from '../base/route-weights.js';
import { RoutingError } from './errors.js';

export type PowerProfile = 'eco' | 'balanced' | 'boost' | 'turbo';
export type PowerSource = 'ac' | 'battery' | 'unknown';

/** The fields of a member's latest advert (or of this node's own readings) the policy needs. */
export interface AdvertLoad {
  /** Requests running on that member when the advert was made. */
  inFlight: number;
  /** Requests waiting in that member's queue when the advert was made. */
  queued: number;
  /** Requests the member runs at once (its concurrency); >= 1. */
  capacity: number;
  /** Hottest GPU temperature in Celsius, null when unknown / no GPU. */
  gpuTempC: number | null;
  /** Highest GPU utilisation 0..100, null when unknown. */
  gpuUtilPct: number | null;
  powerSource: PowerSource;
  /** Battery level 0..100, null when no battery. */
  batteryPct: number | null;
  profile: PowerProfile;
  /** The member's own estimate of energy per generated token in joules (GPU draw over its tokens/s); null = not measured. */
  joulesPerToken: number | null;
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
  /** Smoothed round-trip time to the member, ms (routing/rtt.ts); null = not measured yet. Ignored for the local node (0). */
  rttMs: number | null;
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

export type RouteWeights = Readonly<Record<RouteWeightName, number>>;

export interface PolicyParams {
  /**
   * One weight per score term (base/route-weights.ts). @default load 1, latency 0.5, power 0.25
   * (the genesis registry's route policy, consensus/registry.ts DEFAULT_ROUTE_POLICY), heat 1, battery 1
   * (the terms' own scales below are chosen so that 1 is their intended strength).
   */
  weights: RouteWeights;
  /** Battery level (%) under which a battery-powered member goes to the fallback tier. @default 20 (config power.batteryFloorPercent) */
  batteryFloorPct: number;
  /** GPU temperature (C) above which a member goes to the fallback tier. @default 85 (typical consumer GPUs throttle at 83-90 C) */
  tempCeilingC: number;
  /** Adverts older than this are considered dead: member goes to the fallback tier. @default 10000 (5 advert periods of 2 s) */
  maxAdvertAgeMs: number;
  /**
   * Staleness half-life: the advert's view of OTHERS' load is blended toward the mean of
   * all candidates with this half-life of advert age. @default 250, measured with the routing
   * simulation (simnet/routing.ts, 2 s adverts): 0 balanced best when all load comes through
   * routers, 250 is within a few % of it while a fresh advert still reports load that did not
   * come through routers; 500 was worse and 2000 herded in bursts.
   */
  stalenessHalfLifeMs: number;
  /** GPU utilisation counted as load (requests-equivalent per slot at 100 %): work that did not come through fednode. @default 0.25 */
  utilWeight: number;
  /** Extra cost per queued request per slot: a queued request waits about queued/capacity service times. @default 1 */
  queuePenalty: number;
  /** RTT per unit of the latency term. @default 100 (ms: a 100 ms link costs as much as a slot's worth of load at weight 1) */
  latencyUnitMs: number;
  /** Heat term per degree C inside the band below the ceiling. @default 0.05 */
  heatPerC: number;
  /** Width of the band below the ceiling where heat costs. @default 10 (C) */
  heatBandC: number;
  /** Battery term (per capacity unit) when on battery. @default 0.5 */
  batteryPenalty: number;
  /**
   * Scale of the energy term: with the default power weight (0.25) a member spending
   * `energyFullAtRatio` times the best candidate's energy per token costs one slot of load, so the
   * efficient member fills its slots before the other gets work. @default 4
   */
  energyScale: number;
  /** Ratio of energy per token to the best candidate's at which the energy term is full. @default 1.5 */
  energyFullAtRatio: number;
  /**
   * Energy per token (J) when the member has not measured its own, per profile. @default eco 2,
   * balanced 2, boost 2.5, turbo 3.2: a ~200 W consumer GPU decoding ~100 tokens/s (7-8B model) is
   * ~2 J/token; eco and balanced run near the GPU's efficiency sweet spot, boost and turbo raise
   * clocks past it (dynamic power grows with f V^2) for a few % more speed.
   */
  energyDefaultJPerToken: Readonly<Record<PowerProfile, number>>;
  /** A member on battery counts its energy this many times (charge cycles, and its uptime as a voter). @default 2 */
  batteryEnergyFactor: number;
  /** Cluster load (sum of estimated load / sum of capacity) below which the energy term is at full strength. @default 0.4 */
  lightLoadBelow: number;
  /** Cluster load above which the energy term is off (pure balance). @default 0.7 */
  balanceAbove: number;
  /** Scores within this relative distance count as a tie (broken by the seeded hash). @default 0.02 */
  tieEpsilon: number;
}

export const DEFAULT_ROUTE_WEIGHTS: RouteWeights = Object.freeze({ load: 1, latency: 0.5, power: 0.25, heat: 1, battery: 1 });

export const DEFAULT_POLICY_PARAMS: PolicyParams = Object.freeze({
  weights: DEFAULT_ROUTE_WEIGHTS,
  batteryFloorPct: 20,
  tempCeilingC: 85,
  maxAdvertAgeMs: 10_000,
  stalenessHalfLifeMs: 250,
  utilWeight: 0.25,
  queuePenalty: 1,
  latencyUnitMs: 100,
  heatPerC: 0.05,
  heatBandC: 10,
  batteryPenalty: 0.5,
  energyScale: 1.5,
  energyFullAtRatio: 1.5,
  energyDefaultJPerToken: Object.freeze({ eco: 2, balanced: 2, boost: 2.5, turbo: 3.2 }),
  batteryEnergyFactor: 2,
  lightLoadBelow: 0.4,
  balanceAbove: 0.7,
  tieEpsilon: 0.02,
});

export type PolicyParamsInput = Partial<Omit<PolicyParams, 'weights' | 'energyDefaultJPerToken'>> & {
  weights?: Partial<RouteWeights>;
  energyDefaultJPerToken?: Partial<Record<PowerProfile, number>>;
};

export interface RankInput {
  model: string;
  candidates: readonly Candidate[];
  /** Own accounting per peerId; missing peers count as zero. */
  own: Readonly<Record<string, OwnLoad>> | OwnLoadLookup;
  params?: PolicyParamsInput;
  /** Tie-break seed (e.g. a hash of the request id): different requests break ties differently. */
  seed: number;
}

export type Tier = 'preferred' | 'fallback';

/** The weighted terms of a score; their sum is the score. */
export type ScoreTerms = { readonly [K in 'load' | 'latency' | 'energy' | 'heat' | 'battery']: number };

export interface RankedCandidate {
  peerId: string;
  isLocal: boolean;
  /** 'fallback' = battery below floor, too hot, advert too old or missing; used only after every 'preferred'. */
  tier: Tier;
  /** Lower is better: the sum of `terms`. */
  score: number;
  terms: ScoreTerms;
  /** Estimated requests on the member now (others' stale part + ours). */
  estimatedLoad: number;
  capacity: number;
  /** RTT used by the latency term (ms) and where it came from. */
  rttMs: number;
  rttSource: 'local' | 'measured' | 'mean of measured' | 'none measured';
  /** Energy per token used by the energy term (J, battery factor applied) and where it came from. */
  joulesPerToken: number;
  energySource: 'measured' | 'profile default';
  /** Why it was put in the fallback tier (empty when preferred). */
  reasons: readonly string[];
}

export interface RankResult {
  /** Best first; failover walks this list. Empty when nobody serves the model. */
  ranked: RankedCandidate[];
  /** Members that do not serve the model (peerIds), for error messages. */
  notServing: string[];
  /** Sum of estimated load over sum of capacity of the preferred candidates (this router's view). */
  clusterLoad: number;
  /** Strength of the energy term now, 0..1 (1 under light cluster load, 0 above balanceAbove). */
  lightness: number;
}

const NON_NEGATIVE: readonly (keyof PolicyParams)[] = [
  'batteryFloorPct', 'maxAdvertAgeMs', 'stalenessHalfLifeMs', 'utilWeight', 'queuePenalty', 'heatPerC', 'heatBandC',
  'batteryPenalty', 'energyScale', 'lightLoadBelow', 'tieEpsilon',
];

function paramError(what: string, value: unknown, rule: string): never {
  throw new RoutingError('ERR_ROUTING_PARAMS', `routing param ${what} must be ${rule}`, { param: what, value });
}

/**
 * Resolved params per input object: the policy in force hands the same params object to every
 * request of a height, so validation runs once per height, not per request. Weak: holds nothing
 * the caller dropped. Params are plain data and never mutated after they are handed in.
 */
const resolvedMemo = new WeakMap<PolicyParamsInput, PolicyParams>();

/** Full params from a partial set (each nested map merged with its defaults); throws ERR_ROUTING_PARAMS naming the bad one. */
export function resolveParams(p: PolicyParamsInput | undefined): PolicyParams {
  if (p === undefined) return DEFAULT_POLICY_PARAMS;
  const memo = resolvedMemo.get(p);
  if (memo !== undefined) return memo;
  const resolved = resolveParamsUncached(p);
  resolvedMemo.set(p, resolved);
  resolvedMemo.set(resolved, resolved);
  return resolved;
}

function resolveParamsUncached(p: PolicyParamsInput | undefined): PolicyParams {
  const d = DEFAULT_POLICY_PARAMS;
  const params: PolicyParams = {
    ...d,
    ...(p ?? {}),
    weights: { ...d.weights, ...(p?.weights ?? {}) },
    energyDefaultJPerToken: { ...d.energyDefaultJPerToken, ...(p?.energyDefaultJPerToken ?? {}) },
  };
  for (const k of NON_NEGATIVE) {
    const v = params[k];
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0) paramError(k, v, 'a number >= 0');
  }
  if (!Number.isFinite(params.tempCeilingC)) paramError('tempCeilingC', params.tempCeilingC, 'finite');
  for (const k of ['latencyUnitMs', 'batteryEnergyFactor'] as const) if (!(Number.isFinite(params[k]) && params[k] > 0)) paramError(k, params[k], 'a finite number > 0');
  if (!(Number.isFinite(params.energyFullAtRatio) && params.energyFullAtRatio > 1)) paramError('energyFullAtRatio', params.energyFullAtRatio, 'a finite number > 1');
  if (!(params.balanceAbove > params.lightLoadBelow)) paramError('balanceAbove', params.balanceAbove, `greater than lightLoadBelow (${params.lightLoadBelow})`);
  for (const [k, v] of Object.entries(params.weights)) {
    if (!(ROUTE_WEIGHT_NAMES as readonly string[]).includes(k)) paramError(`weights.${k}`, v, `one of ${ROUTE_WEIGHT_NAMES.join(', ')}`);
    if (!(Number.isFinite(v) && v >= 0)) paramError(`weights.${k}`, v, 'a finite number >= 0');
  }
  for (const [k, v] of Object.entries(params.energyDefaultJPerToken)) if (!(Number.isFinite(v) && v > 0)) paramError(`energyDefaultJPerToken.${k}`, v, '> 0');
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

/** First pass over one serving candidate: everything that does not depend on the others. */
interface Assessed {
  c: Candidate;
  own: OwnLoad;
  capacity: number;
  /** Others' load per the advert (before the staleness blend). */
  others: number;
  ageMs: number;
  reasons: string[];
  joulesPerToken: number;
  energySource: RankedCandidate['energySource'];
  /** Set by the second pass (staleness blend + our own): requests on the member now. */
  estimatedLoad: number;
}

function assess(c: Candidate, own: OwnLoad, p: PolicyParams): Assessed {
  const a = c.advert;
  const reasons: string[] = [];
  if (a === null) {
    if (!c.isLocal) reasons.push('no advert yet');
    return { c, own, capacity: 1, others: 0, ageMs: 0, reasons, joulesPerToken: p.energyDefaultJPerToken.balanced, energySource: 'profile default', estimatedLoad: 0 };
  }
  const ageMs = finiteNonNeg(a.ageMs);
  if (!c.isLocal && ageMs > p.maxAdvertAgeMs) reasons.push(`advert ${Math.round(ageMs)} ms old > ${p.maxAdvertAgeMs} ms`);
  if (a.powerSource === 'battery' && a.batteryPct !== null && a.batteryPct < p.batteryFloorPct) reasons.push(`battery ${a.batteryPct}% < floor ${p.batteryFloorPct}%`);
  if (a.gpuTempC !== null && a.gpuTempC > p.tempCeilingC) reasons.push(`gpu ${a.gpuTempC} C > ceiling ${p.tempCeilingC} C`);
  const measured = a.joulesPerToken !== null && Number.isFinite(a.joulesPerToken) && a.joulesPerToken > 0;
  const base = measured ? (a.joulesPerToken as number) : (p.energyDefaultJPerToken[a.profile] ?? p.energyDefaultJPerToken.balanced);
  return {
    c,
    own,
    capacity: Math.max(1, finiteNonNeg(a.capacity)),
    others: Math.max(0, finiteNonNeg(a.inFlight) + finiteNonNeg(a.queued) - finiteNonNeg(own.outstandingAtAdvert)),
    ageMs,
    reasons,
    joulesPerToken: a.powerSource === 'battery' ? base * p.batteryEnergyFactor : base,
    energySource: measured ? 'measured' : 'profile default',
    estimatedLoad: 0,
  };
}

function rttOf(c: Candidate, meanMeasured: number | null): { rttMs: number; rttSource: RankedCandidate['rttSource'] } {
  if (c.isLocal) return { rttMs: 0, rttSource: 'local' };
  if (c.rttMs !== null && Number.isFinite(c.rttMs) && c.rttMs >= 0) return { rttMs: c.rttMs, rttSource: 'measured' };
  // Unknown RTT is neither near nor far: the mean of the measured ones (no measurement yet: no term).
  return meanMeasured === null ? { rttMs: 0, rttSource: 'none measured' } : { rttMs: meanMeasured, rttSource: 'mean of measured' };
}

const mean = (xs: readonly number[]): number | null => (xs.length === 0 ? null : xs.reduce((s, x) => s + x, 0) / xs.length);

/** Cluster context of one decision: the staleness mean, cluster load, the best energy and the mean RTT. */
function context(as: readonly Assessed[], p: PolicyParams): { clusterLoad: number; lightness: number; bestJ: number } {
  const preferred = as.filter((x) => x.reasons.length === 0);
  const pool = preferred.length > 0 ? preferred : as;
  const cap = pool.reduce((s, x) => s + x.capacity, 0);
  const clusterLoad = cap === 0 ? 0 : pool.reduce((s, x) => s + x.estimatedLoad, 0) / cap;
  const lightness = Math.min(1, Math.max(0, (p.balanceAbove - clusterLoad) / (p.balanceAbove - p.lightLoadBelow)));
  const bestJ = pool.reduce((m, x) => Math.min(m, x.joulesPerToken), Infinity);
  return { clusterLoad, lightness, bestJ };
}

function termsOf(x: Assessed, rttMs: number, ctx: { lightness: number; bestJ: number }, p: PolicyParams): ScoreTerms {
  const a = x.c.advert;
  const w = p.weights;
  const cap = x.capacity;
  const after = x.estimatedLoad + 1; // occupancy once this request is added
  const queuedShare = Math.max(0, after - cap) / cap;
  const util = a?.gpuUtilPct == null ? 0 : (p.utilWeight * Math.min(100, finiteNonNeg(a.gpuUtilPct))) / 100 / cap;
  const excess = Number.isFinite(ctx.bestJ) && ctx.bestJ > 0 ? Math.min(1, Math.max(0, x.joulesPerToken / ctx.bestJ - 1) / (p.energyFullAtRatio - 1)) : 0;
  return {
    load: w.load * (after / cap + p.queuePenalty * queuedShare + util),
    latency: (w.latency * rttMs) / p.latencyUnitMs,
    energy: w.power * p.energyScale * excess * ctx.lightness,
    heat: a?.gpuTempC == null ? 0 : w.heat * p.heatPerC * Math.max(0, a.gpuTempC - (p.tempCeilingC - p.heatBandC)),
    battery: a?.powerSource === 'battery' ? (w.battery * p.batteryPenalty) / cap : 0,
  };
}

/** The serving candidates (each member once) and the member ids that do not serve the model. */
function split(input: RankInput): { serving: Candidate[]; notServing: string[] } {
  const serving: Candidate[] = [];
  const notServing: string[] = [];
  const seen = new Set<string>();
  for (const c of input.candidates) {
    if (seen.has(c.peerId)) continue; // a member listed twice counts once
    seen.add(c.peerId);
    if (c.models.includes(input.model)) serving.push(c);
    else notServing.push(c.peerId);
  }
  return { serving, notServing };
}

/** Rank the candidates that serve `input.model`, best first. Pure and deterministic. */
export function rankCandidates(input: RankInput): RankResult {
  const p = resolveParams(input.params);
  const { serving, notServing } = split(input);
  const assessed = serving.map((c) => assess(c, ownOf(input.own, c.peerId), p));
  const meanOthers = mean(assessed.map((x) => x.others)) ?? 0;
  for (const x of assessed) {
    // Trust in the advert's view of others halves every half-life: old news drifts to the mean.
    const trust = x.c.advert === null ? 0 : p.stalenessHalfLifeMs === 0 ? 0 : Math.pow(0.5, x.ageMs / p.stalenessHalfLifeMs);
    const othersNow = x.c.advert === null ? 0 : x.others * trust + meanOthers * (1 - trust);
    x.estimatedLoad = othersNow + finiteNonNeg(x.own.outstanding);
  }
  const withLoad = assessed;
  const ctx = context(withLoad, p);
  const meanRtt = mean(serving.filter((c) => !c.isLocal && c.rttMs !== null && Number.isFinite(c.rttMs) && c.rttMs >= 0).map((c) => c.rttMs as number));
  const ranked = withLoad.map((x) => {
    const rtt = rttOf(x.c, meanRtt);
    const terms = termsOf(x, rtt.rttMs, ctx, p);
    const r: RankedCandidate = {
      peerId: x.c.peerId,
      isLocal: x.c.isLocal,
      tier: x.reasons.length === 0 ? 'preferred' : 'fallback',
      score: terms.load + terms.latency + terms.energy + terms.heat + terms.battery,
      terms,
      estimatedLoad: x.estimatedLoad,
      capacity: x.capacity,
      ...rtt,
      joulesPerToken: x.joulesPerToken,
      energySource: x.energySource,
      reasons: x.reasons,
    };
    return { r, tie: tieHash(input.seed, x.c.peerId) };
  });
  ranked.sort((x, y) => {
    if (x.r.tier !== y.r.tier) return x.r.tier === 'preferred' ? -1 : 1;
    const scale = Math.max(Math.abs(x.r.score), Math.abs(y.r.score), 1e-9);
    if (Math.abs(x.r.score - y.r.score) / scale > p.tieEpsilon) return x.r.score - y.r.score;
    if (x.tie !== y.tie) return x.tie - y.tie;
    return x.r.peerId < y.r.peerId ? -1 : x.r.peerId > y.r.peerId ? 1 : 0;
  });
  return { ranked: ranked.map((x) => x.r), notServing, clusterLoad: ctx.clusterLoad, lightness: ctx.lightness };
}
