/**
 * The embedded SIMULATED backend: no model weights, deterministic tokens derived from
 * the prompt, streamed at a configured rate with a concurrency limit. It lets a fresh
 * machine run a whole cluster (and the tests and benchmarks) without a GPU. Its kind
 * is 'simulated' and every model it lists says `simulated: true`.
 *
 * It honours what a test needs to exercise the whole path without a model: `stop` (the
 * text is cut before the first stop string), `max_tokens`, a deterministic tool call when
 * tools are offered (and a text answer once the history holds the tool's result),
 * `response_format` (JSON that fits the given schema), raw-prompt completions and
 * deterministic embedding vectors. Fields it cannot imitate are refused (params.ts).
 */
import { assertSupported } from './params.js';
import { BackendError } from './types.js';
import type { Backend, BackendLoad, ChatChunk, ChatRequest, CompletionRequest, EmbedRequest, EmbedResult, FinishReason, Health, ModelInfo, ToolCallDelta } from './types.js';
import { schemaExample, cutAtStop } from './simulated-output.js';

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

/** One step of xorshift32 (Marsaglia): the simulated backend's deterministic stream. */
function xorshift32(x: number): number {
  let s = x;
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  return s >>> 0;
}

/** Deterministic token text for (model, prompt): same input, same answer, on every node. */
export function simulatedTokens(model: string, prompt: string, count: number): string[] {
  let s = fnv1a(`${model}\u0000${prompt}`) || 1;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    s = xorshift32(s);
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

  /** Default embedding width (small: tests compare vectors) and the largest asked for. */
  static readonly EMBED_DIMS = 64;
  static readonly EMBED_DIMS_MAX = 4096;

  async *chat(req: ChatRequest, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    assertSupported('simulated', req);
    const prompt = req.messages.map((m) => `${m.role}: ${m.content}${m.toolCalls === undefined ? '' : ` ${JSON.stringify(m.toolCalls)}`}`).join('\n');
    const last = req.messages[req.messages.length - 1];
    const tools = req.tools ?? [];
    const choice = req.toolChoice ?? 'auto';
    // A tool call when tools are offered (not 'none') and the last message is not already a tool's result.
    if (tools.length > 0 && choice !== 'none' && last?.role !== 'tool') {
      const name = typeof choice === 'object' ? choice.function.name : tools[0]!.function.name;
      const tool = tools.find((t) => t.function.name === name);
      if (tool === undefined) throw new BackendError('ERR_UPSTREAM_CLIENT', `tool_choice names '${name}', which is not among the tools offered`, { status: 400, param: 'tool_choice', upstreamCode: 'invalid_tool_choice' });
      const args = JSON.stringify(schemaExample(tool.function.parameters ?? { type: 'object', properties: {} }, simulatedTokens(req.model, prompt, 8)));
      yield* this.generate(req, prompt, signal, { toolCall: { id: `call_${fnv1a(`${req.model}\u0000${prompt}`).toString(16).padStart(8, '0')}`, name, args } });
      return;
    }
    let json: string | null = null;
    const rf = req.responseFormat;
    if (rf?.type === 'json_object') json = JSON.stringify({ answer: simulatedTokens(req.model, prompt, 6).join('') });
    else if (rf?.type === 'json_schema') json = JSON.stringify(schemaExample(rf.json_schema.schema ?? { type: 'object' }, simulatedTokens(req.model, prompt, 8)));
    yield* this.generate(req, prompt, signal, json === null ? {} : { json });
  }

  async *complete(req: CompletionRequest, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    assertSupported('simulated', req);
    yield* this.generate(req, req.prompt, signal, {});
  }

  embed(req: EmbedRequest): Promise<EmbedResult> {
    if (!this.modelIds.includes(req.model)) return Promise.reject(new BackendError('ERR_BACKEND_MODEL_NOT_FOUND', `simulated backend does not serve model ${req.model}`, { model: req.model }));
    const dims = req.dimensions ?? SimulatedBackend.EMBED_DIMS;
    if (!Number.isInteger(dims) || dims < 1 || dims > SimulatedBackend.EMBED_DIMS_MAX) {
      return Promise.reject(new BackendError('ERR_UPSTREAM_CLIENT', `dimensions must be 1..${SimulatedBackend.EMBED_DIMS_MAX}`, { status: 400, param: 'dimensions', upstreamCode: 'invalid_value' }));
    }
    const vectors = req.input.map((text) => simulatedVector(req.model, text, dims));
    return Promise.resolve({ vectors, promptTokens: req.input.reduce((n, t) => n + Math.ceil(t.length / 4), 0) });
  }

  /** Streams the answer: a tool call, fixed JSON, or deterministic words, cut by stop and max tokens. */
  private async *generate(
    req: ChatRequest | CompletionRequest,
    prompt: string,
    signal: AbortSignal | undefined,
    what: { toolCall?: { id: string; name: string; args: string }; json?: string },
  ): AsyncIterable<ChatChunk> {
    if (!this.modelIds.includes(req.model)) throw new BackendError('ERR_BACKEND_MODEL_NOT_FOUND', `simulated backend does not serve model ${req.model}`, { model: req.model, models: this.modelIds });
    const t0 = this.now();
    await this.acquire(signal);
    try {
      const max = Math.min(this.maxTokensCap, Math.max(0, Math.floor(req.maxTokens ?? this.defaultMaxTokens)));
      let pieces: string[];
      if (what.toolCall !== undefined) pieces = splitPieces(what.toolCall.args);
      else if (what.json !== undefined) pieces = splitPieces(what.json);
      else pieces = simulatedTokens(req.model, prompt, max);
      let finishReason: FinishReason = what.toolCall !== undefined ? 'tool_calls' : 'stop';
      if (what.toolCall === undefined) {
        const cut = cutAtStop(pieces, req.stop ?? []);
        if (cut.stopped) pieces = cut.pieces;
        if (pieces.length > max) pieces = pieces.slice(0, max);
        if (!cut.stopped && req.maxTokens !== undefined && pieces.length >= req.maxTokens) finishReason = 'length';
      }
      if (this.firstTokenDelayMs > 0) await sleep(this.firstTokenDelayMs, signal);
      let first: number | null = null;
      const perTokenMs = this.tps === 0 ? 0 : 1000 / this.tps;
      if (what.toolCall !== undefined) {
        first = this.now() - t0;
        const head: ToolCallDelta = { index: 0, id: what.toolCall.id, type: 'function', function: { name: what.toolCall.name, arguments: '' } };
        yield { type: 'delta', content: '', toolCalls: [head] };
      }
      for (let i = 0; i < pieces.length; i++) {
        if (signal?.aborted === true) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted');
        if (perTokenMs > 0 && (i > 0 || what.toolCall !== undefined)) await sleep(perTokenMs, signal);
        if (first === null) first = this.now() - t0;
        const p = pieces[i]!;
        if (what.toolCall !== undefined) yield { type: 'delta', content: '', toolCalls: [{ index: 0, function: { arguments: p } }] };
        else yield { type: 'delta', content: p };
      }
      yield {
        type: 'done',
        finishReason,
        usage: { promptTokens: Math.ceil(prompt.length / 4), completionTokens: pieces.length + (what.toolCall !== undefined ? 1 : 0) },
        timings: { firstTokenMs: first, totalMs: this.now() - t0 },
      };
    } finally {
      this.release();
    }
  }
}

/** JSON text in pieces of up to 8 characters (a token-sized stream). */
function splitPieces(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += 8) out.push(text.slice(i, i + 8));
  return out;
}

/** A deterministic unit vector for (model, text). */
export function simulatedVector(model: string, text: string, dims: number): number[] {
  let s = fnv1a(`${model}\u0001${text}`) || 1;
  const v: number[] = [];
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    s = xorshift32(s);
    const x = (s / 0xffffffff) * 2 - 1;
    v.push(x);
    norm += x * x;
  }
  const n = Math.sqrt(norm) || 1;
  return v.map((x) => x / n);
}
