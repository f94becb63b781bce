/**
 * The routing simulator (the project's one: routing/simulate.ts was merged into it). Every
 * node is an entry point (router) and a server, as in a real cluster: requests arrive at
 * random routers (Poisson, or a burst); each router picks a server with one of four
 * policies; a server runs `capacity` requests at once and queues the rest FIFO; each server
 * publishes an advert of its load every `advertPeriodMs`, which reaches the routers after the
 * link's delay. The project's policy is the REAL `rankCandidates` + `RoutingAccounting` from
 * routing/ (this file only builds their inputs, the node itself included as the local
 * candidate); the baselines are the naive policies it must beat:
 *
 * - `least-loaded`: lowest (advert in-flight + queued) / capacity, ties at random;
 * - `round-robin`: each router cycles through the servers;
 * - `random`: uniform.
 *
 * Modelled for the energy and latency terms: each node has a GPU draw (W) and a decode rate
 * (tokens/s at full capacity), so a request of T tokens costs T * W / (tokens/s) joules and runs
 * T / (per-slot tokens/s); each node has an access link, RTT(a, b) = linkMs[a] + linkMs[b],
 * paid once per forwarded request (there and back) and seen by the policy as its measured RTT.
 *
 * All four policies see the same seeded arrivals, request sizes and link jitter (separate PRNG
 * forks). Pure: no clock, no I/O; the same seed gives the same result.
 */
import { Engine } from './engine.js';
import { Prng } from '../base/prng.js';
import { SimnetError } from './errors.js';
import { rankCandidates, tieHash } from '../routing/policy.js';
import type { AdvertLoad, Candidate, PolicyParamsInput } from '../routing/policy.js';
import { RoutingAccounting } from '../routing/accounting.js';

export type RoutingPolicyName = 'fednode' | 'least-loaded' | 'round-robin' | 'random';
export const ROUTING_POLICIES: readonly RoutingPolicyName[] = ['fednode', 'least-loaded', 'round-robin', 'random'];

export interface SimNodeSpec {
  /** Requests run at once. */
  capacity: number;
  /** GPU draw while serving, W. @default 50 per slot (200 W for 4 slots: a consumer GPU under inference load; every default node 1 J/token) */
  watts?: number;
  /** Decode rate over all slots, tokens/s. @default 50 per slot (a 7-8B model per stream on a consumer GPU) */
  tokensPerS?: number;
  /** This node's share of every RTT it is part of, ms: RTT(a, b) = linkMs[a] + linkMs[b]. @default 0.5 (a LAN hop) */
  linkMs?: number;
}

export interface RoutingSimOptions {
  seed: number;
  /**
   * The nodes: a count (capacities from `capacity`, default draw and speed) or one spec per node.
   * @default 8
   */
  nodes?: number | readonly SimNodeSpec[];
  /**
   * With `nodes` a count: requests each node runs at once. A number: every node the same.
   * 'mixed': drawn per node from {1, 2, 4, 8} (a home lab mixes laptops, a gaming PC and a
   * workstation). @default 'mixed'
   */
  capacity?: number | 'mixed';
  /** Advert period: adverts are up to this stale (plus delay). @default 2000 */
  advertPeriodMs?: number;
  /** Median of the log-normal jitter added to every one-way link delay. @default 2.5 (a loaded home LAN) */
  networkMedianMs?: number;
  /** Mean service time of a request on a default node (its size in tokens follows from it). @default 1000 */
  meanServiceMs?: number;
  /** Offered load as a fraction of total capacity. @default 0.85 */
  utilisation?: number;
  /** Simulated time of arrivals. @default 120000 */
  durationMs?: number;
  /** When set: instead of Poisson arrivals, this many requests arrive within burstWindowMs. */
  burst?: number | null;
  /** @default 1000 */
  burstWindowMs?: number;
  /** Balance sample period. @default 50 */
  sampleEveryMs?: number;
  /** Params of the fednode policy (its weights, as a decided route.policy would set them). */
  params?: PolicyParamsInput;
}

export interface RoutingPolicyResult {
  policy: RoutingPolicyName;
  requests: number;
  completed: number;
  /**
   * Time average (over samples with work) of max / mean of server occupancy, where
   * occupancy = (running + queued) / capacity (raw in-flight when capacities are equal).
   */
  maxOverMeanInFlight: number;
  /** max/mean occupancy at the end of the arrival phase (burst end / duration): the balance when most work is queued. */
  atHorizonMaxOverMean: number;
  /** Highest in-flight (running + queued) seen on any server. */
  peakInFlight: number;
  /** Latency seen by the client at its entry node: link there, queue, service, link back. */
  p50LatencyMs: number;
  p99LatencyMs: number;
  meanLatencyMs: number;
  /** Joules over tokens of every completed request. */
  energyPerTokenJ: number;
  /** Per node: share of all requests it served. */
  servedShare: number[];
  /** Per node: share of the requests forwarded by OTHER entry nodes that went to it. */
  forwardedShare: number[];
}

export interface RoutingComparison {
  seed: number;
  results: RoutingPolicyResult[];
  /** baseline / fednode for p99 latency and max/mean in-flight (> 1 means fednode is better). */
  ratios: Record<Exclude<RoutingPolicyName, 'fednode'>, { p99: number; maxOverMean: number; energyPerToken: number }>;
}

/** Bound on requests per policy run: memory and time of a run stay bounded. */
export const ROUTING_SIM_MAX_REQUESTS = 1_000_000;
/** Bound on nodes: the policy ranks every node per request (O(n) each). */
export const ROUTING_SIM_MAX_NODES = 1000;

const SLOT_TOKENS_PER_S_DEFAULT = 50;
const WATTS_PER_SLOT_DEFAULT = 50;
const LINK_MS_DEFAULT = 0.5;

type Ev =
  | { k: 'arrival' }
  | { k: 'reach'; server: number; req: number }
  | { k: 'finish'; server: number; req: number }
  | { k: 'notice'; router: number; server: number }
  | { k: 'advert-make'; server: number }
  | { k: 'advert-arrive'; router: number; server: number; inFlight: number; queued: number; seq: number; madeAtUs: number }
  | { k: 'sample' };

interface SimNode {
  capacity: number;
  watts: number;
  tokensPerS: number;
  linkMs: number;
  running: number;
  queue: number[];
  seq: number;
}

interface Seen {
  inFlight: number;
  queued: number;
  madeAtUs: number;
}

interface Req {
  router: number;
  server: number;
  tokens: number;
  startUs: number;
}

function nodesOf(o: RoutingSimOptions, root: Prng): SimNode[] {
  const spec = o.nodes ?? 8;
  const specs: SimNodeSpec[] = typeof spec === 'number'
    ? (() => {
        const capRng = root.fork('routing/capacity');
        const capacity = o.capacity ?? 'mixed';
        return Array.from({ length: spec }, () => ({ capacity: capacity === 'mixed' ? capRng.pick([1, 2, 4, 8]) : capacity }));
      })()
    : [...spec];
  if (specs.length < 2 || specs.length > ROUTING_SIM_MAX_NODES) throw new SimnetError('ERR_SIMNET_OPTIONS', `routing sim nodes must be 2..${ROUTING_SIM_MAX_NODES}: ${specs.length}`);
  return specs.map((s, i) => {
    const n: SimNode = { capacity: s.capacity, watts: s.watts ?? WATTS_PER_SLOT_DEFAULT * s.capacity, tokensPerS: s.tokensPerS ?? SLOT_TOKENS_PER_S_DEFAULT * s.capacity, linkMs: s.linkMs ?? LINK_MS_DEFAULT, running: 0, queue: [], seq: 0 };
    if (!Number.isInteger(n.capacity) || n.capacity < 1) throw new SimnetError('ERR_SIMNET_OPTIONS', `node ${i}: capacity must be a positive integer or 'mixed'`);
    if (!(n.watts > 0 && n.tokensPerS > 0 && n.linkMs >= 0)) throw new SimnetError('ERR_SIMNET_OPTIONS', `node ${i}: watts and tokensPerS must be > 0, linkMs >= 0`);
    return n;
  });
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

/** One policy's run; the class only splits the event handling into readable parts. */
class RoutingSim {
  private readonly engine = new Engine<Ev>();
  private readonly nodes: SimNode[];
  private readonly n: number;
  private readonly peerIds: string[];
  private readonly seen: (Seen | null)[][];
  private readonly accounting: RoutingAccounting[];
  private readonly rr: number[];
  private readonly reqs = new Map<number, Req>();
  private readonly latenciesMs: number[] = [];
  private readonly arrivals: Prng;
  private readonly sizes: Prng;
  private readonly net: Prng;
  private readonly choice: Prng;
  private readonly meanTokens: number;
  private readonly arrivalRatePerUs: number;
  private readonly durationUs: number;
  private readonly horizonUs: number;
  private readonly served: number[];
  private readonly forwarded: number[];
  private requests = 0;
  private completed = 0;
  private energyJ = 0;
  private tokensDone = 0;
  private ratioSum = 0;
  private ratioSamples = 0;
  private peak = 0;
  private atHorizon = 1;
  private horizonSampled = false;

  constructor(
    private readonly policy: RoutingPolicyName,
    private readonly o: RoutingSimOptions,
  ) {
    const root = new Prng(o.seed);
    this.nodes = nodesOf(o, root);
    this.n = this.nodes.length;
    const utilisation = o.utilisation ?? 0.85;
    if (!(utilisation > 0 && utilisation < 2)) throw new SimnetError('ERR_SIMNET_OPTIONS', `utilisation must be in (0, 2): ${utilisation}`);
    this.arrivals = root.fork('routing/arrivals');
    this.sizes = root.fork('routing/service');
    this.net = root.fork('routing/net');
    this.choice = root.fork(`routing/choice/${policy}`);
    this.peerIds = Array.from({ length: this.n }, (_, i) => `node-${i.toString().padStart(3, '0')}`);
    this.seen = Array.from({ length: this.n }, () => new Array<Seen | null>(this.n).fill(null));
    this.accounting = Array.from({ length: this.n }, () => new RoutingAccounting());
    this.rr = new Array<number>(this.n).fill(0);
    this.served = new Array<number>(this.n).fill(0);
    this.forwarded = new Array<number>(this.n).fill(0);
    this.meanTokens = ((o.meanServiceMs ?? 1000) / 1000) * SLOT_TOKENS_PER_S_DEFAULT;
    // Offered load = utilisation x what all slots can serve per second.
    const servicePerS = this.nodes.reduce((s, x) => s + x.tokensPerS, 0) / this.meanTokens;
    this.arrivalRatePerUs = (utilisation * servicePerS) / 1e6;
    this.durationUs = (o.durationMs ?? 120_000) * 1000;
    this.horizonUs = o.burst == null ? this.durationUs : (o.burstWindowMs ?? 1000) * 1000;
  }

  private rttMs(a: number, b: number): number {
    return a === b ? 0 : (this.nodes[a] as SimNode).linkMs + (this.nodes[b] as SimNode).linkMs;
  }

  /** One-way delay a -> b, µs: half the RTT plus log-normal jitter; 0 on the node itself. */
  private delayUs(a: number, b: number): number {
    if (a === b) return 0;
    return Math.round((this.rttMs(a, b) / 2) * 1000 + this.net.logNormal((this.o.networkMedianMs ?? 2.5) * 1000, 0.5));
  }

  private pick(router: number, nowUs: number, req: number): number {
    switch (this.policy) {
      case 'random':
        return this.choice.int(this.n);
      case 'round-robin': {
        const s = (this.rr[router] ?? 0) % this.n;
        this.rr[router] = s + 1;
        return s;
      }
      case 'least-loaded': {
        let best: number[] = [];
        let bestLoad = Infinity;
        for (let s = 0; s < this.n; s++) {
          const a = this.seen[router]?.[s] ?? null;
          const load = a === null ? 0 : (a.inFlight + a.queued) / (this.nodes[s] as SimNode).capacity;
          if (load < bestLoad) {
            bestLoad = load;
            best = [s];
          } else if (load === bestLoad) best.push(s);
        }
        return this.choice.pick(best);
      }
      case 'fednode':
        return this.pickFednode(router, nowUs, req);
    }
  }

  private pickFednode(router: number, nowUs: number, req: number): number {
    const median = this.o.networkMedianMs ?? 2.5;
    const candidates: Candidate[] = this.peerIds.map((peerId, s) => {
      const a = this.seen[router]?.[s] ?? null;
      const node = this.nodes[s] as SimNode;
      const advert: AdvertLoad | null =
        a === null
          ? null
          : { inFlight: a.inFlight, queued: a.queued, capacity: node.capacity, gpuTempC: null, gpuUtilPct: null, powerSource: 'ac', batteryPct: null, profile: 'balanced', joulesPerToken: node.watts / node.tokensPerS, ageMs: (nowUs - a.madeAtUs) / 1000 };
      // The measured RTT an EWMA of pings settles on: the link RTT plus the jitter both ways.
      return { peerId, isLocal: s === router, models: ['m'], advert, rttMs: s === router ? 0 : this.rttMs(router, s) + 2 * median };
    });
    const ranked = rankCandidates({ model: 'm', candidates, own: this.accounting[router] as RoutingAccounting, seed: tieHash(this.o.seed, String(req)), ...(this.o.params !== undefined ? { params: this.o.params } : {}) });
    const top = ranked.ranked[0];
    if (top === undefined) throw new SimnetError('ERR_SIMNET_CORE', 'routing policy returned no candidate');
    return this.peerIds.indexOf(top.peerId);
  }

  private startOn(s: number, req: number): void {
    const node = this.nodes[s] as SimNode;
    if (node.running < node.capacity) {
      node.running++;
      const r = this.reqs.get(req) as Req;
      this.engine.after(Math.max(1000, Math.round((r.tokens / (node.tokensPerS / node.capacity)) * 1e6)), { k: 'finish', server: s, req });
    } else node.queue.push(req);
  }

  private nextArrivalUs(): number {
    return Math.round(-Math.log(1 - this.arrivals.float()) / this.arrivalRatePerUs);
  }

  private onArrival(nowUs: number): void {
    const burst = this.o.burst ?? null;
    if ((burst === null && nowUs > this.durationUs) || this.requests >= ROUTING_SIM_MAX_REQUESTS) return;
    const req = this.requests++;
    const router = this.arrivals.int(this.n);
    const tokens = Math.max(1, -Math.log(1 - this.sizes.float()) * this.meanTokens);
    const s = this.pick(router, nowUs, req);
    this.accounting[router]?.onSent(this.peerIds[s] as string);
    this.reqs.set(req, { router, server: s, tokens, startUs: nowUs });
    this.served[s]!++;
    if (s !== router) this.forwarded[s]!++;
    if (s === router) this.startOn(s, req);
    else this.engine.after(this.delayUs(router, s), { k: 'reach', server: s, req });
    if (burst === null) this.engine.after(this.nextArrivalUs(), { k: 'arrival' });
  }

  private onFinish(server: number, req: number, nowUs: number): void {
    const node = this.nodes[server] as SimNode;
    node.running--;
    const next = node.queue.shift();
    if (next !== undefined) this.startOn(server, next);
    const r = this.reqs.get(req) as Req;
    this.reqs.delete(req);
    const back = this.delayUs(server, r.router);
    this.latenciesMs.push((nowUs + back - r.startUs) / 1000);
    this.completed++;
    this.tokensDone += r.tokens;
    this.energyJ += (r.tokens * node.watts) / node.tokensPerS;
    this.engine.after(back, { k: 'notice', router: r.router, server });
  }

  private onAdvertMake(server: number, nowUs: number): void {
    const node = this.nodes[server] as SimNode;
    node.seq++;
    for (let r = 0; r < this.n; r++) {
      this.engine.after(this.delayUs(server, r), { k: 'advert-arrive', router: r, server, inFlight: node.running, queued: node.queue.length, seq: node.seq, madeAtUs: nowUs });
    }
    if (nowUs < this.horizonUs || this.completed < this.requests) this.engine.after((this.o.advertPeriodMs ?? 2000) * 1000, { k: 'advert-make', server });
  }

  private onSample(nowUs: number): void {
    let max = 0;
    let sum = 0;
    for (const node of this.nodes) {
      const inFlight = node.running + node.queue.length;
      if (inFlight > this.peak) this.peak = inFlight;
      const load = inFlight / node.capacity;
      sum += load;
      if (load > max) max = load;
    }
    const ratio = sum > 0 ? max / (sum / this.n) : 1;
    if (!this.horizonSampled && nowUs >= this.horizonUs) {
      this.horizonSampled = true;
      this.atHorizon = ratio;
    }
    if (sum > 0) {
      this.ratioSum += ratio;
      this.ratioSamples++;
    }
    if (nowUs < this.horizonUs || this.completed < this.requests) this.engine.after((this.o.sampleEveryMs ?? 50) * 1000, { k: 'sample' });
  }

  private handle(ev: Ev, nowUs: number): void {
    switch (ev.k) {
      case 'arrival':
        return this.onArrival(nowUs);
      case 'reach':
        return this.startOn(ev.server, ev.req);
      case 'finish':
        return this.onFinish(ev.server, ev.req, nowUs);
      case 'notice':
        this.accounting[ev.router]?.onFinished(this.peerIds[ev.server] as string);
        return;
      case 'advert-make':
        return this.onAdvertMake(ev.server, nowUs);
      case 'advert-arrive': {
        const row = this.seen[ev.router] as (Seen | null)[];
        const prev = row[ev.server] ?? null;
        if (prev !== null && prev.madeAtUs >= ev.madeAtUs) return; // reordered older advert
        row[ev.server] = { inFlight: ev.inFlight, queued: ev.queued, madeAtUs: ev.madeAtUs };
        this.accounting[ev.router]?.onAdvert(this.peerIds[ev.server] as string, ev.seq);
        return;
      }
      case 'sample':
        return this.onSample(nowUs);
    }
  }

  run(): RoutingPolicyResult {
    const burst = this.o.burst ?? null;
    if (burst === null) this.engine.at(this.nextArrivalUs(), { k: 'arrival' });
    else {
      const windowUs = (this.o.burstWindowMs ?? 1000) * 1000;
      const times = Array.from({ length: Math.min(burst, ROUTING_SIM_MAX_REQUESTS) }, () => Math.round(this.arrivals.float() * windowUs));
      for (const t of times) this.engine.at(t, { k: 'arrival' });
    }
    // Servers advertised once before the run starts (empty), as a running cluster would have.
    for (let s = 0; s < this.n; s++) for (let r = 0; r < this.n; r++) (this.seen[r] as (Seen | null)[])[s] = { inFlight: 0, queued: 0, madeAtUs: 0 };
    for (let s = 0; s < this.n; s++) this.engine.at(this.net.int((this.o.advertPeriodMs ?? 2000) * 1000), { k: 'advert-make', server: s });
    this.engine.at(0, { k: 'sample' });
    this.engine.run(this.horizonUs + 3_600_000_000, (ev, nowUs) => this.handle(ev, nowUs));
    this.latenciesMs.sort((a, b) => a - b);
    const forwardedTotal = this.forwarded.reduce((a, b) => a + b, 0);
    return {
      policy: this.policy,
      requests: this.requests,
      completed: this.completed,
      maxOverMeanInFlight: this.ratioSamples === 0 ? 1 : this.ratioSum / this.ratioSamples,
      atHorizonMaxOverMean: this.atHorizon,
      peakInFlight: this.peak,
      p50LatencyMs: quantile(this.latenciesMs, 0.5),
      p99LatencyMs: quantile(this.latenciesMs, 0.99),
      meanLatencyMs: this.latenciesMs.length === 0 ? 0 : this.latenciesMs.reduce((a, b) => a + b, 0) / this.latenciesMs.length,
      energyPerTokenJ: this.tokensDone === 0 ? 0 : this.energyJ / this.tokensDone,
      servedShare: this.served.map((x) => (this.requests === 0 ? 0 : x / this.requests)),
      forwardedShare: this.forwarded.map((x) => (forwardedTotal === 0 ? 0 : x / forwardedTotal)),
    };
  }
}

export function runRoutingPolicy(policy: RoutingPolicyName, o: RoutingSimOptions): RoutingPolicyResult {
  return new RoutingSim(policy, o).run();
}

/** Runs all four policies on the same seed and reports baseline / fednode ratios. */
export function runRoutingComparison(o: RoutingSimOptions): RoutingComparison {
  const results = ROUTING_POLICIES.map((p) => runRoutingPolicy(p, o));
  const mine = results[0] as RoutingPolicyResult;
  const ratio = (p: RoutingPolicyName): { p99: number; maxOverMean: number; energyPerToken: number } => {
    const r = results.find((x) => x.policy === p) as RoutingPolicyResult;
    return {
      p99: r.p99LatencyMs / Math.max(1e-9, mine.p99LatencyMs),
      maxOverMean: r.maxOverMeanInFlight / Math.max(1e-9, mine.maxOverMeanInFlight),
      energyPerToken: r.energyPerTokenJ / Math.max(1e-9, mine.energyPerTokenJ),
    };
  };
  return { seed: o.seed, results, ratios: { 'least-loaded': ratio('least-loaded'), 'round-robin': ratio('round-robin'), random: ratio('random') } };
}
