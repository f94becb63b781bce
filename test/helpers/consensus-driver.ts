// Shared helpers for consensus-driver tests: n real drivers, each with a real libp2p host on
// 127.0.0.1, a real LevelDB store and a state directory in a temp folder.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '../../crypto/keys.js';
import { contentHashOf, type PatternOp } from '../../consensus/patterns.js';
import type { Genesis } from '../../consensus/registry.js';
import type { TimeoutConfig } from '../../consensus/types.js';
import { openConsensus, type DriverConsensus, type DriverOptions } from '../../node/consensus/driver.js';
import { nullLogger } from '../../node/log.js';
import { createHost, type Host } from '../../node/p2p/host.js';
import { generateSwarmKey } from '../../node/p2p/psk.js';
import { openStore, type Store } from '../../node/store/index.js';
import { CLUSTER, ident, waitFor } from './p2p.js';

export { CLUSTER, ident, waitFor };

/**
 * Longer than LAN_TIMEOUTS: every node of a test runs in one process, and CI runs the suite on
 * two shared cores, where event-loop lag can exceed the LAN propose timeout and rounds churn.
 * A silent proposer costs 800 ms here; the good case does not wait on any timeout.
 */
export const TEST_TIMEOUTS: TimeoutConfig = {
  proposeBaseMs: 800,
  proposeDeltaMs: 400,
  prevoteBaseMs: 200,
  prevoteDeltaMs: 100,
  precommitBaseMs: 200,
  precommitDeltaMs: 100,
};

export function genesisOf(ids: readonly Identity[]): Genesis {
  return { members: ids.map((id, i) => ({ publicKey: id.publicKey, power: 1, name: `n${i + 1}` })) };
}

export function pattern(name: string, content = `content of ${name}`): PatternOp {
  return { kind: 'pattern', name, content, contentHash: contentHashOf(content), tags: ['test'], quality: null };
}

export interface DriverNode {
  readonly idx: number;
  readonly id: Identity;
  readonly dir: string;
  store: Store;
  consensus: DriverConsensus;
  host: Host;
  /** consensus.start was called (false: silent node, its host only relays gossip). */
  voting: boolean;
}

export interface ClusterOptions {
  readonly silent?: readonly number[];
  readonly extra?: (idx: number) => Partial<DriverOptions>;
  readonly timeouts?: TimeoutConfig;
  /** Nodes beyond `n` that are NOT in genesis (joining nodes: same cluster, swarm key and genesis). */
  readonly joiners?: number;
  /** Which pairs connect (default: all). Unlinked pairs stay apart: nothing here dials them. */
  readonly linked?: (i: number, j: number) => boolean;
  /** Called with each node's fresh store before its driver opens (e.g. to write a decided log). */
  readonly prepare?: (idx: number, store: Store) => Promise<void>;
}

export interface DriverCluster {
  readonly nodes: DriverNode[];
  readonly ids: Identity[];
  readonly genesis: Genesis;
  readonly swarmKey: Uint8Array;
  readonly root: string;
  options(n: DriverNode): DriverOptions;
  /** Stop one node (consensus, host, store), keeping its directory. */
  stopNode(n: DriverNode): Promise<void>;
  /** Reopen a stopped node from its directory and reconnect it to the others. */
  restartNode(n: DriverNode): Promise<void>;
  close(): Promise<void>;
}

export async function startDriverCluster(n: number, o: ClusterOptions = {}): Promise<DriverCluster> {
  const root = await mkdtemp(join(tmpdir(), 'fednode-cdrv-'));
  const swarmKey = generateSwarmKey();
  const ids = Array.from({ length: n + (o.joiners ?? 0) }, (_, i) => ident(i + 1));
  const genesis = genesisOf(ids.slice(0, n));
  const options = (node: { idx: number; id: Identity; dir: string; store: Store }): DriverOptions => ({
    identity: node.id,
    cluster: CLUSTER,
    store: node.store,
    stateDir: join(node.dir, 'state'),
    genesis,
    logger: nullLogger,
    now: Date.now,
    timeouts: o.timeouts ?? TEST_TIMEOUTS,
    auditLogPath: join(node.dir, 'audit.log'),
    statusIntervalMs: 200,
    syncTimeoutMs: 3_000,
    submitTimeoutMs: 45_000, // generous: CI shares two cores between test files
    ...o.extra?.(node.idx),
  });
  const open = async (idx: number, id: Identity, dir: string, voting: boolean): Promise<DriverNode> => {
    const store = await openStore(join(dir, 'store'));
    if (o.prepare !== undefined && !prepared.has(idx)) {
      prepared.add(idx);
      await o.prepare(idx, store);
    }
    const consensus = await openConsensus(options({ idx, id, dir, store }));
    const host = await createHost({ identity: id, cluster: CLUSTER, swarmKey, members: consensus.members, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null });
    await host.start();
    if (voting) await consensus.start(host);
    return { idx, id, dir, store, consensus, host, voting };
  };
  const prepared = new Set<number>();
  const nodes: DriverNode[] = [];
  for (let i = 0; i < ids.length; i++) nodes.push(await open(i, ids[i]!, join(root, `n${i + 1}`), !(o.silent ?? []).includes(i)));
  const connect = async (x: DriverNode): Promise<void> => {
    for (const y of nodes) if (y !== x && y.host.addresses().length > 0) await x.host.dial(y.host.addresses()[0]!).catch(() => undefined);
  };
  // Every pair connected once (node i dials the nodes before it), so every publish reaches every
  // node in one hop and no duplicate connections need closing.
  // A dial can lose a race with the host's own redial of a member (the duplicate is refused);
  // the mesh wait below is what proves the nodes are connected.
  for (let i = 1; i < nodes.length; i++) for (let j = 0; j < i; j++) if (o.linked?.(i, j) ?? true) await nodes[i]!.host.dial(nodes[j]!.host.addresses()[0]!).catch(() => undefined);
  await waitMesh(nodes.slice(0, n)); // joiners are not members: nobody grafts them yet
  const stopNode = async (x: DriverNode): Promise<void> => {
    await x.consensus.stop();
    await x.host.stop();
    await x.store.close();
  };
  return {
    nodes,
    ids,
    genesis,
    swarmKey,
    root,
    options: (x) => options(x),
    stopNode,
    async restartNode(x) {
      const fresh = await open(x.idx, x.id, x.dir, true);
      x.store = fresh.store;
      x.consensus = fresh.consensus;
      x.host = fresh.host;
      x.voting = true;
      await connect(x);
      await waitMesh([x]);
    },
    async close() {
      for (const x of nodes) await stopNode(x).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
}

export async function waitMesh(nodes: readonly DriverNode[]): Promise<void> {
  const ok = (x: DriverNode): boolean => {
    const want = Math.min(3, x.host.peers().filter((p) => p.member).length);
    return want > 0 && x.host.meshPeers('consensus').length >= want;
  };
  await waitFor(() => nodes.every(ok), 15_000, 'gossipsub mesh');
}
