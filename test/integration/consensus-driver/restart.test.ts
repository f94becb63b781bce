// Restart from the same store and state directory: the decided log is intact, the registry
// hash matches the cluster's, the node rejoins and keeps deciding, and its audit log never shows
// two conflicting signatures. A damaged signer file or log is refused with a typed error.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsensusDriverError } from '../../../node/consensus/api.js';
import { openConsensus } from '../../../node/consensus/driver.js';
import { SIGNER_FILE_NAME } from '../../../node/consensus/signer-file.js';
import { openStore } from '../../../node/store/index.js';
import { pattern, startDriverCluster, waitFor, type DriverCluster } from '../../helpers/consensus-driver.js';

let cluster: DriverCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

interface AuditRow {
  height: number;
  round: number;
  type: string;
  valueId: string | null;
}

async function auditRows(dir: string): Promise<AuditRow[]> {
  const text = await readFile(join(dir, 'audit.log'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as AuditRow);
}

/** Two rows for the same (height, round, type) with different values = a conflicting signature. */
function conflicts(rows: readonly AuditRow[]): string[] {
  const seen = new Map<string, string | null>();
  const out: string[] = [];
  for (const r of rows) {
    const k = `${r.height}/${r.round}/${r.type}`;
    if (seen.has(k) && seen.get(k) !== r.valueId) out.push(k);
    else seen.set(k, r.valueId);
  }
  return out;
}

describe('consensus driver restart', () => {
  it('reopens with its decided log intact, rejoins, keeps deciding, never signs a conflicting vote', async () => {
    cluster = await startDriverCluster(4);
    const { nodes } = cluster;
    const x = nodes[1]!;
    await Promise.all(Array.from({ length: 8 }, (_, i) => nodes[i % 4]!.consensus.submit([pattern(`a${i}`)])));
    await waitFor(() => x.consensus.registry().patterns.length === 8, 10_000, 'node 2 has the first 8');
    const before = await x.consensus.entries(1, 1000);
    const hashBefore = x.consensus.status().registryHash;
    expect(before.length).toBeGreaterThan(0);

    // Stop it while work is in flight elsewhere; the other three keep deciding without it.
    const inflight = Promise.all(Array.from({ length: 6 }, (_, i) => nodes[[0, 2, 3][i % 3]!]!.consensus.submit([pattern(`b${i}`)])));
    await cluster.stopNode(x);
    await inflight;

    await cluster.restartNode(x);
    const after = await x.consensus.entries(1, before.length);
    expect(after.map((e) => [e.height, e.valueId, e.registryHash])).toEqual(before.map((e) => [e.height, e.valueId, e.registryHash]));
    expect((await x.consensus.entries(before.length, 1))[0]?.registryHash).toBe(hashBefore);

    // It catches up with what it missed and keeps deciding (its own submission included).
    const r = await x.consensus.submit([pattern('after-restart')]);
    await waitFor(() => nodes.every((y) => y.consensus.status().decidedHeight >= r.height), 10_000, 'all at the new height');
    expect(new Set(nodes.map((y) => y.consensus.status().registryHash)).size).toBe(1);
    expect(x.consensus.registry().patterns.map((p) => p.name)).toContain('b5');
    expect(x.consensus.status().caughtUpHeights + x.consensus.status().decidedHeight).toBeGreaterThan(before.length);

    // Audit: signatures were produced before and after the restart, none conflicting. Three
    // validators are a quorum, so a height can be decided before the restarted node's vote is
    // even needed (it then learns it by catch-up, without signing): it must sign within a few
    // more heights, once it is caught up.
    let rows = await auditRows(x.dir);
    for (let k = 0; k < 10 && !rows.some((row) => row.height > before.length); k++) {
      const top = Math.max(...nodes.map((y) => y.consensus.status().decidedHeight));
      await waitFor(() => x.consensus.status().decidedHeight >= top, 10_000, 'restarted node caught up');
      await x.consensus.submit([pattern(`again-${k}`)]);
      rows = await auditRows(x.dir);
    }
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((row) => row.height > before.length)).toBe(true);
    expect(conflicts(rows)).toEqual([]);
    for (const y of nodes) expect(conflicts(await auditRows(y.dir))).toEqual([]);
  });

  it('restarts inside a height it signed at: resumes its round, re-sends its own votes, never conflicts', async () => {
    // Nodes 3 and 4 silent: no quorum, so nodes 1 and 2 sign at height 1 and wait there.
    cluster = await startDriverCluster(4, { silent: [2, 3] });
    const { nodes } = cluster;
    const x = nodes[1]!;
    const pending = nodes[0]!.consensus.submit([pattern('stalled')], { timeoutMs: 30_000 });
    pending.catch(() => undefined); // awaited below; never an unhandled rejection if the test fails first
    await waitFor(() => x.consensus.status().height === 1 && x.consensus.status().step !== 'propose', 10_000, 'node 2 voted at height 1');
    await cluster.stopNode(x);
    const signedBefore = await auditRows(x.dir);
    expect(signedBefore.length).toBeGreaterThan(0);
    expect(signedBefore.every((r) => r.height === 1)).toBe(true);
    const lastRound = Math.max(...signedBefore.map((r) => r.round));

    await cluster.restartNode(x);
    // Resumed inside height 1 at the recorded round (not idle, not from scratch).
    await waitFor(() => x.consensus.status().height === 1 && x.consensus.status().round >= lastRound && x.consensus.status().step !== 'propose', 5_000, 'resumed');
    // Now the silent nodes join: quorum, the height decides.
    for (const y of [nodes[2]!, nodes[3]!]) await y.consensus.start(y.host);
    const r = await pending;
    expect(r.height).toBe(1);
    await waitFor(() => nodes.every((y) => y.consensus.status().decidedHeight >= 1), 10_000, 'all decided');
    expect(new Set(nodes.map((y) => y.consensus.status().registryHash)).size).toBe(1);
    const rows = await auditRows(x.dir);
    expect(rows.length).toBeGreaterThan(signedBefore.length);
    expect(conflicts(rows)).toEqual([]);
  });

  it('refuses a damaged signer file with ERR_CONSENSUS_STATE_CORRUPT naming the path', async () => {
    cluster = await startDriverCluster(4);
    const { nodes } = cluster;
    await nodes[0]!.consensus.submit([pattern('one')]);
    const x = nodes[2]!;
    await waitFor(() => x.consensus.status().decidedHeight >= 1, 10_000, 'decided');
    await cluster.stopNode(x);
    const path = join(x.dir, 'state', SIGNER_FILE_NAME);
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const store = await openStore(join(x.dir, 'store'));
    try {
      const err = await openConsensus(cluster.options({ ...x, store })).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConsensusDriverError);
      expect((err as ConsensusDriverError).code).toBe('ERR_CONSENSUS_STATE_CORRUPT');
      expect((err as ConsensusDriverError).message).toContain(path);
      expect((err as ConsensusDriverError).message).toContain('To fix');
    } finally {
      await store.close();
    }
  });
});
