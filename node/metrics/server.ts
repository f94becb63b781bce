/**
 * The Prometheus scrape endpoint: `GET /metrics` in the text exposition format, on a
 * listener of its own (not the control API: that one answers JSON only and requires
 * the control token, which a Prometheus server does not have).
 *
 * Where it listens comes from FEDNODE_METRICS (node/config.ts has no metrics section
 * yet): unset = 127.0.0.1 on a free port (several nodes share a host in `fednode
 * cluster`; the URL is in `fednode status --json` under extensions.metrics), `off` =
 * no listener, `HOST:PORT` = there. Metrics carry counts and protocol names, no
 * secrets and no peer ids; a non-loopback address is allowed because Prometheus
 * usually scrapes from another machine, and it is logged as a warning.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { FednodeError } from '../../base/errors.js';
import type { Logger } from '../log.js';
import { nullLogger } from '../log.js';

export type MetricsErrorCode = 'ERR_METRICS_ADDR' | 'ERR_METRICS_LISTEN';

export class MetricsError extends FednodeError<MetricsErrorCode> {
  constructor(code: MetricsErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, data, options);
    this.name = 'MetricsError';
  }
}

export interface MetricsListen {
  host: string;
  port: number;
}

export const METRICS_ENV = 'FEDNODE_METRICS';
export const METRICS_LISTEN_DEFAULT: MetricsListen = { host: '127.0.0.1', port: 0 };
/** Concurrent scrape connections: one Prometheus server plus a human with curl, with room to spare. */
export const METRICS_MAX_CONNECTIONS = 16;
/** A scraper sends its request line and headers at once; a slow one is cut off. */
const METRICS_HEADERS_TIMEOUT_MS = 5_000;
/** Rendering the registry takes milliseconds; this bounds a stuck collect callback. */
const METRICS_REQUEST_TIMEOUT_MS = 10_000;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** FEDNODE_METRICS value -> where to listen (null = off). Throws MetricsError ERR_METRICS_ADDR. */
export function metricsListenFromEnv(value: string | undefined): MetricsListen | null {
  const v = (value ?? '').trim();
  if (v === '') return { ...METRICS_LISTEN_DEFAULT };
  if (v === 'off') return null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(v);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || !Number.isInteger(port) || port > 65_535) {
    throw new MetricsError('ERR_METRICS_ADDR', `${METRICS_ENV} must be "off" or HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464), got ${JSON.stringify(v)}`, { value: v });
  }
  return { host, port };
}

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(o: MetricsListen & { registry: Registry; logger?: Logger }): Promise<MetricsServer> {
  const log = o.logger ?? nullLogger;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    const plain = (status: number, text: string, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
      res.end(text);
    };
    if (path !== '/metrics') return plain(404, 'not found: metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'only GET /metrics\n', { allow: 'GET, HEAD' });
    o.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': o.registry.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: unknown) => {
        log.error('metrics collection failed', { err: e });
        plain(500, `metrics collection failed: ${e instanceof Error ? e.message : String(e)}\n`);
      },
    );
  });
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  server.headersTimeout = METRICS_HEADERS_TIMEOUT_MS;
  server.requestTimeout = METRICS_REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => reject(new MetricsError('ERR_METRICS_LISTEN', `metrics endpoint cannot listen on ${o.host}:${o.port}: ${e.message} (set ${METRICS_ENV}=HOST:PORT or off)`, { host: o.host, port: o.port }, { cause: e }));
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}/metrics`;
  if (!LOOPBACK.has(o.host)) log.warn('metrics endpoint listens beyond loopback (no token: counts and protocol names only)', { url });
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
