/**
 * The node's OpenAI-compatible HTTP API (node:http):
 *   POST /v1/chat/completions  (stream: SSE `data: {...}\n\n` ... `data: [DONE]`; or JSON)
 *   GET  /v1/models            (every model this node or a live member serves)
 *   GET  /healthz
 * Wire format follows OpenAI's (chatcmpl ids, chunk objects, usage, error shape).
 * Which node served the request: header `x-fednode-served-by` and field
 * `fednode: { served_by, attempts, timings }` in the response / final chunk.
 * Bound to 127.0.0.1 by default; any other address needs an API key (Bearer).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { FednodeError } from '../../base/errors.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import type { ChatMessage, ChatRequest } from '../backends/types.js';
import { InferError } from '../forward/errors.js';
import type { ModelEntry, RoutedEvent } from '../forward/router.js';
import { chatCompletionRequestSchema, describeZodError } from './schema.js';
import type { ChatCompletionRequest } from './schema.js';

export type ApiErrorCode = 'ERR_API_KEY_REQUIRED' | 'ERR_API_OPTIONS' | 'ERR_API_LISTEN';

export class ApiError extends FednodeError<ApiErrorCode> {
  constructor(code: ApiErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'ApiError';
  }
}

/** What the API needs from the node's router (InferenceRouter satisfies it). */
export interface ApiRouter {
  readonly localPeerId: string;
  models(): ModelEntry[];
  chat(req: ChatRequest, call: { requestId: string; signal?: AbortSignal }): AsyncIterable<RoutedEvent>;
  readonly routing?: number;
}

export interface ApiServerOptions {
  router: ApiRouter;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (any free port) */
  port?: number;
  /** Required when host is not a loopback address. null = no auth (loopback only). */
  apiKey?: string | null;
  /** Largest request body. @default 4 MiB (a long chat history; larger gets 413) */
  maxBodyBytes?: number;
  /** Name reported as served_by for this node. @default router.localPeerId */
  nodeName?: string;
  logger?: Logger;
  /** Unix-ms clock (for `created`). @default Date.now */
  now?: () => number;
  /** Extra fields for /healthz. */
  health?: () => Record<string, unknown>;
}

/**
 * Extra routes on the API's port (the dashboard, node/dashboard/): tried before the API's
 * own routes; returns true when it answered. `access` carries the API's key rule so the
 * mounted routes apply the same access rules (loopback by default, the key beyond it).
 */
export type MountedHandler = (req: IncomingMessage, res: ServerResponse, access: { readonly keyRequired: boolean; readonly host: string; authorised(req: IncomingMessage): boolean; keyMatches(key: string): boolean }) => boolean;

export interface ApiServer {
  readonly server: Server;
  /** Mount extra routes (see MountedHandler); at most 8, tried in order. */
  mount(handler: MountedHandler): void;
  listen(): Promise<{ host: string; port: number; url: string }>;
  /** Base URL once listening (http://host:port). */
  readonly url: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

type OpenAiErrorType = 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'server_error' | 'not_found_error';

function sendError(res: ServerResponse, status: number, type: OpenAiErrorType, message: string, param: string | null, code: string | null, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const body = JSON.stringify({ error: { message, type, param, code } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function contentText(c: ChatCompletionRequest['messages'][number]['content']): string {
  if (c === null) return '';
  if (typeof c === 'string') return c;
  return c.map((p) => p.text).join('');
}

export function toChatRequest(r: ChatCompletionRequest): ChatRequest {
  const messages: ChatMessage[] = r.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: contentText(m.content) }));
  const req: ChatRequest = { model: r.model, messages };
  const max = r.max_completion_tokens ?? r.max_tokens;
  if (max !== null && max !== undefined) req.maxTokens = max;
  if (r.temperature !== null && r.temperature !== undefined) req.temperature = r.temperature;
  if (r.top_p !== null && r.top_p !== undefined) req.topP = r.top_p;
  if (r.stop !== null && r.stop !== undefined) req.stop = typeof r.stop === 'string' ? [r.stop] : r.stop;
  if (r.seed !== null && r.seed !== undefined) req.seed = r.seed;
  return req;
}

function digestKey(k: string): Buffer {
  return createHash('sha256').update(k).digest();
}

export function createApiServer(opts: ApiServerOptions): ApiServer {
  const host = opts.host ?? '127.0.0.1';
  const apiKey = opts.apiKey ?? null;
  if (!LOOPBACK.has(host) && (apiKey === null || apiKey.length < 16)) {
    throw new ApiError('ERR_API_KEY_REQUIRED', `listening on ${host} (not loopback) requires an API key of at least 16 characters`, { host });
  }
  const maxBodyBytes = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  const router = opts.router;
  const nodeName = opts.nodeName ?? router.localPeerId;
  const log = opts.logger ?? nullLogger;
  const now = opts.now ?? Date.now;
  const keyDigest = apiKey === null ? null : digestKey(apiKey);
  let url = '';

  const authorised = (req: IncomingMessage): boolean => {
    if (keyDigest === null) return true;
    const h = req.headers['authorization'];
    if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
    return timingSafeEqual(digestKey(h.slice(7).trim()), keyDigest);
  };

  const readBody = (req: IncomingMessage, res: ServerResponse): Promise<Buffer | null> =>
    new Promise((resolve) => {
      const declared = Number(req.headers['content-length'] ?? NaN);
      const tooLarge = (): void => {
        res.once('finish', () => req.socket.destroy());
        sendError(res, 413, 'invalid_request_error', `request body larger than ${maxBodyBytes} bytes`, null, 'request_too_large', { connection: 'close' });
        resolve(null);
      };
      if (Number.isFinite(declared) && declared > maxBodyBytes) {
        tooLarge();
        return;
      }
      const parts: Buffer[] = [];
      let size = 0;
      let done = false;
      req.on('data', (c: Buffer) => {
        if (done) return;
        size += c.length;
        if (size > maxBodyBytes) {
          done = true;
          tooLarge();
          return;
        }
        parts.push(c);
      });
      req.on('end', () => {
        if (done) return;
        done = true;
        resolve(Buffer.concat(parts));
      });
      req.on('error', () => {
        if (done) return;
        done = true;
        resolve(null);
      });
    });

  const handleModels = (res: ServerResponse): void => {
    const data = router.models().map((m) => ({
      id: m.id,
      object: 'model',
      created: 0,
      owned_by: m.simulated ? 'fednode-simulated' : 'fednode',
      fednode: { served_by: m.servedBy, simulated: m.simulated, ...(m.aliasOf !== undefined ? { alias_of: m.aliasOf } : {}) },
    }));
    const body = JSON.stringify({ object: 'list', data });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const handleChat = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readBody(req, res);
    if (raw === null) return;
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      sendError(res, 400, 'invalid_request_error', `invalid JSON body: ${(err as Error).message}`, null, 'invalid_json');
      return;
    }
    const parsed = chatCompletionRequestSchema.safeParse(json);
    if (!parsed.success) {
      const d = describeZodError(parsed.error);
      sendError(res, 400, 'invalid_request_error', d.message, d.param, 'invalid_request');
      return;
    }
    const body = parsed.data;
    const models = router.models();
    if (!models.some((m) => m.id === body.model)) {
      const list = models.map((m) => m.id);
      sendError(res, 404, 'invalid_request_error', `The model '${body.model}' does not exist or is not served by any live member. Available models: ${list.length === 0 ? '(none)' : list.join(', ')}`, 'model', 'model_not_found');
      return;
    }
    const chatReq = toChatRequest(body);
    const stream = body.stream === true;
    const includeUsage = body.stream_options?.include_usage === true;
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(now() / 1000);
    const ac = new AbortController();
    let complete = false;
    res.on('close', () => {
      if (!complete) ac.abort(); // client went away: abort the backend / forwarded request
    });
    const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}): string =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, system_fingerprint: null, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...extra })}\n\n`;
    let text = '';
    let servedBy = '';
    let attempts = 0;
    try {
      for await (const ev of router.chat(chatReq, { requestId: id, signal: ac.signal })) {
        if (ev.type === 'start') {
          servedBy = ev.servedBy;
          attempts = ev.attempts;
          if (stream) {
            res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-fednode-served-by': servedBy, 'x-request-id': id });
            res.write(chunk({ role: 'assistant', content: '' }, null));
          }
        } else if (ev.type === 'delta') {
          if (stream) res.write(chunk({ content: ev.content }, null));
          else text += ev.content;
        } else {
          servedBy = ev.servedBy;
          const usage = { prompt_tokens: ev.usage.promptTokens, completion_tokens: ev.usage.completionTokens, total_tokens: ev.usage.promptTokens + ev.usage.completionTokens };
          const fednode = { served_by: ev.servedBy, attempts, timings: { first_token_ms: ev.timings.firstTokenMs, total_ms: ev.timings.totalMs } };
          complete = true;
          if (stream) {
            res.write(chunk({}, ev.finishReason, { fednode }));
            if (includeUsage) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, system_fingerprint: null, choices: [], usage })}\n\n`);
            res.end('data: [DONE]\n\n');
          } else {
            const out = JSON.stringify({
              id,
              object: 'chat.completion',
              created,
              model: body.model,
              system_fingerprint: null,
              choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: ev.finishReason }],
              usage,
              fednode,
            });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out), 'x-fednode-served-by': servedBy, 'x-request-id': id });
            res.end(out);
          }
        }
      }
      if (!complete) throw new InferError('ERR_UPSTREAM_MID_STREAM', 'the serving node ended the stream without a final chunk');
    } catch (err) {
      complete = true;
      if (ac.signal.aborted && res.destroyed) return; // client gone: nothing to tell
      const e = err instanceof InferError ? err : null;
      const msg = err instanceof Error ? err.message : String(err);
      if (res.headersSent) {
        // After the first token: end the SSE stream with an error event (OpenAI clients raise it).
        res.end(`data: ${JSON.stringify({ error: { message: msg, type: 'server_error', param: null, code: e?.code ?? 'internal_error' } })}\n\n`);
        return;
      }
      log.warn('chat request failed', { err: err as Error, model: body.model });
      switch (e?.code) {
        case 'ERR_MODEL_NOT_FOUND':
          sendError(res, 404, 'invalid_request_error', msg, 'model', 'model_not_found');
          return;
        case 'ERR_BUSY':
          sendError(res, 429, 'rate_limit_error', msg, null, 'overloaded', { 'retry-after': String((e.data['retryAfterS'] as number | undefined) ?? 1) });
          return;
        case 'ERR_DEADLINE':
          sendError(res, 504, 'server_error', msg, null, 'deadline_exceeded');
          return;
        case 'ERR_ALL_CANDIDATES_FAILED':
          sendError(res, 502, 'server_error', msg, null, 'upstream_failed');
          return;
        default:
          sendError(res, 500, 'server_error', msg, null, e?.code ?? 'internal_error');
      }
    }
  };

  const mounted: MountedHandler[] = [];
  const access = { keyRequired: keyDigest !== null, host, authorised, keyMatches: (k: string) => keyDigest === null || timingSafeEqual(digestKey(k), keyDigest) };
  const server = createServer({ noDelay: true, keepAlive: true }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    res.setHeader('x-fednode-node', nodeName);
    for (const h of mounted) if (h(req, res, access)) return;
    if (path === '/healthz') {
      if (req.method !== 'GET') return sendError(res, 405, 'invalid_request_error', 'use GET', null, 'method_not_allowed');
      const body = JSON.stringify({ status: 'ok', node: nodeName, models: router.models().length, routing: router.routing ?? 0, ...(opts.health?.() ?? {}) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
      return;
    }
    if (!authorised(req)) return sendError(res, 401, 'authentication_error', 'missing or wrong API key (Authorization: Bearer <key>)', null, 'invalid_api_key');
    if (path === '/v1/models') {
      if (req.method !== 'GET') return sendError(res, 405, 'invalid_request_error', 'use GET', null, 'method_not_allowed');
      return handleModels(res);
    }
    if (path === '/v1/chat/completions') {
      if (req.method !== 'POST') return sendError(res, 405, 'invalid_request_error', 'use POST', null, 'method_not_allowed');
      handleChat(req, res).catch((err: unknown) => {
        log.error('chat handler crashed', { err: err as Error });
        sendError(res, 500, 'server_error', 'internal error', null, 'internal_error');
      });
      return;
    }
    sendError(res, 404, 'invalid_request_error', `unknown endpoint ${req.method ?? ''} ${path ?? ''}`, null, 'unknown_url');
  });
  // Bounds: slow clients cannot hold sockets forever before sending headers / body.
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000; // time to RECEIVE the whole request (not the streamed response)
  server.maxHeadersCount = 100;

  return {
    server,
    mount(h) {
      if (mounted.length >= 8) throw new ApiError('ERR_API_OPTIONS', 'at most 8 mounted route handlers'); // a handful of extensions, not a router
      mounted.push(h);
    },
    get url() {
      return url;
    },
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', (err) => reject(new ApiError('ERR_API_LISTEN', `cannot listen on ${host}:${opts.port ?? 0}: ${err.message}`, { host }, { cause: err })));
        server.listen(opts.port ?? 0, host, () => {
          const a = server.address() as AddressInfo;
          const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          url = `http://${h}:${a.port}`;
          resolve({ host: a.address, port: a.port, url });
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
