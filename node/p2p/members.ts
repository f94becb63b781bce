/**
 * Cluster membership as the p2p layer sees it. Gossip validation and peer scoring ask
 * a `MemberSource`; where the answer comes from is swappable. Today: the cluster's
 * genesis list plus nodes admitted by a signed invite (`InviteMemberSource`). The
 * consensus issue replaces it with the decided membership patterns and nothing else
 * here changes.
 *
 * Invite flow (two signed envelopes, no trust in the transport):
 * 1. a member signs an `invite` envelope naming the invitee's public key and/or the
 *    BLAKE3 hash of a one-time secret, with an expiry;
 * 2. the invitee signs a `join` claim carrying that invite (and the secret, if any);
 * 3. any member checks the claim with `admit()`: inviter is a member, invite not
 *    expired (injected clock), not used before, and it names the claim's signer (or
 *    the secret matches).
 */
import { blake3 } from '../../crypto/blake3.js';
import { bytesEqual, expectRecord } from '../../crypto/cbor.js';
import { createEnvelope, openEnvelope } from '../../crypto/envelope.js';
import type { Identity } from '../../crypto/keys.js';
import type { P2pErrorCode } from './errors.js';
import { P2pError } from './errors.js';

export interface MemberChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** What the p2p layer needs to know about membership (peer ids are libp2p PeerId strings). */
export interface MemberSource {
  isMember(peerId: string): boolean;
  members(): readonly string[];
  /** Subscribe to changes; returns the unsubscribe function. */
  onChange(listener: (ev: MemberChange) => void): () => void;
}

export const INVITE_KIND = 'invite';
export const JOIN_KIND = 'join';
/** Invites live at most a week: a leaked token must not stay useful for long. */
export const INVITE_TTL_MAX_MS = 7 * 24 * 3600_000;
/** One-time secrets are 16..64 bytes: enough entropy, bounded input. */
const SECRET_MIN_BYTES = 16;
const SECRET_MAX_BYTES = 64;
/** An invite or join claim is a few hundred bytes; 8 KiB bounds the decode. */
const INVITE_MAX_BYTES = 8 * 1024;
/** Home-lab clusters are small; 1024 members bounds memory and scoring work. */
export const MEMBERS_MAX_DEFAULT = 1024;
/** Used-invite digests remembered (one-time use); 4096 covers far more invites than a week of admin work. */
const USED_INVITES_MAX = 4096;

export interface InviteOptions {
  cluster: string;
  nowMs: number;
  ttlMs: number;
  /** The invitee's 32-byte Ed25519 public key, when known in advance. */
  invitee?: Uint8Array;
  /** A one-time secret handed to the invitee out of band (its BLAKE3 hash goes in the invite). */
  secret?: Uint8Array;
  /** Envelope sequence number (the inviter's counter); default 0. */
  seq?: number;
}

/** A signed invite envelope (wire bytes). At least one of `invitee` / `secret` is required. */
export function createInvite(inviter: Identity, o: InviteOptions): Uint8Array {
  if (o.invitee === undefined && o.secret === undefined) {
    throw new P2pError('ERR_OPTIONS', 'an invite must name the invitee public key or carry a one-time secret', {});
  }
  if (!(o.ttlMs > 0 && o.ttlMs <= INVITE_TTL_MAX_MS)) {
    throw new P2pError('ERR_OPTIONS', `invite ttlMs must be in (0, ${INVITE_TTL_MAX_MS}]`, { ttlMs: o.ttlMs });
  }
  if (o.invitee !== undefined && o.invitee.length !== 32) {
    throw new P2pError('ERR_OPTIONS', 'invitee must be a 32-byte Ed25519 public key', { length: o.invitee.length });
  }
  if (o.secret !== undefined) checkSecret(o.secret);
  return createEnvelope(inviter, {
    kind: INVITE_KIND,
    cluster: o.cluster,
    seq: o.seq ?? 0,
    time: o.nowMs,
    body: {
      invitee: o.invitee ?? null,
      secretHash: o.secret === undefined ? null : blake3(o.secret),
      expires: o.nowMs + o.ttlMs,
    },
  });
}

/** A member's display name in a join claim: what `member.add` records (consensus/patterns.ts MAX_MEMBER_NAME_CHARS). */
export const JOIN_NAME_MAX_CHARS = 64;

/**
 * The invitee's signed claim to membership, carrying the invite (and the secret if the invite
 * has one) and optionally the name it asks to be listed under.
 */
export function createJoinClaim(invitee: Identity, o: { cluster: string; nowMs: number; invite: Uint8Array; secret?: Uint8Array; name?: string }): Uint8Array {
  if (o.secret !== undefined) checkSecret(o.secret);
  if (o.name !== undefined && o.name.length > JOIN_NAME_MAX_CHARS) {
    throw new P2pError('ERR_OPTIONS', `join name must be at most ${JOIN_NAME_MAX_CHARS} characters`, { length: o.name.length });
  }
  return createEnvelope(invitee, {
    kind: JOIN_KIND,
    cluster: o.cluster,
    seq: 0,
    time: o.nowMs,
    body: { invite: o.invite, secret: o.secret ?? null, ...(o.name !== undefined ? { name: o.name } : {}) },
  });
}

function checkSecret(secret: Uint8Array): void {
  if (secret.length < SECRET_MIN_BYTES || secret.length > SECRET_MAX_BYTES) {
    throw new P2pError('ERR_OPTIONS', `one-time secret must be ${SECRET_MIN_BYTES}..${SECRET_MAX_BYTES} bytes`, { length: secret.length });
  }
}

export type InviteCheck =
  | { ok: true; inviter: string; expiresMs: number; invitee: Uint8Array | null; secretHash: Uint8Array | null; digest: Uint8Array }
  | { ok: false; code: P2pErrorCode; detail: string };
export type AdmitResult = { ok: true; peerId: string; inviter: string } | { ok: false; code: P2pErrorCode; detail: string };
/** A join claim that verifies (signatures, inviter is a member, not expired, names its signer); one-time use is the caller's. */
export type JoinClaimCheck =
  | { ok: true; peerId: string; publicKey: Uint8Array; inviter: string; name: string | null; expiresMs: number; inviteKey: string }
  | { ok: false; code: P2pErrorCode; detail: string };

export interface JoinClaimContext {
  cluster: string;
  /** Is the inviter a member now (whatever the source of truth: invite list or decided log)? */
  isMember(peerId: string): boolean;
  /** Injected clock (unix ms) for invite expiry. */
  now(): number;
}

/** Check an invite envelope: signature, inviter is a member now, not expired. */
export function checkInviteEnvelope(invite: Uint8Array, ctx: JoinClaimContext): InviteCheck {
  const d = openEnvelope(invite, { kinds: [INVITE_KIND], cluster: ctx.cluster, maxBytes: INVITE_MAX_BYTES });
  if (!d.ok) return { ok: false, code: 'ERR_INVITE_INVALID', detail: `invite envelope: ${d.code}: ${d.detail}` };
  let body: Record<string, unknown>;
  try {
    body = expectRecord(d.envelope.body, ['invitee', 'secretHash', 'expires'], 'invite body');
  } catch (err) {
    return { ok: false, code: 'ERR_INVITE_INVALID', detail: err instanceof Error ? err.message : 'invite body' };
  }
  const { invitee, secretHash, expires } = body;
  if (!(invitee === null || (invitee instanceof Uint8Array && invitee.length === 32))) {
    return { ok: false, code: 'ERR_INVITE_INVALID', detail: 'invite body: invitee must be null or a 32-byte key' };
  }
  if (!(secretHash === null || (secretHash instanceof Uint8Array && secretHash.length === 32))) {
    return { ok: false, code: 'ERR_INVITE_INVALID', detail: 'invite body: secretHash must be null or 32 bytes' };
  }
  if (invitee === null && secretHash === null) {
    return { ok: false, code: 'ERR_INVITE_INVALID', detail: 'invite body: names neither an invitee nor a secret' };
  }
  if (typeof expires !== 'number' || !Number.isSafeInteger(expires) || expires - d.envelope.time > INVITE_TTL_MAX_MS) {
    return { ok: false, code: 'ERR_INVITE_INVALID', detail: 'invite body: expires must be an integer within a week of the invite time' };
  }
  if (!ctx.isMember(d.envelope.signerId)) {
    return { ok: false, code: 'ERR_INVITE_NOT_MEMBER', detail: `inviter ${d.envelope.signerId} is not a member` };
  }
  const now = ctx.now();
  if (now >= expires) {
    return { ok: false, code: 'ERR_INVITE_EXPIRED', detail: `invite expired at ${new Date(expires).toISOString()}` };
  }
  return { ok: true, inviter: d.envelope.signerId, expiresMs: expires, invitee, secretHash, digest: d.digest };
}

/**
 * Check a join claim: its signature, its invite (see checkInviteEnvelope), and that the invite
 * names the claim's signer or the claim carries the invite's secret. Does not record the invite
 * as used: `inviteKey` (hex digest of the invite) is for the caller's one-time-use bookkeeping.
 */
export function verifyJoinClaim(joinClaim: Uint8Array, ctx: JoinClaimContext): JoinClaimCheck {
  const c = openEnvelope(joinClaim, { kinds: [JOIN_KIND], cluster: ctx.cluster, maxBytes: INVITE_MAX_BYTES });
  if (!c.ok) return { ok: false, code: 'ERR_INVITE_INVALID', detail: `join claim: ${c.code}: ${c.detail}` };
  let body: Record<string, unknown>;
  try {
    body = expectRecord(c.envelope.body, ['invite', 'secret', 'name'], 'join claim body');
  } catch (err) {
    return { ok: false, code: 'ERR_INVITE_INVALID', detail: err instanceof Error ? err.message : 'join claim body' };
  }
  const { invite, secret, name } = body;
  if (!(invite instanceof Uint8Array)) return { ok: false, code: 'ERR_INVITE_INVALID', detail: 'join claim: invite must be bytes' };
  if (!(secret === null || secret instanceof Uint8Array)) return { ok: false, code: 'ERR_INVITE_INVALID', detail: 'join claim: secret must be null or bytes' };
  if (!(name === undefined || (typeof name === 'string' && name.length <= JOIN_NAME_MAX_CHARS))) {
    return { ok: false, code: 'ERR_INVITE_INVALID', detail: `join claim: name must be a string of at most ${JOIN_NAME_MAX_CHARS} characters` };
  }
  const inv = checkInviteEnvelope(invite, ctx);
  if (!inv.ok) return inv;
  if (inv.invitee !== null && !bytesEqual(inv.invitee, c.envelope.signer)) {
    return { ok: false, code: 'ERR_INVITE_MISMATCH', detail: 'join claim is not signed by the invited key' };
  }
  if (inv.secretHash !== null && (secret === null || !bytesEqual(blake3(secret), inv.secretHash))) {
    return { ok: false, code: 'ERR_INVITE_MISMATCH', detail: 'join claim does not carry the invite secret' };
  }
  return {
    ok: true,
    peerId: c.envelope.signerId,
    publicKey: c.envelope.signer,
    inviter: inv.inviter,
    name: typeof name === 'string' ? name : null,
    expiresMs: inv.expiresMs,
    inviteKey: Buffer.from(inv.digest).toString('hex'),
  };
}

export interface InviteMemberSourceOptions {
  cluster: string;
  /** Genesis members (peer ids), from the cluster file. */
  genesis: readonly string[];
  /** Injected clock (unix ms) for invite expiry. */
  now: () => number;
  /** Bound on the member set. @default 1024 */
  maxMembers?: number;
}

/**
 * A member set with change listeners: what every MemberSource shares. Subclasses decide
 * where the members come from (invites here, decided patterns in node/consensus/members.ts).
 */
export abstract class MemberSet implements MemberSource {
  protected set: Set<string>;
  private readonly listeners = new Set<(ev: MemberChange) => void>();

  protected constructor(initial: Iterable<string> = []) {
    this.set = new Set(initial);
  }

  isMember(peerId: string): boolean {
    return this.set.has(peerId);
  }

  members(): readonly string[] {
    return [...this.set];
  }

  onChange(listener: (ev: MemberChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Replace the whole set and emit the difference, if any. */
  protected replace(next: Set<string>): void {
    const added = [...next].filter((p) => !this.set.has(p));
    const removed = [...this.set].filter((p) => !next.has(p));
    this.set = next;
    if (added.length > 0 || removed.length > 0) this.emit({ added, removed });
  }

  protected emit(ev: MemberChange): void {
    for (const l of [...this.listeners]) {
      try {
        l(ev);
      } catch {
        // one listener's bug must not stop the others (gossip scoring, the driver, admission)
      }
    }
  }
}

/** Genesis list + invite-admitted nodes, in memory (the runtime persists admitted claims and replays them on start). */
export class InviteMemberSource extends MemberSet {
  private readonly used = new Set<string>();
  private readonly cluster: string;
  private readonly now: () => number;
  private readonly maxMembers: number;

  constructor(o: InviteMemberSourceOptions) {
    super();
    this.cluster = o.cluster;
    this.now = o.now;
    this.maxMembers = o.maxMembers ?? MEMBERS_MAX_DEFAULT;
    if (o.genesis.length > this.maxMembers) {
      throw new P2pError('ERR_MEMBERS_FULL', `genesis has ${o.genesis.length} members, bound is ${this.maxMembers}`, { count: o.genesis.length });
    }
    for (const id of o.genesis) this.set.add(id);
  }

  /** Add a member directly (genesis replay, or a trusted source such as a decided pattern). */
  add(peerId: string): void {
    if (this.set.has(peerId)) return;
    if (this.set.size >= this.maxMembers) {
      throw new P2pError('ERR_MEMBERS_FULL', `member set is full (${this.maxMembers})`, { peerId });
    }
    this.set.add(peerId);
    this.emit({ added: [peerId], removed: [] });
  }

  remove(peerId: string): void {
    if (!this.set.delete(peerId)) return;
    this.emit({ added: [], removed: [peerId] });
  }

  /** Check an invite envelope: signature, inviter is a member now, not expired. */
  checkInvite(invite: Uint8Array): InviteCheck {
    return checkInviteEnvelope(invite, this.claimContext());
  }

  /** Admit the signer of a join claim if its invite is valid, unused, and names it. */
  admit(joinClaim: Uint8Array): AdmitResult {
    const v = verifyJoinClaim(joinClaim, this.claimContext());
    if (!v.ok) return v;
    if (this.used.has(v.inviteKey)) return { ok: false, code: 'ERR_INVITE_USED', detail: 'invite was already used' };
    if (!this.set.has(v.peerId) && this.set.size >= this.maxMembers) {
      return { ok: false, code: 'ERR_MEMBERS_FULL', detail: `member set is full (${this.maxMembers})` };
    }
    if (this.used.size >= USED_INVITES_MAX) {
      const oldest = this.used.values().next().value;
      if (oldest !== undefined) this.used.delete(oldest);
    }
    this.used.add(v.inviteKey);
    this.add(v.peerId);
    return { ok: true, peerId: v.peerId, inviter: v.inviter };
  }

  private claimContext(): JoinClaimContext {
    return { cluster: this.cluster, isMember: (id) => this.set.has(id), now: this.now };
  }
}
