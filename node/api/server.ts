/**
 * The node's inference HTTP API (node:http): OpenAI-compatible and Ollama-compatible.
 *   POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, POST /v1/responses
 *   GET  /v1/models, GET /v1/models/{id}
 *   POST /api/chat, /api/generate, /api/embed, /api/show; GET /api/tags, /api/ps, /api/version
 *   GET  /healthz
 * Every inference endpoint routes through the cluster (model-aware, least-loaded,
 * failover, forwarded over libp2p). Which node served: header `x-fednode-served-by` and
 * `fednode: { served_by, ... }` in OpenAI replies.
 * Bound to 127.0.0.1 by default; any other address needs an API key (Bearer). On loopback
 * the Host and Origin checks of security.ts apply. Connections are bounded (limits.ts).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import { FednodeError } from '../../base/errors.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { WarnLimiter } from '../warn-limiter.js';
import type { WarningCount } from '../warn-limiter.js';
import { DEFAULT_MAX_BODY_BYTES, sendError } from './http.js';
import { makeContext } from './context.js';
import type { ApiContext, ApiRouter } from './context.js';
import { createGuard, isLoopbackBind } from './security.js';
import { limitConnections } from './limits.js';
import type { ConnectionLimits, LimitStats } from './limits.js';
import { handleGeneration } from './openai-chat.js';
import { handleEmbeddings, handleModel, handleModels } from './openai-misc.js';
import { handleResponses } from './responses.js';
import { ollamaRoutes } from './ollama.js';

export type { ApiRouter } from './context.js';
export { toChatRequest } from './openai-chat.js';

export type ApiErrorCode = 'ERR_API_KEY_REQUIRED' | 'ERR_API_OPTIONS' | 'ERR_API_LISTEN';

export class ApiError extends FednodeError<ApiErrorCode> {
  constructor(code: ApiErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'ApiError';
  }
}

/** Connection bounds of the API. Defaults: a home lab's apps and UIs, far above real use, far below fd limits. */
export const DEFAULT_API_LIMITS: ConnectionLimits = Object.freeze({
  maxConnections: 1024, // a node held 14,428 fds without a cap; 1024 is the default soft fd limit
  maxPerIp: 256, // one machine's apps; on loopback every client shares 127.0.0.1
  headersTimeoutMs: 10_000, // a real client sends headers at once
  bodyTimeoutMs: 60_000, // a 4 MiB body over a slow Wi-Fi link
});

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
  /** Origins allowed to call the API from a browser (CORS), besides the node's own. @default [] */
  corsOrigins?: readonly string[];
  /** Other origins of this node (its dashboard on another port), allowed like the API's own. */
  ownOrigins?: () => readonly string[];
  /** @default DEFAULT_API_LIMITS */
  limits?: Partial<ConnectionLimits>;
  /** Name reported as served_by for this node. @default router.localPeerId */
  nodeName?: string;
  /** Version reported by /api/version. @default '0.0.0' */
  version?: string;
  logger?: Logger;
  /** Unix-ms clock (for `created`, warning windows). @default Date.now */
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
  /** Connection counters (limits.ts). */
  readonly connections: Readonly<LimitStats>;
  /** Rate-limited warnings by kind (metrics). */
  warnings(): Readonly<Record<string, WarningCount>>;
  close(): Promise<void>;
}

function digestKey(k: string): Buffer {
  return createHash('sha256').update(k).digest();
}

type Handler = (ctx: ApiContext, req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** GET / (Ollama clients probe it: "Ollama is running") and /healthz, answered without a key. True when answered. */
function answerHealth(path: string, method: string, res: ServerResponse, health: () => Record<string, unknown>): boolean {
  if (path !== '/healthz' && !(path === '/' && method === 'GET')) return false;
  if (method !== 'GET' && method !== 'HEAD') {
    sendError(res, 405, 'invalid_request_error', 'use GET', null, 'method_not_allowed');
    return true;
  }
  if (path === '/') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('fednode is running (OpenAI API at /v1, Ollama API at /api)');
    return true;
  }
  const body = JSON.stringify(health());
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
  return true;
}

export function createApiServer(opts: ApiServerOptions): ApiServer {
  const host = opts.host ?? '127.0.0.1';
  const apiKey = opts.apiKey ?? null;
  if (!isLoopbackBind(host) && (apiKey === null || apiKey.length < 16)) {
    throw new ApiError('ERR_API_KEY_REQUIRED', `listening on ${host} (not loopback) requires an API key of at least 16 characters`, { host });
  }
  const router = opts.router;
  const nodeName = opts.nodeName ?? router.localPeerId;
  const log = opts.logger ?? nullLogger;
  const now = opts.now ?? Date.now;
  const limiter = new WarnLimiter(log, { now });
  const keyDigest = apiKey === null ? null : digestKey(apiKey);
  let url = '';
  let port = 0;
  const guard = createGuard({ host, port: () => port, corsOrigins: opts.corsOrigins ?? [], ...(opts.ownOrigins === undefined ? {} : { ownOrigins: opts.ownOrigins }) });
  const ctx = makeContext({ router, maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES, nodeName, now, warn: (msg, data) => limiter.warn(msg, msg, data) });

  const authorised = (req: IncomingMessage): boolean => {
    if (keyDigest === null) return true;
    const h = req.headers['authorization'];
    if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
    return timingSafeEqual(digestKey(h.slice(7).trim()), keyDigest);
  };

  const routes = new Map<string, Handler>([
    ['GET /v1/models', (c, _q, s) => handleModels(c, s)],
    ['POST /v1/chat/completions', (c, q, s) => handleGeneration(c, 'chat', q, s)],
    ['POST /v1/completions', (c, q, s) => handleGeneration(c, 'completion', q, s)],
    ['POST /v1/embeddings', handleEmbeddings],
    ['POST /v1/responses', handleResponses],
    ...ollamaRoutes(opts.version ?? '0.0.0'),
  ]);

  const mounted: MountedHandler[] = [];
  const access = { keyRequired: keyDigest !== null, host, authorised, keyMatches: (k: string) => keyDigest === null || timingSafeEqual(digestKey(k), keyDigest) };
  const server = createServer({ noDelay: true, keepAlive: true }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = (req.method ?? 'GET').toUpperCase();
    res.setHeader('x-fednode-node', nodeName);
    if (!guard.check(req, res)) return;
    for (const h of mounted) if (h(req, res, access)) return;
    if (answerHealth(path, method, res, () => ({ status: 'ok', node: nodeName, models: router.models().length, routing: router.routing ?? 0, ...(opts.health?.() ?? {}) }))) return;
    if (!authorised(req)) return sendError(res, 401, 'authentication_error', 'missing or wrong API key (Authorization: Bearer <key>)', null, 'invalid_api_key');
    let handler = routes.get(`${method} ${path}`);
    if (handler === undefined && method === 'GET' && path.startsWith('/v1/models/')) {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      handler = (c, _q, s) => handleModel(c, id, s);
    }
    if (handler === undefined) {
      const other = [...routes.keys()].filter((k) => k.endsWith(` ${path}`));
      if (other.length > 0) return sendError(res, 405, 'invalid_request_error', `use ${other.map((k) => k.split(' ')[0]).join(' or ')} for ${path}`, null, 'method_not_allowed');
      return sendError(res, 404, 'invalid_request_error', `unknown endpoint ${method} ${path}`, null, 'unknown_url');
    }
    Promise.resolve(handler(ctx, req, res)).catch((err: unknown) => {
      log.error('API handler crashed', { err: err as Error, path });
      sendError(res, 500, 'server_error', 'internal error', null, 'internal_error');
    });
  });
  const limits = limitConnections(server, { ...DEFAULT_API_LIMITS, ...(opts.limits ?? {}) });
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
    connections: limits.stats,
    warnings: () => limiter.counts(),
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', (err) => reject(new ApiError('ERR_API_LISTEN', `cannot listen on ${host}:${opts.port ?? 0}: ${err.message}`, { host }, { cause: err })));
        server.listen(opts.port ?? 0, host, () => {
          const a = server.address() as AddressInfo;
          port = a.port;
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
