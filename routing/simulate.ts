/**
 * A pure discrete-event simulation of R routers sending requests to S servers that
 * publish load adverts every `advertPeriodMs`. It compares the fednode policy
 * (rankCandidates + RoutingAccounting) with plain least-loaded (advert only), round
 * robin and random, all under the same seeded arrivals and service times. Used by
 * test/sim/infer/routing-sim.test.ts and bench/infer.ts. No clock, no Math.random.
 */
import { RoutingAccounting } from './accounting.js';
import { rankCandidates, tieHash } from './policy.js';
import type { AdvertLoad, Candidate, PolicyParams } from './policy.js';
import { RoutingError } from './errors.js';
import { Prng } from '../base/prng.js';

export type SimPolicy = 'fednode' | 'least-loaded' | 'round-robin' | 'random';
export const SIM_POLICIES: readonly SimPolicy[] = ['fednode', 'least-loaded', 'round-robin', 'random'];

export interface SimOptions {
  policy: SimPolicy;
  /** @default 5 */
  routers?: number;
  /** @default 5 */
  servers?: number;
  /** Requests each server runs at once. @default 4 */
  serverCapacity?: number;
  /** @default 2000 */
  advertPeriodMs?: number;
  /** Delay from advert creation to arrival at the routers. @default 20 */
  advertDelayMs?: number;
  /** Mean of the exponential service time. @default 1000 */
  meanServiceMs?: number;
  /** Total arrival rate as a fraction of total capacity (Poisson). @default 0.8 */
  utilisation?: number;
  /** Simulated duration of the Poisson phase. @default 120000 */
  durationMs?: number;
  /** When set: instead of Poisson arrivals, this many requests arrive within burstWindowMs. */
  burst?: number | null;
  /** @default 1000 */
  burstWindowMs?: number;
  /** How often the balance is sampled. @default 50 */
  sampleEveryMs?: number;
  seed: number;
  params?: Partial<PolicyParams>;
}

export interface SimResult {
  policy: SimPolicy;
  requests: number;
  completed: number;
  /** Time-average over samples (with work) of max(server in-flight) / mean(server in-flight). */
  maxOverMeanInFlight: number;
  /** max/mean of server in-flight at the end of the arrival phase (burst end / duration): the balance when most work is queued. */
  atHorizonMaxOverMean: number;
  /** Highest in-flight (running + queued) seen on any server. */
  peakInFlight: number;
  /** Mean in-flight per server over samples. */
  meanInFlight: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  meanLatencyMs: number;
}

/** Bound on simulated requests: keeps a run's memory and time bounded (tests and bench). */
export const SIM_MAX_REQUESTS = 2_000_000;

/** A `() => float in [0, 1)` stream from the project's one seeded PRNG (xoshiro128**, base/prng.ts). */
function floatStream(seed: number): () => number {
  const p = new Prng(seed >>> 0);
  return () => p.float();
}

type Ev =
  | { t: number; n: number; kind: 'arrival'; router: number }
  | { t: number; n: number; kind: 'finish'; server: number; req: number }
  | { t: number; n: number; kind: 'advert-make'; server: number }
  | { t: number; n: number; kind: 'advert-arrive'; server: number; advert: { inFlight: number; queued: number; seq: number; madeAt: number } }
  | { t: number; n: number; kind: 'sample' };

type DistOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Binary min-heap on (t, n): n keeps same-time events in insertion order (determinism). */
class EventHeap {
  private readonly a: Ev[] = [];
  get size(): number {
    return this.a.length;
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i]!;
    const y = this.a[j]!;
    return x.t < y.t || (x.t === y.t && x.n < y.n);
  }
  push(e: Ev): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): Ev | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(l, m)) m = l;
        if (r < a.length && this.less(r, m)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function simulate(opts: SimOptions): SimResult {
  const R = opts.routers ?? 5;
  const S = opts.servers ?? 5;
  const cap = opts.serverCapacity ?? 4;
  const period = opts.advertPeriodMs ?? 2000;
  const advertDelay = opts.advertDelayMs ?? 20;
  const meanService = opts.meanServiceMs ?? 1000;
  const util = opts.utilisation ?? 0.8;
  const duration = opts.durationMs ?? 120_000;
  const burst = opts.burst ?? null;
  const burstWindow = opts.burstWindowMs ?? 1000;
  const sampleEvery = opts.sampleEveryMs ?? 50;
  if (R < 1 || S < 1 || cap < 1 || period <= 0 || meanService <= 0 || sampleEvery <= 0) {
    throw new RoutingError('ERR_ROUTING_INPUT', 'simulation sizes must be positive', { R, S, cap, period, meanService, sampleEvery });
  }
  const totalRate = (util * S * cap) / meanService; // requests per ms
  const expected = burst ?? Math.ceil(totalRate * duration * 1.2);
  if (expected > SIM_MAX_REQUESTS) throw new RoutingError('ERR_ROUTING_INPUT', `simulation too large (${expected} requests > ${SIM_MAX_REQUESTS})`, { expected });

  // Separate PRNG streams so every policy sees the same arrivals and service times.
  const arrivalRng = floatStream(opts.seed);
  const serviceRng = floatStream(opts.seed ^ 0x9e3779b9);
  const policyRng = floatStream(opts.seed ^ 0x85ebca6b);
  const exp = (rng: () => number, mean: number): number => -Math.log(1 - rng()) * mean;

  const heap = new EventHeap();
  let n = 0;
  const push = (e: DistOmit<Ev, 'n'>): void => heap.push({ ...e, n: n++ });

  const serverNames = Array.from({ length: S }, (_, i) => `server-${i}`);
  const running = new Array<number>(S).fill(0);
  const waiting: number[][] = Array.from({ length: S }, () => []);
  const advertSeq = new Array<number>(S).fill(0);
  const accounting = Array.from({ length: R }, () => new RoutingAccounting(S + 1));
  // Each router's latest view of each server's advert.
  // Servers advertised once before the run starts (empty), as a running cluster would have.
  const views: ({ inFlight: number; queued: number; madeAt: number } | null)[][] = Array.from({ length: R }, () =>
    Array.from({ length: S }, () => ({ inFlight: 0, queued: 0, madeAt: 0 })),
  );
  const rr = Array.from({ length: R }, (_, r) => r % S);
  const reqRouter: number[] = [];
  const reqArrival: number[] = [];
  // Service times pre-drawn per request index so every policy gets the same work.
  const reqService: number[] = [];
  const latencies: number[] = [];

  // Arrivals.
  if (burst === null) {
    let t = 0;
    for (;;) {
      t += exp(arrivalRng, 1 / totalRate);
      if (t >= duration) break;
      push({ t, kind: 'arrival', router: Math.floor(arrivalRng() * R) });
    }
  } else {
    for (let i = 0; i < burst; i++) push({ t: arrivalRng() * burstWindow, kind: 'arrival', router: Math.floor(arrivalRng() * R) });
  }
  // Adverts: each server on its own phase.
  for (let s = 0; s < S; s++) push({ t: (period * s) / S, kind: 'advert-make', server: s });
  push({ t: 0, kind: 'sample' });

  let requests = 0;
  let completed = 0;
  let ratioSum = 0;
  let ratioSamples = 0;
  let loadSum = 0;
  let loadSamples = 0;
  let peak = 0;
  let atHorizon = 1;
  let horizonSampled = false;
  const horizon = burst === null ? duration : burstWindow;

  const start = (server: number, req: number, now: number): void => {
    running[server]!++;
    push({ t: now + reqService[req]!, kind: 'finish', server, req });
  };

  const choose = (router: number, now: number): number => {
    const view = views[router]!;
    switch (opts.policy) {
      case 'random':
        return Math.floor(policyRng() * S);
      case 'round-robin': {
        const s = rr[router]!;
        rr[router] = (s + 1) % S;
        return s;
      }
      case 'least-loaded': {
        const seed = Math.floor(policyRng() * 0xffffffff);
        let best = 0;
        let bestLoad = Infinity;
        let bestTie = 0;
        for (let s = 0; s < S; s++) {
          const v = view[s];
          const load = v === null || v === undefined ? 0 : v.inFlight + v.queued;
          const tie = tieHash(seed, serverNames[s]!);
          if (load < bestLoad || (load === bestLoad && tie < bestTie)) {
            best = s;
            bestLoad = load;
            bestTie = tie;
          }
        }
        return best;
      }
      case 'fednode': {
        const candidates: Candidate[] = serverNames.map((peerId, s) => {
          const v = view[s];
          const advert: AdvertLoad | null =
            v === null || v === undefined
              ? null
              : { inFlight: v.inFlight, queued: v.queued, capacity: cap, gpuTempC: null, gpuUtilPct: null, powerSource: 'ac', batteryPct: null, profile: 'balanced', ageMs: now - v.madeAt };
          return { peerId, isLocal: false, models: ['m'], advert };
        });
        const res = rankCandidates({ model: 'm', candidates, own: accounting[router]!, seed: Math.floor(policyRng() * 0xffffffff), params: { maxAdvertAgeMs: Infinity, ...(opts.params ?? {}) } });
        const first = res.ranked[0];
        return first === undefined ? 0 : serverNames.indexOf(first.peerId);
      }
      default: {
        const never: never = opts.policy;
        throw new RoutingError('ERR_ROUTING_INPUT', `unknown policy ${String(never)}`);
      }
    }
  };

  for (let ev = heap.pop(); ev !== undefined; ev = heap.pop()) {
    const now = ev.t;
    switch (ev.kind) {
      case 'arrival': {
        const req = requests++;
        reqRouter[req] = ev.router;
        reqArrival[req] = now;
        reqService[req] = exp(serviceRng, meanService);
        const s = choose(ev.router, now);
        accounting[ev.router]!.onSent(serverNames[s]!);
        if (running[s]! < cap) start(s, req, now);
        else waiting[s]!.push(req);
        break;
      }
      case 'finish': {
        running[ev.server]!--;
        completed++;
        latencies.push(now - reqArrival[ev.req]!);
        accounting[reqRouter[ev.req]!]!.onFinished(serverNames[ev.server]!);
        const next = waiting[ev.server]!.shift();
        if (next !== undefined) start(ev.server, next, now);
        break;
      }
      case 'advert-make': {
        const seq = ++advertSeq[ev.server]!;
        push({ t: now + advertDelay, kind: 'advert-arrive', server: ev.server, advert: { inFlight: running[ev.server]!, queued: waiting[ev.server]!.length, seq, madeAt: now } });
        if (now < horizon || completed < requests) push({ t: now + period, kind: 'advert-make', server: ev.server });
        break;
      }
      case 'advert-arrive': {
        for (let r = 0; r < R; r++) {
          views[r]![ev.server] = { inFlight: ev.advert.inFlight, queued: ev.advert.queued, madeAt: ev.advert.madeAt };
          accounting[r]!.onAdvert(serverNames[ev.server]!, ev.advert.seq);
        }
        break;
      }
      case 'sample': {
        let max = 0;
        let sum = 0;
        for (let s = 0; s < S; s++) {
          const l = running[s]! + waiting[s]!.length;
          if (l > max) max = l;
          sum += l;
        }
        if (max > peak) peak = max;
        const mean = sum / S;
        if (!horizonSampled && now >= horizon) {
          horizonSampled = true;
          atHorizon = mean > 0 ? max / mean : 1;
        }
        if (mean > 0) {
          ratioSum += max / mean;
          ratioSamples++;
          loadSum += mean;
          loadSamples++;
        }
        if (now < horizon || completed < requests) push({ t: now + sampleEvery, kind: 'sample' });
        break;
      }
      default: {
        const never: never = ev;
        throw new RoutingError('ERR_ROUTING_INPUT', `unknown event ${String(never)}`);
      }
    }
  }
  latencies.sort((a, b) => a - b);
  return {
    policy: opts.policy,
    requests,
    completed,
    maxOverMeanInFlight: ratioSamples === 0 ? 1 : ratioSum / ratioSamples,
    atHorizonMaxOverMean: atHorizon,
    peakInFlight: peak,
    meanInFlight: loadSamples === 0 ? 0 : loadSum / loadSamples,
    p50LatencyMs: percentile(latencies, 50),
    p99LatencyMs: percentile(latencies, 99),
    meanLatencyMs: latencies.length === 0 ? 0 : latencies.reduce((a, b) => a + b, 0) / latencies.length,
  };
}

/** Run every policy with the same seed and options; ratios are other / fednode (> 1 means fednode is better). */
export function comparePolicies(base: Omit<SimOptions, 'policy'>): { results: Record<SimPolicy, SimResult>; ratios: Record<Exclude<SimPolicy, 'fednode'>, { maxOverMean: number; p99Latency: number }> } {
  const results = {} as Record<SimPolicy, SimResult>;
  for (const p of SIM_POLICIES) results[p] = simulate({ ...base, policy: p });
  const f = results.fednode;
  const ratio = (p: Exclude<SimPolicy, 'fednode'>): { maxOverMean: number; p99Latency: number } => ({
    maxOverMean: results[p].maxOverMeanInFlight / f.maxOverMeanInFlight,
    p99Latency: f.p99LatencyMs === 0 ? 1 : results[p].p99LatencyMs / f.p99LatencyMs,
  });
  return { results, ratios: { 'least-loaded': ratio('least-loaded'), 'round-robin': ratio('round-robin'), random: ratio('random') } };
}
