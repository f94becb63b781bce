/**
 * The embedded llama.cpp engine (`kind: 'llama-cpp'`), on node-llama-cpp: real GGUF models,
 * their own tokeniser and chat template, streaming, abort, usage per request, parallel
 * sequences as capacity, and embeddings. The engine loads on first use (models(), health(),
 * chat()), so a node starts at once and a missing package or a bad file shows as this
 * backend's error in `status` instead of stopping the node.
 *
 * Each request takes one of its model's sequences (waiting in a bounded queue when all are
 * busy), generates, and clears the sequence, which frees its KV cache: the next request
 * starts clean. Token meters are cumulative per sequence, so usage is the difference.
 */
import type { ChatHistoryItem } from 'node-llama-cpp';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { loadEngine } from './llama-cpp-engine.js';
import type { Engine, LoadedModel } from './llama-cpp-engine.js';
import { parseLlamaCppConfig } from './llama-cpp-config.js';
import type { LlamaCppConfig } from './llama-cpp-config.js';
import { SlotQueue } from './llama-cpp-slots.js';
import { assertLlamaSupported, generationOptions } from './llama-cpp-params.js';
import { BackendError } from './types.js';
import type { Backend, BackendLoad, ChatChunk, ChatMessage, ChatRequest, EmbedRequest, EmbedResult, FinishReason, Health, ModelInfo } from './types.js';

export interface LlamaCppBackendOptions {
  /** Relative model paths resolve against this (the config file's directory). @default process.cwd() */
  baseDir?: string;
  logger?: Logger;
  now?: () => number;
}

/** The sampling temperature when a request gives none: llama.cpp server's default (node-llama-cpp's own is greedy). */
export const LLAMA_CPP_DEFAULT_TEMPERATURE = 0.8;

/** Texts per embeddings request: bounds the work one request holds the embedding context for (OpenAI allows 2,048). */
export const LLAMA_CPP_MAX_EMBED_INPUTS = 2048;

export class LlamaCppBackend implements Backend {
  readonly id: string;
  readonly kind = 'llama-cpp' as const;
  readonly config: LlamaCppConfig;
  private readonly baseDir: string;
  private readonly log: Logger;
  private readonly now: () => number;
  private engine: Promise<Engine> | null = null;
  private readonly slots = new Map<string, SlotQueue>();
  private embedTail: Promise<unknown> = Promise.resolve();
  private embedWaiting = 0;
  private closed = false;

  constructor(input: unknown, opts: LlamaCppBackendOptions = {}) {
    this.config = parseLlamaCppConfig(input);
    this.id = this.config.id;
    this.baseDir = opts.baseDir ?? process.cwd();
    this.log = (opts.logger ?? nullLogger).child(`llama-cpp:${this.id}`);
    this.now = opts.now ?? (() => performance.now());
  }

  /** Load the binary and the models (once; a failure is kept and re-thrown, named). */
  start(): Promise<Engine> {
    if (this.closed) return Promise.reject(new BackendError('ERR_BACKEND_UNREACHABLE', `llama-cpp backend ${this.id} is closed`));
    this.engine ??= loadEngine(this.config, this.baseDir, this.log).then((e) => {
      for (const id of e.models.keys()) this.slots.set(id, new SlotQueue(this.config.sequences, this.config.maxQueue));
      return e;
    });
    return this.engine;
  }

  /** What the engine runs on, once loaded ('cpu', 'cuda', ...); null before. */
  async device(): Promise<{ device: string; threads: number }> {
    const e = await this.start();
    return { device: e.device, threads: e.threads };
  }

  async health(): Promise<Health> {
    const t0 = this.now();
    try {
      const e = await this.start();
      return { ok: true, latencyMs: this.now() - t0, detail: `llama.cpp on ${e.device} (${e.threads} threads), ${e.models.size} model(s), ${this.config.sequences} sequence(s) each` };
    } catch (err) {
      return { ok: false, latencyMs: this.now() - t0, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  async models(): Promise<ModelInfo[]> {
    const e = await this.start();
    return [...e.models.keys()].map((id) => ({ id, backendId: this.id, kind: 'llama-cpp' as const, simulated: false, loaded: true }));
  }

  /** The engine's own count: sequences per model (or the configured capacity), busy and waiting. */
  load(): Promise<BackendLoad | null> {
    let inFlight = 0;
    let queued = 0;
    for (const s of this.slots.values()) {
      inFlight += s.busy;
      queued += s.waiting;
    }
    const own = this.config.sequences * Math.max(1, this.slots.size);
    return Promise.resolve({ capacity: this.config.capacity ?? own, inFlight, queued, source: this.config.capacity === null ? 'embedded sequences' : 'config capacity' });
  }

  private async modelFor(name: string): Promise<{ engine: Engine; m: LoadedModel; slots: SlotQueue }> {
    const engine = await this.start();
    const m = engine.models.get(name);
    const slots = this.slots.get(name);
    if (m === undefined || slots === undefined) throw new BackendError('ERR_BACKEND_MODEL_NOT_FOUND', `llama-cpp backend ${this.id} does not serve model ${name}`, { model: name, models: [...engine.models.keys()] });
    return { engine, m, slots };
  }

  async *chat(req: ChatRequest, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    assertLlamaSupported(req, this.id);
    const { engine, m, slots } = await this.modelFor(req.model);
    const gen = await generationOptions(req, engine.lib, engine.llama, m.model, LLAMA_CPP_DEFAULT_TEMPERATURE);
    const history = toHistory(req.messages, this.id);
    const t0 = this.now();
    const release = await slots.acquire(signal);
    const inner = new AbortController();
    const onAbort = (): void => inner.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const seq = m.pool.pop();
    if (seq === undefined) {
      release();
      throw new BackendError('ERR_BACKEND_BUSY', `llama-cpp backend ${this.id}: no free sequence for ${req.model}`, { model: req.model });
    }
    const chat = new engine.lib.LlamaChat({ contextSequence: seq, chatWrapper: m.chatWrapper, autoDisposeSequence: false });
    // Bounded by the request's max tokens: at most one chunk per generated token.
    const pending: string[] = [];
    let wake: (() => void) | null = null;
    let settled = false;
    const meter0 = { in: seq.tokenMeter.usedInputTokens, out: seq.tokenMeter.usedOutputTokens };
    const maxTokens = Math.max(0, Math.min(req.maxTokens ?? this.config.defaultMaxTokens ?? m.context.contextSize, m.context.contextSize));
    const run = chat
      .generateResponse(history, {
        onTextChunk: (text) => {
          pending.push(text);
          wake?.();
        },
        signal: inner.signal,
        stopOnAbortSignal: false,
        maxTokens,
        ...gen,
      })
      .finally(() => {
        settled = true;
        wake?.();
      });
    run.catch(() => undefined); // observed below; keeps an abandoned stream from an unhandled rejection
    let first: number | null = null;
    try {
      for (;;) {
        while (pending.length > 0) {
          const text = pending.shift() as string;
          if (text === '') continue;
          first ??= this.now() - t0;
          yield { type: 'delta', content: text };
        }
        if (settled) break;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
      let res: Awaited<typeof run>;
      try {
        res = await run;
      } catch (e) {
        if (inner.signal.aborted) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted', {}, { cause: e });
        throw new BackendError('ERR_BACKEND_PROTOCOL', `llama.cpp generation failed: ${e instanceof Error ? e.message : String(e)}`, { model: req.model }, { cause: e });
      }
      const finishReason: FinishReason = res.metadata.stopReason === 'maxTokens' ? 'length' : 'stop';
      yield {
        type: 'done',
        finishReason,
        usage: { promptTokens: seq.tokenMeter.usedInputTokens - meter0.in, completionTokens: seq.tokenMeter.usedOutputTokens - meter0.out },
        timings: { firstTokenMs: first, totalMs: this.now() - t0 },
      };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!settled) inner.abort(new BackendError('ERR_BACKEND_ABORTED', 'stream closed by the consumer'));
      await run.catch(() => undefined);
      chat.dispose();
      // Clearing frees the sequence's KV cache; the next request starts clean.
      await seq.clearHistory().catch(() => undefined);
      m.pool.push(seq);
      release();
    }
  }

  async embed(req: EmbedRequest, signal?: AbortSignal): Promise<EmbedResult> {
    if (!this.config.embeddings) throw new BackendError('ERR_BACKEND_UNSUPPORTED', `llama-cpp backend ${this.id} has embeddings: false in config`, { backend: this.id });
    if (req.input.length > LLAMA_CPP_MAX_EMBED_INPUTS) throw new BackendError('ERR_BACKEND_UNSUPPORTED', `embeddings input has ${req.input.length} texts, at most ${LLAMA_CPP_MAX_EMBED_INPUTS}`, { count: req.input.length });
    const { m } = await this.modelFor(req.model);
    const size = m.model.embeddingVectorSize;
    if (req.dimensions !== undefined && req.dimensions !== size) throw new BackendError('ERR_BACKEND_UNSUPPORTED', `dimensions: model ${req.model} gives ${size}-dimensional embeddings and cannot truncate to ${req.dimensions}`, { dimensions: req.dimensions, native: size });
    if (this.embedWaiting >= this.config.maxQueue) throw new BackendError('ERR_BACKEND_BUSY', `llama-cpp backend ${this.id}: ${this.embedWaiting} embeddings requests waiting`, { queued: this.embedWaiting });
    this.embedWaiting++;
    // One embedding context per model, one request at a time (it has one sequence).
    const aborted = (): boolean => signal?.aborted === true;
    const job = this.embedTail.then(async () => {
      this.embedWaiting--;
      if (aborted()) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted while queued');
      m.embedding ??= m.model.createEmbeddingContext({ contextSize: Math.min(this.config.contextSize, m.model.trainContextSize) });
      const ctx = await m.embedding;
      const vectors: number[][] = [];
      let promptTokens = 0;
      for (const text of req.input) {
        if (aborted()) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted');
        promptTokens += m.model.tokenize(text).length;
        vectors.push([...(await ctx.getEmbeddingFor(text)).vector]);
      }
      return { vectors, promptTokens };
    });
    this.embedTail = job.catch(() => undefined);
    return job;
  }

  /** Free the models and the binary (node stop). */
  async close(): Promise<void> {
    this.closed = true;
    const e = await this.engine?.catch(() => null);
    if (e !== null && e !== undefined) await e.llama.dispose();
  }
}

/** OpenAI roles to node-llama-cpp history; the history ends with an open model turn to generate into. */
export function toHistory(messages: readonly ChatMessage[], id: string): ChatHistoryItem[] {
  const out: ChatHistoryItem[] = [];
  for (const m of messages) {
    if (m.role === 'system') out.push({ type: 'system', text: m.content });
    else if (m.role === 'user') out.push({ type: 'user', text: m.content });
    else if (m.role === 'assistant') out.push({ type: 'model', response: [m.content] });
    else throw new BackendError('ERR_BACKEND_UNSUPPORTED', `llama-cpp backend ${id} does not support messages with role ${m.role}`, { role: m.role, backend: id });
  }
  const last = out[out.length - 1];
  if (last === undefined) throw new BackendError('ERR_BACKEND_PROTOCOL', 'chat request has no messages');
  if (last.type !== 'model') out.push({ type: 'model', response: [] });
  return out;
}
