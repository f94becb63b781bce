/**
 * CLI-ready client functions (the CLI prints; these never do):
 *   infer(): streams a chat completion from a node's API, returns served_by and tokens/s
 *   listModels(): GET /v1/models
 */
import { FednodeError } from '../../base/errors.js';

export type ClientErrorCode = 'ERR_CLIENT_HTTP' | 'ERR_CLIENT_PROTOCOL' | 'ERR_CLIENT_STREAM' | 'ERR_CLIENT_UNREACHABLE';

export class ClientError extends FednodeError<ClientErrorCode> {
  constructor(code: ClientErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'ClientError';
  }
}

export interface InferOptions {
  /** Node API base, e.g. http://127.0.0.1:8787 */
  url: string;
  apiKey?: string | null;
  model: string;
  prompt: string;
  system?: string;
  maxTokens?: number;
  /** Called with each piece of text as it arrives. */
  onToken?: (text: string) => void;
  signal?: AbortSignal;
  /** Monotonic clock (ms). @default performance.now */
  now?: () => number;
}

export interface InferResult {
  text: string;
  servedBy: string;
  finishReason: string | null;
  completionTokens: number;
  promptTokens: number;
  /** completion tokens / seconds from first token to end (null if < 2 tokens). */
  tokensPerSecond: number | null;
  firstTokenMs: number | null;
  totalMs: number;
  attempts: number | null;
}

/** Bound on one SSE line from the node (a chunk is < 1 KiB). */
const MAX_LINE = 1024 * 1024;

function headers(apiKey: string | null | undefined, json: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (json) h['content-type'] = 'application/json';
  if (apiKey !== undefined && apiKey !== null && apiKey !== '') h['authorization'] = `Bearer ${apiKey}`;
  return h;
}

async function httpError(res: Response): Promise<ClientError> {
  let msg = `HTTP ${res.status}`;
  try {
    const j = (await res.json()) as { error?: { message?: string; code?: string } };
    if (j.error?.message !== undefined) msg = `HTTP ${res.status}: ${j.error.message}`;
  } catch {
    // not JSON
  }
  return new ClientError('ERR_CLIENT_HTTP', msg, { status: res.status, retryAfter: res.headers.get('retry-after') });
}

export async function infer(o: InferOptions): Promise<InferResult> {
  const now = o.now ?? (() => performance.now());
  const t0 = now();
  const messages = [...(o.system !== undefined ? [{ role: 'system', content: o.system }] : []), { role: 'user', content: o.prompt }];
  let res: Response;
  try {
    res = await fetch(`${o.url.replace(/\/+$/, '')}/v1/chat/completions`, {
      method: 'POST',
      headers: headers(o.apiKey, true),
      body: JSON.stringify({ model: o.model, messages, stream: true, stream_options: { include_usage: true }, ...(o.maxTokens !== undefined ? { max_tokens: o.maxTokens } : {}) }),
      signal: o.signal ?? null,
    });
  } catch (err) {
    throw new ClientError('ERR_CLIENT_UNREACHABLE', `cannot reach ${o.url}: ${(err as Error).message}`, { url: o.url }, { cause: err });
  }
  if (!res.ok) throw await httpError(res);
  if (res.body === null) throw new ClientError('ERR_CLIENT_PROTOCOL', 'empty response body');
  let servedBy = res.headers.get('x-fednode-served-by') ?? '';
  let text = '';
  let finishReason: string | null = null;
  let completionTokens = 0;
  let promptTokens = 0;
  let deltas = 0;
  let first: number | null = null;
  let attempts: number | null = null;
  let sawDone = false;
  const decoder = new TextDecoder();
  let buf = '';
  const reader: ReadableStreamDefaultReader<Uint8Array> = res.body.getReader();
  const handle = (data: string): void => {
    if (data === '[DONE]') {
      sawDone = true;
      return;
    }
    const j = JSON.parse(data) as {
      error?: { message?: string; code?: string };
      choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
      usage?: { prompt_tokens?: number; completion_tokens?: number };
      fednode?: { served_by?: string; attempts?: number };
    };
    if (j.error !== undefined) throw new ClientError('ERR_CLIENT_STREAM', `stream failed: ${j.error.message ?? 'error'}`, { code: j.error.code });
    const c = j.choices?.[0];
    if (typeof c?.delta?.content === 'string' && c.delta.content.length > 0) {
      if (first === null) first = now() - t0;
      deltas++;
      text += c.delta.content;
      o.onToken?.(c.delta.content);
    }
    if (typeof c?.finish_reason === 'string') finishReason = c.finish_reason;
    if (j.usage !== undefined && j.usage !== null) {
      promptTokens = j.usage.prompt_tokens ?? 0;
      completionTokens = j.usage.completion_tokens ?? 0;
    }
    if (j.fednode?.served_by !== undefined) servedBy = j.fednode.served_by;
    if (j.fednode?.attempts !== undefined) attempts = j.fednode.attempts;
  };
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    buf += decoder.decode(r.value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line.startsWith('data: ')) handle(line.slice(6));
    }
    if (buf.length > MAX_LINE) throw new ClientError('ERR_CLIENT_PROTOCOL', 'SSE line too long');
  }
  if (!sawDone) throw new ClientError('ERR_CLIENT_STREAM', 'stream ended without [DONE]');
  const total = now() - t0;
  const tokens = completionTokens > 0 ? completionTokens : deltas;
  const genMs = first === null ? 0 : total - first;
  return {
    text,
    servedBy,
    finishReason,
    completionTokens: tokens,
    promptTokens,
    tokensPerSecond: tokens >= 2 && genMs > 0 ? (tokens / genMs) * 1000 : null,
    firstTokenMs: first,
    totalMs: total,
    attempts,
  };
}

export interface ModelListing {
  id: string;
  ownedBy: string;
  servedBy: string[];
  simulated: boolean;
}

export async function listModels(o: { url: string; apiKey?: string | null; signal?: AbortSignal }): Promise<ModelListing[]> {
  let res: Response;
  try {
    res = await fetch(`${o.url.replace(/\/+$/, '')}/v1/models`, { headers: headers(o.apiKey, false), signal: o.signal ?? null });
  } catch (err) {
    throw new ClientError('ERR_CLIENT_UNREACHABLE', `cannot reach ${o.url}: ${(err as Error).message}`, { url: o.url }, { cause: err });
  }
  if (!res.ok) throw await httpError(res);
  const j = (await res.json()) as { data?: { id?: unknown; owned_by?: unknown; fednode?: { served_by?: unknown; simulated?: unknown } }[] };
  if (!Array.isArray(j.data)) throw new ClientError('ERR_CLIENT_PROTOCOL', '/v1/models: no data array');
  return j.data
    .filter((m) => typeof m.id === 'string')
    .map((m) => ({
      id: m.id as string,
      ownedBy: typeof m.owned_by === 'string' ? m.owned_by : '',
      servedBy: Array.isArray(m.fednode?.served_by) ? (m.fednode.served_by as unknown[]).filter((x): x is string => typeof x === 'string') : [],
      simulated: m.fednode?.simulated === true,
    }));
}
