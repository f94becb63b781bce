import { afterEach, describe, expect, it } from 'vitest';
import { MAX_BATCH_OPS } from '../../../consensus/patterns.js';
import type { ConsensusDriverError } from '../../../node/consensus/api.js';
import type { DecidedEntry } from '../../../node/consensus/api.js';
import { MEMPOOL_MAX_OPS } from '../../../node/consensus/mempool.js';
import { ident, pattern, startDriverCluster, waitFor, type DriverCluster } from '../../helpers/consensus-driver.js';

let cluster: DriverCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});


describe('consensus driver (4 nodes, real libp2p)', () => {
  it('decides submitted ops on every node, reports them, and does not spin when idle', async () => {
    cluster = await startDriverCluster(4);
    const [a, b] = cluster.nodes;
    const seen: DecidedEntry[] = [];
    cluster.nodes[3]!.consensus.onDecided((e) => seen.push(e));
    const r1 = await a!.consensus.submit([pattern('one')]);
    expect(r1.height).toBeGreaterThanOrEqual(1);
    expect(r1.signers.length).toBeGreaterThanOrEqual(3);
    expect(r1.power * 3).toBeGreaterThan(r1.totalPower * 2);
    const r2 = await b!.consensus.submit([pattern('two')]);
    expect(r2.height).toBeGreaterThan(r1.height);
    await waitFor(() => cluster!.nodes.every((x) => x.consensus.status().decidedHeight >= r2.height), 10_000, 'all decided');
    const hashes = new Set(cluster.nodes.map((x) => x.consensus.status().registryHash));
    expect(hashes.size).toBe(1);
    expect(cluster.nodes[3]!.consensus.registry().patterns.map((p) => p.name)).toEqual(['one', 'two']);
    expect(seen.flatMap((e) => e.ops.map((op) => (op.kind === 'pattern' ? op.name : op.kind)))).toEqual(['one', 'two']);
    expect(seen.at(-1)!.registryHash).toBe(cluster.nodes[3]!.consensus.status().registryHash);
    // node 4 started each height itself (a validator's proposal for it arrived): start <= decision
    for (const e of seen) {
      expect(e.startedMs).not.toBeNull();
      expect(e.startedMs!).toBeLessThanOrEqual(e.decidedMs);
    }
    // read back from the log, a height carries no start (only the live decision knows it)
    expect((await cluster.nodes[3]!.consensus.entries(1, 10)).map((e) => e.startedMs)).toEqual(seen.map(() => null));

    // Idle: no pending work, so no new heights (status gossip and catch-up checks keep running).
    // The window is counted in events, not time: node 1 hears six status periods of every peer.
    const heights = cluster.nodes.map((x) => x.consensus.status().decidedHeight);
    const statuses = new Map<string, number>();
    const off = a!.host.onMessage('consensus', (d) => {
      if (d.envelope.kind === 'status') statuses.set(d.envelope.signerId, (statuses.get(d.envelope.signerId) ?? 0) + 1);
    });
    const others = cluster.nodes.slice(1).map((x) => x.id.peerId);
    await waitFor(() => others.every((p) => (statuses.get(p) ?? 0) >= 6), 20_000, 'six status periods of every peer');
    off();
    expect(cluster.nodes.map((x) => x.consensus.status().decidedHeight)).toEqual(heights);
    for (const x of cluster.nodes) expect(x.consensus.status().mempoolOps).toBe(0);
  });

  it('of two conflicting submits, one is decided and the other is rejected with ERR_PATTERN_REJECTED (not left to time out)', async () => {
    cluster = await startDriverCluster(4);
    const [a, b] = cluster.nodes;
    const key = ident(9).publicKey;
    const results = await Promise.all([
      a!.consensus.submit([{ kind: 'member.add', publicKey: key, power: 1, name: 'from-a' }], { timeoutMs: 40_000 }).then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e: e as ConsensusDriverError }),
      ),
      b!.consensus.submit([{ kind: 'member.add', publicKey: key, power: 1, name: 'from-b' }], { timeoutMs: 40_000 }).then(
        (r) => ({ ok: true as const, r }),
        (e: unknown) => ({ ok: false as const, e: e as ConsensusDriverError }),
      ),
    ]);
    expect(results.filter((x) => x.ok)).toHaveLength(1);
    const lost = results.find((x) => !x.ok)!;
    expect(lost.ok ? null : lost.e.code).toBe('ERR_PATTERN_REJECTED');
    const pending = a!.consensus.registry().pending.filter((p) => p.op.kind === 'member.add');
    expect(pending).toHaveLength(1);
  });

  it('times out, aborts, reports a full pool, and refuses after stop, each with its code', async () => {
    // Two of four silent: no quorum, nothing can be decided.
    cluster = await startDriverCluster(4, { silent: [2, 3] });
    const c = cluster.nodes[0]!.consensus;
    const t = await c.submit([pattern('never')], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect((t as ConsensusDriverError).code).toBe('ERR_SUBMIT_TIMEOUT');
    const ac = new AbortController();
    const aborted = c.submit([pattern('aborted')], { signal: ac.signal }).catch((e: unknown) => e);
    ac.abort();
    expect(((await aborted) as ConsensusDriverError).code).toBe('ERR_SUBMIT_TIMEOUT');

    // Fill the pending pool (bounded): the next submit is refused at once.
    const fills: Promise<unknown>[] = [];
    for (let k = 0, left = MEMPOOL_MAX_OPS - c.status().mempoolOps; left > 0; k++) {
      const count = Math.min(MAX_BATCH_OPS, left);
      left -= count;
      fills.push(c.submit(Array.from({ length: count }, (_, i) => pattern(`fill-${k}-${i}`, `${k}/${i}`)), { timeoutMs: 60_000 }).catch((e: unknown) => e));
    }
    expect(c.status().mempoolOps).toBe(MEMPOOL_MAX_OPS);
    const full = await c.submit([pattern('overflow')]).catch((e: unknown) => e);
    expect((full as ConsensusDriverError).code).toBe('ERR_MEMPOOL_FULL');

    // Already pooled (it timed out above, it is not dropped), so it fits and waits.
    const pending = c.submit([pattern('never')]).catch((e: unknown) => e);
    await c.stop();
    expect(((await pending) as ConsensusDriverError).code).toBe('ERR_CONSENSUS_STOPPED');
    for (const f of await Promise.all(fills)) expect((f as ConsensusDriverError).code).toBe('ERR_CONSENSUS_STOPPED');
    const after = await c.submit([pattern('after-stop')]).catch((e: unknown) => e);
    expect((after as ConsensusDriverError).code).toBe('ERR_CONSENSUS_STOPPED');
  });
});
