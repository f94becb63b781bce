// Full mesh from a chain, on 4 real nodes in this process (startNode: real libp2p over loopback
// TCP, real LevelDB, the real address-book file): node k is configured with node k-1's address
// only and node 1 with none. The mesh keeper connects every pair from the addresses in the
// members' signed adverts; every node opens a direct consensus channel to every other validator.
// Node 1 then restarts on a new port knowing nobody from its config: its address book finds the
// others, they learn its new address from identify, the mesh re-forms and a proposal commits.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../cli/run.js';
import { ADDRESS_BOOK_FILE } from '../../../node/runtime/node.js';
import { startRuntimeCluster } from '../../helpers/runtime-cluster.js';
import type { RuntimeCluster } from '../../helpers/runtime-cluster.js';

const N = 4;
let cluster: RuntimeCluster;

async function waitUntil(what: string, f: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(cluster.nodes.map((n) => n.status().mesh))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every node connected to every other, and a direct consensus channel to every other validator. */
function fullMesh(): boolean {
  return cluster.nodes.every((n) => {
    const s = n.status();
    return s.mesh.targets === N - 1 && s.mesh.connected === N - 1 && s.mesh.missing.length === 0 && s.consensus.wire.direct === N - 1 && s.consensus.wire.withoutChannel.length === 0;
  });
}

beforeAll(async () => {
  cluster = await startRuntimeCluster(N, { chain: true });
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
});

describe('mesh keeper on real nodes', () => {
  it('4 nodes bootstrapped in a chain become a full mesh with direct channels; after a restart on a new port it re-forms and a proposal commits', async () => {
    // the chain as configured: nobody but the previous node
    const configured = await Promise.all(cluster.dirs.map(async (d) => (JSON.parse(await readFile(join(d, 'config.json'), 'utf8')) as { bootstrap: string[] }).bootstrap.length));
    expect(configured).toEqual([0, 1, 1, 1]);
    await waitUntil('full mesh', fullMesh);
    // node 1 and node 4 were never configured with each other's address, yet are connected
    const first = cluster.nodes[0]!;
    const last = cluster.nodes[N - 1]!;
    expect(last.status().mesh.missing).toEqual([]);

    // every node's address book on disk holds the three others (written within a second of a change)
    for (const [i, d] of cluster.dirs.entries()) {
      await waitUntil(`address book of node ${i + 1}`, async () => {
        const doc = JSON.parse(await readFile(join(d, ADDRESS_BOOK_FILE), 'utf8').catch(() => '{"peers":{}}')) as { peers: Record<string, unknown> };
        return Object.keys(doc.peers).length === N - 1;
      });
    }

    const oldAddr = first.addresses().find((a) => a.includes('/127.0.0.1/'))!;
    const restarted = await cluster.restart(0); // listen port 0: a new port; bootstrap list still empty
    const newAddr = restarted.addresses().find((a) => a.includes('/127.0.0.1/'))!;
    expect(newAddr).not.toBe(oldAddr);
    await waitUntil('full mesh after the restart', fullMesh);
    const port = (a: string): string => /\/tcp\/(\d+)/.exec(a)![1]!;

    let out = '';
    let err = '';
    const code = await runCli(['propose', 'pattern', '--name', 'mesh-ok', '--content', 'every member reaches every member', '--json', '--data-dir', cluster.dirs[N - 1]!], {
      out: (s) => (out += s),
      err: (s) => (err += s),
      env: {},
    });
    expect(code, err).toBe(0);
    expect((JSON.parse(out) as { height: number }).height).toBeGreaterThan(0);
    // node 4's book now leads with node 1's new port (identify / its advert replaced the old one)
    await waitUntil('new port in the book of node 4', async () => {
      const b = JSON.parse(await readFile(join(cluster.dirs[N - 1]!, ADDRESS_BOOK_FILE), 'utf8')) as { peers: Record<string, Array<{ addr: string }>> };
      return b.peers[restarted.peerId]?.[0]?.addr.endsWith(`/tcp/${port(newAddr)}`) === true;
    });
  }, 240_000);
});
