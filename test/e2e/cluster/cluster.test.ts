import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pathExists } from '../../../node/datadir.js';
import type { PeerRow, Running } from '../../helpers/e2e.js';
import { control, fednode, spawnUntil, waitFor } from '../../helpers/e2e.js';

// Short advert period so stale (3 periods) and gone (10 periods) happen in seconds.
const PERIOD_MS = 250;
const NODE_FLAGS = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--api-port', '0', '--advert-period', `${PERIOD_MS}ms`];

const running: Running[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function start(dir: string): Promise<Running> {
  const r = await spawnUntil(['start', '--json', '--data-dir', dir], 'ready');
  running.push(r);
  return r;
}

async function peersOf(dir: string): Promise<PeerRow[]> {
  return (await control<{ peers: PeerRow[] }>(dir, '/peers')).peers;
}

describe('fednode end to end (real processes on 127.0.0.1)', () => {
  it('init, invite, join; peers see each other; kill -9 -> stale -> gone; restart with the same id; SIGINT exits 0', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-e2e-'));
    dirs.push(base);
    const [a, b, c] = ['a', 'b', 'c'].map((n) => join(base, n)) as [string, string, string];

    const init = await fednode(['init', '--new-cluster', '--json', '--data-dir', a, '--name', 'a', ...NODE_FLAGS]);
    expect(init.code, init.stderr).toBe(0);
    const cluster = (JSON.parse(init.stdout) as { cluster: string }).cluster;
    const na = await start(a);

    // invite is one-time: one per joiner
    for (const [dir, name] of [[b, 'b'], [c, 'c']] as const) {
      const inv = await fednode(['invite', '--json', '--ttl', '10m', '--data-dir', a]);
      expect(inv.code, inv.stderr).toBe(0);
      const { token } = JSON.parse(inv.stdout) as { token: string };
      const j = await fednode(['join', token, '--json', '--data-dir', dir, '--name', name, ...NODE_FLAGS]);
      expect(j.code, j.stderr).toBe(0);
      expect((JSON.parse(j.stdout) as { cluster: string }).cluster).toBe(cluster);
    }
    const nb = await start(b);
    let nc = await start(c);
    const ids = { a: na.ready['peerId'] as string, b: nb.ready['peerId'] as string, c: nc.ready['peerId'] as string };

    // every node lists the two others with live adverts (the CLI's own `peers --json`)
    for (const [dir, self] of [[a, ids.a], [b, ids.b], [c, ids.c]] as const) {
      await waitFor(`peers of ${self}`, async () => {
        const r = await fednode(['peers', '--json', '--data-dir', dir]);
        if (r.code !== 0) return undefined;
        const live = (JSON.parse(r.stdout) as { peers: PeerRow[] }).peers.filter((p) => p.state === 'live');
        const others = Object.values(ids).filter((id) => id !== self);
        return others.every((id) => live.some((p) => p.peerId === id && typeof p.advert.profile === 'string')) ? true : undefined;
      }, 30_000, 250);
    }
    const st = await fednode(['status', '--json', '--data-dir', b]);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ peerId: ids.b, cluster, members: expect.arrayContaining([ids.a, ids.b, ids.c]) });
    // human output of the same commands
    const table = await fednode(['peers', '--data-dir', a]);
    expect(table.stdout).toMatch(/^PEER\s+STATE\s+AGE/);
    expect(table.stdout.split('\n').filter((l) => /\blive\b/.test(l))).toHaveLength(2);
    const human = await fednode(['status', '--data-dir', a]);
    expect(human.stdout).toContain(`peer id     ${ids.a}`);
    expect(human.stdout).toContain(`cluster     ${cluster}`);
    // doctor against the running node: peers connected, no failures
    const doc = await fednode(['doctor', '--json', '--data-dir', a]);
    const checks = (JSON.parse(doc.stdout) as { checks: Array<{ name: string; status: string }> }).checks;
    expect(checks.find((c) => c.name === 'peers')?.status).toBe('ok');
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(doc.code).toBe(0);

    // kill -9 c: it turns stale, then disappears, on a and b
    nc.child.kill('SIGKILL');
    await nc.exited;
    for (const dir of [a, b]) {
      await waitFor('c stale', async () => ((await peersOf(dir)).some((p) => p.peerId === ids.c && p.state === 'stale') ? true : undefined), 10_000, 50);
    }
    for (const dir of [a, b]) {
      await waitFor('c gone', async () => ((await peersOf(dir)).some((p) => p.peerId === ids.c) ? undefined : true), 10_000, 100);
    }

    // restart c (its lock is stale after kill -9): same id, live again on the others
    nc = await start(c);
    expect(nc.ready['peerId']).toBe(ids.c);
    for (const dir of [a, b]) {
      await waitFor('c back', async () => ((await peersOf(dir)).some((p) => p.peerId === ids.c && p.state === 'live') ? true : undefined), 20_000, 100);
    }

    // graceful shutdown: SIGINT -> exit 0, runtime file removed, lock released
    for (const [n, dir] of [[na, a], [nb, b], [nc, c]] as const) {
      n.child.kill('SIGINT');
      const e = await n.exited;
      expect(e.code, n.stderr().slice(-2000)).toBe(0);
      expect(await pathExists(join(dir, 'runtime.json'))).toBe(false);
      expect(await pathExists(join(dir, 'node.lock'))).toBe(false);
    }
    // after a clean stop the next start takes the lock at once
    const again = await start(a);
    again.child.kill('SIGTERM');
    expect((await again.exited).code).toBe(0);
  }, 300_000);

  it('`fednode cluster --nodes 3` starts three joined nodes and stops them cleanly on SIGINT', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fednode-e2e-cluster-'));
    dirs.push(base);
    const cl = await spawnUntil(['cluster', '--nodes', '3', '--json', '--dir', base, '--advert-period', `${PERIOD_MS}ms`], 'cluster-ready', 90_000);
    running.push(cl);
    const nodes = cl.ready['nodes'] as Array<{ name: string; peerId: string; dataDir: string; pid: number }>;
    expect(nodes.map((n) => n.name)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(new Set(nodes.map((n) => n.peerId)).size).toBe(3);
    // node processes run with 2 malloc arenas (node/metrics/heap.ts) unless the operator chose
    for (const n of nodes) expect((await readFile(`/proc/${n.pid}/environ`, 'latin1')).split('\0')).toContain(`MALLOC_ARENA_MAX=${process.env['MALLOC_ARENA_MAX'] ?? '2'}`);
    const first = nodes[0]!;
    await waitFor('node-1 sees 2 live peers', async () => ((await peersOf(first.dataDir)).filter((p) => p.state === 'live').length === 2 ? true : undefined), 30_000, 200);
    // the out-of-the-box model is served by every node's simulated backend
    const models = await waitFor(
      'node-1 lists the simulated model on 3 nodes',
      async () => {
        const r = await fednode(['models', '--json', '--data-dir', first.dataDir]);
        const m = (JSON.parse(r.stdout) as { models: { id: string; servedBy: string[]; simulated: boolean }[] }).models;
        return m.length === 1 && m[0]!.servedBy.length === 3 ? m : undefined;
      },
      30_000,
      250,
    );
    expect(models[0]!.id).toBe('simulated-7b');
    expect(models[0]!.simulated).toBe(true);
    // `fednode infer` through node-1: an answer, the serving node named, tokens/s measured
    const inf = await fednode(['infer', '--json', '--data-dir', first.dataDir, '--model', 'simulated-7b', '--max-tokens', '8', 'hello cluster']);
    expect(inf.code, inf.stderr).toBe(0);
    const res = JSON.parse(inf.stdout) as { text: string; servedBy: string; completionTokens: number; tokensPerSecond: number | null };
    expect(res.completionTokens).toBe(8);
    expect(res.text.trim().split(/\s+/).length).toBeGreaterThanOrEqual(1);
    expect(nodes.map((n) => n.peerId)).toContain(res.servedBy);
    expect(res.tokensPerSecond).toBeGreaterThan(0);
    const unknown = await fednode(['infer', '--data-dir', first.dataDir, '--model', 'no-such-model', 'hi']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no-such-model|404/);
    const lines: string[] = [];
    cl.child.stdout!.on('data', (b: Buffer) => lines.push(b.toString()));
    cl.child.kill('SIGINT');
    const e = await cl.exited;
    expect(e.code, cl.stderr().slice(-2000)).toBe(0);
    expect(lines.join('')).toContain('"event":"cluster-stopped","clean":true');
    for (const n of nodes) {
      expect(() => process.kill(n.pid, 0)).toThrow(); // every child is gone
      expect(await pathExists(join(n.dataDir, 'node.lock'))).toBe(false);
    }

    // the same --dir again: the nodes come back with their identities and reach each other,
    // although every listen port changed (the reused joiners are re-pointed at node-1)
    const again = await spawnUntil(['cluster', '--nodes', '3', '--json', '--dir', base, '--advert-period', `${PERIOD_MS}ms`], 'cluster-ready', 90_000);
    running.push(again);
    const nodes2 = again.ready['nodes'] as Array<{ name: string; peerId: string; dataDir: string; addrs: string[] }>;
    expect(nodes2.map((n) => n.peerId)).toEqual(nodes.map((n) => n.peerId));
    for (const n of nodes2.slice(1)) await waitFor(`${n.name} sees 2 live peers after the restart`, async () => ((await peersOf(n.dataDir)).filter((p) => p.state === 'live').length === 2 ? true : undefined), 30_000, 200);
    again.child.kill('SIGINT');
    expect((await again.exited).code, again.stderr().slice(-2000)).toBe(0);
  }, 300_000);
});
