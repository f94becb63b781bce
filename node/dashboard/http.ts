/**
 * The dashboard's routes on the inference API's port (mounted through node/api/server.ts's
 * MountedHandler, so the API's access rules hold):
 *   GET /dashboard/              the page (index.html, app.js, style.css: plain files shipped in the package)
 *   GET /dashboard/snapshot.json one JSON snapshot (node/dashboard/snapshot.ts)
 *   GET /dashboard/events        server-sent events: `snapshot` every push period (sse.ts bounds)
 * Access: on loopback without a key, only Host headers naming loopback are served (a page on
 * another site cannot read the dashboard through DNS rebinding); with an API key, the key as
 * `Authorization: Bearer` or as the password of HTTP Basic (a browser asks for it, then sends it
 * with every request of the page, the event stream included).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { FednodeError } from '../../base/errors.js';
import type { MountedHandler } from '../api/server.js';
import type { SseHub } from './sse.js';

export type DashboardErrorCode = 'ERR_DASHBOARD_ASSETS';

export class DashboardError extends FednodeError<DashboardErrorCode> {
  constructor(code: DashboardErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'DashboardError';
  }
}

export const DASHBOARD_PATH = '/dashboard/';
const ASSETS = { 'index.html': 'text/html; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8' } as const;
type AssetName = keyof typeof ASSETS;
export type DashboardAssets = Readonly<Record<AssetName, Buffer>>;

/** From the sources (node/dashboard/assets/) or from the package (dist/node/dashboard/ -> node/dashboard/assets/). */
const ASSET_DIRS = [new URL('./assets/', import.meta.url), new URL('../../../node/dashboard/assets/', import.meta.url)];

export async function loadDashboardAssets(): Promise<DashboardAssets> {
  const tried: string[] = [];
  for (const dir of ASSET_DIRS) {
    try {
      const entries = await Promise.all((Object.keys(ASSETS) as AssetName[]).map(async (n) => [n, await readFile(new URL(n, dir))] as const));
      return Object.fromEntries(entries) as Record<AssetName, Buffer>;
    } catch {
      tried.push(fileURLToPath(dir));
    }
  }
  throw new DashboardError('ERR_DASHBOARD_ASSETS', `dashboard files (index.html, app.js, style.css) not found in ${tried.join(' or ')}: the package is incomplete; reinstall fednode`, { tried });
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function hostName(h: string | undefined): string | null {
  if (h === undefined) return null;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(h.trim().toLowerCase());
  return m?.[1] ?? null;
}

function basicPassword(req: IncomingMessage): string | null {
  const h = req.headers['authorization'];
  if (typeof h !== 'string' || !h.startsWith('Basic ')) return null;
  const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i < 0 ? null : decoded.slice(i + 1);
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    // Self-contained: nothing loads from elsewhere, and no other site may frame the page.
    'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(body);
}

export interface DashboardRoutes {
  assets: DashboardAssets;
  snapshot(): unknown;
  sse: SseHub;
}

export function dashboardHandler(r: DashboardRoutes): MountedHandler {
  return (req, res, access) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path !== '/' && path !== '/dashboard' && !path.startsWith(DASHBOARD_PATH)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'the dashboard answers GET only\n', { allow: 'GET, HEAD' });
      return true;
    }
    if (!access.keyRequired) {
      const h = hostName(req.headers.host);
      if (h === null || !LOOPBACK_HOSTS.has(h)) {
        send(res, 403, 'text/plain; charset=utf-8', `Host ${JSON.stringify(req.headers.host ?? '')} is not loopback: the dashboard on a loopback API answers only to 127.0.0.1, localhost or [::1]\n`);
        return true;
      }
    } else if (!access.authorised(req)) {
      const pw = basicPassword(req);
      if (pw === null || !access.keyMatches(pw)) {
        send(res, 401, 'text/plain; charset=utf-8', 'the dashboard needs the API key: Authorization: Bearer <key>, or any user name with the key as password\n', { 'www-authenticate': 'Basic realm="fednode dashboard", charset="UTF-8"' });
        return true;
      }
    }
    if (path === '/' || path === '/dashboard') {
      res.writeHead(302, { location: DASHBOARD_PATH, 'content-length': '0' });
      res.end();
      return true;
    }
    const name = path === DASHBOARD_PATH ? 'index.html' : path.slice(DASHBOARD_PATH.length);
    if (name === 'snapshot.json') {
      send(res, 200, 'application/json', JSON.stringify(r.snapshot()));
      return true;
    }
    if (name === 'events') {
      if (r.sse.attach(res)) res.write(`event: snapshot\ndata: ${JSON.stringify(r.snapshot())}\n\n`);
      return true;
    }
    if (name in ASSETS) {
      const n = name as AssetName;
      send(res, 200, ASSETS[n], r.assets[n]);
      return true;
    }
    send(res, 404, 'text/plain; charset=utf-8', `no dashboard file ${name}\n`);
    return true;
  };
}
