// Prometheus metrics: real libp2p hosts on 127.0.0.1, a real HTTP scrape endpoint, and a
// real node (startNode in a temp data dir) with the metrics extension.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readControlToken } from '../../../node/datadir.js';
import { nullLogger } from '../../../node/log.js';
import { metricsExtension } from '../../../node/metrics/extension.js';
import { createEnvelope } from '../../../crypto/envelope.js';
import { registerFednodeMetrics } from '../../../node/metrics/fednode.js';
import { METRICS_LISTEN_DEFAULT, MetricsError, metricsListenFromEnv, startMetricsServer } from '../../../node/metrics/server.js';
import type { MetricsServer } from '../../../node/metrics/server.js';
import { createHost } from '../../../node/p2p/host.js';
import type { Host } from '../../../node/p2p/host.js';
import { InviteMemberSource } from '../../../node/p2p/members.js';
import { generateSwarmKey } from '../../../node/p2p/psk.js';
import { initDataDir } from '../../../node/runtime/init.js';
import { startNode as startRuntimeNode } from '../../../node/runtime/node.js';
import { advert, CLUSTER, ident, waitFor } from '../../helpers/p2p.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function scrape(url: string): Promise<string> {
  const r = await fetch(url);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.text();
}

/** Value of one series in Prometheus text format (`name{a="b",...} value`), or null when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return null;
}

/** Labels of libp2p's connection-manager gauge (the package names the label after the metric). */
const CONN = (direction: string): Record<string, string> => ({ libp2p_connection_manager_connections: direction });

describe('host metrics (real libp2p on loopback)', () => {
  it('each host has its own registry with libp2p and fednode metrics; verdict counters follow accept, reject and ignore', async () => {
    const swarmKey = generateSwarmKey();
    const [a, b] = [ident(1), ident(2)];
    const genesis = [a.peerId, b.peerId];
    const mk = (id: typeof a): Promise<Host> =>
      createHost({ identity: id, cluster: CLUSTER, swarmKey, members: new InviteMemberSource({ cluster: CLUSTER, genesis, now: Date.now }), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null });
    // Both hosts exist before either starts: libp2p registers some metrics at start(),
    // which is where a process-wide name map would hand B's start-time metrics to A.
    const hostA = await mk(a);
    const hostB = await mk(b);
    cleanups.push(() => hostA.stop(), () => hostB.stop());
    expect(hostA.metricsRegistry).not.toBeNull();
    expect(hostA.metricsRegistry).not.toBe(hostB.metricsRegistry);
    const servers: MetricsServer[] = [];
    for (const h of [hostA, hostB]) {
      registerFednodeMetrics(h.metricsRegistry!, { gossip: () => h.stats(), peers: () => h.peers(), direct: () => h.directStats() });
      const s = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: h.metricsRegistry! });
      servers.push(s);
      cleanups.push(() => s.close());
    }
    const [urlA, urlB] = servers.map((s) => s.url) as [string, string];
    await hostA.start();
    await hostB.start();
    await hostB.dial(hostA.addresses()[0]!);
    await waitFor(() => hostA.meshPeers('adverts').length === 1 && hostB.meshPeers('adverts').length === 1, 15_000, 'mesh');

    let textA = await scrape(urlA);
    let textB = await scrape(urlB);
    for (const t of [textA, textB]) {
      // registered by libp2p's connection manager at start(), in each host's own registry
      expect(t).toContain('# TYPE libp2p_connection_manager_connections gauge');
      expect(sample(t, 'fednode_peers_connected', { member: 'true' })).toBe(1);
    }
    // one connection, opposite directions: the numbers are each host's own
    expect(sample(textA, 'libp2p_connection_manager_connections', CONN('inbound'))).toBe(1);
    expect(sample(textA, 'libp2p_connection_manager_connections', CONN('outbound'))).toBe(0);
    expect(sample(textB, 'libp2p_connection_manager_connections', CONN('outbound'))).toBe(1);
    expect(sample(textA, 'fednode_gossip_verdicts_total', { topic: 'adverts', verdict: 'reject', code: 'bad-signature' })).toBeNull();

    // B publishes a genuine advert, the same bytes again later (replay), and a forged one
    const good = advert(b, 5);
    const forged = advert(b, 6).slice();
    forged[forged.length - 1]! ^= 0x01;
    await hostB.publish('adverts', good);
    await waitFor(() => hostA.stats().adverts.accept === 1, 10_000, 'accept');
    await hostB.publish('adverts', forged);
    await hostB.publish('adverts', advert(b, 4)); // older seq than the accepted 5: ignored
    await waitFor(() => hostA.stats().adverts.reject === 1 && hostA.stats().adverts.ignore === 1, 10_000, 'reject + ignore');

    textA = await scrape(urlA);
    expect(sample(textA, 'fednode_gossip_verdicts_total', { topic: 'adverts', verdict: 'accept', code: 'ok' })).toBe(1);
    expect(sample(textA, 'fednode_gossip_verdicts_total', { topic: 'adverts', verdict: 'reject', code: 'bad-signature' })).toBe(1);
    expect(sample(textA, 'fednode_gossip_verdicts_total', { topic: 'adverts', verdict: 'ignore', code: 'replay' })).toBe(1);
    expect(sample(textA, 'fednode_gossip_delivered_total', { topic: 'adverts' })).toBe(hostA.stats().adverts.delivered);
    expect(sample(textA, 'fednode_gossip_queue_dropped_total', { topic: 'consensus' })).toBe(0);
    // direct channels: B's first send finds no channel (missing) and opens one; then frames flow
    const vote = (seq: number): Uint8Array => createEnvelope(b, { kind: 'vote', cluster: CLUSTER, seq, time: Date.now(), body: new Uint8Array([seq]) });
    let seq = 1;
    await waitFor(() => hostB.sendDirect('consensus', vote(seq++), [hostA.peerId]).sent.length === 1, 10_000, 'direct channel');
    await waitFor(() => hostA.directStats().received === 1, 10_000, 'direct frame');
    textA = await scrape(urlA);
    textB = await scrape(urlB);
    expect(sample(textB, 'fednode_direct_frames_total', { event: 'sent' })).toBe(1);
    expect(sample(textB, 'fednode_direct_frames_total', { event: 'missing' })).toBe(seq - 2);
    expect(sample(textB, 'fednode_direct_channels', {})).toBe(1);
    expect(sample(textB, 'fednode_direct_channel_events_total', { event: 'opened' })).toBe(1);
    expect(sample(textA, 'fednode_direct_frames_total', { event: 'received' })).toBe(1);
    expect(sample(textA, 'fednode_direct_frames_total', { event: 'sent' })).toBe(0);

    // B validated nothing: its counters did not pick up A's
    textB = await scrape(urlB);
    expect(sample(textB, 'fednode_gossip_verdicts_total', { topic: 'adverts', verdict: 'accept', code: 'ok' })).toBe(0);
    expect(sample(textB, 'fednode_gossip_verdicts_total', { topic: 'adverts', verdict: 'reject', code: 'bad-signature' })).toBeNull();

    // a third host created meanwhile, then A restarted: A registers its start-time
    // metrics again without a duplicate-name throw and still reports its own connections
    const hostC = await mk(ident(3));
    await hostA.stop();
    await waitFor(() => hostB.peers().length === 0, 10_000, 'B sees A gone');
    await hostA.start();
    await hostB.dial(hostA.addresses()[0]!);
    await waitFor(() => hostA.peers().length === 1, 10_000, 'reconnect');
    textA = await scrape(urlA);
    // One connection to B: B dialled, but A's mesh keeper may dial B first (outbound) since the mesh landed.
    expect((sample(textA, 'libp2p_connection_manager_connections', CONN('inbound')) ?? 0) + (sample(textA, 'libp2p_connection_manager_connections', CONN('outbound')) ?? 0)).toBe(1);
    expect(hostC.metricsRegistry).not.toBe(hostA.metricsRegistry);
  });

  it('metrics: null turns libp2p metrics off', async () => {
    const id = ident(9);
    const h = await createHost({ identity: id, cluster: CLUSTER, swarmKey: generateSwarmKey(), members: new InviteMemberSource({ cluster: CLUSTER, genesis: [id.peerId], now: Date.now }), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null, metrics: null });
    expect(h.metricsRegistry).toBeNull();
  });
});

describe('metrics endpoint', () => {
  it('serves GET and HEAD /metrics only, with clear errors otherwise', async () => {
    const swarmKey = generateSwarmKey();
    const id = ident(11);
    const h = await createHost({ identity: id, cluster: CLUSTER, swarmKey, members: new InviteMemberSource({ cluster: CLUSTER, genesis: [id.peerId], now: Date.now }), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null });
    const s = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: h.metricsRegistry! });
    cleanups.push(() => s.close());
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const head = await fetch(s.url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
    const other = await fetch(s.url.replace('/metrics', '/status'));
    expect(other.status).toBe(404);
    expect(await other.text()).toContain('/metrics');
    const post = await fetch(s.url, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    // a port already taken: typed error naming the address and the way out
    const taken = Number(new URL(s.url).port);
    await expect(startMetricsServer({ host: '127.0.0.1', port: taken, registry: h.metricsRegistry! })).rejects.toMatchObject({ code: 'ERR_METRICS_LISTEN', data: { host: '127.0.0.1', port: taken } });
  });

  it('FEDNODE_METRICS: unset = loopback on a free port, off, HOST:PORT, [v6]:PORT; anything else is a typed error', () => {
    expect(metricsListenFromEnv(undefined)).toEqual(METRICS_LISTEN_DEFAULT);
    expect(metricsListenFromEnv('  ')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(metricsListenFromEnv('off')).toBeNull();
    expect(metricsListenFromEnv('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(metricsListenFromEnv('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(metricsListenFromEnv('localhost:1')).toEqual({ host: 'localhost', port: 1 });
    for (const bad of ['9464', ':9464', 'host:', 'host:65536', 'a b:1', '::1:9464', 'on', 'host:12x']) {
      let err: unknown = null;
      try {
        metricsListenFromEnv(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(MetricsError);
      expect(err).toMatchObject({ code: 'ERR_METRICS_ADDR', data: { value: bad } });
    }
  });
});

describe('metrics extension on a real node', () => {
  it('startNode with the extension serves libp2p, process and fednode metrics, also as JSON on the control API', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fednode-metrics-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await initDataDir({ dir, newCluster: true, nowMs: Date.now(), config: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: { enabled: false }, api: { enabled: false }, adverts: { periodMs: 500 } } });
    const ext = metricsExtension({ listen: { host: '127.0.0.1', port: 0 } });
    const node = await startRuntimeNode({ dataDir: dir, logger: nullLogger, extensions: [ext] });
    cleanups.push(() => node.stop());
    const url = (node.status().extensions['metrics'] as { url: string }).url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    await waitFor(() => node.status().adverts.seq >= 1, 10_000, 'first advert');
    const text = await scrape(url);
    expect(text).toContain('# TYPE libp2p_connection_manager_connections gauge');
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'fednode_members')).toBe(1);
    expect(sample(text, 'fednode_advert_seq')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'fednode_advert_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'fednode_peers_connected', { member: 'true' })).toBe(0);
    expect(sample(text, 'fednode_inference_requests', { state: 'in_flight' })).toBe(0);
    expect(sample(text, 'fednode_peer_table_entries', { state: 'live' })).not.toBeNull();
    // the consensus driver's state, as its own status reports it (read after the scrape: heights only grow)
    const decided = sample(text, 'fednode_consensus_decided_height');
    expect(sample(text, 'fednode_consensus_validators')).toBe(node.status().consensus.validators.length);
    expect(decided).toBeGreaterThanOrEqual(0);
    expect(decided).toBeLessThanOrEqual(node.status().consensus.decidedHeight);
    // the control API answers the same text to token holders, and nothing without the token
    const token = await readControlToken(join(dir, 'control.token'));
    const noToken = await fetch(`${node.controlUrl}/metrics`);
    expect(noToken.status).toBe(401);
    const r = await fetch(`${node.controlUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    const j = (await r.json()) as { contentType: string; text: string };
    expect(j.contentType).toMatch(/^text\/plain/);
    expect(sample(j.text, 'fednode_members')).toBe(1);
    await node.stop();
    await expect(fetch(url)).rejects.toThrow();
  });
});
