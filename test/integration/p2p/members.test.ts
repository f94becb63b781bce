import { describe, expect, it } from 'vitest';
import { createEnvelope } from '../../../crypto/envelope.js';
import { createInvite, createJoinClaim, InviteMemberSource, verifyJoinClaim } from '../../../node/p2p/members.js';
import { formatSwarmKey, generateSwarmKey, parseSwarmKey } from '../../../node/p2p/psk.js';
import { P2pError } from '../../../node/p2p/errors.js';
import { CLUSTER, ident } from '../../helpers/p2p.js';

const T0 = 1_700_000_000_000;

function source(now: { t: number }): InviteMemberSource {
  return new InviteMemberSource({ cluster: CLUSTER, genesis: [ident(1).peerId, ident(2).peerId], now: () => now.t });
}

describe('swarm key (pnet PSK)', () => {
  it('generates the swarm.key format and parses it back', () => {
    const k = generateSwarmKey();
    const text = new TextDecoder().decode(k);
    expect(text).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/);
    expect(parseSwarmKey(k)).toEqual(k);
    expect(parseSwarmKey(text + '\r\n')).toEqual(k);
    expect(generateSwarmKey()).not.toEqual(k);
  });
  it.each([
    ['empty', '', 'lines'],
    ['wrong header', '/key/swarm/psk/2.0.0/\n/base16/\n' + 'ab'.repeat(32), 'header'],
    ['wrong codec', '/key/swarm/psk/1.0.0/\n/base64/\n' + 'ab'.repeat(32), 'codec'],
    ['short key', '/key/swarm/psk/1.0.0/\n/base16/\nabcd', 'key'],
    ['non-hex', '/key/swarm/psk/1.0.0/\n/base16/\n' + 'zz'.repeat(32), 'key'],
    ['huge', 'x'.repeat(10_000), 'oversize'],
  ])('refuses %s with ERR_PSK_INVALID', (_name, text, reason) => {
    try {
      parseSwarmKey(text);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(P2pError);
      expect((err as P2pError).code).toBe('ERR_PSK_INVALID');
      expect((err as P2pError).data['reason']).toBe(reason);
    }
  });
  it('formatSwarmKey refuses a key of the wrong length', () => {
    expect(() => formatSwarmKey(new Uint8Array(31))).toThrow(P2pError);
  });
});

describe('InviteMemberSource (genesis + signed invites)', () => {
  it('knows its genesis members and nobody else', () => {
    const m = source({ t: T0 });
    expect(m.isMember(ident(1).peerId)).toBe(true);
    expect(m.isMember(ident(3).peerId)).toBe(false);
    expect([...m.members()].sort()).toEqual([ident(1).peerId, ident(2).peerId].sort());
  });

  it('admits the invitee named by a member invite, once, and tells listeners', () => {
    const now = { t: T0 };
    const m = source(now);
    const changes: string[][] = [];
    m.onChange((ev) => changes.push([...ev.added]));
    const invite = createInvite(ident(1), { cluster: CLUSTER, nowMs: T0, ttlMs: 60_000, invitee: ident(3).publicKey });
    const claim = createJoinClaim(ident(3), { cluster: CLUSTER, nowMs: T0 + 1, invite });
    expect(m.admit(claim)).toEqual({ ok: true, peerId: ident(3).peerId, inviter: ident(1).peerId });
    expect(m.isMember(ident(3).peerId)).toBe(true);
    expect(changes).toEqual([[ident(3).peerId]]);
    expect(m.admit(claim)).toMatchObject({ ok: false, code: 'ERR_INVITE_USED' });
  });

  it('refuses an expired invite (injected clock)', () => {
    const now = { t: T0 };
    const m = source(now);
    const invite = createInvite(ident(1), { cluster: CLUSTER, nowMs: T0, ttlMs: 60_000, invitee: ident(3).publicKey });
    now.t = T0 + 60_000;
    expect(m.admit(createJoinClaim(ident(3), { cluster: CLUSTER, nowMs: now.t, invite }))).toMatchObject({ ok: false, code: 'ERR_INVITE_EXPIRED' });
    expect(m.isMember(ident(3).peerId)).toBe(false);
  });

  it('refuses an invite signed by a non-member, or claimed by another key', () => {
    const m = source({ t: T0 });
    const byOutsider = createInvite(ident(9), { cluster: CLUSTER, nowMs: T0, ttlMs: 60_000, invitee: ident(3).publicKey });
    expect(m.admit(createJoinClaim(ident(3), { cluster: CLUSTER, nowMs: T0, invite: byOutsider }))).toMatchObject({ ok: false, code: 'ERR_INVITE_NOT_MEMBER' });
    const forThree = createInvite(ident(1), { cluster: CLUSTER, nowMs: T0, ttlMs: 60_000, invitee: ident(3).publicKey });
    expect(m.admit(createJoinClaim(ident(4), { cluster: CLUSTER, nowMs: T0, invite: forThree }))).toMatchObject({ ok: false, code: 'ERR_INVITE_MISMATCH' });
    expect(m.isMember(ident(4).peerId)).toBe(false);
  });

  it('one-time secret invites: the right secret admits, a wrong one does not', () => {
    const m = source({ t: T0 });
    const secret = new Uint8Array(32).fill(7);
    const invite = createInvite(ident(2), { cluster: CLUSTER, nowMs: T0, ttlMs: 60_000, secret });
    expect(m.admit(createJoinClaim(ident(5), { cluster: CLUSTER, nowMs: T0, invite, secret: new Uint8Array(32).fill(8) }))).toMatchObject({ ok: false, code: 'ERR_INVITE_MISMATCH' });
    expect(m.admit(createJoinClaim(ident(5), { cluster: CLUSTER, nowMs: T0, invite }))).toMatchObject({ ok: false, code: 'ERR_INVITE_MISMATCH' });
    expect(m.admit(createJoinClaim(ident(5), { cluster: CLUSTER, nowMs: T0, invite, secret }))).toMatchObject({ ok: true, peerId: ident(5).peerId });
  });

  it('tampered, foreign-cluster and malformed invites give ERR_INVITE_INVALID, never a throw', () => {
    const m = source({ t: T0 });
    const invite = createInvite(ident(1), { cluster: CLUSTER, nowMs: T0, ttlMs: 60_000, invitee: ident(3).publicKey });
    const tampered = invite.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(m.checkInvite(tampered)).toMatchObject({ ok: false, code: 'ERR_INVITE_INVALID' });
    expect(m.checkInvite(createInvite(ident(1), { cluster: 'other', nowMs: T0, ttlMs: 60_000, invitee: ident(3).publicKey }))).toMatchObject({ ok: false, code: 'ERR_INVITE_INVALID' });
    expect(m.checkInvite(new Uint8Array([1, 2, 3]))).toMatchObject({ ok: false, code: 'ERR_INVITE_INVALID' });
    const badBody = createEnvelope(ident(1), { kind: 'invite', cluster: CLUSTER, seq: 0, time: T0, body: { invitee: null, secretHash: null, expires: T0 + 1000 } });
    expect(m.checkInvite(badBody)).toMatchObject({ ok: false, code: 'ERR_INVITE_INVALID' });
    const extra = createEnvelope(ident(1), { kind: 'invite', cluster: CLUSTER, seq: 0, time: T0, body: { invitee: ident(3).publicKey, secretHash: null, expires: T0 + 1000, admin: true } });
    expect(m.checkInvite(extra)).toMatchObject({ ok: false, code: 'ERR_INVITE_INVALID' });
    expect(m.admit(new Uint8Array(0))).toMatchObject({ ok: false, code: 'ERR_INVITE_INVALID' });
  });

  it('createInvite refuses invites naming nobody or living too long', () => {
    expect(() => createInvite(ident(1), { cluster: CLUSTER, nowMs: T0, ttlMs: 1000 })).toThrow(P2pError);
    expect(() => createInvite(ident(1), { cluster: CLUSTER, nowMs: T0, ttlMs: 30 * 86_400_000, invitee: ident(3).publicKey })).toThrow(P2pError);
  });
});

describe('verifyJoinClaim (the check admission by consensus runs)', () => {
  const ctx = (t: number) => ({ cluster: CLUSTER, isMember: (p: string) => p === ident(1).peerId, now: () => t });
  it('returns the joiner, its key, the inviter, the claimed name and the invite key, and records nothing', () => {
    const invite = createInvite(ident(1), { cluster: CLUSTER, nowMs: T0, ttlMs: 60_000, invitee: ident(3).publicKey });
    const claim = createJoinClaim(ident(3), { cluster: CLUSTER, nowMs: T0 + 1, invite, name: 'gpu-box' });
    const v = verifyJoinClaim(claim, ctx(T0 + 5));
    expect(v).toMatchObject({ ok: true, peerId: ident(3).peerId, inviter: ident(1).peerId, name: 'gpu-box', expiresMs: T0 + 60_000 });
    if (!v.ok) throw new Error('unreachable');
    expect(v.publicKey).toEqual(ident(3).publicKey);
    expect(v.inviteKey).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyJoinClaim(claim, ctx(T0 + 5))).toMatchObject({ ok: true }); // not one-time here: the caller keeps that
    expect(verifyJoinClaim(createJoinClaim(ident(3), { cluster: CLUSTER, nowMs: T0 + 1, invite }), ctx(T0 + 5))).toMatchObject({ ok: true, name: null });
  });
  it('refuses an expired invite, a non-member inviter, an over-long or non-string name', () => {
    const invite = createInvite(ident(1), { cluster: CLUSTER, nowMs: T0, ttlMs: 60_000, invitee: ident(3).publicKey });
    expect(verifyJoinClaim(createJoinClaim(ident(3), { cluster: CLUSTER, nowMs: T0, invite }), ctx(T0 + 60_000))).toMatchObject({ ok: false, code: 'ERR_INVITE_EXPIRED' });
    const byTwo = createInvite(ident(2), { cluster: CLUSTER, nowMs: T0, ttlMs: 60_000, invitee: ident(3).publicKey });
    expect(verifyJoinClaim(createJoinClaim(ident(3), { cluster: CLUSTER, nowMs: T0, invite: byTwo }), ctx(T0))).toMatchObject({ ok: false, code: 'ERR_INVITE_NOT_MEMBER' });
    expect(() => createJoinClaim(ident(3), { cluster: CLUSTER, nowMs: T0, invite, name: 'x'.repeat(65) })).toThrow(P2pError);
    const numericName = createEnvelope(ident(3), { kind: 'join', cluster: CLUSTER, seq: 0, time: T0, body: { invite, secret: null, name: 5 } });
    expect(verifyJoinClaim(numericName, ctx(T0))).toMatchObject({ ok: false, code: 'ERR_INVITE_INVALID' });
  });
});

describe('host helpers', () => {
  it('backoff doubles from the base, stays under the cap, with bounded jitter', async () => {
    const { backoffDelayMs, mdnsServiceTag } = await import('../../../node/p2p/host.js');
    expect(backoffDelayMs(0, 500, 30_000, 0.5)).toBe(500);
    expect(backoffDelayMs(3, 500, 30_000, 0.5)).toBe(4000);
    expect(backoffDelayMs(40, 500, 30_000, 0.5)).toBe(30_000);
    expect(backoffDelayMs(40, 500, 30_000, 1)).toBe(37_500);
    expect(backoffDelayMs(2, 500, 30_000, 0)).toBe(1500);
    // mDNS tags: fednode-specific, per cluster, a valid DNS label (< 64 chars)
    const t1 = mdnsServiceTag('cluster-one');
    expect(t1).toMatch(/^_fednode-[0-9a-f]{16}\._udp\.local$/);
    expect(mdnsServiceTag('cluster-two')).not.toBe(t1);
    expect(mdnsServiceTag('cluster-one')).toBe(t1);
  });
});
