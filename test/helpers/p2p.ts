// Shared helpers for p2p tests: deterministic identities, in-process hosts on 127.0.0.1.
import { createEnvelope } from '../../crypto/envelope.js';
import { identityFromSeed } from '../../crypto/keys.js';
import type { Identity } from '../../crypto/keys.js';
import { createHost } from '../../node/p2p/host.js';
import type { Host, HostInit } from '../../node/p2p/host.js';
import { InviteMemberSource } from '../../node/p2p/members.js';
import { generateSwarmKey } from '../../node/p2p/psk.js';

export const CLUSTER = 'testcluster';

export function ident(n: number): Identity {
  const seed = new Uint8Array(32);
  seed[0] = n;
  seed[31] = 0x5a;
  return identityFromSeed(seed);
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function advert(id: Identity, seq: number, body: unknown = { load: seq }, cluster = CLUSTER, time = Date.now()): Uint8Array {
  return createEnvelope(id, { kind: 'advert', cluster, seq, time, body });
}

export interface TestNode {
  id: Identity;
  host: Host;
  members: InviteMemberSource;
}

export async function startNode(id: Identity, o: { swarmKey: Uint8Array; genesis: readonly string[]; extra?: Partial<HostInit> }): Promise<TestNode> {
  const members = new InviteMemberSource({ cluster: CLUSTER, genesis: o.genesis, now: Date.now });
  const host = await createHost({
    identity: id,
    cluster: CLUSTER,
    swarmKey: o.swarmKey,
    members,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: null,
    ...o.extra,
  });
  await host.start();
  return { id, host, members };
}

/** n member nodes, all dialled by node 0 and each to the next (a connected graph), with subscriptions exchanged. */
export async function startCluster(n: number, extra: Partial<HostInit> = {}): Promise<{ nodes: TestNode[]; swarmKey: Uint8Array; genesis: string[] }> {
  const swarmKey = generateSwarmKey();
  const ids = Array.from({ length: n }, (_, i) => ident(i + 1));
  const genesis = ids.map((i) => i.peerId);
  const nodes: TestNode[] = [];
  for (const id of ids) nodes.push(await startNode(id, { swarmKey, genesis, extra }));
  for (let i = 1; i < n; i++) {
    await nodes[i]!.host.dial(nodes[i - 1]!.host.addresses()[0]!);
    if (i > 1) await nodes[i]!.host.dial(nodes[0]!.host.addresses()[0]!);
  }
  await waitMesh(nodes);
  return { nodes, swarmKey, genesis };
}

/** Every node has a gossipsub mesh on both topics with all its connected peers (up to gossipsub's D_lo = 4). */
export async function waitMesh(nodes: readonly TestNode[]): Promise<void> {
  const ok = (x: TestNode): boolean => {
    const want = Math.min(4, x.host.peers().filter((p) => p.member).length);
    return want > 0 && x.host.meshPeers('adverts').length >= want && x.host.meshPeers('consensus').length >= want;
  };
  await waitFor(() => nodes.every(ok), 15_000, 'gossipsub mesh');
}

export async function stopAll(nodes: readonly TestNode[]): Promise<void> {
  await Promise.all(nodes.map((x) => x.host.stop()));
}
