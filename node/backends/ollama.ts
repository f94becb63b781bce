/**
 * Ollama's native API: POST /api/chat (NDJSON stream), GET /api/tags (installed
 * models), GET /api/ps (loaded models), GET /api/version (health).
 */
import { boundedFetch, readJson, readChunks, readLines, httpErrorFrom, trimSlash, DEFAULT_HTTP_LIMITS } from './http.js';
import type { HttpLimits } from './http.js';
import { BackendError } from './types.js';
import type { Backend, ChatChunk, ChatRequest, FinishReason, Health, ModelInfo } from './types.js';

export interface OllamaBackendOptions {
  id?: string;
  /** e.g. http://127.0.0.1:11434 */
  baseUrl: string;
  limits?: Partial<HttpLimits>;
  /** Injected clock for timings (ms, monotonic). @default performance.now */
  now?: () => number;
}

interface OllamaChatLine {
  message?: { content?: unknown };
  done?: unknown;
  done_reason?: unknown;
  prompt_eval_count?: unknown;
  eval_count?: unknown;
  error?: unknown;
}

function num(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : null;
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
    const url = `${this.base}/api/chat`;
    const t0 = this.now();
    const options: Record<string, unknown> = {};
    if (req.maxTokens !== undefined) options['num_predict'] = req.maxTokens;
    if (req.temperature !== undefined) options['temperature'] = req.temperature;
    if (req.topP !== undefined) options['top_p'] = req.topP;
    if (req.stop !== undefined) options['stop'] = req.stop;
    if (req.seed !== undefined) options['seed'] = req.seed;
    const body = JSON.stringify({ model: req.model, messages: req.messages, stream: true, options });
    const { res, controller } = await boundedFetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } }, this.limits, signal);
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (!res.ok) throw await httpErrorFrom(res, this.limits, controller, url);
      let first: number | null = null;
      let completion = 0;
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
        const content = j.message?.content;
        if (typeof content === 'string' && content.length > 0) {
          if (first === null) first = this.now() - t0;
          completion++;
          yield { type: 'delta', content };
        }
        if (j.done === true) {
          const finishReason: FinishReason = j.done_reason === 'length' ? 'length' : 'stop';
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
