/**
 * Bounded HTTP for backend adapters: every call has a connect/headers timeout, an
 * idle timeout between body chunks, a maximum body size and AbortSignal support
 * (abort cancels the upstream request: fetch closes the socket).
 */
import { BackendError } from './types.js';

export interface HttpLimits {
  /** Time to response headers. @default 10000 */
  headersTimeoutMs: number;
  /** Longest silence between two body chunks while streaming. @default 60000 (a cold model load can pause a stream) */
  idleTimeoutMs: number;
  /** Largest non-streamed JSON body. @default 4 MiB (model lists of big Ollama libraries are < 1 MiB) */
  maxBodyBytes: number;
  /** Largest single NDJSON line / SSE event. @default 1 MiB (one token chunk is < 1 KiB) */
  maxLineBytes: number;
  /** Largest total streamed body. @default 64 MiB (a long completion is a few MiB of frames) */
  maxStreamBytes: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxBodyBytes: 4 * 1024 * 1024,
  maxLineBytes: 1024 * 1024,
  maxStreamBytes: 64 * 1024 * 1024,
});

function isAbortReason(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** Wraps fetch: headers timeout, caller abort, errors mapped to BackendError. The returned `cancel` aborts the request. */
export async function boundedFetch(
  url: string,
  init: { method: 'GET' | 'POST'; body?: string; headers?: Record<string, string> },
  limits: HttpLimits,
  signal: AbortSignal | undefined,
): Promise<{ res: Response; controller: AbortController }> {
  if (signal?.aborted === true) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted before start', { url });
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = (): void => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, limits.headersTimeoutMs);
  try {
    const res = await fetch(url, { method: init.method, body: init.body, headers: init.headers, signal: controller.signal, redirect: 'error' });
    return { res, controller };
  } catch (err) {
    signal?.removeEventListener('abort', onAbort);
    if (timedOut) throw new BackendError('ERR_BACKEND_TIMEOUT', `no response headers from ${url} within ${limits.headersTimeoutMs} ms`, { url, timeoutMs: limits.headersTimeoutMs }, { cause: err });
    if (controller.signal.aborted || isAbortReason(err)) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted', { url }, { cause: err });
    throw new BackendError('ERR_BACKEND_UNREACHABLE', `cannot reach ${url}: ${(err as Error).message}`, { url }, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the whole body (bounded, idle-timed) as text. */
export async function readBodyText(res: Response, limits: HttpLimits, controller: AbortController, url: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const c of readChunks(res, limits, controller, url)) {
    total += c.byteLength;
    if (total > limits.maxBodyBytes) {
      controller.abort();
      throw new BackendError('ERR_BACKEND_OVERSIZE', `response from ${url} larger than ${limits.maxBodyBytes} bytes`, { url, maxBytes: limits.maxBodyBytes });
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readJson(res: Response, limits: HttpLimits, controller: AbortController, url: string): Promise<unknown> {
  const text = await readBodyText(res, limits, controller, url);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BackendError('ERR_BACKEND_PROTOCOL', `invalid JSON from ${url}`, { url, sample: text.slice(0, 200) }, { cause: err });
  }
}

/** Body chunks with an idle timeout between chunks and a total-size bound. */
export async function* readChunks(res: Response, limits: HttpLimits, controller: AbortController, url: string): AsyncGenerator<Uint8Array> {
  const body = res.body;
  if (body === null) return;
  const reader: ReadableStreamDefaultReader<Uint8Array> = body.getReader();
  let total = 0;
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<'idle'>((resolve) => {
        timer = setTimeout(() => resolve('idle'), limits.idleTimeoutMs);
      });
      let r: Awaited<ReturnType<typeof reader.read>> | 'idle';
      try {
        r = await Promise.race([reader.read(), idle]);
      } catch (err) {
        if (controller.signal.aborted) throw new BackendError('ERR_BACKEND_ABORTED', 'request aborted', { url }, { cause: err });
        throw new BackendError('ERR_BACKEND_UNREACHABLE', `connection to ${url} failed mid-response: ${(err as Error).message}`, { url }, { cause: err });
      } finally {
        clearTimeout(timer);
      }
      if (r === 'idle') {
        controller.abort();
        throw new BackendError('ERR_BACKEND_TIMEOUT', `no data from ${url} for ${limits.idleTimeoutMs} ms`, { url, timeoutMs: limits.idleTimeoutMs });
      }
      if (r.done) return;
      const value: Uint8Array = r.value;
      total += value.byteLength;
      if (total > limits.maxStreamBytes) {
        controller.abort();
        throw new BackendError('ERR_BACKEND_OVERSIZE', `stream from ${url} larger than ${limits.maxStreamBytes} bytes`, { url, maxBytes: limits.maxStreamBytes });
      }
      yield value;
    }
  } finally {
    // Early exit (consumer stopped, error): cancel the upstream request.
    reader.cancel().catch(() => undefined);
    controller.abort();
  }
}

/** Splits a byte stream into lines (\n, strips \r), each bounded by maxLineBytes. */
export async function* readLines(chunks: AsyncIterable<Uint8Array>, limits: HttpLimits, url: string): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const c of chunks) {
    buf += decoder.decode(c, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      yield line;
    }
    if (buf.length > limits.maxLineBytes) throw new BackendError('ERR_BACKEND_OVERSIZE', `line from ${url} longer than ${limits.maxLineBytes} bytes`, { url, maxBytes: limits.maxLineBytes });
  }
  buf += decoder.decode();
  if (buf.length > 0) yield buf.replace(/\r$/, '');
}

/**
 * The error for a non-2xx upstream answer. 4xx (other than an unknown model) is the
 * request's fault: ERR_UPSTREAM_CLIENT keeping the status, the upstream's error code,
 * type, param and message, so the API can answer the client with them. The message
 * never carries the upstream URL (it is the operator's, not the client's business);
 * data.url keeps it for logs.
 */
export async function httpErrorFrom(res: Response, limits: HttpLimits, controller: AbortController, url: string): Promise<BackendError> {
  let detail = '';
  try {
    detail = (await readBodyText(res, { ...limits, maxBodyBytes: 64 * 1024 }, controller, url)).slice(0, 2000);
  } catch {
    detail = '(unreadable body)';
  }
  let message = detail;
  let upstreamCode: string | null = null;
  let upstreamType: string | null = null;
  let param: string | null = null;
  try {
    const j = JSON.parse(detail) as { error?: unknown; message?: unknown; type?: unknown; code?: unknown; param?: unknown };
    if (typeof j.error === 'string') message = j.error;
    else if (j.error === undefined && typeof j.message === 'string') {
      // vLLM: { object: 'error', message, type, param, code } at the top level
      message = j.message;
      if (typeof j.type === 'string') upstreamType = j.type;
      upstreamCode = typeof j.code === 'string' ? j.code : upstreamType;
      if (typeof j.param === 'string') param = j.param;
    }
    else if (typeof j.error === 'object' && j.error !== null) {
      const e = j.error as Record<string, unknown>;
      if (typeof e['message'] === 'string') message = e['message'];
      if (typeof e['type'] === 'string') upstreamType = e['type'];
      // llama-server puts the HTTP status in `code` and the reason in `type`
      upstreamCode = typeof e['code'] === 'string' ? e['code'] : upstreamType;
      if (typeof e['param'] === 'string') param = e['param'];
    }
  } catch {
    // not JSON: keep the text
  }
  const data = { url, status: res.status, detail: message, upstreamCode, upstreamType, param };
  if (res.status === 404 && /model/i.test(message)) return new BackendError('ERR_BACKEND_MODEL_NOT_FOUND', `upstream answered HTTP 404: ${message}`, data);
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) return new BackendError('ERR_UPSTREAM_CLIENT', message, data);
  return new BackendError('ERR_BACKEND_HTTP', `upstream answered HTTP ${res.status}: ${message}`, data);
}

/**
 * Server-sent events of a response: the joined `data:` lines of each event, bounded by
 * maxLineBytes. Comments and other fields are skipped.
 */
export async function* sseData(res: Response, limits: HttpLimits, controller: AbortController, url: string): AsyncGenerator<string> {
  let data = '';
  for await (const line of readLines(readChunks(res, limits, controller, url), limits, url)) {
    if (line.startsWith(':')) continue; // SSE comment / keep-alive
    if (line.startsWith('data:')) {
      data += (data === '' ? '' : '\n') + line.slice(5).replace(/^ /, '');
      if (data.length > limits.maxLineBytes) throw new BackendError('ERR_BACKEND_OVERSIZE', `SSE event from ${url} too large`, { url });
      continue;
    }
    if (line !== '' || data === '') continue; // other fields (event:, id:)
    const ev = data;
    data = '';
    yield ev;
  }
  if (data !== '') yield data;
}

export function trimSlash(u: string): string {
  return u.replace(/\/+$/, '');
}

/** Approximate token count for servers that report none (about 4 characters per token). */
export function estimateTokens(text: string): number {
  return Math.max(0, Math.ceil(text.length / 4));
}
