// Membership from the decided registry: a node outside genesis (holding the swarm key) reads
// the log by catch-up, sees its own admission (member.add), is heard as soon as the add is
// decided, votes from H+2 on, and is needed for quorum once a genesis node stops.
import { afterEach, describe, expect, it } from 'vitest';
import type { ConsensusDriverError } from '../../../node/consensus/api.js';
import type { MemberChange } from '../../../node/p2p/members.js';
import { pattern, startDriverCluster, waitFor, type DriverCluster } from '../../helpers/consensus-driver.js';

let cluster: DriverCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe('registry-backed membership', () => {
  it('admits a joining node by a decided member.add; it catches up, becomes a validator and counts for quorum', async () => {
    cluster = await startDriverCluster(4, { joiners: 1 });
    const members = cluster.nodes.slice(0, 4);
    const joiner = cluster.nodes[4]!;
    expect(joiner.consensus.members.isMember(joiner.id.peerId)).toBe(false);
    expect(members[0]!.consensus.members.isMember(joiner.id.peerId)).toBe(false);
    const refused = await joiner.consensus.submit([pattern('too-early')]).catch((e: unknown) => e);
    expect((refused as ConsensusDriverError).code).toBe('ERR_NOT_MEMBER');

    // Some history first: the joiner reads it by catch-up although nobody hears it yet.
    const r0 = await members[1]!.consensus.submit([pattern('history')]);
    await waitFor(() => joiner.consensus.status().decidedHeight >= r0.height, 10_000, 'joiner caught up on history');

    const changes: MemberChange[] = [];
    members[0]!.consensus.members.onChange((c) => changes.push(c));
    const add = await members[0]!.consensus.submit([{ kind: 'member.add', publicKey: joiner.id.publicKey, power: 1, name: 'n5' }]);
    expect(changes).toContainEqual({ added: [joiner.id.peerId], removed: [] });
    await waitFor(() => joiner.consensus.members.isMember(joiner.id.peerId), 10_000, 'joiner sees its admission');
    expect(joiner.consensus.status().decidedHeight).toBeGreaterThanOrEqual(add.height);

    // Two more heights: from H+2 the validator set has five members, the joiner among them.
    for (let i = 0; i < 3; i++) await members[i % 4]!.consensus.submit([pattern(`after-add-${i}`)]);
    await waitFor(() => joiner.consensus.status().isValidator && joiner.consensus.status().validators.length === 5, 10_000, 'joiner is a validator');

    // With one genesis node stopped, quorum (4 of 5) needs the joiner's votes.
    await cluster.stopNode(members[3]!);
    const r = await joiner.consensus.submit([pattern('from-the-joiner')], { timeoutMs: 20_000 });
    await waitFor(() => members.slice(0, 3).every((x) => x.consensus.status().decidedHeight >= r.height), 10_000, 'all decided');
    const entries = await members[0]!.consensus.entries(r.height, 1);
    expect(entries[0]!.certificate.precommits.length).toBeGreaterThanOrEqual(4);
    expect(r.signers).toContain(joiner.id.peerId);
    expect(new Set([...members.slice(0, 3), joiner].map((x) => x.consensus.status().registryHash)).size).toBe(1);
  });
});
