/**
 * The node's inference dispatcher: ranks candidates with the pure policy
 * (routing/), runs the request locally or forwards it, fails over before the
 * first token (at most `maxRetries` more candidates), and keeps the routing
 * accounting exact (onSent / onFinished exactly once per attempt).
 */
import { rankCandidates, tieHash } from '../../routing/policy.js';
import type { AdvertLoad, Candidate, PolicyParams, RankedCandidate } from '../../routing/policy.js';
import { RoutingAccounting } from '../../routing/accounting.js';
import type { BackendSet } from '../backends/index.js';
import { BackendError } from '../backends/types.js';
import type { ChatChunk, ChatRequest } from '../backends/types.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { InferError } from './errors.js';
import type { ForwardClient, ServedChunk } from './protocol.js';

export type RoutedEvent = { type: 'start'; servedBy: string; attempts: number } | ServedChunk;

export interface ModelEntry {
  id: string;
  /** Peer ids of live members (and this node) serving it. */
  servedBy: string[];
  simulated: boolean;
}

export interface InferenceRouterOptions {
  localPeerId: string;
  /** This node's backends; null = routes only. */
  backends: BackendSet | null;
  /** Remote live members with their models and latest advert load (from the peer table); self excluded. */
  peers: () => readonly Candidate[];
  /** null = no forwarding (single node). */
  forward: ForwardClient | null;
  accounting?: RoutingAccounting;
  policy?: Partial<PolicyParams>;
  /** Extra candidates tried after the first fails before its first token. @default 2 */
  maxRetries?: number;
  /** Requests this node keeps outstanding per peer (including itself). @default 32 */
  maxPerPeer?: number;
  /** Requests this node routes at once (its bounded queue); beyond: ERR_BUSY (429). @default 256 */
  maxInFlight?: number;
  /** Local backends' concurrency as advertised to the policy. @default 4 */
  localCapacity?: number;
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
  private readonly localCapacity: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private inFlight = 0;
  /** Requests running on the local backends (from this router and forwarded in). */
  private localRunning = 0;
  private localAdvertSeq = 0;

  constructor(opts: InferenceRouterOptions) {
    this.opts = opts;
    this.localPeerId = opts.localPeerId;
    this.accounting = opts.accounting ?? new RoutingAccounting();
    this.maxRetries = opts.maxRetries ?? 2;
    this.maxPerPeer = opts.maxPerPeer ?? 32;
    this.maxInFlight = opts.maxInFlight ?? 256;
    this.localCapacity = opts.localCapacity ?? 4;
    this.now = opts.now ?? Date.now;
    this.log = opts.logger ?? nullLogger;
  }

  /** For adverts: load of this node's own backends. */
  localLoad(): { inFlight: number; queued: number; capacity: number } {
    return { inFlight: Math.min(this.localRunning, this.localCapacity), queued: Math.max(0, this.localRunning - this.localCapacity), capacity: this.localCapacity };
  }

  /** Requests currently being routed by this node. */
  get routing(): number {
    return this.inFlight;
  }

  /** Every model this node or a live member serves. */
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
    return [...map.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private candidates(): Candidate[] {
    const out: Candidate[] = [];
    const local = this.opts.backends;
    if (local !== null && local.modelIds().length > 0) {
      // Fresh local view: our own counters, age 0; the snapshot makes "others" = requests forwarded in.
      this.accounting.onAdvert(this.localPeerId, ++this.localAdvertSeq);
      const l = this.localLoad();
      const advert: AdvertLoad = { ...l, gpuTempC: null, gpuUtilPct: null, powerSource: 'ac', batteryPct: null, profile: 'balanced', ageMs: 0 };
      out.push({ peerId: this.localPeerId, isLocal: true, models: local.modelIds(), advert });
    }
    for (const c of this.opts.peers()) if (c.peerId !== this.localPeerId) out.push({ ...c, isLocal: false });
    return out;
  }

  /** Ranking for a model (exposed for status/debugging). */
  rank(model: string, seed: number): RankedCandidate[] {
    return rankCandidates({ model, candidates: this.candidates(), own: this.accounting, params: this.opts.policy, seed }).ranked;
  }

  /** Runs on this node's backends only (used for local execution and by the forward server). */
  async *executeLocal(req: ChatRequest, signal: AbortSignal): AsyncIterable<ChatChunk> {
    const b = this.opts.backends?.backendFor(req.model) ?? null;
    if (b === null) throw new InferError('ERR_MODEL_NOT_FOUND', `model ${req.model} is not served by this node`, { model: req.model });
    this.localRunning++;
    try {
      yield* b.chat(req, signal);
    } finally {
      this.localRunning--;
    }
  }

  /**
   * Routes one request. Yields 'start' (once a candidate produced its first chunk),
   * deltas, then a 'done' with servedBy. Throws InferError: ERR_MODEL_NOT_FOUND,
   * ERR_BUSY, ERR_ALL_CANDIDATES_FAILED (before any output), ERR_UPSTREAM_MID_STREAM
   * (after 'start'), ERR_ABORTED.
   */
  async *chat(req: ChatRequest, call: { requestId: string; signal?: AbortSignal; deadlineMs?: number }): AsyncIterable<RoutedEvent> {
    const signal = call.signal ?? new AbortController().signal;
    const ranked = this.rank(req.model, tieHash(0, call.requestId));
    if (ranked.length === 0) {
      throw new InferError('ERR_MODEL_NOT_FOUND', `model '${req.model}' is not served by any live member`, { model: req.model, available: this.models().map((m) => m.id) });
    }
    if (this.inFlight >= this.maxInFlight) throw new InferError('ERR_BUSY', `this node is routing ${this.inFlight} requests (max ${this.maxInFlight})`, { retryAfterS: 1 });
    const usable = ranked.filter((c) => this.accounting.get(c.peerId).outstanding < this.maxPerPeer && (c.isLocal || this.opts.forward !== null));
    if (usable.length === 0) throw new InferError('ERR_BUSY', `every member serving '${req.model}' has ${this.maxPerPeer} requests from this node`, { retryAfterS: 1 });
    const deadlineMs = call.deadlineMs ?? this.now() + (this.opts.defaultDeadlineMs ?? 600_000);
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
