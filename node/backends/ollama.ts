/**
 * Ollama's native API: POST /api/chat (NDJSON stream), POST /api/generate (raw prompt
 * completions), POST /api/embed, GET /api/tags (installed models), GET /api/ps (loaded
 * models), GET /api/version (health). OpenAI fields map to Ollama's: sampling to
 * `options`, tools and tool calls (Ollama sends whole calls with object arguments: they
 * become one OpenAI tool-call delta each), response_format to `format` ("json" or the
 * schema). What Ollama cannot do is refused by params.ts.
 */
import { boundedFetch, readJson, readChunks, readLines, httpErrorFrom, trimSlash, DEFAULT_HTTP_LIMITS } from './http.js';
import type { HttpLimits } from './http.js';
import { assertSupported } from './params.js';
import { BackendError } from './types.js';
import type { Backend, ChatChunk, ChatMessage, ChatRequest, CompletionRequest, EmbedRequest, EmbedResult, FinishReason, Health, ModelInfo, SamplingParams, ToolCallDelta } from './types.js';

export interface OllamaBackendOptions {
  id?: string;
  /** e.g. http://127.0.0.1:11434 */
  baseUrl: string;
  limits?: Partial<HttpLimits>;
  /** Injected clock for timings (ms, monotonic). @default performance.now */
  now?: () => number;
}

interface OllamaChatLine {
  message?: { content?: unknown; tool_calls?: unknown };
  response?: unknown;
  done?: unknown;
  done_reason?: unknown;
  prompt_eval_count?: unknown;
  eval_count?: unknown;
  error?: unknown;
}

function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : null;
}

/** Sampling fields as Ollama `options`. */
export function ollamaOptions(r: SamplingParams): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (r.maxTokens !== undefined) o['num_predict'] = r.maxTokens;
  if (r.temperature !== undefined) o['temperature'] = r.temperature;
  if (r.topP !== undefined) o['top_p'] = r.topP;
  if (r.topK !== undefined) o['top_k'] = r.topK;
  if (r.stop !== undefined) o['stop'] = r.stop;
  if (r.seed !== undefined) o['seed'] = r.seed;
  if (r.presencePenalty !== undefined) o['presence_penalty'] = r.presencePenalty;
  if (r.frequencyPenalty !== undefined) o['frequency_penalty'] = r.frequencyPenalty;
  return o;
}

/** Internal message -> Ollama message (tool call arguments are objects there). */
function ollamaMessage(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.toolCalls !== undefined) {
    out['tool_calls'] = m.toolCalls.map((t) => {
      let args: unknown;
      try {
        args = JSON.parse(t.function.arguments === '' ? '{}' : t.function.arguments);
      } catch {
        throw new BackendError('ERR_UPSTREAM_CLIENT', `tool call ${t.id}: arguments are not JSON (Ollama needs an object)`, { status: 400, param: 'messages', upstreamCode: 'invalid_tool_arguments' });
      }
      return { function: { name: t.function.name, arguments: args } };
    });
  }
  if (m.role === 'tool' && m.name !== undefined) out['tool_name'] = m.name;
  return out;
}

export class OllamaBackend implements Backend {
  readonly id: string;
  readonly kind = 'ollama' as const;
  private readonly base: string;
  private readonly limits: HttpLimits;
  private readonly now: () => number;

  constructor(opts: OllamaBackendOptions) {
    if (!/^https?:\/\//.test(opts.baseUrl)) throw new BackendError('ERR_BACKEND_CONFIG', `ollama baseUrl must be http(s)://, got ${opts.baseUrl}`, { baseUrl: opts.baseUrl });
    this.base = trimSlash(opts.baseUrl);
    this.id = opts.id ?? `ollama@${this.base}`;
    this.limits = { ...DEFAULT_HTTP_LIMITS, ...(opts.limits ?? {}) };
    this.now = opts.now ?? (() => performance.now());
  }

  private async getJson(path: string, signal?: AbortSignal): Promise<unknown> {
    const url = this.base + path;
    const { res, controller } = await boundedFetch(url, { method: 'GET' }, this.limits, signal);
    if (!res.ok) throw await httpErrorFrom(res, this.limits, controller, url);
    return readJson(res, this.limits, controller, url);
  }

  async health(signal?: AbortSignal): Promise<Health> {
    const t0 = this.now();
    try {
      const v = (await this.getJson('/api/version', signal)) as { version?: unknown };
      return { ok: true, latencyMs: this.now() - t0, detail: `ollama ${typeof v.version === 'string' ? v.version : 'unknown version'}` };
    } catch (err) {
      return { ok: false, latencyMs: this.now() - t0, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  async models(signal?: AbortSignal): Promise<ModelInfo[]> {
    const tags = (await this.getJson('/api/tags', signal)) as { models?: unknown };
    if (!Array.isArray(tags.models)) throw new BackendError('ERR_BACKEND_PROTOCOL', `${this.base}/api/tags: no models array`, { url: this.base });
    let loaded: Set<string> | null = null;
    try {
      const ps = (await this.getJson('/api/ps', signal)) as { models?: unknown };
      if (Array.isArray(ps.models)) loaded = new Set(ps.models.map((m: { name?: unknown }) => (typeof m.name === 'string' ? m.name : '')));
    } catch {
      loaded = null; // older Ollama without /api/ps: loaded state unknown
    }
    const out: ModelInfo[] = [];
    for (const m of tags.models as { name?: unknown; model?: unknown }[]) {
      const name = typeof m.name === 'string' ? m.name : typeof m.model === 'string' ? m.model : null;
      if (name === null) continue;
      out.push({ id: name, backendId: this.id, kind: 'ollama', simulated: false, loaded: loaded === null ? null : loaded.has(name) });
    }
    return out;
  }

  async *chat(req: ChatRequest, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    assertSupported('ollama', req);
    const body: Record<string, unknown> = { model: req.model, messages: req.messages.map(ollamaMessage), stream: true, options: ollamaOptions(req) };
    if (req.tools !== undefined && req.toolChoice !== 'none') body['tools'] = req.tools;
    const rf = req.responseFormat;
    if (rf?.type === 'json_object') body['format'] = 'json';
    else if (rf?.type === 'json_schema') body['format'] = rf.json_schema.schema ?? {};
    yield* this.stream(`${this.base}/api/chat`, body, signal);
  }

  async *complete(req: CompletionRequest, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    assertSupported('ollama', req);
    // raw: the prompt is sent as is (OpenAI completions semantics), no chat template
    yield* this.stream(`${this.base}/api/generate`, { model: req.model, prompt: req.prompt, raw: true, stream: true, options: ollamaOptions(req) }, signal);
  }

  async embed(req: EmbedRequest, signal?: AbortSignal): Promise<EmbedResult> {
    const url = `${this.base}/api/embed`;
    const payload: Record<string, unknown> = { model: req.model, input: req.input };
    if (req.dimensions !== undefined) payload['dimensions'] = req.dimensions;
    const { res, controller } = await boundedFetch(url, { method: 'POST', body: JSON.stringify(payload), headers: { 'content-type': 'application/json' } }, this.limits, signal);
    if (!res.ok) throw await httpErrorFrom(res, this.limits, controller, url);
    const j = (await readJson(res, this.limits, controller, url)) as { embeddings?: unknown; prompt_eval_count?: unknown };
    if (!Array.isArray(j.embeddings) || j.embeddings.length !== req.input.length || !j.embeddings.every((v) => Array.isArray(v) && v.every((x) => typeof x === 'number'))) {
      throw new BackendError('ERR_BACKEND_PROTOCOL', `${url}: expected ${req.input.length} float arrays in embeddings`, { url });
    }
    return { vectors: j.embeddings, promptTokens: num(j.prompt_eval_count) ?? 0 };
  }

  private async *stream(url: string, payload: Record<string, unknown>, signal?: AbortSignal): AsyncIterable<ChatChunk> {
    const t0 = this.now();
    const body = JSON.stringify(payload);
    const { res, controller } = await boundedFetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } }, this.limits, signal);
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (!res.ok) throw await httpErrorFrom(res, this.limits, controller, url);
      let first: number | null = null;
      let completion = 0;
      let toolIndex = 0;
      for await (const line of readLines(readChunks(res, this.limits, controller, url), this.limits, url)) {
        if (line.trim() === '') continue;
        let j: OllamaChatLine;
        try {
          j = JSON.parse(line) as OllamaChatLine;
        } catch (err) {
          throw new BackendError('ERR_BACKEND_PROTOCOL', `invalid NDJSON line from ${url}`, { url, sample: line.slice(0, 200) }, { cause: err });
        }
        if (typeof j !== 'object' || j === null) throw new BackendError('ERR_BACKEND_PROTOCOL', `NDJSON line from ${url} is not an object`, { url });
        if (typeof j.error === 'string') throw new BackendError('ERR_BACKEND_HTTP', `ollama error: ${j.error}`, { url, detail: j.error });
        const content = j.message?.content ?? j.response;
        const calls: ToolCallDelta[] = [];
        if (Array.isArray(j.message?.tool_calls)) {
          for (const t of j.message.tool_calls as { id?: unknown; function?: { name?: unknown; arguments?: unknown } }[]) {
            const name = t.function?.name;
            if (typeof name !== 'string') throw new BackendError('ERR_BACKEND_PROTOCOL', `tool call without a name from ${url}`, { url });
            const args = t.function?.arguments;
            const id = typeof t.id === 'string' && t.id !== '' ? t.id : `call_${toolIndex}_${Math.floor(t0).toString(36)}`;
            calls.push({ index: toolIndex++, id, type: 'function', function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}) } });
          }
        }
        const hasText = typeof content === 'string' && content.length > 0;
        if (hasText || calls.length > 0) {
          if (first === null) first = this.now() - t0;
          completion++;
          yield { type: 'delta', content: hasText ? content : '', ...(calls.length > 0 ? { toolCalls: calls } : {}) };
        }
        if (j.done === true) {
          const finishReason: FinishReason = toolIndex > 0 ? 'tool_calls' : j.done_reason === 'length' ? 'length' : 'stop';
          yield {
            type: 'done',
            finishReason,
            usage: { promptTokens: num(j.prompt_eval_count) ?? 0, completionTokens: num(j.eval_count) ?? completion },
            timings: { firstTokenMs: first, totalMs: this.now() - t0 },
          };
          return;
        }
      }
      if (signal?.aborted === true) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted', { url });
      throw new BackendError('ERR_BACKEND_PROTOCOL', `stream from ${url} ended without a done line`, { url });
    } finally {
      signal?.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }
}
