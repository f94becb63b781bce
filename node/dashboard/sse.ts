/**
 * Server-sent events for the dashboard (issue 17), bounded three ways:
 * - clients: at most `maxClients` streams at once (a home lab has a few screens; each stream
 *   costs a socket and a snapshot render per push); one more gets 503 with Retry-After;
 * - per-client buffer: a client whose socket has more than `maxBufferedBytes` unsent (a stalled
 *   tab, a slow link) is dropped instead of buffering without end; its browser reconnects;
 * - heartbeat: a comment line every `heartbeatMs` so proxies and the browser see a live stream
 *   and a dead client is found by the failing write.
 */
import type { ServerResponse } from 'node:http';

export interface SseOptions {
  /** @default 16 */
  maxClients?: number;
  /** @default 1 MiB: a few snapshots (each ~10-100 KB) */
  maxBufferedBytes?: number;
  /** @default 15000 */
  heartbeatMs?: number;
}

export interface SseHub {
  /** Take over `res` as an event stream; false (and a 503 sent) when full. */
  attach(res: ServerResponse): boolean;
  /** Send one event to every client. */
  broadcast(event: string, data: string): void;
  readonly clients: number;
  /** Clients dropped for a full buffer since start. */
  readonly dropped: number;
  close(): void;
}

export function createSseHub(o: SseOptions = {}): SseHub {
  const maxClients = o.maxClients ?? 16;
  const maxBufferedBytes = o.maxBufferedBytes ?? 1024 * 1024;
  const clients = new Set<ServerResponse>();
  let dropped = 0;
  const drop = (res: ServerResponse): void => {
    clients.delete(res);
    res.destroy();
  };
  const write = (res: ServerResponse, text: string): void => {
    if (res.writableLength > maxBufferedBytes) {
      dropped++;
      drop(res);
      return;
    }
    res.write(text);
  };
  const heartbeat = setInterval(() => {
    for (const c of [...clients]) write(c, `: heartbeat\n\n`);
  }, o.heartbeatMs ?? 15_000);
  heartbeat.unref();
  return {
    attach(res) {
      if (clients.size >= maxClients) {
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
        res.end(`dashboard event streams are limited to ${maxClients} at once; close another tab\n`);
        return false;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write('retry: 2000\n\n');
      clients.add(res);
      res.on('close', () => clients.delete(res));
      return true;
    },
    broadcast(event, data) {
      const text = `event: ${event}\ndata: ${data}\n\n`;
      for (const c of [...clients]) write(c, text);
    },
    get clients() {
      return clients.size;
    },
    get dropped() {
      return dropped;
    },
    close() {
      clearInterval(heartbeat);
      for (const c of [...clients]) drop(c);
    },
  };
}
