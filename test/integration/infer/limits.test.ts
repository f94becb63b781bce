// Bounded servers (#14 item 3): the inference API and the control API cap connections (total
// and per address), cut a client that is slow to send its headers or body at the configured
// time, and the control API serves its token holder while others hold connections open.
// Real sockets on 127.0.0.1; each cut is awaited as a socket event (no sleeps).
import { describe, it, expect, afterEach, vi } from 'vitest';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { SimulatedBackend, BackendSet } from '../../../node/backends/index.js';
import { InferenceRouter } from '../../../node/forward/index.js';
import { createApiServer } from '../../../node/api/server.js';
import type { ApiServer } from '../../../node/api/server.js';
import type { ConnectionLimits } from '../../../node/api/limits.js';
import { startControlServer } from '../../../node/control/server.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function api(limits: Partial<ConnectionLimits>): Promise<{ api: ApiServer; port: number }> {
  const backends = new BackendSet([new SimulatedBackend({ tokensPerSecond: 0 })]);
  await backends.refresh();
  const a = createApiServer({ router: new InferenceRouter({ localPeerId: 'me', backends, peers: () => [], forward: null }), limits });
  const { port } = await a.listen();
  closers.push(() => a.close());
  return { api: a, port };
}

/** A raw socket; resolves once connected. Everything it receives is collected in `got`. */
function open(port: number): Promise<{ s: Socket; got: () => string; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    let got = '';
    const t0 = performance.now();
    const s = connect(port, '127.0.0.1');
    const closed = new Promise<number>((r) => s.once('close', () => r(performance.now() - t0)));
    s.setEncoding('utf8');
    s.on('data', (d: string) => (got += d));
    s.on('error', () => undefined);
    s.once('connect', () => resolve({ s, got: () => got, closed }));
    s.once('error', reject);
    closers.push(() => void s.destroy());
  });
}

describe('inference API bounds', () => {
  it('a client that never finishes its headers is cut at headersTimeoutMs, not later checks', async () => {
    const { api: a, port } = await api({ headersTimeoutMs: 300 });
    const c = await open(port);
    c.s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: app`);
    const heldMs = await c.closed;
    expect(heldMs).toBeGreaterThanOrEqual(290); // not before the configured time (timer granularity)
    expect(a.connections.headerTimeouts).toBe(1);
  });

  it('a client that stalls in its body gets 408 at bodyTimeoutMs', async () => {
    const { api: a, port } = await api({ bodyTimeoutMs: 300 });
    const c = await open(port);
    c.s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`);
    const heldMs = await c.closed;
    expect(heldMs).toBeGreaterThanOrEqual(290);
    expect(c.got()).toMatch(/^HTTP\/1.1 408/);
    expect(c.got()).toContain('request_timeout');
    expect(a.connections.bodyTimeouts).toBe(1);
  });

  it('caps connections per address and in total with a 503 naming the bound; a freed slot serves again', async () => {
    const { api: a, port } = await api({ maxPerIp: 3, maxConnections: 3 });
    const held = [await open(port), await open(port), await open(port)];
    const extra = await open(port);
    await extra.closed;
    expect(extra.got()).toMatch(/^HTTP\/1.1 503/);
    expect(extra.got()).toMatch(/too many connections( from 127\.0\.0\.1)? \(max 3\)/);
    expect(a.connections.refusedTotal).toBe(1);
    held[0]!.s.destroy();
    await held[0]!.closed;
    const r = await fetch(`http://127.0.0.1:${port}/v1/models`);
    expect(r.status).toBe(200);
  });
});

describe('control API bounds', () => {
  it('serves the token holder while untrusted connections fill every slot (the oldest unauthorised one makes room)', async () => {
    const token = 't'.repeat(32);
    const control = await startControlServer({ host: '127.0.0.1', port: 0, token, limits: { maxConnections: 8, maxPerIp: 8, headersTimeoutMs: 5000 } });
    closers.push(() => control.close());
    control.route('GET', '/status', () => ({ body: { ok: true } }));
    const port = control.port;
    const idle = await Promise.all(Array.from({ length: 8 }, () => open(port)));
    await vi.waitFor(() => expect(control.connections.open).toBe(8), { timeout: 5000, interval: 10 }); // the server has accepted all 8
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${control.url}/status`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ ok: true });
    }
    expect(control.connections.evictedTotal).toBeGreaterThanOrEqual(1);
    expect(idle.filter((c) => c.s.destroyed).length).toBeGreaterThanOrEqual(1);
    expect(control.connections.open).toBeLessThanOrEqual(8);
  });

  it('a connection that sends no headers is closed at the configured header timeout', async () => {
    const control = await startControlServer({ host: '127.0.0.1', port: 0, token: 'x'.repeat(32), limits: { headersTimeoutMs: 250 } });
    closers.push(() => control.close());
    const c = await open(control.port);
    expect(await c.closed).toBeGreaterThanOrEqual(240);
    expect(control.connections.headerTimeouts).toBe(1);
  });
});
