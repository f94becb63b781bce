/**
 * Routing under stale adverts: every node is both an entry point (router) and a
 * server. Requests arrive at random routers (Poisson); each router picks a server
 * with one of four policies; servers run `capacity` requests at once and queue the
 * rest FIFO; each server publishes an advert of its load every `advertPeriodMs`,
 * which reaches the routers after a network delay. The project's policy is the
 * REAL `rankCandidates` + `RoutingAccounting` from routing/ (this file only
 * builds their inputs); the baselines are the naive policies it must beat:
 *
 * - `least-loaded`: lowest (advert in-flight + queued) / capacity, ties at random;
 * - `round-robin`: each router cycles through the servers;
 * - `random`: uniform.
 *
 * All four see the same seeded arrivals and service times (separate PRNG forks).
 */
import { Engine } from './engine.js';
import { Prng } from '../base/prng.js';
import { SimnetError } from './errors.js';
import { rankCandidates } from '../routing/policy.js';
import { RoutingAccounting } from '../routing/accounting.js';
import type { AdvertLoad, Candidate } from '../routing/policy.js';

export type RoutingPolicyName = 'fednode' | 'least-loaded' | 'round-robin' | 'random';
export const ROUTING_POLICIES: readonly RoutingPolicyName[] = ['fednode', 'least-loaded', 'round-robin', 'random'];

export interface RoutingSimOptions {
  seed: number;
  /** Nodes (each routes and serves). @default 8 */
  nodes?: number;
  /**
   * Requests each node runs at once. A number: every node the same. 'mixed': drawn per
   * node from {1, 2, 4, 8} (a home lab mixes laptops, a gaming PC and a workstation).
   * @default 'mixed'
   */
  capacity?: number | 'mixed';
  /** Advert period: adverts are up to this stale (plus delay). @default 2000 */
  advertPeriodMs?: number;
  /** Median advert / completion-notice network delay. @default 5 */
  networkMedianMs?: number;
  /** Mean of the exponential service time. @default 1000 */
  meanServiceMs?: number;
  /** Offered load as a fraction of total capacity. @default 0.85 */
  utilisation?: number;
  /** Simulated time of arrivals. @default 120000 */
  durationMs?: number;
  /** Balance sample period. @default 50 */
  sampleEveryMs?: number;
}

export interface RoutingPolicyResult {
  policy: RoutingPolicyName;
  requests: number;
  /**
   * Time average (over samples with work) of max / mean of server occupancy, where
   * occupancy = (running + queued) / capacity (raw in-flight when capacities are equal).
   */
  maxOverMeanInFlight: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
}

export interface RoutingComparison {
  seed: number;
  results: RoutingPolicyResult[];
  /** baseline / fednode for p99 latency and max/mean in-flight (> 1 means fednode is better). */
  ratios: Record<Exclude<RoutingPolicyName, 'fednode'>, { p99: number; maxOverMean: number }>;
}

/** Bound on requests per policy run: memory and time of a run stay bounded. */
export const ROUTING_SIM_MAX_REQUESTS = 1_000_000;

type Ev =
  | { k: 'arrival' }
  | { k: 'reach'; server: number; req: number; serviceUs: number }
  | { k: 'finish'; server: number; req: number }
  | { k: 'notice'; router: number; server: number }
  | { k: 'advert-make'; server: number }
  | { k: 'advert-arrive'; router: number; server: number; inFlight: number; queued: number; seq: number; madeAtUs: number }
  | { k: 'sample' };

interface Server {
  running: number;
  queue: { req: number; serviceUs: number }[];
  seq: number;
}

export function runRoutingPolicy(policy: RoutingPolicyName, o: RoutingSimOptions): RoutingPolicyResult {
  const n = o.nodes ?? 8;
  const capacitySpec = o.capacity ?? 'mixed';
  const advertPeriodUs = (o.advertPeriodMs ?? 2000) * 1000;
  const netMedianUs = (o.networkMedianMs ?? 5) * 1000;
  const meanServiceUs = (o.meanServiceMs ?? 1000) * 1000;
  const utilisation = o.utilisation ?? 0.85;
  const durationUs = (o.durationMs ?? 120_000) * 1000;
  const sampleUs = (o.sampleEveryMs ?? 50) * 1000;
  if (!Number.isInteger(n) || n < 2 || n > 1000) throw new SimnetError('ERR_SIMNET_OPTIONS', `routing sim nodes must be 2..1000: ${n}`);
  if (!(utilisation > 0 && utilisation < 2)) throw new SimnetError('ERR_SIMNET_OPTIONS', `utilisation must be in (0, 2): ${utilisation}`);

  const root = new Prng(o.seed);
  const capRng = root.fork('routing/capacity');
  const caps: number[] = Array.from({ length: n }, () => (capacitySpec === 'mixed' ? capRng.pick([1, 2, 4, 8]) : capacitySpec));
  if (caps.some((c) => !Number.isInteger(c) || c < 1)) throw new SimnetError('ERR_SIMNET_OPTIONS', `capacity must be a positive integer or 'mixed'`);
  const totalCapacity = caps.reduce((a, b) => a + b, 0);
  const arrivals = root.fork('routing/arrivals');
  const service = root.fork('routing/service');
  const net = root.fork('routing/net');
  const choice = root.fork(`routing/choice/${policy}`);

  const engine = new Engine<Ev>();
  const servers: Server[] = Array.from({ length: n }, () => ({ running: 0, queue: [], seq: 0 }));
  const peerIds = Array.from({ length: n }, (_, i) => `node-${i.toString().padStart(3, '0')}`);
  // Each router's latest advert per server (as received) and its own accounting.
  const seen: ({ inFlight: number; queued: number; madeAtUs: number } | null)[][] = Array.from({ length: n }, () => new Array<null>(n).fill(null));
  const accounting = Array.from({ length: n }, () => new RoutingAccounting());
  const rr = new Array<number>(n).fill(0);
  const startUs = new Map<number, number>();
  const routerOf = new Map<number, number>();
  const latenciesMs: number[] = [];
  let requests = 0;
  let ratioSum = 0;
  let ratioSamples = 0;

  const arrivalRatePerUs = (utilisation * totalCapacity) / meanServiceUs;
  const delay = (): number => Math.round(net.logNormal(netMedianUs, 0.5));

  const pick = (router: number, nowUs: number, req: number): number => {
    switch (policy) {
      case 'random':
        return choice.int(n);
      case 'round-robin': {
        const s = (rr[router] ?? 0) % n;
        rr[router] = s + 1;
        return s;
      }
      case 'least-loaded': {
        let best: number[] = [];
        let bestLoad = Infinity;
        for (let s = 0; s < n; s++) {
          const a = seen[router]?.[s] ?? null;
          const load = a === null ? 0 : (a.inFlight + a.queued) / (caps[s] as number);
          if (load < bestLoad) {
            bestLoad = load;
            best = [s];
          } else if (load === bestLoad) best.push(s);
        }
        return choice.pick(best);
      }
      case 'fednode': {
        const candidates: Candidate[] = peerIds.map((peerId, s) => {
          const a = seen[router]?.[s] ?? null;
          const advert: AdvertLoad | null =
            a === null
              ? null
              : { inFlight: a.inFlight, queued: a.queued, capacity: caps[s] as number, gpuTempC: null, gpuUtilPct: null, powerSource: 'ac', batteryPct: null, profile: 'balanced', ageMs: (nowUs - a.madeAtUs) / 1000 };
          return { peerId, isLocal: s === router, models: ['m'], advert };
        });
        const ranked = rankCandidates({ model: 'm', candidates, own: accounting[router] as RoutingAccounting, seed: req });
        const top = ranked.ranked[0];
        if (top === undefined) throw new SimnetError('ERR_SIMNET_CORE', 'routing policy returned no candidate');
        return peerIds.indexOf(top.peerId);
      }
    }
  };

  const startOn = (s: number, req: number, serviceUs: number): void => {
    const sv = servers[s] as Server;
    if (sv.running < (caps[s] as number)) {
      sv.running++;
      engine.after(serviceUs, { k: 'finish', server: s, req });
    } else sv.queue.push({ req, serviceUs });
  };

  engine.at(Math.round(-Math.log(1 - arrivals.float()) / arrivalRatePerUs), { k: 'arrival' });
  for (let s = 0; s < n; s++) engine.at(net.int(advertPeriodUs), { k: 'advert-make', server: s });
  engine.at(sampleUs, { k: 'sample' });

  engine.run(durationUs + 600_000_000, (ev, nowUs) => {
    switch (ev.k) {
      case 'arrival': {
        if (nowUs > durationUs || requests >= ROUTING_SIM_MAX_REQUESTS) return;
        const req = requests++;
        const router = arrivals.int(n);
        const serviceUs = Math.max(1000, Math.round(-Math.log(1 - service.float()) * meanServiceUs));
        const s = pick(router, nowUs, req);
        accounting[router]?.onSent(peerIds[s] as string);
        startUs.set(req, nowUs);
        routerOf.set(req, router);
        // The request reaches the server after one network delay (zero when local).
        if (s === router) startOn(s, req, serviceUs);
        else engine.after(delay(), { k: 'reach', server: s, req, serviceUs });
        engine.after(Math.round(-Math.log(1 - arrivals.float()) / arrivalRatePerUs), { k: 'arrival' });
        return;
      }
      case 'reach':
        startOn(ev.server, ev.req, ev.serviceUs);
        return;
      case 'finish': {
        const sv = servers[ev.server] as Server;
        sv.running--;
        const next = sv.queue.shift();
        if (next !== undefined) {
          sv.running++;
          engine.after(next.serviceUs, { k: 'finish', server: ev.server, req: next.req });
        }
        const router = routerOf.get(ev.req) ?? 0;
        latenciesMs.push((nowUs - (startUs.get(ev.req) ?? nowUs)) / 1000);
        startUs.delete(ev.req);
        routerOf.delete(ev.req);
        engine.after(router === ev.server ? 0 : delay(), { k: 'notice', router, server: ev.server });
        return;
      }
      case 'notice':
        accounting[ev.router]?.onFinished(peerIds[ev.server] as string);
        return;
      case 'advert-make': {
        const sv = servers[ev.server] as Server;
        sv.seq++;
        for (let r = 0; r < n; r++) {
          engine.after(r === ev.server ? 0 : delay(), { k: 'advert-arrive', router: r, server: ev.server, inFlight: sv.running, queued: sv.queue.length, seq: sv.seq, madeAtUs: nowUs });
        }
        if (nowUs < durationUs) engine.after(advertPeriodUs, { k: 'advert-make', server: ev.server });
        return;
      }
      case 'advert-arrive': {
        const row = seen[ev.router] as ({ inFlight: number; queued: number; madeAtUs: number } | null)[];
        const prev = row[ev.server] ?? null;
        if (prev !== null && prev.madeAtUs >= ev.madeAtUs) return; // reordered older advert
        row[ev.server] = { inFlight: ev.inFlight, queued: ev.queued, madeAtUs: ev.madeAtUs };
        accounting[ev.router]?.onAdvert(peerIds[ev.server] as string, ev.seq);
        return;
      }
      case 'sample': {
        let max = 0;
        let sum = 0;
        for (let i = 0; i < n; i++) {
          const sv = servers[i] as Server;
          const load = (sv.running + sv.queue.length) / (caps[i] as number);
          sum += load;
          if (load > max) max = load;
        }
        if (sum > 0) {
          ratioSum += max / (sum / n);
          ratioSamples++;
        }
        if (nowUs < durationUs) engine.after(sampleUs, { k: 'sample' });
        return;
      }
    }
  });
  latenciesMs.sort((a, b) => a - b);
  return {
    policy,
    requests,
    maxOverMeanInFlight: ratioSamples === 0 ? 1 : ratioSum / ratioSamples,
    p50LatencyMs: quantile(latenciesMs, 0.5),
    p99LatencyMs: quantile(latenciesMs, 0.99),
  };
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** Runs all four policies on the same seed and reports baseline / fednode ratios. */
export function runRoutingComparison(o: RoutingSimOptions): RoutingComparison {
  const results = ROUTING_POLICIES.map((p) => runRoutingPolicy(p, o));
  const mine = results[0] as RoutingPolicyResult;
  const ratio = (p: RoutingPolicyName): { p99: number; maxOverMean: number } => {
    const r = results.find((x) => x.policy === p) as RoutingPolicyResult;
    return { p99: r.p99LatencyMs / Math.max(1e-9, mine.p99LatencyMs), maxOverMean: r.maxOverMeanInFlight / Math.max(1e-9, mine.maxOverMeanInFlight) };
  };
  return { seed: o.seed, results, ratios: { 'least-loaded': ratio('least-loaded'), 'round-robin': ratio('round-robin'), random: ratio('random') } };
}
