import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { controlClient } from '../../../node/control/client.js';
import { startControlServer } from '../../../node/control/server.js';
import { RuntimeError } from '../../../node/runtime/errors.js';

const token = 'a'.repeat(43);

describe('control API', () => {
  it('answers 401 without or with a wrong bearer token, 200 with the right one', async () => {
    const srv = await startControlServer({ host: '127.0.0.1', port: 0, token });
    srv.route('GET', '/status', () => ({ body: { ok: true } }));
    srv.route('POST', '/echo', (req) => ({ body: { got: req.body } }));
    try {
      expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const none = await fetch(`${srv.url}/status`);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe('ERR_CONTROL_UNAUTHORIZED');
      const wrong = await fetch(`${srv.url}/status`, { headers: { authorization: `Bearer ${'b'.repeat(43)}` } });
      expect(wrong.status).toBe(401);
      const short = await fetch(`${srv.url}/status`, { headers: { authorization: 'Bearer a' } });
      expect(short.status).toBe(401);
      const basic = await fetch(`${srv.url}/status`, { headers: { authorization: `Basic ${token}` } });
      expect(basic.status).toBe(401);
      // unknown paths are not revealed without the token either
      expect((await fetch(`${srv.url}/nope`)).status).toBe(401);
      const ok = await fetch(`${srv.url}/status`, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ ok: true });

      const c = controlClient(srv.url, token);
      expect(await c.post('/echo', { a: 1 })).toEqual({ got: { a: 1 } });
      await expect(c.get('/nope')).rejects.toMatchObject({ code: 'ERR_CONTROL_HTTP', data: { status: 404 } });
      await expect(controlClient(srv.url, 'z'.repeat(43)).get('/status')).rejects.toMatchObject({ code: 'ERR_CONTROL_UNAUTHORIZED' });
      const bad = await fetch(`${srv.url}/echo`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{nope' });
      expect(bad.status).toBe(400);
    } finally {
      await srv.close();
    }
  });

  it('turns handler errors into JSON errors with their code', async () => {
    const srv = await startControlServer({ host: '127.0.0.1', port: 0, token });
    srv.route('POST', '/invite', () => {
      throw new RuntimeError('ERR_TOKEN_INVALID', 'ttl too long', { ttlMs: 1 });
    });
    try {
      const r = await fetch(`${srv.url}/invite`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({ error: { code: 'ERR_TOKEN_INVALID', message: 'ttl too long', data: { ttlMs: 1 } } });
    } finally {
      await srv.close();
    }
  });

  it('a client for a stopped node says no node runs', async () => {
    const srv = await startControlServer({ host: '127.0.0.1', port: 0, token });
    const url = srv.url;
    await srv.close();
    await expect(controlClient(url, token).get('/status', { timeoutMs: 2000 })).rejects.toMatchObject({ code: 'ERR_NODE_NOT_RUNNING' });
  });
});

describe('control client: every outcome settles with its own code', () => {
  async function rawServer(onConn: (s: Socket) => void): Promise<{ url: string; close(): Promise<void> }> {
    const held = new Set<Socket>();
    const srv = createServer((s) => {
      held.add(s);
      onConn(s);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`,
      close: () => new Promise<void>((r) => { for (const s of held) s.destroy(); srv.close(() => r()); }),
    };
  }

  it('a connection dropped before the answer is ERR_CONTROL_CUT', async () => {
    const srv = await rawServer((s) => s.destroy());
    try {
      await expect(controlClient(srv.url, token).get('/status', { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_CONTROL_CUT', data: { path: '/status' } });
    } finally {
      await srv.close();
    }
  });

  it('an answer cut after its headers is ERR_CONTROL_CUT, not a parse error', async () => {
    const srv = await rawServer((s) => s.once('data', () => { s.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"partial":'); setImmediate(() => s.destroy()); }));
    try {
      await expect(controlClient(srv.url, token).get('/status', { timeoutMs: 5000 })).rejects.toMatchObject({ code: 'ERR_CONTROL_CUT' });
    } finally {
      await srv.close();
    }
  });

  it('a connection held open without an answer is ERR_CONTROL_TIMEOUT after the timeout', async () => {
    const srv = await rawServer(() => undefined);
    try {
      await expect(controlClient(srv.url, token).post('/consensus/propose', { a: 1 }, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'ERR_CONTROL_TIMEOUT', data: { timeoutMs: 300 } });
    } finally {
      await srv.close();
    }
  });
});
