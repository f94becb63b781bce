/**
 * OpenAI-compatible servers (vLLM, llama.cpp server, TGI, LM Studio, LocalAI):
 * POST /v1/chat/completions with `stream: true` (SSE), GET /v1/models.
 */
import { boundedFetch, readJson, readChunks, readLines, httpErrorFrom, trimSlash, estimateTokens, DEFAULT_HTTP_LIMITS } from './http.js';
import type { HttpLimits } from './http.js';
import { BackendError } from './types.js';
import type { Backend, ChatChunk, ChatRequest, FinishReason, Health, ModelInfo } from './types.js';

export interface OpenAiBackendOptions {
  id?: string;
  /** Base URL including /v1, e.g. http://127.0.0.1:8000/v1 */
  baseUrl: string;
  /** Sent as `Authorization: Bearer` when set. */
  apiKey?: string | null;
  limits?: Partial<HttpLimits>;
  now?: () => number;
}

interface SseChunk {
  choices?: { delta?: { content?: unknown }; finish_reason?: unknown }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
  error?: unknown;
}

function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : null;
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
    const url = `${this.base}/chat/completions`;
    const t0 = this.now();
    const payload: Record<string, unknown> = { model: req.model, messages: req.messages, stream: true, stream_options: { include_usage: true } };
    if (req.maxTokens !== undefined) payload['max_tokens'] = req.maxTokens;
    if (req.temperature !== undefined) payload['temperature'] = req.temperature;
    if (req.topP !== undefined) payload['top_p'] = req.topP;
    if (req.stop !== undefined) payload['stop'] = req.stop;
    if (req.seed !== undefined) payload['seed'] = req.seed;
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
      let data = '';
      for await (const line of readLines(readChunks(res, this.limits, controller, url), this.limits, url)) {
        if (line.startsWith(':')) continue; // SSE comment / keep-alive
        if (line.startsWith('data:')) {
          data += (data === '' ? '' : '\n') + line.slice(5).replace(/^ /, '');
          if (data.length > this.limits.maxLineBytes) throw new BackendError('ERR_BACKEND_OVERSIZE', `SSE event from ${url} too large`, { url });
          continue;
        }
        if (line !== '' || data === '') continue; // other fields (event:, id:) ignored
        const ev = data;
        data = '';
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
        const content = choice?.delta?.content;
        if (typeof content === 'string' && content.length > 0) {
          if (first === null) first = this.now() - t0;
          text += content;
          deltas++;
          yield { type: 'delta', content };
        }
        if (choice?.finish_reason === 'length') finishReason = 'length';
        else if (typeof choice?.finish_reason === 'string') finishReason = 'stop';
        if (j.usage !== undefined && j.usage !== null) {
          promptTokens = num(j.usage.prompt_tokens);
          completionTokens = num(j.usage.completion_tokens);
        }
      }
      if (!sawDone && finishReason === null) {
        if (signal?.aborted === true) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted', { url });
        throw new BackendError('ERR_BACKEND_PROTOCOL', `stream from ${url} ended without [DONE] or finish_reason`, { url });
      }
      const promptText = req.messages.map((m) => m.content).join('\n');
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
