/**
 * Browser-world safety of a loopback API. A web page the user visits can make the
 * browser send requests to 127.0.0.1; two defences keep it out:
 *  - Host check (DNS rebinding): on loopback, only `Host` values naming this node's
 *    loopback addresses (127.0.0.1, localhost, [::1]) with its port are served; a
 *    rebinding page's requests carry its own host name.
 *  - Origin check (cross-site requests): a request carrying `Origin` is served only when
 *    the origin is the node's own (its dashboard) or listed in `api.cors.origins`.
 *    CORS headers and preflight answers are given to listed origins only.
 * JSON endpoints also require `application/json` (http.ts), which a cross-site "simple"
 * request cannot send without a preflight.
 * Beyond loopback, the API key is the protection and the Host check does not apply.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from './http.js';

export interface SecurityOptions {
  /** The address the API listens on. */
  host: string;
  /** Its port, once listening. */
  port: () => number;
  /** Extra allowed origins (`api.cors.origins`), e.g. 'http://localhost:3000'. */
  corsOrigins: readonly string[];
  /** More origins of this node itself (its dashboard when served on another port): allowed, no CORS needed. */
  ownOrigins?: () => readonly string[];
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
const LOOPBACK_BINDS = new Set(['127.0.0.1', '::1', 'localhost']);

/** Headers a browser client may send (the openai SDK adds x-stainless-*). */
const ALLOWED_HEADERS = 'authorization, content-type, accept, x-request-id, openai-organization, openai-project, x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout';

export function isLoopbackBind(host: string): boolean {
  return LOOPBACK_BINDS.has(host);
}

export function normaliseOrigin(o: string): string {
  return o.replace(/\/+$/, '').toLowerCase();
}

export interface Guard {
  /** true = go on; false = answered (403, or a preflight). */
  check(req: IncomingMessage, res: ServerResponse): boolean;
}

export function createGuard(o: SecurityOptions): Guard {
  const loopback = isLoopbackBind(o.host);
  const listed = new Set(o.corsOrigins.map(normaliseOrigin));
  const ownHosts = (): Set<string> => new Set(LOOPBACK_NAMES.map((n) => `${n}:${o.port()}`));
  const ownOrigins = (): Set<string> => new Set([...LOOPBACK_NAMES.map((n) => `http://${n}:${o.port()}`), ...(o.ownOrigins?.() ?? []).map(normaliseOrigin)]);
  return {
    check(req, res) {
      if (loopback) {
        const host = (req.headers.host ?? '').toLowerCase();
        if (!ownHosts().has(host)) {
          sendError(res, 403, 'permission_error', `Host '${host}' is not this node's loopback address (DNS rebinding protection); use http://127.0.0.1:${o.port()}`, null, 'host_not_allowed');
          return false;
        }
      }
      const originHeader = req.headers.origin;
      if (originHeader === undefined) return true; // not a browser cross-origin request
      const origin = normaliseOrigin(originHeader);
      const isListed = listed.has(origin);
      if (!isListed && !ownOrigins().has(origin)) {
        sendError(res, 403, 'permission_error', `Origin '${originHeader}' is not allowed; add it to api.cors.origins to let that page use this API`, null, 'origin_not_allowed');
        return false;
      }
      if (isListed) {
        res.setHeader('access-control-allow-origin', originHeader);
        res.setHeader('vary', 'Origin');
        res.setHeader('access-control-expose-headers', 'x-fednode-served-by, x-request-id, retry-after');
        if (req.method === 'OPTIONS') {
          res.writeHead(204, {
            'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
            'access-control-allow-headers': ALLOWED_HEADERS,
            'access-control-max-age': '600',
            'content-length': '0',
          });
          res.end();
          return false;
        }
      } else if (req.method === 'OPTIONS') {
        res.writeHead(204, { 'content-length': '0' }); // this node's own origin: no CORS needed
        res.end();
        return false;
      }
      return true;
    },
  };
}
