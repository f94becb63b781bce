import { afterEach, describe, expect, it } from 'vitest';
import { pattern, startDriverCluster, waitFor, type DriverCluster } from './helpers.js';

let cluster: DriverCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe('consensus driver (4 nodes, real libp2p)', () => {
  it('decides submitted ops on every node', async () => {
    cluster = await startDriverCluster(4);
    const [a, b] = cluster.nodes;
    const r1 = await a!.consensus.submit([pattern('one')]);
    expect(r1.height).toBeGreaterThanOrEqual(1);
    const r2 = await b!.consensus.submit([pattern('two')]);
    expect(r2.height).toBeGreaterThan(r1.height);
    await waitFor(() => cluster!.nodes.every((x) => x.consensus.status().decidedHeight >= r2.height), 10_000, 'all decided');
    const hashes = new Set(cluster.nodes.map((x) => x.consensus.status().registryHash));
    expect(hashes.size).toBe(1);
    expect(cluster.nodes[3]!.consensus.registry().patterns.map((p) => p.name)).toEqual(['one', 'two']);
  });
});
