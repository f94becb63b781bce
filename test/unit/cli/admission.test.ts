import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { identityFromSeed } from '../../../crypto/keys.js';
import type { Identity } from '../../../crypto/keys.js';
import { nullLogger } from '../../../node/log.js';
import { createInvite, createJoinClaim } from '../../../node/p2p/members.js';
import { AUTO_FALLBACK_MS, createAdmission } from '../../../node/runtime/admission.js';
import type { AdmissionOptions } from '../../../node/runtime/admission.js';
import { openStore } from '../../../node/store/index.js';
import type { Store } from '../../../node/store/index.js';
import { consensusDouble } from '../../helpers/consensus-double.js';
import type { Double } from '../../helpers/consensus-double.js';

const CLUSTER = 'fc' + 'a'.repeat(24);
const T0 = 1_700_000_000_000;
const id = (n: number): Identity => identityFromSeed(new Uint8Array(32).fill(n));
const [m1, m2, j1, j2] = [id(1), id(2), id(3), id(4)] as [Identity, Identity, Identity, Identity];
const secret = new Uint8Array(32).fill(9);

function claim(joiner: Identity, inviter: Identity, o: { ttlMs?: number; name?: string; secret?: Uint8Array } = {}): Uint8Array {
  const invite = createInvite(inviter, { cluster: CLUSTER, nowMs: T0, ttlMs: o.ttlMs ?? 3600_000, secret });
  return createJoinClaim(joiner, { cluster: CLUSTER, nowMs: T0 + 1, invite, secret: o.secret ?? secret, ...(o.name !== undefined ? { name: o.name } : {}) });
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function setup(self: Identity, mode: 'auto' | 'approve', clock: { t: number }, store?: Store, c?: Double): Promise<{ store: Store; c: Double; a: ReturnType<typeof createAdmission>; opts: AdmissionOptions }> {
  let s = store;
  if (s === undefined) {
    const dir = await mkdtemp(join(tmpdir(), 'fednode-admission-'));
    dirs.push(dir);
    s = await openStore(join(dir, 'store'));
  }
  const cons = c ?? consensusDouble(self, { members: [m1, m2].map((m) => ({ publicKey: m.publicKey, power: 1, name: '' })) });
  const opts: AdmissionOptions = { cluster: CLUSTER, selfId: self.peerId, selfKey: self.publicKey, mode, consensus: cons, store: s, logger: nullLogger, now: () => clock.t, genesisMember: self === m1 || self === m2 };
  const a = createAdmission(opts);
  await a.start();
  return { store: s, c: cons, a, opts };
}

const addsOf = (c: Double): string[] => c.submitted.flat().map((op) => (op.kind === 'member.add' ? `${Buffer.from(op.publicKey).toString('hex').slice(0, 8)}:${op.name}` : op.kind));
const hex8 = (i: Identity): string => Buffer.from(i.publicKey).toString('hex').slice(0, 8);

describe('admission by consensus (real registry, real store)', () => {
  it('auto: the inviter proposes member.add at once with the claimed name; repeats and members are ignored', async () => {
    const clock = { t: T0 + 10 };
    const { a, c, store } = await setup(m1, 'auto', clock);
    await a.onClaim(claim(j1, m1, { name: 'gpu-2' }), j1.peerId);
    expect(addsOf(c)).toEqual([`${hex8(j1)}:gpu-2`]);
    expect(c.registry().pending).toHaveLength(1);
    await a.onClaim(claim(j1, m1, { name: 'gpu-2' }), m2.peerId); // the same claim relayed again
    expect(c.submitted).toHaveLength(1);
    a.stop();
    await store.close();
  });

  it('auto: another member waits AUTO_FALLBACK_MS for the inviter, then proposes (name falls back to the peer id tail)', async () => {
    const clock = { t: T0 + 10 };
    const { a, c, store } = await setup(m2, 'auto', clock);
    await a.onClaim(claim(j1, m1), j1.peerId);
    expect(c.submitted).toHaveLength(0);
    clock.t += AUTO_FALLBACK_MS;
    await a.onClaim(claim(j1, m1), j1.peerId);
    expect(addsOf(c)).toEqual([`${hex8(j1)}:${j1.peerId.slice(-8)}`]);
    a.stop();
    await store.close();
  });

  it('refuses claims whose invite is expired, from a non-member, lacks the secret, or was used by another peer', async () => {
    const clock = { t: T0 + 10 };
    const { a, c, store } = await setup(m1, 'auto', clock);
    clock.t = T0 + 7200_000;
    await a.onClaim(claim(j1, m1), j1.peerId); // expired (1 h invite)
    clock.t = T0 + 10;
    await a.onClaim(claim(j1, j2), j1.peerId); // inviter j2 is not a member
    await a.onClaim(claim(j1, m1, { secret: new Uint8Array(32).fill(7) }), j1.peerId); // wrong secret
    expect(c.submitted).toHaveLength(0);
    c.mode = 'timeout'; // j1 uses the invite but its member.add does not commit
    await a.onClaim(claim(j1, m1), j1.peerId);
    expect(c.submitted).toHaveLength(1);
    c.mode = 'commit';
    await a.onClaim(claim(j2, m1), j2.peerId); // same invite, another peer: one-time use
    expect(c.submitted).toHaveLength(1);
    a.stop();
    await store.close();
  });

  it('approve: the claim waits in a persisted list; `approve` commits member.add and clears it', async () => {
    const clock = { t: T0 + 10 };
    const first = await setup(m1, 'approve', clock);
    await first.a.onClaim(claim(j1, m1, { name: 'laptop' }), j1.peerId);
    expect(first.c.submitted).toHaveLength(0);
    expect(first.a.pending()).toMatchObject([{ peer: j1.peerId, name: 'laptop', inviter: m1.peerId }]);
    first.a.stop();
    // restart on the same store: still pending
    const again = await setup(m1, 'approve', clock, first.store, first.c);
    expect(again.a.pending().map((p) => p.peer)).toEqual([j1.peerId]);
    expect(again.a.status()).toMatchObject({ mode: 'approve', pendingJoins: 1, admitted: true, admittedAtHeight: 0 });
    const r = await again.a.approve(j1.peerId, { timeoutMs: 1000 });
    expect(r).toMatchObject({ name: 'laptop', hadClaim: true, receipt: { height: 1 } });
    expect(again.a.pending()).toEqual([]);
    await expect(again.a.approve(j1.peerId, { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'ERR_ALREADY_MEMBER' });
    again.a.stop();
    await first.store.close();
  });

  it('approve: member.add carries the invite digest; a join waiting elsewhere on the same invite is dropped and cannot be approved', async () => {
    const clock = { t: T0 + 10 };
    const one = await setup(m1, 'approve', clock);
    const two = await setup(m2, 'approve', clock, undefined, one.c); // another member, same (real) registry
    await one.a.onClaim(claim(j1, m1), j1.peerId);
    await two.a.onClaim(claim(j2, m1), j2.peerId); // same invite; m2's local map has not seen j1's claim
    expect(two.a.pending().map((p) => p.peer)).toEqual([j2.peerId]);
    const inviteKey = one.a.pending()[0]!.inviteKey;
    expect(inviteKey).toMatch(/^[0-9a-f]{64}$/);
    await one.a.approve(j1.peerId, { timeoutMs: 1000 });
    const op = one.c.submitted[0]![0]!;
    expect(op.kind === 'member.add' && Buffer.from(op.invite!).toString('hex')).toBe(inviteKey);
    expect(two.a.pending()).toEqual([]); // its invite is used: nothing left to approve
    await expect(two.a.approve(j2.peerId, { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'ERR_PATTERN_REJECTED', message: expect.stringMatching(/invite already used/) });
    expect(await two.a.onClaim(claim(j2, m1), j2.peerId)).toBe(false); // refused from the decided registry
    expect(two.a.pending()).toEqual([]);
    one.a.stop();
    two.a.stop();
    await one.store.close();
    await two.store.close();
  });

  it('a joiner records the height of its own committed member.add (and keeps it across restarts)', async () => {
    const clock = { t: T0 + 10 };
    const j = await setup(j1, 'auto', clock);
    expect(j.a.status()).toMatchObject({ admitted: false, admittedAtHeight: null });
    await j.c.submit([{ kind: 'model.alias', alias: 'a', model: 'b' }]);
    await j.c.submit([{ kind: 'member.add', publicKey: j1.publicKey, power: 1, name: 'me' }]);
    await expect.poll(() => j.a.status()).toMatchObject({ admitted: true, admittedAtHeight: 2 });
    j.a.stop();
    const again = await setup(j1, 'auto', clock, j.store, j.c);
    expect(again.a.status().admittedAtHeight).toBe(2);
    again.a.stop();
    await j.store.close();
  });
});
