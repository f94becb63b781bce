// Issue 5 integration cases with faulty validators (real libp2p on loopback):
// one silent node; one equivocating node (safety holds and the evidence names it);
// 7 nodes with 2 faulty (one silent, one equivocating).
import { afterEach, describe, expect, it } from 'vitest';
import { CLUSTER, ident, pattern, startDriverCluster, waitFor, type DriverCluster, type DriverNode } from '../../helpers/consensus-driver.js';
import { equivocator } from '../../helpers/byzantine.js';

// Node i of the helper's cluster has identity ident(i + 1).
let cluster: DriverCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

/** Submit `count` patterns from the honest nodes (round robin), all in flight at once. */
async function submitAcross(honest: readonly DriverNode[], prefix: string, count: number): Promise<number> {
  const rs = await Promise.all(Array.from({ length: count }, (_, i) => honest[i % honest.length]!.consensus.submit([pattern(`${prefix}${i}`)])));
  return Math.max(...rs.map((r) => r.height));
}

/** Every honest node decided the same value at every height up to `top`. */
async function expectAgreement(honest: readonly DriverNode[], top: number): Promise<void> {
  await waitFor(() => honest.every((x) => x.consensus.status().decidedHeight >= top), 30_000, 'honest nodes at the top height');
  const logs = await Promise.all(honest.map((x) => x.consensus.entries(1, top)));
  for (let h = 0; h < top; h++) {
    const ids = new Set(logs.map((l) => l[h]?.valueId));
    expect(ids.size, `height ${h + 1}`).toBe(1);
  }
  const hashes = new Set(honest.map((x) => x.consensus.status().registryHash));
  expect(hashes.size).toBe(1);
}

describe('consensus driver with faulty validators', () => {
  it('4 nodes, 1 silent: the other three still commit', async () => {
    cluster = await startDriverCluster(4, { silent: [3] });
    const honest = cluster.nodes.slice(0, 3);
    const top = await submitAcross(honest, 's', 12);
    await expectAgreement(honest, top);
    expect(honest[0]!.consensus.registry().patterns).toHaveLength(12);
    expect(cluster.nodes[3]!.consensus.status().decidedHeight).toBe(0); // it never voted or decided
  });

  it('4 nodes, 1 equivocating: honest nodes agree and the evidence names the equivocator', async () => {
    cluster = await startDriverCluster(4, { extra: (i) => (i === 3 ? { testOnly: equivocator(ident(4), CLUSTER) } : {}) });
    const honest = cluster.nodes.slice(0, 3);
    const bad = cluster.nodes[3]!;
    const top = await submitAcross(honest, 'e', 12);
    await expectAgreement(honest, top);
    await waitFor(() => honest.some((x) => x.consensus.status().evidence.length > 0), 5_000, 'evidence');
    for (const x of honest) {
      for (const e of x.consensus.status().evidence) expect(e.validator).toBe(bad.id.peerId);
    }
    const withEvidence = honest.filter((x) => x.consensus.evidence().length > 0);
    expect(withEvidence.length).toBeGreaterThan(0);
    for (const e of withEvidence[0]!.consensus.evidence()) {
      expect(e.first.vote.valueId).not.toBe(e.second.vote.valueId);
      expect(e.first.vote.height).toBe(e.second.vote.height);
    }
  });

  it('7 nodes, 1 silent + 1 equivocating: honest nodes agree, evidence names the equivocator', async () => {
    cluster = await startDriverCluster(7, { silent: [6], extra: (i) => (i === 5 ? { testOnly: equivocator(ident(6), CLUSTER) } : {}) });
    const honest = cluster.nodes.slice(0, 5);
    const top = await submitAcross(honest, 'x', 10);
    await expectAgreement(honest, top);
    await waitFor(() => honest.some((x) => x.consensus.status().evidence.length > 0), 5_000, 'evidence');
    for (const x of honest) for (const e of x.consensus.status().evidence) expect(e.validator).toBe(cluster.nodes[5]!.id.peerId);
  });
});
