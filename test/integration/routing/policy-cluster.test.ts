// The cluster's decisions steer routing, on 4 real nodes (startNode in this process: real
// libp2p over loopback TCP, real LevelDB, real HTTP, the real CLI in-process): a committed
// route.policy and model.alias are in force on every node at the decided height (ranking,
// alias served by every node's API, equal registry hashes) and survive a restart. Node 2 reads
// its battery from a real sysfs fixture tree (15 %, discharging) and node 3 its GPU from a
// stand-in nvidia-smi printing a 92 C reading in the driver's format: each is avoided by
// every node, itself included, for the same reason. RTTs come from libp2p's own pings.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/run.js';
import { connectControl } from '../../../node/control/client.js';
import { dataDirPaths } from '../../../node/datadir.js';
import type { NodeStatus, RunningNode } from '../../../node/runtime/node.js';
import type { RouteJson } from '../../../node/runtime/routing-routes.js';
import { ROOT } from '../../helpers/e2e.js';
import { SIM_MODEL, startRuntimeCluster } from '../../helpers/runtime-cluster.js';
import type { RuntimeCluster } from '../../helpers/runtime-cluster.js';

const CONFIG_FLOOR = 35;
let cluster: RuntimeCluster;
let tmp = '';

async function waitUntil(what: string, f: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function cli(i: number, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli([...argv, '--data-dir', cluster.dirs[i]!], { out: (s) => (out += s), err: (s) => (err += s), env: {} });
  return { code, out, err };
}

async function route(i: number, model: string): Promise<RouteJson> {
  return (await connectControl(dataDirPaths(cluster.dirs[i]!))).get<RouteJson>(`/routing/route?model=${encodeURIComponent(model)}`);
}

const status = (n: RunningNode): NodeStatus => n.status();
const peerOf = (i: number): string => cluster.nodes[i]!.peerId;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'fednode-route-'));
  const smi = join(tmp, 'nvidia-smi');
  // the probe's own query format (index, uuid, name, memory.total, memory.used, util, temp, power.draw, power.limit)
  await writeFile(smi, '#!/bin/sh\necho "0, GPU-5c1a, NVIDIA GeForce RTX 4090, 24564, 20480, 97, 92, 431.20, 450.00"\n');
  await chmod(smi, 0o755);
  const battery15 = join(ROOT, 'test', 'fixtures', 'probes', 'power_supply', 'laptop-battery-15');
  const noGpu = join(tmp, 'no-nvidia-smi');
  const desktop = join(ROOT, 'test', 'fixtures', 'probes', 'power_supply', 'desktop');
  cluster = await startRuntimeCluster(4, {
    config: { power: { batteryFloorPercent: CONFIG_FLOOR } },
    env: (i) => ({ FEDNODE_NVIDIA_SMI: i === 2 ? smi : noGpu, FEDNODE_POWER_SUPPLY_ROOT: i === 1 ? battery15 : desktop }),
  });
  // every node sees the other three live (adverts) and connected
  await waitUntil('every node sees 3 live peers serving the model', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await route(i, SIM_MODEL);
      if (r.ranked.length !== 4) return false;
    }
    return true;
  });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await rm(tmp, { recursive: true, force: true });
});

describe('4 real nodes: the decided registry steers routing', () => {
  it('before any route.policy: config defaults, and the low-battery / hot nodes are avoided by everyone, themselves included', async () => {
    for (let i = 0; i < 4; i++) {
      expect(status(cluster.nodes[i]!).inference.routing).toMatchObject({ source: { kind: 'config' }, sourceText: 'config defaults', batteryFloorPct: CONFIG_FLOOR, tempCeilingC: 85 });
      const r = await route(i, SIM_MODEL);
      const tierOf = (j: number) => r.ranked.find((c) => c.peerId === peerOf(j))!;
      expect(tierOf(1), `node ${i + 1} on node 2`).toMatchObject({ tier: 'fallback', reasons: [`battery 15% < floor ${CONFIG_FLOOR}%`], isLocal: i === 1 });
      expect(tierOf(2), `node ${i + 1} on node 3`).toMatchObject({ tier: 'fallback', reasons: ['gpu 92 C > ceiling 85 C'], isLocal: i === 2 });
      expect(r.ranked.slice(0, 2).map((c) => c.tier)).toEqual(['preferred', 'preferred']);
      expect(r.ranked.slice(0, 2).map((c) => c.peerId).sort()).toEqual([peerOf(0), peerOf(3)].sort());
    }
    const human = await cli(0, 'status');
    expect(human.code, human.err).toBe(0);
    expect(human.out).toMatch(new RegExp(`\\nrouting     config defaults  weights load=1 latency=0.5 power=0.25 heat=1 battery=1  battery floor ${CONFIG_FLOOR}%  temp ceiling 85 C\\n`));
  });

  it('unknown weights and aliases shadowing a served model are refused at propose time, naming what is wrong', async () => {
    const w = await cli(0, 'propose', 'route.policy', '--weight', 'speed=2');
    expect(w.code).toBe(1);
    expect(w.err).toContain("unknown weight 'speed' (known: load, latency, power, heat, battery)");
    const a = await cli(1, 'propose', 'model.alias', SIM_MODEL, 'other-model');
    expect(a.code).toBe(1);
    expect(a.err).toContain(`alias '${SIM_MODEL}' would shadow the model '${SIM_MODEL}' served by`);
    for (let i = 0; i < 4; i++) expect(a.err).toContain(peerOf(i));
  });

  let policyHeight = 0;
  it('a committed route.policy and model.alias are in force on every node at the decided height; a request by alias is served everywhere', async () => {
    const p = await cli(0, 'propose', 'route.policy', '--weight', 'load=1', '--weight', 'latency=2', '--battery-floor', '50', '--temp-ceiling', '80', '--json');
    expect(p.code, p.err).toBe(0);
    policyHeight = (JSON.parse(p.out) as { height: number }).height;
    const a = await cli(3, 'propose', 'model.alias', 'fast', SIM_MODEL, '--json');
    expect(a.code, a.err).toBe(0);
    const aliasHeight = (JSON.parse(a.out) as { height: number }).height;
    await waitUntil('every node at the alias height', () => cluster.nodes.every((n) => status(n).consensus.decidedHeight >= aliasHeight));
    const top = Math.min(...cluster.nodes.map((n) => status(n).consensus.decidedHeight));
    await waitUntil('equal decided heights', () => cluster.nodes.every((n) => status(n).consensus.decidedHeight === top));
    expect(new Set(cluster.nodes.map((n) => status(n).consensus.registryHash)).size).toBe(1);
    for (let i = 0; i < 4; i++) {
      expect(status(cluster.nodes[i]!).inference.routing).toMatchObject({
        source: { kind: 'registry', height: policyHeight },
        sourceText: `route policy from height ${policyHeight}`,
        weights: { load: 1, latency: 2, power: 0.25, heat: 1, battery: 1 },
        batteryFloorPct: 50,
        tempCeilingC: 80,
        aliases: [{ alias: 'fast', model: SIM_MODEL, problem: null }],
      });
      const r = await route(i, 'fast');
      expect(r).toMatchObject({ requested: 'fast', model: SIM_MODEL, via: ['fast'], policy: { source: `route policy from height ${policyHeight}`, batteryFloorPct: 50, tempCeilingC: 80 } });
      expect(r.ranked.find((c) => c.peerId === peerOf(1))!.reasons).toEqual(['battery 15% < floor 50%']);
      expect(r.ranked.find((c) => c.peerId === peerOf(2))!.reasons).toEqual(['gpu 92 C > ceiling 80 C']);
      // the latency weight of 2 is what the terms use
      for (const c of r.ranked) expect(c.terms.latency).toBeCloseTo((2 * c.rttMs) / 100, 9);
      // every node's API serves the alias and lists it with the model it points to
      const api = cluster.nodes[i]!.apiUrl!;
      const models = (await (await fetch(`${api}/v1/models`)).json()) as { data: { id: string; fednode: { alias_of?: string } }[] };
      expect(models.data.find((m) => m.id === 'fast')?.fednode.alias_of).toBe(SIM_MODEL);
      const res = await fetch(`${api}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: 'hello' }] }) });
      expect(res.status, await res.clone().text()).toBe(200);
      const served = res.headers.get('x-fednode-served-by');
      expect([peerOf(0), peerOf(3)]).toContain(served); // never the low-battery or the hot node
    }
  });

  it('`fednode route` prints the ranking with its terms (human and --json); status names the height', async () => {
    const h = await cli(2, 'route', '--model', 'fast');
    expect(h.code, h.err).toBe(0);
    expect(h.out).toContain(`model       fast -> ${SIM_MODEL} (alias)`);
    expect(h.out).toContain(`policy      route policy from height ${policyHeight}  weights load=1 latency=2 power=0.25 heat=1 battery=1  battery floor 50%  temp ceiling 80 C`);
    expect(h.out).toMatch(/#\s+node\s+tier\s+score\s+load\s+latency\s+energy\s+heat\s+battery\s+est\/cap\s+rtt\s+J\/token\s+fallback reason/);
    expect(h.out).toMatch(/ \(self\)\s+fallback .*gpu 92 C > ceiling 80 C/);
    expect(h.out).toContain('battery 15% < floor 50%');
    const j = await cli(2, 'route', '--model', 'fast', '--json');
    expect(j.code, j.err).toBe(0);
    const body = JSON.parse(j.out) as RouteJson;
    expect(body.ranked).toHaveLength(4);
    expect(body.ranked.every((c) => Math.abs(c.score - (c.terms.load + c.terms.latency + c.terms.energy + c.terms.heat + c.terms.battery)) < 1e-9)).toBe(true);
    const missing = await cli(2, 'route', '--model', 'no-such-model');
    expect(missing.code).toBe(0);
    expect(missing.out).toContain("no live member serves 'no-such-model'");
    expect((await cli(2, 'route')).code).toBe(2);
    const s = await cli(2, 'status', '--json');
    expect((JSON.parse(s.out) as NodeStatus).inference.routing.sourceText).toBe(`route policy from height ${policyHeight}`);
  });

  it("RTTs from libp2p's connection-monitor pings (every 10 s) enter the latency term with the decided weight", async () => {
    await waitUntil('node 1 has measured an RTT to every other node', async () => (await route(0, 'fast')).ranked.every((c) => c.isLocal || c.rttSource === 'measured'), 45_000);
    const r = await route(0, 'fast');
    for (const c of r.ranked.filter((x) => !x.isLocal)) {
      expect(c.rttMs).toBeGreaterThan(0);
      expect(c.rttMs).toBeLessThan(1000); // loopback
      expect(c.terms.latency).toBeCloseTo((2 * c.rttMs) / 100, 9);
    }
  }, 60_000);

  it('a restarted node keeps the policy and the alias from its stored log, before any new height', async () => {
    const before = status(cluster.nodes[3]!).consensus.decidedHeight;
    const n = await cluster.restart(3);
    const s = status(n);
    expect(s.consensus.decidedHeight).toBe(before);
    expect(s.inference.routing).toMatchObject({ source: { kind: 'registry', height: policyHeight }, batteryFloorPct: 50, aliases: [{ alias: 'fast', model: SIM_MODEL }] });
    const r = await route(3, 'fast');
    expect(r.model).toBe(SIM_MODEL);
    expect(r.ranked.find((c) => c.isLocal)?.peerId).toBe(peerOf(3));
  });
});
