// Browser-world safety of the loopback API (node/api/security.ts): Host check against DNS
// rebinding, Origin check against cross-site requests, CORS only for listed origins, 415 for
// bodies that are not JSON. Raw node:http requests, so Host and Origin can be set at will.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { request } from 'node:http';
import { SimulatedBackend, BackendSet } from '../../../node/backends/index.js';
import { InferenceRouter } from '../../../node/forward/index.js';
import { createApiServer, ApiError } from '../../../node/api/server.js';
import type { ApiServer } from '../../../node/api/server.js';

let api: ApiServer;
let port = 0;
const LISTED = 'http://localhost:5173';

beforeAll(async () => {
  const backends = new BackendSet([new SimulatedBackend({ tokensPerSecond: 0 })]);
  await backends.refresh();
  api = createApiServer({ router: new InferenceRouter({ localPeerId: 'me', backends, peers: () => [], forward: null }), corsOrigins: [LISTED] });
  port = (await api.listen()).port;
});
afterAll(() => api.close());

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(o: { method?: string; path?: string; headers?: Record<string, string>; body?: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path ?? '/v1/models', headers: { host: `127.0.0.1:${port}`, ...(o.headers ?? {}) }, setHost: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}
const code = (r: Reply): unknown => (JSON.parse(r.body) as { error: { code: unknown } }).error.code;
const chatBody = JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });

describe('Host check (DNS rebinding)', () => {
  it('serves the loopback names of this node with its port, refuses any other Host', async () => {
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) expect((await send({ headers: { host: h } })).status).toBe(200);
    for (const h of [`evil.example:${port}`, `127.0.0.1:${port + 1}`, 'localhost', `attacker.127.0.0.1.nip.io:${port}`]) {
      const r = await send({ headers: { host: h } });
      expect(r.status).toBe(403);
      expect(code(r)).toBe('host_not_allowed');
    }
  });
});

describe('Origin check and CORS', () => {
  it('no Origin (SDKs, curl) and the node\'s own origin are served; another origin is refused, even for GET', async () => {
    expect((await send({})).status).toBe(200);
    const own = await send({ headers: { origin: `http://127.0.0.1:${port}` } });
    expect(own.status).toBe(200);
    expect(own.headers['access-control-allow-origin']).toBeUndefined(); // same origin: no CORS headers needed
    const evil = await send({ method: 'POST', path: '/v1/chat/completions', headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, body: chatBody });
    expect(evil.status).toBe(403);
    expect(code(evil)).toBe('origin_not_allowed');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("the node's dashboard on another port (ownOrigins) is one of the node's own origins", async () => {
    const backends = new BackendSet([new SimulatedBackend({ tokensPerSecond: 0 })]);
    await backends.refresh();
    const other = createApiServer({ router: new InferenceRouter({ localPeerId: 'me', backends, peers: () => [], forward: null }), ownOrigins: () => ['http://127.0.0.1:9999'] });
    const p = (await other.listen()).port;
    try {
      const ok = await fetch(`http://127.0.0.1:${p}/v1/models`, { headers: { origin: 'http://127.0.0.1:9999' } });
      expect(ok.status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${p}/v1/models`, { headers: { origin: 'http://127.0.0.1:9998' } })).status).toBe(403);
    } finally {
      await other.close();
    }
  });

  it('a listed origin gets CORS headers and a preflight answer; an unlisted preflight is refused', async () => {
    const pre = await send({ method: 'OPTIONS', path: '/v1/chat/completions', headers: { origin: LISTED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' } });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(LISTED);
    expect(String(pre.headers['access-control-allow-headers'])).toContain('content-type');
    expect(String(pre.headers['access-control-allow-methods'])).toContain('POST');
    const r = await send({ method: 'POST', path: '/v1/chat/completions', headers: { origin: LISTED, 'content-type': 'application/json' }, body: chatBody });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBe(LISTED);
    expect((await send({ method: 'OPTIONS', path: '/v1/chat/completions', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })).status).toBe(403);
  });
});

describe('JSON endpoints require application/json', () => {
  it('text/plain (a cross-site "simple" POST) and a missing type are 415; application/json; charset=utf-8 is fine', async () => {
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', undefined]) {
      const r = await send({ method: 'POST', path: '/v1/chat/completions', headers: ct === undefined ? {} : { 'content-type': ct }, body: chatBody });
      expect(r.status).toBe(415);
      expect(code(r)).toBe('unsupported_media_type');
    }
    expect((await send({ method: 'POST', path: '/api/chat', headers: { 'content-type': 'text/plain' }, body: '{}' })).status).toBe(415);
    expect((await send({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json; charset=utf-8' }, body: chatBody })).status).toBe(200);
  });

  it('beyond loopback a key is required (and then Host is not checked: the key protects)', () => {
    const router = new InferenceRouter({ localPeerId: 'x', backends: null, peers: () => [], forward: null });
    expect(() => createApiServer({ router, host: '0.0.0.0' })).toThrow(ApiError);
    expect(() => createApiServer({ router, host: '0.0.0.0', apiKey: 'k'.repeat(16) })).not.toThrow();
  });
});
