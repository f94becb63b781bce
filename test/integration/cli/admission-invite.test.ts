// One-time invites are cluster-wide: with the inviter down, two joiners presenting the same
// invite to two different members (each past the fallback, each member's own `used` map blind
// to the other's claim) end with exactly one admitted. Real drivers over real libp2p and
// LevelDB (test/helpers/consensus-driver.ts), real admission; only the admission clock is injected.
import { afterAll, describe, expect, it } from 'vitest';
import { identityFromSeed } from '../../../crypto/keys.js';
import type { Identity } from '../../../crypto/keys.js';
import { isInviteUsed } from '../../../consensus/registry.js';
import type { LogData, Logger } from '../../../node/log.js';
import { createInvite, createJoinClaim } from '../../../node/p2p/members.js';
import { AUTO_FALLBACK_MS, createAdmission, decidedMemberKeys } from '../../../node/runtime/admission.js';
import type { Admission } from '../../../node/runtime/admission.js';
import { CLUSTER, startDriverCluster, waitFor } from '../../helpers/consensus-driver.js';
import type { DriverCluster, DriverNode } from '../../helpers/consensus-driver.js';

const T0 = 1_700_000_000_000;
const secret = new Uint8Array(32).fill(9);
const hexKey = (i: Identity): string => Buffer.from(i.publicKey).toString('hex');

function recordingLogger(lines: { msg: string; data: LogData }[]): Logger {
  const rec = (msg: string, data: LogData = {}): void => void lines.push({ msg, data });
  const l: Logger = { debug: rec, info: rec, warn: rec, error: rec, child: () => l };
  return l;
}

describe('one-time invite across members (real drivers)', () => {
  let cluster: DriverCluster | null = null;
  const admissions: Admission[] = [];
  afterAll(async () => {
    for (const a of admissions) a.stop();
    await cluster?.close();
  });

  it('two joiners, one invite, two members, inviter down: exactly one admitted cluster-wide; the other claim is refused with ERR_INVITE_USED', async () => {
    cluster = await startDriverCluster(4);
    const [n1, n2, n3, inviter] = cluster.nodes as [DriverNode, DriverNode, DriverNode, DriverNode];
    const live = [n1, n2, n3];
    const invite = createInvite(inviter.id, { cluster: CLUSTER, nowMs: T0, ttlMs: 3600_000, secret });
    await cluster.stopNode(inviter); // the inviter is down: the others propose after the fallback
    const [ja, jb] = [identityFromSeed(new Uint8Array(32).fill(41)), identityFromSeed(new Uint8Array(32).fill(42))];
    const claimOf = (j: Identity): Uint8Array => createJoinClaim(j, { cluster: CLUSTER, nowMs: T0 + 1, invite, secret, name: `joiner-${j === ja ? 'a' : 'b'}` });
    const clock = { t: T0 + 10 };
    const logs: { msg: string; data: LogData }[][] = [];
    const admissionOn = async (n: DriverNode): Promise<Admission> => {
      const lines: { msg: string; data: LogData }[] = [];
      logs.push(lines);
      const a = createAdmission({ cluster: CLUSTER, selfId: n.id.peerId, selfKey: n.id.publicKey, mode: 'auto', consensus: n.consensus, store: n.store, logger: recordingLogger(lines), now: () => clock.t, genesisMember: true });
      await a.start();
      admissions.push(a);
      return a;
    };
    const [a1, a2] = [await admissionOn(n1), await admissionOn(n2)];

    // Each member sees one joiner's claim only (its local `used` map cannot see the other's).
    expect(await a1.onClaim(claimOf(ja), ja.peerId)).toBe(true);
    expect(await a2.onClaim(claimOf(jb), jb.peerId)).toBe(true);
    expect(n1.consensus.status().mempoolOps + n2.consensus.status().mempoolOps).toBe(0); // not the inviter: they wait
    clock.t += AUTO_FALLBACK_MS;
    expect(await a1.onClaim(claimOf(ja), ja.peerId)).toBe(true); // the next claim exchange: both propose now
    expect(await a2.onClaim(claimOf(jb), jb.peerId)).toBe(true);

    // Settled: both proposers' submits have ended (committed, or rejected by the registry:
    // refused at once, or pruned from the pools once the other add was decided), every live node
    // has decided an add with the digest and no op is left in any pool.
    const SUBMIT_ENDS = ['member admitted by consensus', 'member.add not committed', 'member.add not proposed', 'member.add submit failed', 'member.add not committed yet; will retry on the next claim exchange'];
    const ended = (lines: { msg: string }[]): boolean => lines.some((l) => SUBMIT_ENDS.includes(l.msg));
    const digest = (): Uint8Array | undefined => n1.consensus.registry().usedInvites[0];
    await waitFor(() => ended(logs[0]!) && ended(logs[1]!) && live.every((n) => n.consensus.registry().usedInvites.length >= 1 && n.consensus.status().mempoolOps === 0), 45_000, 'submits ended, invite used everywhere, pools empty');
    expect(live.map((n) => n.consensus.registry().usedInvites.length)).toEqual([1, 1, 1]);
    const admittedAt = live.map((n) => [ja, jb].filter((j) => decidedMemberKeys(n.consensus.registry()).has(hexKey(j))).map((j) => j.peerId));
    expect(admittedAt[0]).toHaveLength(1);
    expect(admittedAt[1]).toEqual(admittedAt[0]);
    expect(admittedAt[2]).toEqual(admittedAt[0]);
    const winner = admittedAt[0]![0] === ja.peerId ? ja : jb;
    const loser = winner === ja ? jb : ja;
    // the same decided state on every live node; the decided add is the winner's and carries the invite digest
    const h = Math.min(...live.map((n) => n.consensus.status().decidedHeight));
    const hashes = await Promise.all(live.map(async (n) => (await n.consensus.entries(h, 1))[0]?.registryHash));
    expect(new Set(hashes).size).toBe(1);
    const adds = (await n3.consensus.entries(1, 100)).flatMap((e) => e.ops.filter((op) => op.kind === 'member.add'));
    expect(adds).toHaveLength(1);
    expect(adds[0]).toMatchObject({ kind: 'member.add', publicKey: winner.publicKey, invite: digest() });

    // The loser's claim is refused from the decided registry, also by a member that never saw
    // the invite before (empty local map) and by both proposers.
    const a3 = await admissionOn(n3);
    expect(isInviteUsed(n3.consensus.registry(), digest()!)).toBe(true);
    expect(await a3.onClaim(claimOf(loser), loser.peerId)).toBe(false);
    expect(await a1.onClaim(claimOf(loser), loser.peerId)).toBe(false);
    expect(await a2.onClaim(claimOf(loser), loser.peerId)).toBe(false);
    const refusals = logs[2]!.filter((l) => l.msg === 'join claim refused');
    expect(refusals).toEqual([{ msg: 'join claim refused', data: expect.objectContaining({ peer: loser.peerId, code: 'ERR_INVITE_USED', detail: expect.stringMatching(/invite already used/) }) }]);
    // The winner's own claim is not refused (it is a member now; nothing to propose).
    expect(await a3.onClaim(claimOf(winner), winner.peerId)).toBe(false);
    expect(logs[2]!.filter((l) => l.msg === 'join claim refused')).toHaveLength(1);
    // Nothing new was proposed by any of this.
    expect(live.every((n) => n.consensus.status().mempoolOps === 0)).toBe(true);
  });
});
