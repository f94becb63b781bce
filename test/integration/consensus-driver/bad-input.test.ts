// Bad input (issue 5): garbage envelopes and bodies, votes for heights far ahead, forged
// signatures, non-member senders, non-validator votes, oversize proposals, malformed patterns,
// garbage on the sync protocol. Each is ignored or rejected, counted, and never crashes a node:
// the cluster decides afterwards.
import * as lp from 'it-length-prefixed';
import { afterEach, describe, expect, it } from 'vitest';
import { ed25519 } from '../../../crypto/ed25519.js';
import { createEnvelope } from '../../../crypto/envelope.js';
import type { Identity } from '../../../crypto/keys.js';
import { proposalDigest, voteDigest } from '../../../consensus/core.js';
import { encodeMessage } from '../../../consensus/codec.js';
import { contentHashOf } from '../../../consensus/patterns.js';
import type { ConsensusMessage, Vote } from '../../../consensus/types.js';
import { ConsensusDriverError } from '../../../node/consensus/api.js';
import type { DriverCounters } from '../../../node/consensus/driver.js';
import { SYNC_PROTOCOL } from '../../../node/consensus/sync.js';
import { createHost } from '../../../node/p2p/host.js';
import { CLUSTER, ident, pattern, startDriverCluster, waitFor, type DriverCluster, type DriverNode } from '../../helpers/consensus-driver.js';

let cluster: DriverCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

let seq = 1;
function envelope(signer: Identity, kind: string, body: unknown): Uint8Array {
  return createEnvelope(signer, { kind, cluster: CLUSTER, seq: seq++, time: Date.now(), body });
}
function signedVote(signer: Identity, vote: Vote): ConsensusMessage {
  return { type: 'vote', vote: { vote, signer: signer.publicKey, signature: ed25519.sign(signer.secretKey, voteDigest(CLUSTER, vote)) } };
}
function total(nodes: readonly DriverNode[], k: keyof DriverCounters): number {
  return nodes.reduce((a, x) => a + x.consensus.counters()[k], 0);
}

describe('consensus driver: bad input', () => {
  it('ignores or rejects hostile gossip and sync input, counts it, and keeps deciding', async () => {
    // Node 4 is a member whose driver never runs: its host is the attacker's voice (a member key).
    cluster = await startDriverCluster(4, { silent: [3] });
    const honest = cluster.nodes.slice(0, 3);
    const attacker = cluster.nodes[3]!;
    const a = attacker.id;
    const pub = (kind: string, body: unknown): Promise<unknown> => attacker.host.publish('consensus', envelope(a, kind, body));

    // Garbage bodies and kind/body mismatches.
    await pub('vote', new Uint8Array([1, 2, 3, 4, 5]));
    await pub('proposal', encodeMessage(signedVote(a, { type: 'prevote', height: 1, round: 0, valueId: null })));
    await pub('vote', { not: 'bytes' });
    await waitFor(() => total(honest, 'badMessages') >= 3 * 3, 5_000, 'bad bodies counted');
    // A validly signed vote for a height far ahead.
    await pub('vote', encodeMessage(signedVote(a, { type: 'prevote', height: 1_000_000, round: 0, valueId: null })));
    await waitFor(() => total(honest, 'farAhead') >= 3, 5_000, 'far-ahead votes counted');
    // A validly signed vote of a non-validator, relayed by a member.
    await pub('vote', encodeMessage(signedVote(ident(42), { type: 'prevote', height: 1, round: 0, valueId: null })));
    await waitFor(() => total(honest, 'nonValidator') >= 3, 5_000, 'non-validator votes counted');
    // A vote claiming to be node 1's, with a forged signature (last of the height-1 messages: it
    // starts height 1 on idle nodes, which may then decide an empty height and move on).
    const forged: ConsensusMessage = { type: 'vote', vote: { vote: { type: 'precommit', height: 1, round: 0, valueId: 'ab'.repeat(32) }, signer: cluster.ids[0]!.publicKey, signature: new Uint8Array(64).fill(9) } };
    await pub('vote', encodeMessage(forged));
    await waitFor(() => total(cluster!.nodes.slice(1, 3), 'badSignatures') >= 2, 5_000, 'forged signatures counted');
    // An oversize proposal (value above the batch bound, within the envelope bound).
    const big = { height: 1, round: 0, value: new Uint8Array(200 * 1024), validRound: -1 };
    await pub('proposal', encodeMessage({ type: 'proposal', proposal: { proposal: big, signer: a.publicKey, signature: ed25519.sign(a.secretKey, proposalDigest(CLUSTER, big)) } }));
    await waitFor(() => total(honest, 'oversize') >= 3, 5_000, 'oversize proposals counted');
    // Malformed pending ops and status bodies.
    await pub('ops', new Uint8Array([0xa1, 0x61, 0x76, 0x02]));
    await pub('ops', { decided: 0, batch: new Uint8Array([0xa1, 0x61, 0x76, 0x02]) });
    await pub('status', { height: -1 });
    await waitFor(() => total(honest, 'opsRejected') >= 6 && total(honest, 'badStatus') >= 3, 5_000, 'bad ops/status counted');
    // Raw garbage that is not an envelope: rejected by the gossip validator.
    await attacker.host.publish('consensus', new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    await waitFor(() => honest.some((x) => x.host.stats().consensus.reject > 0), 5_000, 'garbage envelope rejected');

    // A non-member with the swarm key: heard by nobody.
    const outsider = ident(77);
    const ohost = await createHost({ identity: outsider, cluster: CLUSTER, swarmKey: cluster.swarmKey, members: honest[0]!.consensus.members, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: null });
    await ohost.start();
    try {
      await ohost.dial(honest[0]!.host.addresses()[0]!);
      await waitFor(() => ohost.topicPeers('consensus').length > 0, 5_000, 'outsider subscribed');
      await ohost.publish('consensus', envelope(outsider, 'vote', encodeMessage(signedVote(outsider, { type: 'prevote', height: 1, round: 0, valueId: null }))));
      await waitFor(() => (honest[0]!.host.stats().consensus.byCode['not-member'] ?? 0) > 0, 5_000, 'non-member rejected');

      // Garbage on the sync protocol (served to any connected peer, so the outsider may try).
      const before = honest[0]!.consensus.counters().syncBadRequests;
      const s1 = await ohost.dialProtocol(honest[0]!.id.peerId, SYNC_PROTOCOL);
      await s1.sink(lp.encode([new Uint8Array([0xff, 0xff, 0xff])]));
      const s2 = await ohost.dialProtocol(honest[0]!.id.peerId, SYNC_PROTOCOL);
      await s2.sink(lp.encode([new Uint8Array(4096)])); // over the request frame bound
      await waitFor(() => honest[0]!.consensus.counters().syncBadRequests >= before + 2, 5_000, 'bad sync requests counted');
    } finally {
      await ohost.stop();
    }

    // Malformed patterns are refused at submit with a typed error.
    const badHash = { ...pattern('bad'), contentHash: contentHashOf('something else') };
    const e1 = await honest[0]!.consensus.submit([badHash]).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ConsensusDriverError);
    expect((e1 as ConsensusDriverError).code).toBe('ERR_PATTERN_REJECTED');
    const e2 = await honest[1]!.consensus.submit([{ kind: 'member.remove', publicKey: ident(99).publicKey }]).catch((e: unknown) => e);
    expect((e2 as ConsensusDriverError).code).toBe('ERR_PATTERN_REJECTED');
    expect(honest[1]!.consensus.check([{ kind: 'member.remove', publicKey: ident(99).publicKey }]).ok).toBe(false);

    // Nothing crashed: the honest nodes decide, agree, and nothing hostile was applied.
    const r = await honest[2]!.consensus.submit([pattern('still-alive')]);
    await waitFor(() => honest.every((x) => x.consensus.status().decidedHeight >= r.height), 10_000, 'decided after the attack');
    expect(new Set(honest.map((x) => x.consensus.status().registryHash)).size).toBe(1);
    expect(honest[0]!.consensus.registry().patterns.map((p) => p.name)).toEqual(['still-alive']);
    for (const x of honest) expect(x.consensus.counters().internalErrors).toBe(0);
  });
});
