// Issue 5: "4 nodes commit 100 proposals": submitted across all nodes, decided on every node
// with the same registry hash, and every decided height carries a certificate that verifies
// against the validator set of that height.
import { afterEach, describe, expect, it } from 'vitest';
import { ed25519 } from '../../../crypto/ed25519.js';
import { valueIdOf, verifyCommitCertificate } from '../../../consensus/core.js';
import { applyBatch, genesisRegistry, registryHash, validatorSetAt } from '../../../consensus/registry.js';
import { toHex } from '../../../base/hex.js';
import { encodeBatch } from '../../../consensus/patterns.js';
import { CLUSTER, pattern, startDriverCluster, waitFor, type DriverCluster } from '../../helpers/consensus-driver.js';

let cluster: DriverCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe('4 nodes commit 100 proposals', () => {
  it('decides every submitted pattern once, on every node, with verifiable certificates', async () => {
    cluster = await startDriverCluster(4);
    const { nodes } = cluster;
    // 100 proposals from all four nodes, in waves of 20 in flight (batching across heights).
    const receipts = [];
    for (let wave = 0; wave < 5; wave++) {
      receipts.push(...(await Promise.all(Array.from({ length: 20 }, (_, k) => nodes[(wave * 20 + k) % 4]!.consensus.submit([pattern(`p${wave * 20 + k}`)])))));
    }
    expect(receipts).toHaveLength(100);
    const top = Math.max(...receipts.map((r) => r.height));
    await waitFor(() => nodes.every((x) => x.consensus.status().decidedHeight >= top), 15_000, 'every node at the top height');
    const hashes = new Set(nodes.map((x) => x.consensus.status().registryHash));
    expect(hashes.size).toBe(1);
    for (const x of nodes) expect(x.consensus.registry().patterns.map((p) => p.name).sort()).toEqual(Array.from({ length: 100 }, (_, i) => `p${i}`).sort());

    // Replay node 3's log from genesis: each certificate verifies against the set of its height.
    const entries = await nodes[2]!.consensus.entries(1, 10_000);
    expect(entries.map((e) => e.height)).toEqual(Array.from({ length: entries.length }, (_, i) => i + 1));
    let reg = genesisRegistry(cluster.genesis);
    let decidedOps = 0;
    for (const e of entries) {
      const set = validatorSetAt(reg, e.height);
      const v = verifyCommitCertificate(e.certificate, set, (pk, d, s) => ed25519.verify(pk, d, s), CLUSTER);
      expect(v.ok, `height ${e.height}`).toBe(true);
      const value = encodeBatch(e.ops);
      expect(valueIdOf(value)).toBe(e.valueId);
      reg = applyBatch(reg, e.height, value);
      expect(toHex(registryHash(reg))).toBe(e.registryHash);
      decidedOps += e.ops.length;
    }
    expect(decidedOps).toBe(100); // each op decided exactly once
    // Batching: 100 ops in fewer heights than ops.
    expect(entries.length).toBeLessThan(100);
  });
});
