/**
 * The embedded SIMULATED backend: no model weights, deterministic tokens derived from
 * the prompt, streamed at a configured rate with a concurrency limit. It lets a fresh
 * machine run a whole cluster (and the tests and benchmarks) without a GPU. Its kind
 * is 'simulated' and every model it lists says `simulated: true`.
 */
import { BackendError } from './types.js';
import type { Backend, BackendLoad, ChatChunk, ChatRequest, Health, ModelInfo } from './types.js';

export interface SimulatedBackendOptions {
  id?: string;
  /** Model ids to serve. @default ['simulated'] */
  models?: readonly string[];
  /** Tokens per second per request; 0 = zero-delay mode (benchmarks). @default 50 */
  tokensPerSecond?: number;
  /** Requests generated at once; more wait in a queue. @default 4 */
  concurrency?: number;
  /** Bound on waiting requests; beyond it chat() throws ERR_BACKEND_BUSY. @default 64 */
  maxQueue?: number;
  /** Tokens generated when the request sets no max. @default 32 */
  defaultMaxTokens?: number;
  /** Hard cap on tokens per request (bounds work per request). @default 4096 */
  maxTokensCap?: number;
  /** Time to first token (simulated prompt processing), ms. @default 0 */
  firstTokenDelayMs?: number;
  now?: () => number;
}

const VOCAB = [
  'the', 'cluster', 'node', 'routes', 'a', 'request', 'to', 'least', 'loaded', 'member', 'GPU', 'token', 'stream', 'peer',
  'signed', 'advert', 'model', 'answer', 'is', 'of', 'and', 'with', 'simulated', 'output', 'fast', 'home', 'lab', 'power',
  'eco', 'boost', 'batch', 'queue', 'latency', 'federation', 'consensus', 'pattern',
] as const;

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Deterministic token text for (model, prompt): same input, same answer, on every node. */
export function simulatedTokens(model: string, prompt: string, count: number): string[] {
  let s = fnv1a(`${model}\u0000${prompt}`) || 1;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const w = VOCAB[s % VOCAB.length]!;
    out.push(i === 0 ? w : ` ${w}`);
  }
  return out;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new BackendError('ERR_BACKEND_ABORTED', 'request aborted'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new BackendError('ERR_BACKEND_ABORTED', 'request aborted'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class SimulatedBackend implements Backend {
  readonly id: string;
  readonly kind = 'simulated' as const;
  readonly modelIds: readonly string[];
  private readonly tps: number;
  private readonly concurrency: number;
  private readonly maxQueue: number;
  private readonly defaultMaxTokens: number;
  private readonly maxTokensCap: number;
  private readonly firstTokenDelayMs: number;
  private readonly now: () => number;
  private active = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(opts: SimulatedBackendOptions = {}) {
    this.modelIds = opts.models ?? ['simulated'];
    this.id = opts.id ?? 'simulated';
    this.tps = opts.tokensPerSecond ?? 50;
    this.concurrency = opts.concurrency ?? 4;
    this.maxQueue = opts.maxQueue ?? 64;
    this.defaultMaxTokens = opts.defaultMaxTokens ?? 32;
    this.maxTokensCap = opts.maxTokensCap ?? 4096;
    this.firstTokenDelayMs = opts.firstTokenDelayMs ?? 0;
    this.now = opts.now ?? (() => performance.now());
    if (this.modelIds.length === 0) throw new BackendError('ERR_BACKEND_CONFIG', 'simulated backend needs at least one model id');
    if (!(this.tps >= 0) || !(this.concurrency >= 1) || !(this.maxQueue >= 0)) throw new BackendError('ERR_BACKEND_CONFIG', 'simulated backend: tokensPerSecond >= 0, concurrency >= 1, maxQueue >= 0', { tps: this.tps, concurrency: this.concurrency });
  }

  /** Requests generating now and waiting (the Backend.load seam: feeds the advert). */
  load(): Promise<BackendLoad> {
    return Promise.resolve({ inFlight: this.active, queued: this.waiters.length, capacity: this.concurrency, source: 'simulated concurrency' });
  }

  health(): Promise<Health> {
    return Promise.resolve({ ok: true, latencyMs: 0, detail: `simulated backend (${this.tps === 0 ? 'zero-delay' : `${this.tps} tokens/s`}, concurrency ${this.concurrency}): no real model` });
  }

  models(): Promise<ModelInfo[]> {
    return Promise.resolve(this.modelIds.map((id) => ({ id, backendId: this.id, kind: 'simulated' as const, simulated: true, loaded: true })));
  }

  private async acquire(signal?: AbortSignal): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    if (this.waiters.length >= this.maxQueue) throw new BackendError('ERR_BACKEND_BUSY', `simulated backend busy (${this.active} running, ${this.waiters.length} queued)`, { active: this.active, queued: this.waiters.length });
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new BackendError('ERR_BACKEND_ABORTED', 'request aborted while queued'));
      };
      this.waiters.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    // the releasing request handed its slot over: active unchanged
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.active--;
  }

  async *chat(req: ChatRequest, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    if (!this.modelIds.includes(req.model)) throw new BackendError('ERR_BACKEND_MODEL_NOT_FOUND', `simulated backend does not serve model ${req.model}`, { model: req.model, models: this.modelIds });
    const t0 = this.now();
    await this.acquire(signal);
    try {
      const prompt = req.messages.map((m) => `${m.role}: ${m.content}`).join('\n');
      const max = Math.min(this.maxTokensCap, Math.max(0, Math.floor(req.maxTokens ?? this.defaultMaxTokens)));
      const tokens = simulatedTokens(req.model, prompt, max);
      if (this.firstTokenDelayMs > 0) await sleep(this.firstTokenDelayMs, signal);
      let first: number | null = null;
      const perTokenMs = this.tps === 0 ? 0 : 1000 / this.tps;
      for (let i = 0; i < tokens.length; i++) {
        if (signal?.aborted === true) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted');
        if (perTokenMs > 0 && i > 0) await sleep(perTokenMs, signal);
        if (first === null) first = this.now() - t0;
        yield { type: 'delta', content: tokens[i]! };
      }
      yield {
        type: 'done',
        finishReason: req.maxTokens !== undefined && tokens.length >= req.maxTokens ? 'length' : 'stop',
        usage: { promptTokens: Math.ceil(prompt.length / 4), completionTokens: tokens.length },
        timings: { firstTokenMs: first, totalMs: this.now() - t0 },
      };
    } finally {
      this.release();
    }
  }
}
