/**
 * The local control API: HTTP on loopback, every request needs
 * `Authorization: Bearer <token>` with the token from `<data dir>/control.token`.
 * Routes are a table so other areas add theirs (`route('POST', '/propose', h)`)
 * without touching this file. JSON in, JSON out; errors as `{ error: { code, message } }`.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FednodeError } from '../../base/errors.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';
import { RuntimeError } from '../runtime/errors.js';
import { limitConnections } from '../api/limits.js';
import type { ConnectionLimits, LimitStats } from '../api/limits.js';

/** Control requests are small commands; 1 MiB bounds a mistaken upload. */
export const CONTROL_BODY_MAX_BYTES = 1024 * 1024;
/** Concurrent control connections (the CLI opens one at a time; a runaway script is bounded). */
export const CONTROL_MAX_CONNECTIONS = 64;
/**
 * Bounds of the control port. At the cap, the oldest connection that is not serving a token
 * holder's request is closed for the newcomer, so connections held open by anyone else (64
 * idle ones blocked every CLI command for ~24 s) never lock out the CLI. A local client sends
 * its headers and small body at once: 2 s / 10 s.
 */
export const CONTROL_LIMITS: ConnectionLimits = Object.freeze({
  maxConnections: CONTROL_MAX_CONNECTIONS,
  maxPerIp: CONTROL_MAX_CONNECTIONS, // every client is on loopback
  headersTimeoutMs: 2_000,
  bodyTimeoutMs: 10_000,
  evictUnprotected: true,
});

export type HttpMethod = 'GET' | 'POST' | 'DELETE';

export interface ControlRequest {
  readonly method: HttpMethod;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Parsed JSON body (undefined when empty). */
  readonly body: unknown;
  /** Aborted when the client goes away (for long-running commands). */
  readonly signal: AbortSignal;
}

export interface ControlResponse {
  status?: number;
  body: unknown;
}

export type ControlHandler = (req: ControlRequest) => Promise<ControlResponse> | ControlResponse;

export interface ControlServerOptions {
  host: string;
  port: number;
  token: string;
  logger?: Logger;
  /** @default CONTROL_LIMITS */
  limits?: Partial<ConnectionLimits>;
}

export interface ControlServer {
  readonly url: string;
  readonly port: number;
  route(method: HttpMethod, path: string, handler: ControlHandler): void;
  /** Connection counters (limits.ts). */
  readonly connections: Readonly<LimitStats>;
  close(): Promise<void>;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  const m = /^Bearer (\S+)$/.exec(header);
  if (m?.[1] === undefined) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function errorBody(code: string, message: string, data?: unknown): { error: { code: string; message: string; data?: unknown } } {
  return { error: { code, message, ...(data !== undefined ? { data } : {}) } };
}

async function readBody(req: IncomingMessage): Promise<{ ok: true; text: string } | { ok: false; status: number; message: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > CONTROL_BODY_MAX_BYTES) return { ok: false, status: 413, message: `body larger than ${CONTROL_BODY_MAX_BYTES} bytes` };
    chunks.push(chunk);
  }
  return { ok: true, text: Buffer.concat(chunks).toString('utf8') };
}

export async function startControlServer(o: ControlServerOptions): Promise<ControlServer> {
  const log = o.logger ?? nullLogger;
  const routes = new Map<string, ControlHandler>();
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://control');
      const method = (req.method ?? 'GET').toUpperCase();
      if (!tokenMatches(req.headers.authorization, o.token)) {
        res.setHeader('www-authenticate', 'Bearer realm="fednode-control"');
        send(res, 401, errorBody('ERR_CONTROL_UNAUTHORIZED', 'missing or wrong bearer token (see <data dir>/control.token)'));
        return;
      }
      limiter.protect(req, res); // a token holder's request is never evicted for a newcomer
      const handler = routes.get(`${method} ${url.pathname}`);
      if (handler === undefined) {
        const allowed = [...routes.keys()].filter((k) => k.endsWith(` ${url.pathname}`));
        if (allowed.length > 0) send(res, 405, errorBody('ERR_METHOD', `${method} not allowed on ${url.pathname}`, { allowed }));
        else send(res, 404, errorBody('ERR_NOT_FOUND', `no control endpoint ${url.pathname}`, { endpoints: [...routes.keys()] }));
        return;
      }
      const raw = await readBody(req);
      if (!raw.ok) {
        send(res, raw.status, errorBody('ERR_BODY', raw.message));
        return;
      }
      let body: unknown = undefined;
      if (raw.text.length > 0) {
        try {
          body = JSON.parse(raw.text) as unknown;
        } catch (e) {
          send(res, 400, errorBody('ERR_JSON', `request body is not JSON: ${e instanceof Error ? e.message : String(e)}`));
          return;
        }
      }
      const ac = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) ac.abort();
      });
      try {
        const out = await handler({ method: method as HttpMethod, path: url.pathname, query: url.searchParams, body, signal: ac.signal });
        send(res, out.status ?? 200, out.body);
      } catch (e) {
        if (e instanceof FednodeError) {
          const fe = e as FednodeError;
          send(res, 400, errorBody(fe.code, fe.message, fe.data));
        } else {
          log.error('control handler failed', { path: url.pathname, err: e });
          send(res, 500, errorBody('ERR_INTERNAL', e instanceof Error ? e.message : String(e)));
        }
      }
    })().catch((e: unknown) => {
      log.error('control request failed', { err: e });
      if (!res.headersSent) send(res, 500, errorBody('ERR_INTERNAL', 'internal error'));
    });
  });
  // long commands (propose waits for commit) are bounded by their handlers; receiving the request is bounded here
  const limiter = limitConnections(server, { ...CONTROL_LIMITS, ...(o.limits ?? {}) });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => reject(new RuntimeError('ERR_CONTROL_HTTP', `control API cannot listen on ${o.host}:${o.port}: ${e.message}`, { host: o.host, port: o.port }, { cause: e }));
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    connections: limiter.stats,
    route(method, path, handler) {
      routes.set(`${method} ${path}`, handler);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
