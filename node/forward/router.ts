/**
 * The node's inference dispatcher: resolves the requested model through the aliases of the
 * policy in force, ranks candidates with the pure policy (routing/) under the policy's
 * parameters, runs the request locally or forwards it, fails over before the first token
 * (at most `maxRetries` more candidates), and keeps the routing accounting exact (onSent /
 * onFinished exactly once per attempt).
 *
 * Model resolution is here, not in the HTTP layer, so every inference endpoint that routes
 * through `plan()` (chat today; completions, embeddings, responses, Ollama's /api/* as they
 * are added) resolves aliases the same way. The node itself is a candidate built from its own
 * readings through the same conversion as a remote advert (candidate.ts).
 */
import { rankCandidates, tieHash } from '../../routing/policy.js';
import type { Candidate, RankResult, RankedCandidate } from '../../routing/policy.js';
import { DEFAULT_ROUTE_WEIGHTS } from '../../routing/policy.js';
import { describeSource, policyInForce, resolveModel } from '../../routing/in-force.js';
import type { PolicyInForce } from '../../routing/in-force.js';
import { RoutingAccounting } from '../../routing/accounting.js';
import type { AdvertBody } from '../adverts/advert.js';
import type { BackendSet } from '../backends/index.js';
import { BackendError } from '../backends/types.js';
import type { ChatChunk, ChatRequest } from '../backends/types.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { advertLoadOf } from './candidate.js';
import { InferError } from './errors.js';
import type { ForwardClient, ServedChunk } from './protocol.js';

export type RoutedEvent = { type: 'start'; servedBy: string; attempts: number } | ServedChunk;

export interface ModelEntry {
  id: string;
  /** Peer ids of live members (and this node) serving it (for an alias: serving the model it points to). */
  servedBy: string[];
  simulated: boolean;
  /** Set for a decided alias (model.alias): the model it resolves to. */
  aliasOf?: string;
}

/** One routing decision, kept in a bounded ring for the dashboard and `fednode route`. */
export interface RoutingDecision {
  atMs: number;
  /** The model the caller asked for (an alias, or the model itself). */
  requested: string;
  model: string;
  /** Who served it; null when every attempt failed. */
  chosen: string | null;
  /** The next candidate in the ranking at decision time, null when there was none. */
  runnerUp: string | null;
  attempts: number;
  reason: string;
}

/** What `plan` decided: the model after alias resolution and the ranking under the policy in force. */
export interface RoutePlan {
  requested: string;
  model: string;
  /** Aliases followed, in order (empty when `requested` is no alias). */
  via: readonly string[];
  policy: PolicyInForce;
  ranking: RankResult;
}

/** Recent decisions kept: enough for a screen of the dashboard (#17); 64 x ~200 B is nothing to hold. */
export const RECENT_DECISIONS_MAX = 64;

const DEFAULT_POLICY: PolicyInForce = policyInForce(
  { height: 0, routePolicy: { weights: DEFAULT_ROUTE_WEIGHTS, batteryFloorPct: 20, temperatureCeilingC: 85 }, routePolicyHeight: 0, aliases: [] },
  { batteryFloorPct: 20, tempCeilingC: 85 },
);

export interface InferenceRouterOptions {
  localPeerId: string;
  /** This node's backends; null = routes only. */
  backends: BackendSet | null;
  /** Remote live members with their models, latest advert load and RTT (from the peer table); self excluded. */
  peers: () => readonly Candidate[];
  /**
   * This node's own readings as its advert body (power source, battery, GPUs, profile, energy):
   * the local candidate is built from them exactly as a remote one from its advert. null (or absent)
   * until the first reading: the local node then ranks on its own counters with unknown power.
   */
  selfReadings?: () => AdvertBody | null;
  /** null = no forwarding (single node). */
  forward: ForwardClient | null;
  accounting?: RoutingAccounting;
  /** The policy in force, read at every decision (the runtime recomputes it when a height is decided). @default built-in defaults */
  policy?: () => PolicyInForce;
  /** Extra candidates tried after the first fails before its first token. @default 2 */
  maxRetries?: number;
  /** Requests this node keeps outstanding per peer (including itself). @default 32 */
  maxPerPeer?: number;
  /** Requests this node routes at once (its bounded queue); beyond: ERR_BUSY (429). @default 256 */
  maxInFlight?: number;
  /** Local backends' concurrency as advertised to the policy: a number, or read per decision (the runtime passes the backends' own reports, node/backends/capacity.ts). @default 4 */
  localCapacity?: number | (() => number);
  /** Deadline of a request when the caller gives none. @default 600000 (10 min: long generations) */
  defaultDeadlineMs?: number;
  now?: () => number;
  logger?: Logger;
}

export class InferenceRouter {
  readonly localPeerId: string;
  readonly accounting: RoutingAccounting;
  private readonly opts: InferenceRouterOptions;
  private readonly maxRetries: number;
  private readonly maxPerPeer: number;
  private readonly maxInFlight: number;
  private readonly localCapacity: () => number;
  private readonly now: () => number;
  private readonly log: Logger;
  private inFlight = 0;
  /** Requests running on the local backends (from this router and forwarded in). */
  private localRunning = 0;
  private localAdvertSeq = 0;
  private tokens = 0;
  private readonly decisions: RoutingDecision[] = [];

  constructor(opts: InferenceRouterOptions) {
    this.opts = opts;
    this.localPeerId = opts.localPeerId;
    this.accounting = opts.accounting ?? new RoutingAccounting();
    this.maxRetries = opts.maxRetries ?? 2;
    this.maxPerPeer = opts.maxPerPeer ?? 32;
    this.maxInFlight = opts.maxInFlight ?? 256;
    const cap = opts.localCapacity ?? 4;
    this.localCapacity = typeof cap === 'number' ? () => cap : cap;
    this.now = opts.now ?? Date.now;
    this.log = opts.logger ?? nullLogger;
  }

  /** For adverts: load of this node's own backends. */
  localLoad(): { inFlight: number; queued: number; capacity: number } {
    const capacity = this.localCapacity();
    return { inFlight: Math.min(this.localRunning, capacity), queued: Math.max(0, this.localRunning - capacity), capacity };
  }

  /** Tokens the local backends generated since start (streamed deltas, corrected by each reply's usage): the energy meter's input. */
  get tokensGenerated(): number {
    return this.tokens;
  }

  /** Requests currently being routed by this node. */
  get routing(): number {
    return this.inFlight;
  }

  /** The policy in force now. */
  policy(): PolicyInForce {
    return this.opts.policy?.() ?? DEFAULT_POLICY;
  }

  /** Recent routing decisions, oldest first (at most RECENT_DECISIONS_MAX). */
  recentDecisions(): readonly RoutingDecision[] {
    return [...this.decisions];
  }

  /** Every model this node or a live member serves, and each decided alias whose model is served. */
  models(): ModelEntry[] {
    const map = new Map<string, ModelEntry>();
    const add = (id: string, peer: string, simulated: boolean): void => {
      const e = map.get(id) ?? { id, servedBy: [], simulated };
      if (!e.servedBy.includes(peer)) e.servedBy.push(peer);
      e.simulated = e.simulated && simulated;
      map.set(id, e);
    };
    for (const m of this.opts.backends?.models() ?? []) add(m.id, this.localPeerId, m.simulated);
    for (const c of this.opts.peers()) for (const id of c.models) add(id, c.peerId, /simulated/i.test(id)); // remote: the simulated backend's models are named so
    for (const [alias, target] of this.policy().aliases) {
      const served = target.ok ? map.get(target.model) : undefined;
      if (target.ok && served !== undefined && served.aliasOf === undefined) map.set(alias, { id: alias, servedBy: [...served.servedBy], simulated: served.simulated, aliasOf: target.model });
    }
    return [...map.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private localCandidate(): Candidate | null {
    const local = this.opts.backends;
    if (local === null || local.modelIds().length === 0) return null;
    // Fresh local view: our own counters, age 0; the snapshot makes "others" = requests forwarded in.
    this.accounting.onAdvert(this.localPeerId, ++this.localAdvertSeq);
    const l = this.localLoad();
    const body = this.opts.selfReadings?.() ?? null;
    const advert =
      body === null
        ? { ...l, gpuTempC: null, gpuUtilPct: null, powerSource: 'unknown' as const, batteryPct: null, profile: 'balanced' as const, joulesPerToken: null, ageMs: 0 }
        : advertLoadOf({ ...body, ...l }, 0);
    return { peerId: this.localPeerId, isLocal: true, models: local.modelIds(), advert, rttMs: 0 };
  }

  private candidates(): Candidate[] {
    const local = this.localCandidate();
    const out: Candidate[] = local === null ? [] : [local];
    for (const c of this.opts.peers()) if (c.peerId !== this.localPeerId) out.push({ ...c, isLocal: false });
    return out;
  }

  /**
   * Resolve `requested` through the aliases in force and rank the candidates for the model it
   * names. Throws ERR_MODEL_NOT_FOUND for an alias that leads nowhere (a cycle from an old log).
   */
  plan(requested: string, seed: number): RoutePlan {
    const policy = this.policy();
    const target = resolveModel(policy, requested);
    if (!target.ok) throw new InferError('ERR_MODEL_NOT_FOUND', `model '${requested}' is an alias that cannot be resolved: ${target.reason}`, { model: requested });
    const ranking = rankCandidates({ model: target.model, candidates: this.candidates(), own: this.accounting, params: policy.params, seed });
    return { requested, model: target.model, via: target.via, policy, ranking };
  }

  /** Ranking for a model (exposed for status/debugging). */
  rank(model: string, seed: number): RankedCandidate[] {
    return this.plan(model, seed).ranking.ranked;
  }

  /** Runs on this node's backends only (used for local execution and by the forward server). */
  async *executeLocal(req: ChatRequest, signal: AbortSignal): AsyncIterable<ChatChunk> {
    const b = this.opts.backends?.backendFor(req.model) ?? null;
    if (b === null) throw new InferError('ERR_MODEL_NOT_FOUND', `model ${req.model} is not served by this node`, { model: req.model });
    this.localRunning++;
    let streamed = 0;
    try {
      for await (const c of b.chat(req, signal)) {
        if (c.type === 'delta') {
          streamed++;
          this.tokens++;
        } else if (c.usage.completionTokens > streamed) this.tokens += c.usage.completionTokens - streamed; // deltas can carry several tokens
        yield c;
      }
    } finally {
      this.localRunning--;
    }
  }

  private record(d: Omit<RoutingDecision, 'atMs'>): void {
    this.decisions.push({ atMs: this.now(), ...d });
    if (this.decisions.length > RECENT_DECISIONS_MAX) this.decisions.shift();
  }

  /**
   * Routes one request. Yields 'start' (once a candidate produced its first chunk),
   * deltas, then a 'done' with servedBy. Throws InferError: ERR_MODEL_NOT_FOUND,
   * ERR_BUSY, ERR_ALL_CANDIDATES_FAILED (before any output), ERR_UPSTREAM_MID_STREAM
   * (after 'start'), ERR_ABORTED.
   */
  async *chat(request: ChatRequest, call: { requestId: string; signal?: AbortSignal; deadlineMs?: number }): AsyncIterable<RoutedEvent> {
    const signal = call.signal ?? new AbortController().signal;
    const plan = this.plan(request.model, tieHash(0, call.requestId));
    const req: ChatRequest = { ...request, model: plan.model };
    const ranked = plan.ranking.ranked;
    if (ranked.length === 0) {
      const asked = plan.via.length > 0 ? `'${plan.requested}' (alias of '${plan.model}')` : `'${plan.model}'`;
      throw new InferError('ERR_MODEL_NOT_FOUND', `model ${asked} is not served by any live member`, { model: plan.requested, available: this.models().map((m) => m.id) });
    }
    if (this.inFlight >= this.maxInFlight) throw new InferError('ERR_BUSY', `this node is routing ${this.inFlight} requests (max ${this.maxInFlight})`, { retryAfterS: 1 });
    const usable = ranked.filter((c) => this.accounting.get(c.peerId).outstanding < this.maxPerPeer && (c.isLocal || this.opts.forward !== null));
    if (usable.length === 0) throw new InferError('ERR_BUSY', `every member serving '${req.model}' has ${this.maxPerPeer} requests from this node`, { retryAfterS: 1 });
    const deadlineMs = call.deadlineMs ?? this.now() + (this.opts.defaultDeadlineMs ?? 600_000);
    const decision = { requested: plan.requested, model: plan.model, runnerUp: usable[1]?.peerId ?? null, reason: decisionReason(plan, usable[0] as RankedCandidate) };
    this.inFlight++;
    try {
      const failures: { peerId: string; error: string }[] = [];
      const attempts = usable.slice(0, 1 + this.maxRetries);
      for (let i = 0; i < attempts.length; i++) {
        const cand = attempts[i]!;
        if (signal.aborted) throw new InferError('ERR_ABORTED', 'request aborted', { model: req.model });
        this.accounting.onSent(cand.peerId);
        let started = false;
        try {
          const source: AsyncIterable<ServedChunk> = cand.isLocal ? this.localServed(req, signal) : this.opts.forward!.chat(cand.peerId, req, { requestId: call.requestId, deadlineMs, signal });
          for await (const c of source) {
            if (!started) {
              started = true;
              this.record({ ...decision, chosen: cand.peerId, attempts: i + 1, reason: i === 0 ? decision.reason : `failover after ${failures.map((f) => f.peerId).join(', ')} failed; ${decision.reason}` });
              yield { type: 'start', servedBy: c.type === 'done' ? c.servedBy : cand.peerId, attempts: i + 1 };
            }
            yield c;
          }
          if (!started) throw new InferError('ERR_FORWARD_PROTOCOL', `${cand.peerId} produced nothing`, { peerId: cand.peerId });
          return;
        } catch (err) {
          if (signal.aborted) throw new InferError('ERR_ABORTED', 'request aborted', { model: req.model }, { cause: err });
          const msg = err instanceof Error ? err.message : String(err);
          if (started) throw new InferError('ERR_UPSTREAM_MID_STREAM', `serving node ${cand.peerId} failed after the first token: ${msg}`, { peerId: cand.peerId }, { cause: err });
          // Not a model the backend has after all, busy, dead peer, refused: try the next candidate.
          failures.push({ peerId: cand.peerId, error: msg });
          this.log.warn('candidate failed before first token, failing over', { peerId: cand.peerId, error: msg, attempt: i + 1 });
        } finally {
          this.accounting.onFinished(cand.peerId);
        }
      }
      this.record({ ...decision, chosen: null, attempts: attempts.length, reason: `every attempt failed: ${failures.map((f) => f.peerId).join(', ')}` });
      const allBusy = failures.length > 0 && failures.every((f) => /busy/i.test(f.error));
      throw new InferError(allBusy ? 'ERR_BUSY' : 'ERR_ALL_CANDIDATES_FAILED', `no candidate could serve '${req.model}': ${failures.map((f) => `${f.peerId}: ${f.error}`).join('; ')}`, {
        model: req.model,
        failures,
        retryAfterS: 1,
      });
    } finally {
      this.inFlight--;
    }
  }

  private async *localServed(req: ChatRequest, signal: AbortSignal): AsyncIterable<ServedChunk> {
    try {
      for await (const c of this.executeLocal(req, signal)) {
        yield c.type === 'done' ? { ...c, servedBy: this.localPeerId } : c;
      }
    } catch (err) {
      if (err instanceof BackendError && err.code === 'ERR_BACKEND_BUSY') throw new InferError('ERR_BUSY', `local backend busy: ${err.message}`, { peerId: this.localPeerId }, { cause: err });
      throw err;
    }
  }
}

/** One line on why the first candidate leads: its tier and score terms, and the policy's source. */
function decisionReason(plan: RoutePlan, first: RankedCandidate): string {
  const t = first.terms;
  const terms = `load ${t.load.toFixed(2)} latency ${t.latency.toFixed(2)} energy ${t.energy.toFixed(2)} heat ${t.heat.toFixed(2)} battery ${t.battery.toFixed(2)}`;
  const tier = first.tier === 'fallback' ? `fallback only (${first.reasons.join('; ')})` : 'preferred';
  return `${tier}, score ${first.score.toFixed(3)} (${terms}); ${describeSource(plan.policy.source)}`;
}
