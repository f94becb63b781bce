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
import type { Backend, ChatChunk, ChatRequest, CompletionRequest, EmbedRequest, EmbedResult } from '../backends/types.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { advertLoadOf } from './candidate.js';
import { WarnLimiter } from '../warn-limiter.js';
import type { WarningCount } from '../warn-limiter.js';
import { InferError, isClientFault, isUnsupported, toInferError } from './errors.js';
import type { ForwardClient, ServedChunk, ServedEmbedding } from './client.js';

export type RoutedEvent = { type: 'start'; servedBy: string; attempts: number } | ServedChunk;
/** Events of a routed embeddings request: 'start' then the result. */
export type RoutedEmbedEvent = { type: 'start'; servedBy: string; attempts: number } | ServedEmbedding;

export interface RouteCall {
  requestId: string;
  signal?: AbortSignal;
  deadlineMs?: number;
}

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
  /** Called when the local backends' running count changes (a local request starts or ends): the adverts' publisher collects only when poked (issue 15). */
  onLocalLoadChange?: () => void;
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
  /** Failover warnings, rate-limited (a dead peer under load would log every request). */
  private readonly warnings: WarnLimiter;

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
    this.warnings = new WarnLimiter(this.log, { now: this.now });
  }

  /** Rate-limited warnings by kind (metrics). */
  warningCounts(): Readonly<Record<string, WarningCount>> {
    return this.warnings.counts();
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

  private localBackend(model: string): Backend {
    const b = this.opts.backends?.backendFor(model) ?? null;
    if (b === null) throw new InferError('ERR_MODEL_NOT_FOUND', `model ${model} is not served by this node`, { model });
    return b;
  }

  /** Runs on this node's backends only (used for local execution and by the forward server). */
  executeLocal(req: ChatRequest, signal: AbortSignal): AsyncIterable<ChatChunk> {
    const b = this.localBackend(req.model);
    return this.countLocal(b.chat(req, signal));
  }

  /** Raw-prompt completion on this node's backends only. */
  executeLocalComplete(req: CompletionRequest, signal: AbortSignal): AsyncIterable<ChatChunk> {
    const b = this.localBackend(req.model);
    if (b.complete === undefined) throw new InferError('ERR_BACKEND_UNSUPPORTED', `backend ${b.id} (${b.kind}) has no raw-prompt completions`, { operation: 'completions', backend: b.id });
    return this.countLocal(b.complete(req, signal));
  }

  /** Embeddings on this node's backends only. */
  async executeLocalEmbed(req: EmbedRequest, signal: AbortSignal): Promise<EmbedResult> {
    const b = this.localBackend(req.model);
    if (b.embed === undefined) throw new InferError('ERR_BACKEND_UNSUPPORTED', `backend ${b.id} (${b.kind}) has no embeddings`, { operation: 'embeddings', backend: b.id });
    this.setLocalRunning(+1);
    try {
      return await b.embed(req, signal);
    } finally {
      this.setLocalRunning(-1);
    }
  }

  /** What the forward server runs for requests forwarded to this node. */
  localExecutor(): { chat: InferenceRouter['executeLocal']; complete: InferenceRouter['executeLocalComplete']; embed: InferenceRouter['executeLocalEmbed'] } {
    return { chat: (r, s) => this.executeLocal(r, s), complete: (r, s) => this.executeLocalComplete(r, s), embed: (r, s) => this.executeLocalEmbed(r, s) };
  }

  private setLocalRunning(delta: 1 | -1): void {
    this.localRunning += delta;
    this.opts.onLocalLoadChange?.();
  }

  private async *countLocal(source: AsyncIterable<ChatChunk>): AsyncIterable<ChatChunk> {
    this.setLocalRunning(+1);
    let streamed = 0;
    try {
      for await (const c of source) {
        if (c.type === 'delta') {
          streamed++;
          this.tokens++;
        } else if (c.usage.completionTokens > streamed) this.tokens += c.usage.completionTokens - streamed; // deltas can carry several tokens
        yield c;
      }
    } finally {
      this.setLocalRunning(-1);
    }
  }

  private record(d: Omit<RoutingDecision, 'atMs'>): void {
    this.decisions.push({ atMs: this.now(), ...d });
    if (this.decisions.length > RECENT_DECISIONS_MAX) this.decisions.shift();
  }

  /**
   * Routes one chat request. Yields 'start' (once a candidate produced its first chunk),
   * deltas, then a 'done' with servedBy. Throws InferError: ERR_MODEL_NOT_FOUND, ERR_BUSY,
   * ERR_ALL_CANDIDATES_FAILED / ERR_UNAVAILABLE (before any output), ERR_UPSTREAM_CLIENT
   * (the backend's 4xx, no failover), ERR_UNSUPPORTED_PARAM / ERR_BACKEND_UNSUPPORTED (no
   * candidate can honour it), ERR_UPSTREAM_MID_STREAM (after 'start'), ERR_ABORTED.
   */
  chat(request: ChatRequest, call: RouteCall): AsyncIterable<RoutedEvent> {
    return this.route(request, call, (model, signal) => this.localServed(this.executeLocal({ ...request, model }, signal)), (peer, model, c) => this.opts.forward!.chat(peer, { ...request, model }, c));
  }

  /** Routes a raw-prompt completion like chat. */
  complete(request: CompletionRequest, call: RouteCall): AsyncIterable<RoutedEvent> {
    return this.route(request, call, (model, signal) => this.localServed(this.executeLocalComplete({ ...request, model }, signal)), (peer, model, c) => this.opts.forward!.complete(peer, { ...request, model }, c));
  }

  /** Routes an embeddings request like chat: 'start' then one result. */
  embed(request: EmbedRequest, call: RouteCall): AsyncIterable<RoutedEmbedEvent> {
    const local = async function* (this: InferenceRouter, model: string, signal: AbortSignal): AsyncIterable<ServedEmbedding> {
      try {
        const r = await this.executeLocalEmbed({ ...request, model }, signal);
        yield { type: 'embedding', ...r, servedBy: this.localPeerId };
      } catch (err) {
        throw toInferError(err, this.localPeerId);
      }
    };
    return this.route<ServedEmbedding>(request, call, (model, signal) => local.call(this, model, signal), (peer, model, c) => this.opts.forward!.embed(peer, { ...request, model }, c));
  }

  /** The one routing loop: plan, bounded admission, attempts with failover before the first output. */
  private async *route<T extends { type: string; servedBy?: string }>(
    request: { model: string },
    call: RouteCall,
    runLocal: (model: string, signal: AbortSignal) => AsyncIterable<T>,
    runRemote: (peerId: string, model: string, c: { requestId: string; deadlineMs: number; signal: AbortSignal }) => AsyncIterable<T>,
  ): AsyncIterable<{ type: 'start'; servedBy: string; attempts: number } | T> {
    const signal = call.signal ?? new AbortController().signal;
    const plan = this.plan(request.model, tieHash(0, call.requestId));
    const model = plan.model;
    const ranked = plan.ranking.ranked;
    if (ranked.length === 0) {
      const asked = plan.via.length > 0 ? `'${plan.requested}' (alias of '${plan.model}')` : `'${plan.model}'`;
      throw new InferError('ERR_MODEL_NOT_FOUND', `model ${asked} is not served by any live member`, { model: plan.requested, available: this.models().map((m) => m.id) });
    }
    if (this.inFlight >= this.maxInFlight) throw new InferError('ERR_BUSY', `this node is routing ${this.inFlight} requests (max ${this.maxInFlight})`, { retryAfterS: 1 });
    const usable = ranked.filter((c) => this.accounting.get(c.peerId).outstanding < this.maxPerPeer && (c.isLocal || this.opts.forward !== null));
    if (usable.length === 0) throw new InferError('ERR_BUSY', `every member serving '${model}' has ${this.maxPerPeer} requests from this node`, { retryAfterS: 1 });
    const deadlineMs = call.deadlineMs ?? this.now() + (this.opts.defaultDeadlineMs ?? 600_000);
    const decision = { requested: plan.requested, model, runnerUp: usable[1]?.peerId ?? null, reason: decisionReason(plan, usable[0] as RankedCandidate) };
    this.inFlight++;
    try {
      const failures: { peerId: string; error: InferError }[] = [];
      const attempts = usable.slice(0, 1 + this.maxRetries);
      for (let i = 0; i < attempts.length; i++) {
        const cand = attempts[i]!;
        if (signal.aborted) throw new InferError('ERR_ABORTED', 'request aborted', { model });
        this.accounting.onSent(cand.peerId);
        let started = false;
        try {
          const source = cand.isLocal ? runLocal(model, signal) : runRemote(cand.peerId, model, { requestId: call.requestId, deadlineMs, signal });
          for await (const c of source) {
            if (!started) {
              started = true;
              this.record({ ...decision, chosen: cand.peerId, attempts: i + 1, reason: i === 0 ? decision.reason : `failover after ${failures.map((f) => f.peerId).join(', ')} failed; ${decision.reason}` });
              yield { type: 'start', servedBy: c.servedBy ?? cand.peerId, attempts: i + 1 };
            }
            yield c;
          }
          if (!started) throw new InferError('ERR_FORWARD_PROTOCOL', `${cand.peerId} produced nothing`, { peerId: cand.peerId });
          return;
        } catch (err) {
          if (signal.aborted) throw new InferError('ERR_ABORTED', 'request aborted', { model }, { cause: err });
          const e = toInferError(err, cand.peerId);
          if (started) throw new InferError('ERR_UPSTREAM_MID_STREAM', `serving node ${cand.peerId} failed after the first token: ${e.message}`, { peerId: cand.peerId }, { cause: err });
          // The request's own fault (the backend's 4xx): the same everywhere, answer it now.
          if (isClientFault(e)) {
            this.record({ ...decision, chosen: null, attempts: i + 1, reason: `client error from ${cand.peerId}: ${e.message}` });
            throw e;
          }
          // Unsupported here, busy, dead peer, refused, 5xx: try the next candidate.
          failures.push({ peerId: cand.peerId, error: e });
          this.warnFailover(cand.peerId, e.message, i + 1);
        } finally {
          this.accounting.onFinished(cand.peerId);
        }
      }
      this.record({ ...decision, chosen: null, attempts: attempts.length, reason: `every attempt failed: ${failures.map((f) => f.peerId).join(', ')}` });
      throw failureOf(model, failures);
    } finally {
      this.inFlight--;
    }
  }

  private warnFailover(peerId: string, error: string, attempt: number): void {
    this.warnings.warn('failover', 'candidate failed before first token, failing over', { peerId, error, attempt });
  }

  private async *localServed(source: AsyncIterable<ChatChunk>): AsyncIterable<ServedChunk> {
    try {
      for await (const c of source) {
        yield c.type === 'done' ? { ...c, servedBy: this.localPeerId } : c;
      }
    } catch (err) {
      if (err instanceof BackendError && err.code === 'ERR_BACKEND_BUSY') throw new InferError('ERR_BUSY', `local backend busy: ${err.message}`, { peerId: this.localPeerId }, { cause: err });
      throw toInferError(err, this.localPeerId);
    }
  }
}

/**
 * The error for a request every attempt failed: unsupported somewhere (and nothing better
 * elsewhere) is that 400; all busy is 429; nothing reachable is 503; else 502.
 */
function failureOf(model: string, failures: readonly { peerId: string; error: InferError }[]): InferError {
  const list = failures.map((f) => `${f.peerId}: ${f.error.message}`).join('; ');
  const unsupported = failures.find((f) => isUnsupported(f.error));
  if (unsupported !== undefined) return new InferError(unsupported.error.code, unsupported.error.message, { ...unsupported.error.data, failures: list });
  const data = { model, failures: failures.map((f) => ({ peerId: f.peerId, error: f.error.message })), retryAfterS: 1 };
  if (failures.length > 0 && failures.every((f) => f.error.code === 'ERR_BUSY')) return new InferError('ERR_BUSY', `every candidate for '${model}' is busy: ${list}`, data);
  if (failures.length > 0 && failures.every((f) => f.error.data['transport'] === true || f.error.code === 'ERR_FORWARD_REFUSED')) {
    return new InferError('ERR_UNAVAILABLE', `no candidate serving '${model}' could be reached: ${list}`, data);
  }
  return new InferError('ERR_ALL_CANDIDATES_FAILED', `no candidate could serve '${model}': ${list}`, data);
}

/** One line on why the first candidate leads: its tier and score terms, and the policy's source. */
function decisionReason(plan: RoutePlan, first: RankedCandidate): string {
  const t = first.terms;
  const terms = `load ${t.load.toFixed(2)} latency ${t.latency.toFixed(2)} energy ${t.energy.toFixed(2)} heat ${t.heat.toFixed(2)} battery ${t.battery.toFixed(2)}`;
  const tier = first.tier === 'fallback' ? `fallback only (${first.reasons.join('; ')})` : 'preferred';
  return `${tier}, score ${first.score.toFixed(3)} (${terms}); ${describeSource(plan.policy.source)}`;
}
