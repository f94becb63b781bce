/**
 * Every Prometheus series issue 17 names is present on a real node's /metrics and moves under
 * load: 3 real nodes in this process (real libp2p on loopback, real HTTP, LevelDB). node-1 carries
 * the metrics extension and two backends: an Ollama address where nothing listens (down) and an
 * OpenAI-compatible HTTP server of this test that lists `broken-7b` and answers
 * every chat with HTTP 500 (an injected upstream failure). node-2 and node-3 serve the simulated
 * model one request at a time with no queue. So concurrent load meets 429s after failing over
 * from the busy first candidate to the (also busy) second, and `broken-7b` ends in an error.
 * (A failover that then succeeds is not forced here: which candidate ranks first depends on the
 * machine's CPU load in the node's own advert; test/integration/infer covers that path.)
 *
 * node-1's GPU reading is the real H200 recording (test/fixtures/probes/nvidia-smi/real/
 * h200-580.173.02-linux.csv: 143771 MiB total, 0 MiB used, 0 %, 37 C, 85.12 W of 700 W) put in the
 * probe's own query format; its power supply is the laptop-battery-15 fixture. Those gauges are
 * checked equal to the readings (they do not move with simulated load: no real GPU works here).
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsExtension } from '../../../node/metrics/extension.js';
import type { MetricsExtension } from '../../../node/metrics/extension.js';
import { connectControl } from '../../../node/control/client.js';
import { dataDirPaths } from '../../../node/datadir.js';
import type { RuntimeCluster } from '../../helpers/runtime-cluster.js';
import { SIM_MODEL, startRuntimeCluster } from '../../helpers/runtime-cluster.js';
import { ROOT } from '../../helpers/e2e.js';

let cluster: RuntimeCluster;
let tmp: string;
let upstream: Server;
const ext: MetricsExtension = metricsExtension({ listen: { host: '127.0.0.1', port: 0 }, processMetrics: false });

/** Prometheus text -> series (`name{labels}`) -> value. */
async function scrape(): Promise<Map<string, number>> {
  const url = ext.status().url;
  if (url === null) throw new TypeError('metrics endpoint not listening');
  const text = await (await fetch(url)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
/** Sum of every series of `name` whose labels include all of `want` (exact name, no suffix). */
function sum(m: Map<string, number>, name: string, want: Record<string, string> = {}): number | null {
  let total: number | null = null;
  for (const [k, v] of m) {
    const base = k.includes('{') ? k.slice(0, k.indexOf('{')) : k;
    if (base !== name) continue;
    if (!Object.entries(want).every(([l, x]) => k.includes(`${l}="${x}"`))) continue;
    total = (total ?? 0) + v;
  }
  return total;
}

async function chat(maxTokens: number, model = SIM_MODEL): Promise<number> {
  const r = await fetch(`${cluster.nodes[0]!.apiUrl!}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'count' }], max_tokens: maxTokens }),
  });
  await r.arrayBuffer();
  return r.status;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'fednode-series-'));
  const smi = join(tmp, 'nvidia-smi');
  await writeFile(smi, '#!/bin/sh\necho "0, GPU-00000000-0000-0000-0000-000000000000, NVIDIA H200, 143771, 0, 0, 37, 85.12, 700.00"\n');
  await chmod(smi, 0o755);
  upstream = createServer((req, res) => {
    if (req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'broken-7b', object: 'model' }] }));
      return;
    }
    req.resume();
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'injected upstream failure', type: 'server_error' } }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
  const battery15 = join(ROOT, 'test', 'fixtures', 'probes', 'power_supply', 'laptop-battery-15');
  cluster = await startRuntimeCluster(3, {
    // 1 s adverts: a stopped member stays live for 3 s, long enough to be routed to and fail over from.
    config: { adverts: { periodMs: 1000 } },
    configOf: (i) => ({
      backends:
        i === 0
          ? [
              { kind: 'ollama', id: 'ollama-down', baseUrl: 'http://127.0.0.1:9' },
              { kind: 'openai', id: 'failing', baseUrl: upstreamUrl },
            ]
          : [
              { kind: 'simulated', models: [SIM_MODEL], tokensPerSecond: 400, concurrency: 1, maxQueue: 0 },
            ],
    }),
    env: (i): Record<string, string> => (i === 0 ? { FEDNODE_NVIDIA_SMI: smi, FEDNODE_POWER_SUPPLY_ROOT: battery15 } : {}),
    extensions: (i) => (i === 0 ? [ext] : []),
  });
  // node-1 sees both servers' adverts
  for (;;) {
    const models = (await (await fetch(`${cluster.nodes[0]!.apiUrl!}/v1/models`)).json()) as { data: Array<{ id: string; fednode: { served_by: string[] } }> };
    if (models.data.find((m) => m.id === SIM_MODEL)?.fednode.served_by.length === 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await new Promise((r) => upstream?.close(r));
  await rm(tmp, { recursive: true, force: true });
});

describe('issue 17 metrics on a real node', () => {
  it('every named series is present and the request, token, TTFT, 429, failover, error and consensus series move under load', async () => {
    const before = await scrape();
    const c = await connectControl(dataDirPaths(cluster.dirs[0]!));
    const peer2 = cluster.nodes[1]!.peerId;
    const peer3 = cluster.nodes[2]!.peerId;

    // hardware and state series: present, equal to the readings
    await expect.poll(async () => sum(await scrape(), 'fednode_gpu_temperature_celsius', { gpu: '0', name: 'NVIDIA H200' }), { timeout: 10_000 }).toBe(37);
    const hw = await scrape();
    expect(sum(hw, 'fednode_gpu_memory_total_bytes')).toBe(143771 * 2 ** 20);
    expect(sum(hw, 'fednode_gpu_memory_used_bytes')).toBe(0);
    expect(sum(hw, 'fednode_gpu_utilization_ratio')).toBe(0);
    expect(sum(hw, 'fednode_gpu_power_draw_watts')).toBeCloseTo(85.12);
    expect(sum(hw, 'fednode_gpu_power_limit_watts')).toBe(700);
    expect(sum(hw, 'fednode_power_source', { source: 'battery' })).toBe(1);
    expect(sum(hw, 'fednode_power_source', { source: 'ac' })).toBe(0);
    expect(sum(hw, 'fednode_battery_ratio')).toBeCloseTo(0.15);
    expect(sum(hw, 'fednode_power_profile', { profile: 'eco' })).toBe(1); // discharging below 20 %: eco
    expect(sum(hw, 'fednode_power_profile')).toBe(1);
    expect(hw.has('fednode_inference_requests{state="in_flight"}')).toBe(true);
    expect(hw.has('fednode_inference_requests{state="queued"}')).toBe(true);

    // 1. load: 6 at once against 2 servers of one slot each: some served, some 429
    const statuses = await Promise.all(Array.from({ length: 6 }, () => chat(200)));
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    const afterLoad = await scrape();
    const served = (p: string): number => sum(afterLoad, 'fednode_requests_total', { model: SIM_MODEL, peer: p }) ?? 0;
    expect(served(peer2) + served(peer3)).toBe(statuses.filter((s) => s === 200).length);
    expect(sum(afterLoad, 'fednode_requests_busy_total', { model: SIM_MODEL })).toBe(statuses.filter((s) => s === 429).length);
    expect(sum(afterLoad, 'fednode_tokens_total', { direction: 'out' })).toBeGreaterThan(sum(before, 'fednode_tokens_total', { direction: 'out' }) ?? 0);
    expect(sum(afterLoad, 'fednode_tokens_total', { direction: 'in' })).toBeGreaterThan(0);
    expect(sum(afterLoad, 'fednode_ttft_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(sum(afterLoad, 'fednode_request_duration_seconds_count')).toBe(6);
    expect(sum(afterLoad, 'fednode_request_duration_seconds_sum')).toBeGreaterThan(0);

    // 2. failover: node-3 stops; until its advert turns stale node-1 still ranks it, fails, and moves on to node-2
    // (the 429s above already count failovers under peer="none": a busy first candidate, then the next, also busy)
    expect(sum(afterLoad, 'fednode_failovers_total', { model: SIM_MODEL, peer: 'none' })).toBeGreaterThanOrEqual(1);

    // 2. error: broken-7b is served by node-1's failing upstream only -> 502, counted with its code and peer none
    expect(await chat(1, 'broken-7b')).toBe(502);
    const afterErr = await scrape();
    expect(sum(afterErr, 'fednode_request_errors_total', { model: 'broken-7b', peer: 'none', code: 'ERR_ALL_CANDIDATES_FAILED' })).toBe(1);
    expect(afterErr.get('fednode_backend_up{backend="failing"}')).toBe(1); // it lists its models: up, though every chat fails

    // 3. consensus timing: a decided pattern counts a height's rounds and its decide latency
    expect(sum(afterErr, 'fednode_consensus_rounds_per_height_count')).toBe(0);
    await c.post('/consensus/propose', { ops: [{ kind: 'pattern', name: 'metrics-test', content: 'x' }], waitMs: 30_000 }, { timeoutMs: 35_000 });
    await expect.poll(async () => sum(await scrape(), 'fednode_consensus_rounds_per_height_count'), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    const m = await scrape();
    expect(sum(m, 'fednode_consensus_decide_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sum(m, 'fednode_consensus_decide_seconds_sum')).toBeGreaterThan(0);
    expect(sum(m, 'fednode_consensus_decided_height')).toBeGreaterThanOrEqual(1);

    // backend health: node-1's one backend (an Ollama address nothing listens on) is down
    expect(m.get('fednode_backend_up{backend="ollama-down"}')).toBe(0);
  }, 120_000);
});
