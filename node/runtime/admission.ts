/**
 * Join by consensus. A joining node's signed join claim (node/p2p/members.ts) reaches the
 * members over member sync; each member checks it (invite signed by a member, not expired,
 * one-time, names the joiner or carries the secret) and then, by the cluster's admission mode:
 * - `auto`: submits `member.add` (power 1, the claim's name, the invite's digest) through consensus. To keep
 *   duplicates rare, the inviter submits at once and the other members only when the claim
 *   is still not decided after AUTO_FALLBACK_MS (the inviter may be down). A duplicate that
 *   still races is rejected by the registry ("already a member") and logged at debug level.
 * - `approve`: keeps the claim in a bounded pending-joins list (store section `invites`)
 *   until an operator runs `fednode approve <peer>` on any member.
 * The joiner itself learns its admission from the decided log and records the height.
 *
 * One-time use is cluster-wide: the member.add carries the invite digest and the registry
 * (consensus/registry.ts) refuses a digest a decided add already used, so two joiners presenting
 * the same invite to different members (inviter down, both past the fallback) end with one
 * admitted. Claims whose digest the decided registry lists are refused (ERR_INVITE_USED); the
 * local `used` map below is only the fast path (it sees this node's claims alone).
 */
import type { PatternOp } from '../../consensus/patterns.js';
import { toHex } from '../../base/hex.js';
import { isInviteUsed, type Registry } from '../../consensus/registry.js';
import { peerIdFromPublicKey } from '../../crypto/keys.js';
import type { AdmissionMode } from '../config.js';
import type { CommitReceipt, Consensus, DecidedEntry } from '../consensus/api.js';
import { ConsensusDriverError } from '../consensus/api.js';
import type { Logger } from '../log.js';
import { JOIN_KIND, verifyJoinClaim } from '../p2p/members.js';
import { decodeEnvelope } from '../../crypto/envelope.js';
import { JoinRefusals } from './join-refusals.js';
import type { JoinRefusal, RefusedBy } from './join-refusals.js';
import type { Store } from '../store/index.js';
import { publicKeyOfPeerId } from './consensus-ops.js';
import { RuntimeError } from './errors.js';

/** Joins waiting for approval: a lab admits a handful of machines at a time; bounds memory and the store section. */
export const PENDING_JOINS_MAX = 256;
/** Invite digests remembered for one-time use; far more invites than a week of admin work. */
export const USED_INVITES_MAX = 4096;
/** Non-inviting members propose a claim's member.add only after this long (the inviter may be down). */
export const AUTO_FALLBACK_MS = 10_000;
/** One automatic member.add waits this long for its commit; the next claim exchange retries. */
export const AUTO_SUBMIT_TIMEOUT_MS = 30_000;
/** Heights scanned to find this node's own member.add after a restart (bounded work at start). */
const ADMISSION_SCAN_MAX_HEIGHTS = 100_000;
const SCAN_PAGE = 500;

export interface PendingJoin {
  readonly peer: string;
  readonly name: string;
  readonly inviter: string;
  readonly seenMs: number;
  readonly expiresMs: number;
  /** Hex digest of the claim's invite (carried by the member.add); absent in joins stored by older versions. */
  readonly inviteKey?: string;
}

export interface AdmissionStatus {
  readonly mode: AdmissionMode;
  /** Is this node a decided member (in force, or decided and taking effect at a later height)? */
  readonly admitted: boolean;
  /** Height that decided this node's member.add; 0 for a genesis member; null if not (yet) known. */
  readonly admittedAtHeight: number | null;
  readonly pendingJoins: number;
  /** Not admitted, and a member reported why it refused this node's join claim (the latest report); null otherwise. */
  readonly refused?: RefusedBy | null;
}

export type AdmissionConsensus = Pick<Consensus, 'submit' | 'check' | 'registry' | 'status' | 'entries' | 'onDecided'>;

export interface AdmissionOptions {
  readonly cluster: string;
  readonly selfId: string;
  readonly selfKey: Uint8Array;
  readonly mode: AdmissionMode;
  readonly consensus: AdmissionConsensus;
  readonly store: Store;
  readonly logger: Logger;
  readonly now: () => number;
  /** Whether this node was in the cluster file's genesis list. */
  readonly genesisMember: boolean;
}

export interface Admission {
  start(): Promise<void>;
  stop(): void;
  /** A join claim received from `from` over member sync; true when it is valid (worth relaying). Never throws. */
  onClaim(claim: Uint8Array, from: string): Promise<boolean>;
  pending(): PendingJoin[];
  /** Submit member.add for `peer` (approve mode, or any mode by hand) and wait for its commit. */
  approve(peer: string, o: { timeoutMs: number; signal?: AbortSignal }): Promise<{ receipt: CommitReceipt; name: string; hadClaim: boolean }>;
  status(): AdmissionStatus;
  /** Why this member refused `peer`'s latest claim (member sync tells the joiner); null when it did not. */
  refusalFor(peer: string): JoinRefusal | null;
  /** On a joiner: member `byPeer` reported refusing our claim. */
  noteRefusedBy(byPeer: string, r: { code: string; reason: string }): void;
}

/** Peer ids (hex keys) that are members now or have a decided member.add not yet in force, minus decided removals. */
export function decidedMemberKeys(reg: Registry): Set<string> {
  const keys = new Set(reg.members.map((m) => toHex(m.publicKey)));
  for (const p of reg.pending) {
    if (p.op.kind === 'member.add') keys.add(toHex(p.op.publicKey));
    else keys.delete(toHex(p.op.publicKey));
  }
  return keys;
}

export function createAdmission(o: AdmissionOptions): Admission {
  const log = o.logger.child('admission');
  const section = o.store.section('invites');
  const selfHex = toHex(o.selfKey);
  const pendingJoins = new Map<string, PendingJoin>(); // peer -> join (bounded by PENDING_JOINS_MAX)
  const claimsOf = new Map<string, { name: string; inviteKey: string }>(); // peer -> claimed name and invite (same bound, cleared on admission)
  const used = new Map<string, string>(); // invite digest hex -> peer that used it (bounded by USED_INVITES_MAX)
  const firstSeen = new Map<string, number>(); // peer -> first time a valid claim was seen (same bound)
  const inFlight = new Set<string>();
  let admittedAtHeight: number | null = o.genesisMember ? 0 : null;
  let unsubscribe: (() => void) | null = null;
  let stopped = false;
  const refusals = new JoinRefusals(log, o.now);
  const signerOfClaim = (claim: Uint8Array): string | null => {
    const d = decodeEnvelope(claim, { kinds: [JOIN_KIND], cluster: o.cluster, maxBytes: 8192 });
    return d.ok ? d.envelope.signerId : null;
  };

  const isDecidedMember = (hexKey: string): boolean => decidedMemberKeys(o.consensus.registry()).has(hexKey);
  const isMemberPeer = (peer: string): boolean => {
    try {
      return isDecidedMember(toHex(publicKeyOfPeerId(peer, 'peer')));
    } catch {
      return false;
    }
  };

  const digestOf = (inviteKey: string): Uint8Array => new Uint8Array(Buffer.from(inviteKey, 'hex'));
  const decidedUsed = (inviteKey: string): boolean => isInviteUsed(o.consensus.registry(), digestOf(inviteKey));

  const bounded = <K, V>(m: Map<K, V>, max: number): void => {
    while (m.size > max) {
      const oldest = m.keys().next();
      if (oldest.done === true) break;
      m.delete(oldest.value);
    }
  };

  const dropPending = async (peer: string): Promise<void> => {
    claimsOf.delete(peer);
    firstSeen.delete(peer);
    if (pendingJoins.delete(peer)) await section.del(`pending:${peer}`).catch(() => undefined);
  };

  const recordAdmission = async (height: number): Promise<void> => {
    if (admittedAtHeight !== null) return;
    admittedAtHeight = height;
    log.info('this node was admitted by a committed member.add', { height });
    await section.put('admitted', new TextEncoder().encode(String(height)), { sync: true });
  };

  const onDecided = (e: DecidedEntry): void => {
    for (const op of e.ops) {
      if (op.kind !== 'member.add') continue;
      const peer = peerIdFromPublicKey(op.publicKey);
      if (toHex(op.publicKey) === selfHex) void recordAdmission(e.height).catch((err: unknown) => log.warn('cannot record admission height', { err }));
      void dropPending(peer);
      if (op.invite === undefined) continue;
      // Joins waiting on the same invite can no longer be admitted with it. The claim (name,
      // invite) is kept so that `approve <peer>` still carries the digest and is refused.
      const key = toHex(op.invite);
      for (const j of [...pendingJoins.values()]) {
        if (j.inviteKey !== key || j.peer === peer) continue;
        pendingJoins.delete(j.peer);
        void section.del(`pending:${j.peer}`).catch(() => undefined);
        log.info('join refused', { peer: j.peer, code: 'ERR_INVITE_USED', detail: `invite already used by ${peer} (decided at height ${e.height})` });
      }
    }
  };

  const submitAdd = async (peer: string, publicKey: Uint8Array, name: string, inviteKey: string): Promise<void> => {
    if (inFlight.has(peer) || inFlight.size >= PENDING_JOINS_MAX || stopped) return;
    const ops: PatternOp[] = [{ kind: 'member.add', publicKey, power: 1, name, invite: digestOf(inviteKey) }];
    const verdict = o.consensus.check(ops);
    if (!verdict.ok) {
      log.debug('member.add not proposed', { peer, reason: verdict.reason }); // usually: already a member (another member was first), or invite already used
      return;
    }
    inFlight.add(peer);
    try {
      const r = await o.consensus.submit(ops, { timeoutMs: AUTO_SUBMIT_TIMEOUT_MS });
      log.info('member admitted by consensus', { peer, name, height: r.height });
    } catch (e) {
      if (e instanceof ConsensusDriverError && (e.code === 'ERR_PATTERN_REJECTED' || e.code === 'ERR_CONSENSUS_STOPPED')) log.debug('member.add not committed', { peer, code: e.code, err: e.message });
      else if (e instanceof ConsensusDriverError && e.code === 'ERR_SUBMIT_TIMEOUT') log.info('member.add not committed yet; will retry on the next claim exchange', { peer });
      else log.warn('member.add submit failed', { peer, err: e });
    } finally {
      inFlight.delete(peer);
    }
  };

  const onClaim = async (claim: Uint8Array, from: string): Promise<boolean> => {
    try {
      const v = verifyJoinClaim(claim, { cluster: o.cluster, isMember: isMemberPeer, now: o.now });
      if (!v.ok) {
        const signer = signerOfClaim(claim);
        if (signer !== null) refusals.refuse(signer, v.code, v.detail, from);
        else log.debug('join claim refused', { from, code: v.code, detail: v.detail });
        return false;
      }
      if (isDecidedMember(toHex(v.publicKey))) {
        if (pendingJoins.has(v.peerId)) await dropPending(v.peerId);
        return false;
      }
      if (decidedUsed(v.inviteKey)) {
        refusals.refuse(v.peerId, 'ERR_INVITE_USED', 'invite already used (a decided member.add consumed it)', from);
        return false;
      }
      const prior = used.get(v.inviteKey);
      if (prior !== undefined && prior !== v.peerId) {
        refusals.refuse(v.peerId, 'ERR_INVITE_USED', `invite already used by ${prior}`, from);
        return false;
      }
      if (prior === undefined) {
        used.set(v.inviteKey, v.peerId);
        bounded(used, USED_INVITES_MAX);
        await section.put(`used:${v.inviteKey}`, new TextEncoder().encode(v.peerId), { sync: true });
      }
      refusals.clear(v.peerId);
      const name = v.name ?? v.peerId.slice(-8);
      if (!firstSeen.has(v.peerId)) {
        firstSeen.set(v.peerId, o.now());
        bounded(firstSeen, PENDING_JOINS_MAX);
      }
      claimsOf.set(v.peerId, { name, inviteKey: v.inviteKey });
      bounded(claimsOf, PENDING_JOINS_MAX);
      if (o.mode === 'approve') {
        if (pendingJoins.has(v.peerId)) return true;
        if (pendingJoins.size >= PENDING_JOINS_MAX) {
          log.warn('pending joins list is full; claim not kept', { peer: v.peerId, bound: PENDING_JOINS_MAX });
          return true;
        }
        const j: PendingJoin = { peer: v.peerId, name, inviter: v.inviter, seenMs: o.now(), expiresMs: v.expiresMs, inviteKey: v.inviteKey };
        pendingJoins.set(v.peerId, j);
        await section.put(`pending:${v.peerId}`, new TextEncoder().encode(JSON.stringify(j)), { sync: true });
        log.info('join waiting for approval (fednode approve <peer>)', { peer: v.peerId, name, inviter: v.inviter });
        return true;
      }
      if (!o.consensus.status().isValidator) return true; // only voting members propose
      const waited = o.now() - (firstSeen.get(v.peerId) ?? o.now());
      if (v.inviter !== o.selfId && waited < AUTO_FALLBACK_MS) return true; // the inviter proposes first
      void submitAdd(v.peerId, v.publicKey, name, v.inviteKey); // waits for the commit; member sync must not
      return true;
    } catch (e) {
      log.warn('join claim handling failed', { from, err: e });
      return false;
    }
  };

  return {
    async start() {
      const dec = new TextDecoder();
      for await (const [key, value] of section.entries({ gte: 'pending:', lt: 'pending;' })) {
        try {
          const j = JSON.parse(dec.decode(value)) as PendingJoin;
          const inviteOk = j.inviteKey === undefined || (typeof j.inviteKey === 'string' && /^[0-9a-f]{64}$/.test(j.inviteKey));
          if (!inviteOk) await section.del(key).catch(() => undefined);
          else if (typeof j.peer === 'string' && pendingJoins.size < PENDING_JOINS_MAX) pendingJoins.set(j.peer, j);
        } catch {
          await section.del(key).catch(() => undefined);
        }
      }
      for await (const [key, value] of section.entries({ gte: 'used:', lt: 'used;' })) {
        if (used.size >= USED_INVITES_MAX) break;
        used.set(key.slice('used:'.length), dec.decode(value));
      }
      const stored = await section.get('admitted');
      if (stored !== undefined) {
        const h = Number(dec.decode(stored));
        if (Number.isSafeInteger(h) && h >= 0) admittedAtHeight = h;
      }
      unsubscribe = o.consensus.onDecided(onDecided);
      for (const j of [...pendingJoins.values()]) {
        if (isMemberPeer(j.peer)) await dropPending(j.peer);
        else if (j.inviteKey !== undefined && decidedUsed(j.inviteKey)) await dropPending(j.peer); // another peer used its invite
      }
      if (admittedAtHeight === null && isDecidedMember(selfHex)) {
        // Admitted before this restart but the height was not recorded: find the member.add.
        const top = o.consensus.status().decidedHeight;
        for (let from = 1; from <= Math.min(top, ADMISSION_SCAN_MAX_HEIGHTS) && admittedAtHeight === null; from += SCAN_PAGE) {
          for (const e of await o.consensus.entries(from, SCAN_PAGE)) {
            if (e.ops.some((op) => op.kind === 'member.add' && toHex(op.publicKey) === selfHex)) {
              await recordAdmission(e.height);
              break;
            }
          }
        }
      }
    },
    stop() {
      stopped = true;
      unsubscribe?.();
    },
    onClaim,
    pending: () => [...pendingJoins.values()],
    async approve(peer, a) {
      const publicKey = publicKeyOfPeerId(peer, 'peer');
      if (isDecidedMember(toHex(publicKey))) throw new RuntimeError('ERR_ALREADY_MEMBER', `${peer} is already a member (or its member.add is decided)`, { peer });
      const join = pendingJoins.get(peer);
      const claim = claimsOf.get(peer);
      const name = join?.name ?? claim?.name ?? peer.slice(-8);
      // The claim's invite goes with the add: the registry refuses it if another join used it
      // (ERR_PATTERN_REJECTED, "invite already used"). No claim known: an operator's add, as before.
      const inviteKey = join?.inviteKey ?? claim?.inviteKey;
      const add: PatternOp = { kind: 'member.add', publicKey, power: 1, name, ...(inviteKey !== undefined ? { invite: digestOf(inviteKey) } : {}) };
      const receipt = await o.consensus.submit([add], { timeoutMs: a.timeoutMs, ...(a.signal !== undefined ? { signal: a.signal } : {}) });
      await dropPending(peer);
      return { receipt, name, hadClaim: join !== undefined };
    },
    status: () => {
      const admitted = isDecidedMember(selfHex);
      return { mode: o.mode, admitted, admittedAtHeight, pendingJoins: pendingJoins.size, refused: admitted ? null : refusals.refusedUsBy() };
    },
    refusalFor: (peer) => refusals.refusalFor(peer),
    noteRefusedBy: (byPeer, r) => refusals.noteRefusedBy(byPeer, r),
  };
}
