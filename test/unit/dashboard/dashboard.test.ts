/**
 * The dashboard's parts (issue 17): the snapshot's member states and names, the traffic book's
 * window, the event stream's bounds (clients, per-client buffer, heartbeat) and the access rules,
 * the last two over real HTTP on 127.0.0.1 through the API server's mount hook.
 */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { identityFromSeed } from '../../../crypto/keys.js';
import { createApiServer } from '../../../node/api/server.js';
import type { ApiServer } from '../../../node/api/server.js';
import { dashboardHandler, loadDashboardAssets } from '../../../node/dashboard/http.js';
import { History } from '../../../node/dashboard/history.js';
import { buildSnapshot, profileWhy } from '../../../node/dashboard/snapshot.js';
import type { SnapshotSources } from '../../../node/dashboard/snapshot.js';
import { createSseHub } from '../../../node/dashboard/sse.js';
import { TrafficBook, TRAFFIC_WINDOW_MS } from '../../../node/dashboard/traffic.js';
import type { AdvertBody } from '../../../node/adverts/advert.js';
import type { RequestObservation } from '../../../node/metrics/requests.js';

const [a, b, c, d] = [1, 2, 3, 4].map((i) => identityFromSeed(new Uint8Array(32).fill(i))) as [ReturnType<typeof identityFromSeed>, ReturnType<typeof identityFromSeed>, ReturnType<typeof identityFromSeed>, ReturnType<typeof identityFromSeed>];
const body = (o: Partial<AdvertBody> = {}): AdvertBody => ({
  models: ['m'], inFlight: 1, queued: 0, capacity: 4, gpus: [], cpuLoad: 0.1, memUsedBytes: null, memTotalBytes: null,
  power: { source: 'ac', batteryPct: null, charging: null }, cpuPackageW: null, profile: 'balanced', profilePinned: false, apiUrl: null, tokensPerS: 12, joulesPerToken: null, ...o,
});
const obs = (o: Partial<RequestObservation>): RequestObservation => ({ model: 'm', servedBy: b.peerId, outcome: 'ok', errorCode: null, attempts: 1, ttftMs: 20, durationMs: 100, promptTokens: 3, completionTokens: 10, endMs: 1_000, ...o });

function sources(over: Partial<SnapshotSources> = {}): SnapshotSources {
  const status = { height: 5, round: 0, step: 'propose' as const, decidedHeight: 4, registryHash: 'ab'.repeat(32), validators: [a.peerId, b.peerId], isValidator: true, mempoolOps: 0, evidence: [], caughtUpHeights: 0, wire: { direct: 1, withoutChannel: [], gossipFallbacks: 0 }, storeError: null, lastDecidedMs: 900, work: { running: false, cause: null, pendingMembership: [] } };
  return {
    self: { peerId: a.peerId, name: 'alpha', cluster: 'c1', version: '0.1.0' },
    nowMs: 1_000,
    members: [a.peerId, b.peerId, c.peerId, d.peerId],
    registry: {
      height: 4, members: [{ publicKey: a.publicKey, power: 1, name: 'a-tail' }, { publicKey: b.publicKey, power: 2, name: 'beta' }, { publicKey: c.publicKey, power: 1, name: 'gamma' }], membersSince: 0,
      pending: [{ effectiveHeight: 6, op: { kind: 'member.add', publicKey: d.publicKey, power: 1, name: 'delta' } }], routePolicy: { weights: {}, batteryFloorPct: 20, temperatureCeilingC: 85 }, routePolicyHeight: 0, aliases: [], qualityGates: {}, patterns: [], usedInvites: [],
    } as unknown as SnapshotSources['registry'],
    consensus: status,
    peers: [{ peerId: b.peerId, state: 'live', ageMs: 100, seq: 3, advert: body({ gpus: [{ index: 0, name: 'H200', memoryTotalMiB: 143771, memoryUsedMiB: 0, utilizationPct: 0, temperatureC: 37, powerDrawW: 85, powerLimitW: 700 }] }) }, { peerId: c.peerId, state: 'stale', ageMs: 5_000, seq: 9, advert: body() }],
    selfBody: body(),
    connections: [{ peerId: b.peerId, member: true, addrs: [], connections: 1, score: 10, rttMs: 3 }, { peerId: c.peerId, member: true, addrs: [], connections: 0, score: 10, rttMs: null }],
    inference: { apiUrl: null, backends: ['simulated'], models: ['m'], backendErrors: {}, load: { inFlight: 2, queued: 1, capacity: 4 }, routing: { source: { kind: 'config' }, sourceText: 'config defaults', registryHeight: 4, weights: {}, batteryFloorPct: 20, tempCeilingC: 85, aliases: [], problems: [] } } as unknown as SnapshotSources['inference'],
    decisions: [],
    traffic: new TrafficBook().summary(1_000),
    history: { intervalMs: 2000, series: {} },
    ...over,
  };
}

describe('snapshot', () => {
  it('members live / stale / gone with names, power (pending adds too), links, GPUs and this node\'s own load and backends', () => {
    const s = buildSnapshot(sources());
    const row = (id: string) => s.nodes.find((n) => n.peerId === id)!;
    expect(row(a.peerId)).toMatchObject({ name: 'alpha', self: true, state: 'live', inFlight: 2, queued: 1, capacity: 4, backends: { ids: ['simulated'], errors: {} } });
    expect(row(b.peerId)).toMatchObject({ name: 'beta', state: 'live', connected: true, rttMs: 3, votingPower: 2, gpus: [expect.objectContaining({ name: 'H200', temperatureC: 37 })] });
    expect(row(c.peerId)).toMatchObject({ name: 'gamma', state: 'stale', connected: false, advertAgeMs: 5_000 });
    expect(row(d.peerId)).toMatchObject({ name: 'delta', state: 'gone', advertAgeMs: null, models: [] }); // a member never heard from
    expect(s.consensus.pending).toEqual([{ effectiveHeight: 6, kind: 'member.add', peerId: d.peerId, name: 'delta' }]);
    expect(s.consensus.validators).toEqual([{ peerId: a.peerId, name: 'alpha', power: 1 }, { peerId: b.peerId, name: 'beta', power: 2 }]);
  });

  it('the profile\'s reasons read from an advert', () => {
    expect(profileWhy(body({ profile: 'eco', power: { source: 'battery', batteryPct: 12, charging: false } }))).toContain('battery 12% discharging: eco');
    expect(profileWhy(body({ profilePinned: true }))).toContain('pinned by the operator');
    expect(profileWhy(body({ cpuLoad: 0.7 }))).toContain('load 70%');
  });
});

describe('traffic book and history', () => {
  it('rates over the window per serving peer, medians of TTFT, totals of failovers, 429s and errors; old events leave the window', () => {
    const t = new TrafficBook();
    t.add(obs({ ttftMs: 10 }));
    t.add(obs({ ttftMs: 30, attempts: 3 }));
    t.add(obs({ servedBy: null, outcome: 'busy', errorCode: 'ERR_BUSY', ttftMs: null, completionTokens: 0 }));
    t.add(obs({ servedBy: null, outcome: 'error', errorCode: 'ERR_ALL_CANDIDATES_FAILED', ttftMs: null, completionTokens: 0 }));
    const s = t.summary(1_000);
    expect(s.perPeer[b.peerId]).toEqual({ reqPerS: 2 / (TRAFFIC_WINDOW_MS / 1000), tokensOutPerS: 20 / (TRAFFIC_WINDOW_MS / 1000), ttftMsP50: 20 });
    expect(s.totals).toEqual({ requests: 4, failovers: 2, busy: 1, errors: 1 });
    expect(t.summary(1_000 + TRAFFIC_WINDOW_MS + 1).reqPerS).toBe(0);
  });

  it('history keeps the last N samples per member and forgets members that left', () => {
    const h = new History(3);
    for (let i = 0; i < 5; i++) h.record(new Map([[a.peerId, { t: i, load: i / 4, tempC: null, tokensPerS: null }]]));
    expect(h.toJSON()[a.peerId]!.map((p) => p.t)).toEqual([2, 3, 4]);
    h.retain(new Set([b.peerId]));
    expect(h.toJSON()).toEqual({});
  });
});

const servers: ApiServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

async function dashboardServer(apiKey: string | null, sse = createSseHub({ maxClients: 2, heartbeatMs: 50, maxBufferedBytes: 64 * 1024 })): Promise<{ url: string; port: number }> {
  const api = createApiServer({ router: { localPeerId: a.peerId, models: () => [], chat: () => (async function* () {})(), complete: () => (async function* () {})(), embed: () => (async function* () {})() }, host: '127.0.0.1', apiKey });
  const assets = await loadDashboardAssets();
  api.mount(dashboardHandler({ assets, snapshot: () => ({ hello: 'snapshot' }), sse }));
  servers.push(api);
  const l = await api.listen();
  return { url: l.url, port: (api.server.address() as AddressInfo).port };
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((res, rej) => {
    const r = request({ host: '127.0.0.1', port, path, headers }, (resp) => {
      let body = '';
      resp.on('data', (c: Buffer) => (body += c.toString()));
      resp.on('end', () => res({ status: resp.statusCode ?? 0, headers: resp.headers, body }));
    });
    r.on('error', rej);
    r.end();
  });
}

describe('dashboard routes over real HTTP', () => {
  it('loopback without a key: page, files and snapshot served; another Host refused (DNS rebinding); / redirects; POST refused', async () => {
    const { url, port } = await dashboardServer(null);
    const page = await fetch(`${url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<script src="app.js"></script>');
    expect((await fetch(`${url}/dashboard/app.js`)).headers.get('content-type')).toContain('javascript');
    expect(await (await fetch(`${url}/dashboard/snapshot.json`)).json()).toEqual({ hello: 'snapshot' });
    expect((await fetch(`${url}/`, { redirect: 'manual' })).headers.get('location')).toBe('/dashboard/');
    expect((await fetch(`${url}/dashboard/nope.js`)).status).toBe(404);
    expect((await fetch(`${url}/dashboard/snapshot.json`, { method: 'POST' })).status).toBe(405);
    const rebound = await get(port, '/dashboard/snapshot.json', { host: 'evil.example:80' });
    expect(rebound.status).toBe(403);
    expect(rebound.body).toContain("is not this node's loopback address");
    expect((await fetch(`${url}/v1/models`)).status).toBe(200); // the API's own routes are untouched
  });

  it('with an API key: 401 asking for Basic; the key as Bearer or as the Basic password opens it; a wrong one does not', async () => {
    const key = 'x'.repeat(20);
    const { url } = await dashboardServer(key);
    const no = await fetch(`${url}/dashboard/snapshot.json`);
    expect(no.status).toBe(401);
    expect(no.headers.get('www-authenticate')).toMatch(/^Basic realm="fednode dashboard"/);
    expect((await fetch(`${url}/dashboard/snapshot.json`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    const basic = (pw: string): string => `Basic ${Buffer.from(`anyone:${pw}`).toString('base64')}`;
    expect((await fetch(`${url}/dashboard/`, { headers: { authorization: basic(key) } })).status).toBe(200);
    expect((await fetch(`${url}/dashboard/`, { headers: { authorization: basic('wrong-key-wrong-key') } })).status).toBe(401);
  });

  it('event stream: first snapshot at once, heartbeats, at most maxClients (then 503 with Retry-After), a stalled client dropped', async () => {
    const sse = createSseHub({ maxClients: 2, heartbeatMs: 50, maxBufferedBytes: 16 * 1024 });
    const { url } = await dashboardServer(null, sse);
    const ac = new AbortController();
    const r1 = await fetch(`${url}/dashboard/events`, { signal: ac.signal });
    expect(r1.headers.get('content-type')).toContain('text/event-stream');
    const reader = r1.body!.getReader();
    let text = '';
    while (!text.includes(': heartbeat')) text += new TextDecoder().decode((await reader.read()).value as Uint8Array | undefined);
    expect(text).toContain('event: snapshot\ndata: {"hello":"snapshot"}');
    // a second client that never reads: its socket buffer fills and the hub drops it
    const r2 = await fetch(`${url}/dashboard/events`, { signal: ac.signal });
    expect(r2.status).toBe(200);
    const third = await fetch(`${url}/dashboard/events`);
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('5');
    expect(await third.text()).toContain('limited to 2');
    const big = 'y'.repeat(256 * 1024);
    for (let i = 0; i < 64 && sse.dropped === 0; i++) {
      sse.broadcast('snapshot', big);
      // the reading client keeps up
      await reader.read();
      await new Promise((res) => setImmediate(res));
    }
    expect(sse.dropped).toBeGreaterThanOrEqual(1);
    expect(sse.clients).toBeLessThanOrEqual(1);
    ac.abort();
    sse.close();
  });
});
