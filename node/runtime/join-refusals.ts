/**
 * Refused join claims, on both sides (issue 17). On a member: why each joiner's claim was
 * refused (used invite, expired invite, inviter not a member, malformed), logged at info once per
 * joiner and reason every LOG_EVERY_MS (claims are re-sent every few seconds by every relaying
 * peer), and kept so member sync can tell the joiner. On the joiner: the latest refusal a member
 * reported, for `fednode status` and `doctor`. Bounded maps, no clock of its own.
 */
import type { Logger } from '../log.js';

export type JoinRefusalCode = 'ERR_INVITE_USED' | 'ERR_INVITE_EXPIRED' | 'ERR_INVITE_NOT_MEMBER' | 'ERR_INVITE_INVALID' | 'ERR_INVITE_BAD_SIGNATURE' | 'ERR_JOIN_INVALID';

export interface JoinRefusal {
  readonly code: string;
  readonly reason: string;
  readonly atMs: number;
}

/** A joiner's view: which member refused it and why. */
export interface RefusedBy extends JoinRefusal {
  readonly byPeer: string;
}

/** Joiners remembered: the pending-joins bound (admission.ts PENDING_JOINS_MAX) times four for refused ones. */
export const JOIN_REFUSALS_MAX = 1_024;
/** Each joiner's refusal is logged at info at most this often per reason. */
const LOG_EVERY_MS = 10 * 60_000;
/** Reason text carried back to the joiner is cut here (a frame holds it; it is for humans). */
export const REFUSAL_REASON_MAX_CHARS = 300;

export class JoinRefusals {
  private readonly byJoiner = new Map<string, JoinRefusal>();
  private readonly logged = new Map<string, number>(); // `${peer} ${code}` -> last info log (same bound)
  private refusedUs: RefusedBy | null = null;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** A member refused `peer`'s claim. */
  refuse(peer: string, code: string, detail: string, from: string): void {
    const atMs = this.now();
    this.byJoiner.delete(peer);
    this.byJoiner.set(peer, { code, reason: detail.slice(0, REFUSAL_REASON_MAX_CHARS), atMs });
    while (this.byJoiner.size > JOIN_REFUSALS_MAX) this.byJoiner.delete(this.byJoiner.keys().next().value as string);
    const key = `${peer} ${code}`;
    const last = this.logged.get(key);
    if (last === undefined || atMs - last >= LOG_EVERY_MS) {
      this.log.info('join claim refused', { peer, code, detail, from });
      this.logged.delete(key);
      this.logged.set(key, atMs);
      while (this.logged.size > JOIN_REFUSALS_MAX) this.logged.delete(this.logged.keys().next().value as string);
    } else {
      this.log.debug('join claim refused (again)', { peer, code, from });
    }
  }

  /** The claim of `peer` checked out (or it was admitted): forget an older refusal. */
  clear(peer: string): void {
    this.byJoiner.delete(peer);
  }

  refusalFor(peer: string): JoinRefusal | null {
    return this.byJoiner.get(peer) ?? null;
  }

  /** On the joiner: a member reported a refusal of our claim. */
  noteRefusedBy(byPeer: string, r: { code: string; reason: string }): void {
    const first = this.refusedUs === null || this.refusedUs.code !== r.code || this.refusedUs.byPeer !== byPeer;
    this.refusedUs = { byPeer, code: r.code.slice(0, 64), reason: r.reason.slice(0, REFUSAL_REASON_MAX_CHARS), atMs: this.now() };
    if (first) this.log.warn('a member refused this node\'s join claim', { by: byPeer, code: r.code, reason: r.reason });
  }

  refusedUsBy(): RefusedBy | null {
    return this.refusedUs;
  }
}
