/**
 * OpenAI-compatible servers (vLLM, llama.cpp server, TGI, LM Studio, LocalAI):
 * POST /chat/completions and /completions with `stream: true` (SSE), POST /embeddings,
 * GET /models. Every request field is passed through in OpenAI's wire names; tool-call
 * fragments, logprobs and finish reasons come back unchanged. An upstream 4xx is
 * ERR_UPSTREAM_CLIENT with its status and error body (http.ts).
 */
import { boundedFetch, readJson, sseData, httpErrorFrom, trimSlash, estimateTokens, DEFAULT_HTTP_LIMITS } from './http.js';
import type { HttpLimits } from './http.js';
import { assertSupported } from './params.js';
import { BackendError } from './types.js';
import type { Backend, ChatChunk, ChatMessage, ChatRequest, CompletionRequest, EmbedRequest, EmbedResult, FinishReason, Health, ModelInfo, SamplingParams, TokenLogprob, ToolCallDelta } from './types.js';

export interface OpenAiBackendOptions {
  id?: string;
  /** Base URL including /v1, e.g. http://127.0.0.1:8000/v1 */
  baseUrl: string;
  /** Sent as `Authorization: Bearer` when set. */
  apiKey?: string | null;
  limits?: Partial<HttpLimits>;
  now?: () => number;
}

interface SseChoice {
  delta?: { content?: unknown; tool_calls?: unknown };
  text?: unknown;
  finish_reason?: unknown;
  logprobs?: { content?: unknown } | null;
}

interface SseChunk {
  choices?: SseChoice[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
  error?: unknown;
}

function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : null;
}

const FINISH: ReadonlySet<string> = new Set(['stop', 'length', 'tool_calls', 'content_filter']);

/** OpenAI's finish reasons kept; 'function_call' (legacy) is a tool call; other servers' reasons are a stop. */
function finishOf(x: unknown): FinishReason | null {
  if (typeof x !== 'string') return null;
  if (FINISH.has(x)) return x as FinishReason;
  return x === 'function_call' ? 'tool_calls' : 'stop';
}

/** Internal message -> OpenAI wire message. */
export function wireMessage(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.toolCalls !== undefined && m.content === '' ? null : m.content };
  if (m.toolCalls !== undefined) out['tool_calls'] = m.toolCalls;
  if (m.toolCallId !== undefined) out['tool_call_id'] = m.toolCallId;
  if (m.name !== undefined) out['name'] = m.name;
  return out;
}

/** Sampling fields in OpenAI's names (only those set). */
export function wireSampling(r: SamplingParams, logprobsAsCount: boolean): Record<string, unknown> {
  const p: Record<string, unknown> = {};
  if (r.maxTokens !== undefined) p['max_tokens'] = r.maxTokens;
  if (r.temperature !== undefined) p['temperature'] = r.temperature;
  if (r.topP !== undefined) p['top_p'] = r.topP;
  if (r.topK !== undefined) p['top_k'] = r.topK;
  if (r.stop !== undefined) p['stop'] = r.stop;
  if (r.seed !== undefined) p['seed'] = r.seed;
  if (r.presencePenalty !== undefined) p['presence_penalty'] = r.presencePenalty;
  if (r.frequencyPenalty !== undefined) p['frequency_penalty'] = r.frequencyPenalty;
  if (r.logitBias !== undefined) p['logit_bias'] = r.logitBias;
  if (logprobsAsCount) {
    // legacy completions: logprobs is the number of top alternatives
    if (r.logprobs === true) p['logprobs'] = r.topLogprobs ?? 0;
  } else {
    if (r.logprobs !== undefined) p['logprobs'] = r.logprobs;
    if (r.topLogprobs !== undefined) p['top_logprobs'] = r.topLogprobs;
  }
  if (r.user !== undefined) p['user'] = r.user;
  return p;
}

function toolDeltas(x: unknown): ToolCallDelta[] | undefined {
  if (!Array.isArray(x) || x.length === 0) return undefined;
  const out: ToolCallDelta[] = [];
  for (const t of x as Record<string, unknown>[]) {
    if (typeof t !== 'object' || t === null || typeof t['index'] !== 'number') continue;
    const d: ToolCallDelta = { index: t['index'] };
    if (typeof t['id'] === 'string') d.id = t['id'];
    if (t['type'] === 'function') d.type = 'function';
    const f = t['function'] as Record<string, unknown> | undefined;
    if (typeof f === 'object' && f !== null) {
      d.function = {};
      if (typeof f['name'] === 'string') d.function.name = f['name'];
      if (typeof f['arguments'] === 'string') d.function.arguments = f['arguments'];
    }
    out.push(d);
  }
  return out.length > 0 ? out : undefined;
}

export class OpenAiBackend implements Backend {
  readonly id: string;
  readonly kind = 'openai' as const;
  private readonly base: string;
  private readonly limits: HttpLimits;
  private readonly headers: Record<string, string>;
  private readonly now: () => number;

  constructor(opts: OpenAiBackendOptions) {
    if (!/^https?:\/\//.test(opts.baseUrl)) throw new BackendError('ERR_BACKEND_CONFIG', `openai baseUrl must be http(s)://, got ${opts.baseUrl}`, { baseUrl: opts.baseUrl });
    this.base = trimSlash(opts.baseUrl);
    this.id = opts.id ?? `openai@${this.base}`;
    this.limits = { ...DEFAULT_HTTP_LIMITS, ...(opts.limits ?? {}) };
    this.headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (opts.apiKey !== undefined && opts.apiKey !== null && opts.apiKey !== '') this.headers['authorization'] = `Bearer ${opts.apiKey}`;
    this.now = opts.now ?? (() => performance.now());
  }

  async health(signal?: AbortSignal): Promise<Health> {
    const t0 = this.now();
    try {
      const ms = await this.models(signal);
      return { ok: true, latencyMs: this.now() - t0, detail: `${ms.length} model(s)` };
    } catch (err) {
      return { ok: false, latencyMs: this.now() - t0, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  async models(signal?: AbortSignal): Promise<ModelInfo[]> {
    const url = `${this.base}/models`;
    const { res, controller } = await boundedFetch(url, { method: 'GET', headers: this.headers }, this.limits, signal);
    if (!res.ok) throw await httpErrorFrom(res, this.limits, controller, url);
    const j = (await readJson(res, this.limits, controller, url)) as { data?: unknown };
    if (!Array.isArray(j.data)) throw new BackendError('ERR_BACKEND_PROTOCOL', `${url}: no data array`, { url });
    const out: ModelInfo[] = [];
    for (const m of j.data as { id?: unknown }[]) {
      if (typeof m.id === 'string') out.push({ id: m.id, backendId: this.id, kind: 'openai', simulated: false, loaded: null });
    }
    return out;
  }

  async *chat(req: ChatRequest, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    assertSupported('openai', req);
    const payload: Record<string, unknown> = { model: req.model, messages: req.messages.map(wireMessage), stream: true, stream_options: { include_usage: true }, ...wireSampling(req, false) };
    if (req.tools !== undefined) payload['tools'] = req.tools;
    if (req.toolChoice !== undefined) payload['tool_choice'] = req.toolChoice;
    if (req.parallelToolCalls !== undefined) payload['parallel_tool_calls'] = req.parallelToolCalls;
    if (req.responseFormat !== undefined) payload['response_format'] = req.responseFormat;
    const promptText = req.messages.map((m) => m.content).join('\n');
    yield* this.stream(`${this.base}/chat/completions`, payload, promptText, signal);
  }

  async *complete(req: CompletionRequest, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    assertSupported('openai', req);
    const payload: Record<string, unknown> = { model: req.model, prompt: req.prompt, stream: true, stream_options: { include_usage: true }, ...wireSampling(req, true) };
    yield* this.stream(`${this.base}/completions`, payload, req.prompt, signal);
  }

  async embed(req: EmbedRequest, signal?: AbortSignal): Promise<EmbedResult> {
    const url = `${this.base}/embeddings`;
    const payload: Record<string, unknown> = { model: req.model, input: req.input, encoding_format: 'float' };
    if (req.dimensions !== undefined) payload['dimensions'] = req.dimensions;
    const { res, controller } = await boundedFetch(url, { method: 'POST', body: JSON.stringify(payload), headers: this.headers }, this.limits, signal);
    if (!res.ok) throw await httpErrorFrom(res, this.limits, controller, url);
    const j = (await readJson(res, this.limits, controller, url)) as { data?: unknown; usage?: { prompt_tokens?: unknown } };
    if (!Array.isArray(j.data) || j.data.length !== req.input.length) throw new BackendError('ERR_BACKEND_PROTOCOL', `${url}: expected ${req.input.length} embeddings`, { url });
    const vectors: number[][] = new Array<number[]>(req.input.length);
    for (const [i, d] of (j.data as { index?: unknown; embedding?: unknown }[]).entries()) {
      const at = typeof d.index === 'number' ? d.index : i;
      if (!Array.isArray(d.embedding) || !d.embedding.every((x) => typeof x === 'number') || at < 0 || at >= vectors.length) throw new BackendError('ERR_BACKEND_PROTOCOL', `${url}: embedding ${i} is not a float array`, { url });
      vectors[at] = d.embedding;
    }
    return { vectors, promptTokens: num(j.usage?.prompt_tokens) ?? req.input.reduce((n, t) => n + estimateTokens(t), 0) };
  }

  private async *stream(url: string, payload: Record<string, unknown>, promptText: string, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    const t0 = this.now();
    const { res, controller } = await boundedFetch(url, { method: 'POST', body: JSON.stringify(payload), headers: this.headers }, this.limits, signal);
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (!res.ok) throw await httpErrorFrom(res, this.limits, controller, url);
      let first: number | null = null;
      let text = '';
      let deltas = 0;
      let finishReason: FinishReason | null = null;
      let promptTokens: number | null = null;
      let completionTokens: number | null = null;
      let sawDone = false;
      for await (const ev of sseData(res, this.limits, controller, url)) {
        if (ev === '[DONE]') {
          sawDone = true;
          break;
        }
        let j: SseChunk;
        try {
          j = JSON.parse(ev) as SseChunk;
        } catch (err) {
          throw new BackendError('ERR_BACKEND_PROTOCOL', `invalid SSE JSON from ${url}`, { url, sample: ev.slice(0, 200) }, { cause: err });
        }
        if (typeof j !== 'object' || j === null) throw new BackendError('ERR_BACKEND_PROTOCOL', `SSE event from ${url} is not an object`, { url });
        if (j.error !== undefined && j.error !== null) {
          const msg = typeof j.error === 'string' ? j.error : typeof (j.error as { message?: unknown }).message === 'string' ? (j.error as { message: string }).message : 'error';
          throw new BackendError('ERR_BACKEND_HTTP', `upstream error: ${msg}`, { url, detail: msg });
        }
        const choice = Array.isArray(j.choices) ? j.choices[0] : undefined;
        const content = choice?.delta?.content ?? choice?.text;
        const toolCalls = toolDeltas(choice?.delta?.tool_calls);
        const lp = choice?.logprobs?.content;
        const logprobs = Array.isArray(lp) && lp.length > 0 ? (lp as TokenLogprob[]) : undefined;
        const hasText = typeof content === 'string' && content.length > 0;
        if (hasText || toolCalls !== undefined || logprobs !== undefined) {
          if (first === null) first = this.now() - t0;
          const c = hasText ? content : '';
          text += c;
          deltas++;
          yield { type: 'delta', content: c, ...(toolCalls === undefined ? {} : { toolCalls }), ...(logprobs === undefined ? {} : { logprobs }) };
        }
        finishReason = finishOf(choice?.finish_reason) ?? finishReason;
        if (j.usage !== undefined && j.usage !== null) {
          promptTokens = num(j.usage.prompt_tokens);
          completionTokens = num(j.usage.completion_tokens);
        }
      }
      if (!sawDone && finishReason === null) {
        if (signal?.aborted === true) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted', { url });
        throw new BackendError('ERR_BACKEND_PROTOCOL', `stream from ${url} ended without [DONE] or finish_reason`, { url });
      }
      yield {
        type: 'done',
        finishReason: finishReason ?? 'stop',
        usage: { promptTokens: promptTokens ?? estimateTokens(promptText), completionTokens: completionTokens ?? Math.max(deltas, estimateTokens(text)) },
        timings: { firstTokenMs: first, totalMs: this.now() - t0 },
      };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }
}
