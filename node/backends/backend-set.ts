/**
 * The node's local backends: the model -> backend map (refresh() re-reads the model lists),
 * each backend's health (active checks, passive outlier detection, start handshake:
 * health.ts) and load (its own report where it has one, else its configured capacity:
 * capacity.ts). Only healthy backends' models are served and advertised.
 */
import type { Backend, BackendLoad, ChatChunk, ModelInfo } from './types.js';
import { BackendError } from './types.js';
import { BackendHealth, DEFAULT_HEALTH_CONFIG } from './health.js';
import type { HealthConfig } from './health.js';

/** Bound on models kept per node: a large Ollama library has hundreds; 4096 caps memory. */
export const MAX_MODELS_PER_NODE = 4096;

/**
 * Capacity of a backend that reports none and has no `capacity` in config: 4, the constant every
 * node advertised before backends reported their own (a typical Ollama/vLLM box runs a few at once).
 */
export const DEFAULT_BACKEND_CAPACITY = 4;

/** A backend with what its config entry says beyond the backend's own options. */
export interface BackendEntry {
  backend: Backend;
  /** Concurrent requests (config `capacity`): overrides the backend's own report. null = use the report. */
  capacity: number | null;
  health: HealthConfig;
}

export interface BackendLoadView extends BackendLoad {
  id: string;
}

export interface BackendStatus {
  id: string;
  kind: string;
  healthy: boolean;
  reason: string | null;
  cooldownUntilMs: number | null;
  failedModels: Record<string, string>;
  load: BackendLoadView;
}

/** Errors that are the request's own doing, not the backend's fault (never counted by outlier detection). */
const CLIENT_CODES = new Set(['ERR_BACKEND_ABORTED', 'ERR_BACKEND_BUSY', 'ERR_BACKEND_MODEL_NOT_FOUND', 'ERR_BACKEND_UNSUPPORTED', 'ERR_BACKEND_CONFIG']);

export function isUpstreamFault(err: unknown): boolean {
  if (!(err instanceof BackendError)) return true;
  if (CLIENT_CODES.has(err.code)) return false;
  const status = err.data['status'];
  return !(typeof status === 'number' && status >= 400 && status < 500);
}

interface Tracked {
  entry: BackendEntry;
  health: BackendHealth;
  wrapped: Backend;
  load: BackendLoadView;
  nextCheckMs: number;
  models: ModelInfo[];
}

export class BackendSet {
  readonly backends: readonly Backend[];
  private readonly tracked: Tracked[];
  private byModel = new Map<string, Tracked>();
  private infos: ModelInfo[] = [];
  private readonly now: () => number;
  private servedSignature = '';
  /** Failures of the last refresh, per backend id. */
  lastErrors: Record<string, string> = {};

  constructor(backends: ReadonlyArray<Backend | BackendEntry>, opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
    this.tracked = backends.map((b) => {
      const entry: BackendEntry = 'backend' in b ? b : { backend: b, capacity: null, health: DEFAULT_HEALTH_CONFIG };
      const health = new BackendHealth(entry.health);
      const t: Tracked = { entry, health, wrapped: entry.backend, load: { id: entry.backend.id, capacity: entry.capacity ?? DEFAULT_BACKEND_CAPACITY, inFlight: 0, queued: 0, source: entry.capacity === null ? 'default' : 'config capacity' }, nextCheckMs: 0, models: [] };
      t.wrapped = this.observe(t);
      return t;
    });
    this.backends = this.tracked.map((t) => t.entry.backend);
  }

  /**
   * The backend as callers see it: the same object (a Proxy, so every method and seam it has
   * stays reachable with its own `this`), with each streamed call's outcome (chat, and
   * complete where a backend has it) fed to its outlier detection.
   */
  private observe(t: Tracked): Backend {
    const b = t.entry.backend;
    const h = t.health;
    const now = this.now;
    const observed = (fn: (...args: unknown[]) => AsyncIterable<ChatChunk>) =>
      async function* (...args: unknown[]): AsyncIterable<ChatChunk> {
        try {
          yield* fn.apply(b, args);
          h.onRequest(true, now());
        } catch (e) {
          if (isUpstreamFault(e)) h.onRequest(false, now(), e instanceof Error ? e.message : String(e));
          throw e;
        }
      };
    return new Proxy(b, {
      get(target, prop) {
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== 'function') return v;
        if (prop === 'chat' || prop === 'complete') return observed(v as (...args: unknown[]) => AsyncIterable<ChatChunk>);
        return (v as (...args: unknown[]) => unknown).bind(target);
      },
    });
  }

  private usable(t: Tracked, now: number): boolean {
    return t.health.view(now).healthy;
  }

  async refresh(signal?: AbortSignal): Promise<ModelInfo[]> {
    const errors: Record<string, string> = {};
    await Promise.all(
      this.tracked.map(async (t) => {
        try {
          t.models = (await t.entry.backend.models(signal)).slice(0, MAX_MODELS_PER_NODE);
        } catch (err) {
          t.models = [];
          errors[t.entry.backend.id] = err instanceof Error ? err.message : String(err);
        }
      }),
    );
    this.lastErrors = errors;
    this.rebuild();
    return this.infos;
  }

  /** Recompute the served map from the last model lists and the health now. */
  private rebuild(): void {
    const now = this.now();
    this.servedSignature = this.signature(now);
    const byModel = new Map<string, Tracked>();
    const infos: ModelInfo[] = [];
    for (const t of this.tracked) {
      if (!this.usable(t, now)) continue;
      const failed = t.health.view(now).failedModels;
      for (const m of t.models) {
        if (infos.length >= MAX_MODELS_PER_NODE) break;
        if (failed[m.id] !== undefined) continue;
        if (!byModel.has(m.id)) byModel.set(m.id, t);
        infos.push(m);
      }
    }
    this.byModel = byModel;
    this.infos = infos;
  }

  /** Run the active checks that are due (each backend at its own interval, bounded by its timeout). Returns true when the served set changed. */
  async checkHealth(signal?: AbortSignal): Promise<boolean> {
    const before = this.modelIds().join('\n');
    const now = this.now();
    await Promise.all(
      this.tracked.map(async (t) => {
        if (now < t.nextCheckMs) return;
        t.nextCheckMs = now + t.entry.health.intervalMs;
        const timeout = AbortSignal.timeout(t.entry.health.timeoutMs);
        const s = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
        try {
          const h = await t.entry.backend.health(s);
          t.health.onActive(h.ok, h.detail);
        } catch (e) {
          t.health.onActive(false, e instanceof Error ? e.message : String(e));
        }
      }),
    );
    this.rebuild();
    return this.modelIds().join('\n') !== before;
  }

  /** The start handshake: a 1-token completion per model of each backend with `health.handshake`. */
  async handshake(signal?: AbortSignal): Promise<void> {
    await Promise.all(
      this.tracked
        .filter((t) => t.entry.health.handshake)
        .flatMap((t) =>
          t.models.map(async (m) => {
            const timeout = AbortSignal.timeout(t.entry.health.timeoutMs);
            const s = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
            try {
              let done = false;
              for await (const c of t.entry.backend.chat({ model: m.id, messages: [{ role: 'user', content: 'hi' }], maxTokens: 1 }, s)) if (c.type === 'done') done = true;
              if (!done) throw new BackendError('ERR_BACKEND_PROTOCOL', 'stream ended without a done chunk');
              t.health.onHandshake(m.id, true, '');
            } catch (e) {
              t.health.onHandshake(m.id, false, `handshake (1-token completion) failed: ${e instanceof Error ? e.message : String(e)}`);
            }
          }),
        ),
    );
    this.rebuild();
  }

  /** Read each backend's own load report; a backend without one (or failing) keeps its configured/default capacity. */
  async pollLoad(signal?: AbortSignal): Promise<void> {
    await Promise.all(
      this.tracked.map(async (t) => {
        const cap = t.entry.capacity;
        let r: BackendLoad | null = null;
        try {
          r = (await t.entry.backend.load?.(signal)) ?? null;
        } catch {
          r = null; // unreachable: the active health check reports it
        }
        t.load =
          r === null
            ? { id: t.entry.backend.id, capacity: cap ?? DEFAULT_BACKEND_CAPACITY, inFlight: 0, queued: 0, source: cap === null ? 'default (no report)' : 'config capacity' }
            : { id: t.entry.backend.id, capacity: cap ?? r.capacity, inFlight: r.inFlight, queued: r.queued, source: cap === null ? r.source : `config capacity; ${r.source}` };
      }),
    );
  }

  /** Sum over healthy backends: what the advert says this node can run and runs (as the backends report it). */
  load(): { capacity: number; inFlight: number; queued: number } {
    const now = this.now();
    let capacity = 0;
    let inFlight = 0;
    let queued = 0;
    for (const t of this.tracked) {
      if (!this.usable(t, now)) continue;
      capacity += t.load.capacity;
      inFlight += t.load.inFlight;
      queued += t.load.queued;
    }
    return { capacity, inFlight, queued };
  }

  status(): BackendStatus[] {
    const now = this.now();
    return this.tracked.map((t) => ({ id: t.entry.backend.id, kind: t.entry.backend.kind, ...t.health.view(now), load: t.load }));
  }

  models(): readonly ModelInfo[] {
    this.current();
    return this.infos;
  }

  /** Which backends are usable and which models failed their handshake: what the served map depends on. */
  private signature(now: number): string {
    return this.tracked.map((t) => (this.usable(t, now) ? `1${Object.keys(t.health.view(now).failedModels).join(',')}` : '0')).join('|');
  }

  /** Rebuild when health changed since (a cooldown began or ended between two refreshes). */
  private current(): void {
    if (this.signature(this.now()) !== this.servedSignature) this.rebuild();
  }

  modelIds(): string[] {
    this.current();
    return [...this.byModel.keys()];
  }

  backendFor(model: string): Backend | null {
    const t = this.byModel.get(model);
    if (t === undefined || !this.usable(t, this.now())) return null;
    return t.wrapped;
  }
}
