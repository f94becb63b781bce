/**
 * Connection bounds for an HTTP server (inference API and control API): a cap on
 * concurrent connections and on connections per remote address, a header timeout (time
 * from connect to complete request headers) and a body timeout (time to receive the whole
 * request body), each applied per connection with its own timer, at the configured time
 * (node's own headersTimeout is checked only every connectionsCheckingInterval, 30 s).
 *
 * `protect` marks a connection whose request is authorised (the control token holder):
 * when the cap is reached, the oldest unprotected connection is closed to make room, so
 * idle or slow connections held by someone else never lock out the token holder.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Concurrent connections. */
  maxConnections: number;
  /** Concurrent connections from one remote address. */
  maxPerIp: number;
  /** Connect -> complete request headers, ms. */
  headersTimeoutMs: number;
  /** Request headers -> complete request body, ms. */
  bodyTimeoutMs: number;
  /** At the cap: close the oldest unprotected connection instead of refusing the new one. */
  evictUnprotected?: boolean;
}

export interface LimitStats {
  open: number;
  refusedTotal: number;
  evictedTotal: number;
  headerTimeouts: number;
  bodyTimeouts: number;
}

export interface Limiter {
  readonly stats: LimitStats;
  /** Marks the request's connection as serving an authorised client (never evicted while it runs). */
  protect(req: IncomingMessage, res: ServerResponse): void;
}

interface ConnState {
  ip: string;
  protected: number;
  headerTimer: NodeJS.Timeout | null;
}

const REFUSAL = 'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nRetry-After: 1\r\n';

function refuse(socket: Socket, why: string): void {
  const body = JSON.stringify({ error: { message: why, type: 'server_error', param: null, code: 'too_many_connections' } });
  socket.end(`${REFUSAL}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  socket.destroySoon();
}

/** A request whose body did not arrive in time: 408 (when nothing was sent yet), and the connection ends. */
function bodyTimedOut(res: ServerResponse, ms: number): void {
  if (!res.headersSent) {
    const body = JSON.stringify({ error: { message: `request body not received within ${ms} ms`, type: 'invalid_request_error', param: null, code: 'request_timeout' } });
    res.writeHead(408, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  }
  res.socket?.destroySoon();
}

export function limitConnections(server: Server, l: ConnectionLimits): Limiter {
  const conns = new Map<Socket, ConnState>(); // insertion order = age
  const perIp = new Map<string, number>();
  const stats: LimitStats = { open: 0, refusedTotal: 0, evictedTotal: 0, headerTimeouts: 0, bodyTimeouts: 0 };
  // node's coarse checks stay as a backstop, at least as long as ours
  server.headersTimeout = Math.max(l.headersTimeoutMs + 1000, 2000);
  server.requestTimeout = 0;

  const armHeaderTimer = (socket: Socket, st: ConnState): void => {
    if (st.headerTimer !== null) clearTimeout(st.headerTimer);
    st.headerTimer = setTimeout(() => {
      stats.headerTimeouts++;
      socket.destroy();
    }, l.headersTimeoutMs);
  };

  const forget = (socket: Socket, st: ConnState): void => {
    if (st.headerTimer !== null) clearTimeout(st.headerTimer);
    st.headerTimer = null;
    if (!conns.delete(socket)) return; // already forgotten (evicted)
    const n = (perIp.get(st.ip) ?? 1) - 1;
    if (n <= 0) perIp.delete(st.ip);
    else perIp.set(st.ip, n);
    stats.open = conns.size;
  };

  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? 'unknown';
    if (conns.size >= l.maxConnections && l.evictUnprotected === true) {
      for (const [s, st] of conns) {
        if (st.protected === 0) {
          stats.evictedTotal++;
          forget(s, st); // now: its 'close' comes later
          s.destroy();
          break;
        }
      }
    }
    if (conns.size >= l.maxConnections) {
      stats.refusedTotal++;
      refuse(socket, `too many connections (max ${l.maxConnections})`);
      return;
    }
    if ((perIp.get(ip) ?? 0) >= l.maxPerIp) {
      stats.refusedTotal++;
      refuse(socket, `too many connections from ${ip} (max ${l.maxPerIp})`);
      return;
    }
    const st: ConnState = { ip, protected: 0, headerTimer: null };
    conns.set(socket, st);
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
    stats.open = conns.size;
    armHeaderTimer(socket, st);
    socket.once('close', () => forget(socket, st));
  });

  // before the server's handler: a fast handler may finish its reply before a later listener runs
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const st = conns.get(socket);
    if (st === undefined) return;
    if (st.headerTimer !== null) {
      clearTimeout(st.headerTimer);
      st.headerTimer = null;
    }
    let bodyTimer: NodeJS.Timeout | null = setTimeout(() => {
      bodyTimer = null;
      stats.bodyTimeouts++;
      bodyTimedOut(res, l.bodyTimeoutMs);
    }, l.bodyTimeoutMs);
    const clear = (): void => {
      if (bodyTimer !== null) clearTimeout(bodyTimer);
      bodyTimer = null;
    };
    req.once('end', clear);
    // a bodiless request's end is only emitted once read: read it (nothing) now
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') req.resume();
    req.once('close', clear);
    res.once('finish', () => {
      clear();
      // keep-alive: the next request's headers get the same bound
      if (!socket.destroyed && conns.has(socket)) armHeaderTimer(socket, st);
    });
  });

  return {
    stats,
    protect(req, res) {
      const st = conns.get(req.socket);
      if (st === undefined) return;
      st.protected++;
      res.once('close', () => {
        st.protected--;
      });
    },
  };
}
