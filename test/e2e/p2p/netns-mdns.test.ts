// Multi-host: two nodes in separate network namespaces joined by a bridge (itself in
// a third namespace, so the host's own network is never touched) discover each other
// by mDNS and connect. Addresses are 10.213.77.0/24, assigned only inside the
// namespaces. Skips, saying why, where namespaces cannot be created (no root / no ip).
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ident } from '../../helpers/p2p.js';

const tag = `fn${process.pid % 100000}`;
const NS_A = `${tag}a`;
const NS_B = `${tag}b`;
const NS_C = `${tag}c`;
const NS_BR = `${tag}br`;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function probeNetns(): string | null {
  const probe = `${tag}probe`;
  try {
    ip('netns', 'add', probe);
  } catch (err) {
    return `cannot create network namespaces (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
  try {
    ip('netns', 'del', probe);
  } catch {
    // best effort
  }
  return null;
}

const skipReason = probeNetns();
if (skipReason !== null) process.stderr.write(`[test/p2p/netns-mdns] SKIPPED: ${skipReason}\n`);

function cleanup(): void {
  for (const ns of [NS_A, NS_B, NS_C, NS_BR]) {
    try {
      ip('netns', 'del', ns); // deleting a namespace destroys its veth ends and the bridge
    } catch {
      // not created
    }
  }
}

function setupNamespaces(): void {
  cleanup();
  for (const ns of [NS_A, NS_B, NS_C, NS_BR]) ip('netns', 'add', ns);
  ip('-n', NS_BR, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', NS_BR, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
  ip('-n', NS_BR, 'link', 'set', 'br0', 'up');
  for (const [ns, addr, peerName] of [
    [NS_A, '10.213.77.1/24', 'vA'],
    [NS_B, '10.213.77.2/24', 'vB'],
    [NS_C, '10.213.77.3/24', 'vC'],
  ] as const) {
    // veth pair created inside the bridge namespace, one end moved into the node namespace
    ip('-n', NS_BR, 'link', 'add', peerName, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('-n', NS_BR, 'link', 'set', peerName, 'master', 'br0');
    ip('-n', NS_BR, 'link', 'set', peerName, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', addr, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up', 'multicast', 'on');
    ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0'); // mDNS multicast leaves through the bridge
  }
}

interface Child {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: string[];
}

const children: Child[] = [];

function startChild(ns: string, seedByte: number, pskHex: string, genesis: string[], cluster = 'nstest'): Child {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', 'test/helpers/netns-node.ts', String(seedByte), pskHex, cluster, genesis.join(',')], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const c: Child = { proc, lines: [], stderr: [] };
  createInterface({ input: proc.stdout }).on('line', (l) => {
    try {
      c.lines.push(JSON.parse(l) as Record<string, unknown>);
      if (c.lines.length > 200) c.lines.splice(0, 100); // bound memory
    } catch {
      c.stderr.push(`non-JSON stdout: ${l}`);
    }
  });
  createInterface({ input: proc.stderr }).on('line', (l) => {
    if (c.stderr.length < 200) c.stderr.push(l);
  });
  children.push(c);
  return c;
}

function latestPeers(c: Child): Array<{ peerId: string; addrs: string[]; member: boolean }> {
  for (let i = c.lines.length - 1; i >= 0; i--) {
    const l = c.lines[i]!;
    if (l['event'] === 'peers') return l['peers'] as Array<{ peerId: string; addrs: string[]; member: boolean }>;
  }
  return [];
}

async function stopChildren(): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
          const t = setTimeout(() => {
            c.proc.kill('SIGKILL');
          }, 5000);
          c.proc.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          c.proc.stdin?.end(); // netns-node stops on stdin end (the ip wrapper execs node, so stdin reaches it)
        }),
    ),
  );
}

describe('multi-host mDNS discovery across network namespaces', () => {
  afterAll(async () => {
    await stopChildren();
    cleanup();
  });

  it.skipIf(skipReason !== null)('two nodes in separate namespaces find each other by mDNS and connect over the bridge; another cluster on the same LAN stays unseen', async () => {
    setupNamespaces();
    const a = ident(21);
    const b = ident(22);
    const genesis = [a.peerId, b.peerId];
    const pskHex = Buffer.alloc(32, 0x42).toString('hex');
    const ca = startChild(NS_A, 21, pskHex, genesis);
    const cb = startChild(NS_B, 22, pskHex, genesis);
    // same LAN, same key even, but another cluster id: its mDNS service tag differs
    const c = ident(23);
    const cc = startChild(NS_C, 23, pskHex, [c.peerId], 'othercluster');
    const deadline = Date.now() + 60_000; // children load TypeScript through tsx: slow on a busy 2-core machine
    const found = (c: Child, other: string): boolean => latestPeers(c).some((p) => p.peerId === other && p.addrs.some((x) => x.includes('/ip4/10.213.77.')));
    while (!(found(ca, b.peerId) && found(cb, a.peerId))) {
      if (Date.now() > deadline) {
        throw new Error(`no mDNS discovery within 60 s\nA stderr: ${ca.stderr.join('\n')}\nB stderr: ${cb.stderr.join('\n')}\nA: ${JSON.stringify(ca.lines.slice(-1))}\nB: ${JSON.stringify(cb.lines.slice(-1))}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const pa = latestPeers(ca).find((p) => p.peerId === b.peerId)!;
    expect(pa.member).toBe(true);
    while (!cc.lines.some((l) => l['event'] === 'ready')) {
      if (Date.now() > deadline) throw new Error(`other-cluster node never started: ${cc.stderr.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // three more mDNS query intervals (1 s each) with all three up: the other cluster never shows up
    await new Promise((r) => setTimeout(r, 3500));
    expect(latestPeers(ca).map((p) => p.peerId)).toEqual([b.peerId]);
    expect(latestPeers(cb).map((p) => p.peerId)).toEqual([a.peerId]);
    expect(latestPeers(cc)).toEqual([]);
  }, 120_000);
});
