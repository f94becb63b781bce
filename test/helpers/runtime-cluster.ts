// Test helper: N real nodes (node/runtime startNode) in this process, each with its own data
// directory, all N in the genesis (so consensus runs from height 1 without admissions), on
// 127.0.0.1 with mDNS off; node k bootstraps to nodes 0..k-1, so every pair is connected
// (`chain: true`: node k knows only node k-1, node 0 nobody; the mesh keeper connects the rest).
// Each serves the embedded simulated backend. `env` per node is applied only while that node
// starts (the adverts service reads its probe overrides, e.g. FEDNODE_POWER_SUPPLY_ROOT, then).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityFromSeed } from '../../crypto/keys.js';
import type { FednodeConfigInput } from '../../node/config.js';
import { dataDirPaths, readClusterFile, writeClusterFile } from '../../node/datadir.js';
import { nullLogger } from '../../node/log.js';
import { initDataDir } from '../../node/runtime/init.js';
import { startNode } from '../../node/runtime/node.js';
import type { RunningNode } from '../../node/runtime/node.js';

export const SIM_MODEL = 'simulated-7b';

export interface RuntimeCluster {
  readonly dirs: readonly string[];
  /** The running node of each index (replaced by restart). */
  readonly nodes: RunningNode[];
  restart(i: number): Promise<RunningNode>;
  stop(): Promise<void>;
}

export async function startRuntimeCluster(n: number, o: { config?: FednodeConfigInput; env?: (i: number) => Record<string, string>; chain?: boolean } = {}): Promise<RuntimeCluster> {
  const base = await mkdtemp(join(tmpdir(), 'fednode-rt-'));
  const ids = Array.from({ length: n }, (_, i) => identityFromSeed(new Uint8Array(32).fill(100 + i)));
  const dirs = ids.map((_, i) => join(base, `node-${i + 1}`));
  const config: FednodeConfigInput = {
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: { enabled: false },
    api: { port: 0 },
    adverts: { periodMs: 250 },
    backends: [{ kind: 'simulated', models: [SIM_MODEL], tokensPerSecond: 0 }],
    ...o.config,
  };
  for (let i = 0; i < n; i++) await initDataDir({ dir: dirs[i]!, newCluster: i === 0, nowMs: Date.now(), identity: ids[i]!, config: { ...config, name: `node-${i + 1}` } });
  const first = dataDirPaths(dirs[0]!);
  const cluster = await readClusterFile(first.cluster);
  const genesis = ids.map((id) => ({ peerId: id.peerId, publicKey: Buffer.from(id.publicKey).toString('hex') }));
  const swarm = await readFile(first.swarmKey);
  for (const d of dirs) {
    const p = dataDirPaths(d);
    await writeClusterFile(p.cluster, { ...cluster, genesis });
    await writeFile(p.swarmKey, swarm, { mode: 0o600 });
  }
  const nodes: RunningNode[] = [];
  const launch = async (i: number): Promise<RunningNode> => {
    const p = dataDirPaths(dirs[i]!);
    const cfg = JSON.parse(await readFile(p.config, 'utf8')) as Record<string, unknown>;
    cfg['bootstrap'] = nodes.filter((x, j) => j !== i && x !== undefined && (o.chain !== true || j === i - 1)).flatMap((x) => x.addresses().filter((a) => a.includes('/127.0.0.1/')).slice(0, 1));
    await writeFile(p.config, JSON.stringify(cfg, null, 2));
    const env = o.env?.(i) ?? {};
    const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      return await startNode({ dataDir: dirs[i]!, logger: nullLogger });
    } finally {
      for (const [k, v] of Object.entries(before)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };
  for (let i = 0; i < n; i++) nodes[i] = await launch(i);
  return {
    dirs,
    nodes,
    async restart(i) {
      await nodes[i]!.stop();
      nodes[i] = await launch(i);
      return nodes[i];
    },
    async stop() {
      for (const x of nodes) await x.stop().catch(() => undefined);
      await rm(base, { recursive: true, force: true });
    },
  };
}
