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
import type { JoinClaimCheck } from '../p2p/members.js';
import { decodeEnvelope } from '../../crypto/envelope.js';
import { JoinRefusals } from './join-refusals.js';
import type { JoinRefusal, RefusedBy } from './join-refusals.js';
import type { Store, StoreSectionDb } from '../store/index.js';
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
  /** Valid claims received for this join since this node started (the joiner retries every member-sync period), and the last time: a waiting joiner is still trying. Not stored. */
  readonly claims?: number;
  readonly lastSeenMs?: number;
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

/** What the admission's parts share: the options, the bounded maps and this node's own admission. */
interface AdmissionCtx {
  readonly o: AdmissionOptions;
  readonly log: Logger;
  readonly section: StoreSectionDb;
  readonly selfHex: string;
  /** peer -> join (bounded by PENDING_JOINS_MAX) */
  readonly pendingJoins: Map<string, PendingJoin>;
  /** peer -> claimed name and invite (same bound, cleared on admission) */
  readonly claimsOf: Map<string, { name: string; inviteKey: string }>;
  /** invite digest hex -> peer that used it (bounded by USED_INVITES_MAX) */
  readonly used: Map<string, string>;
  /** peer -> first time a valid claim was seen (same bound) */
  readonly firstSeen: Map<string, number>;
  /** peer -> valid claims received while its join waits for approval, and the last time (same bound) */
  readonly claimCounts: Map<string, { claims: number; lastSeenMs: number }>;
  readonly inFlight: Set<string>;
  readonly refusals: JoinRefusals;
  admittedAtHeight: number | null;
  stopped: boolean;
}

type VerifiedClaim = Extract<JoinClaimCheck, { ok: true }>;

export function createAdmission(o: AdmissionOptions): Admission {
  const log = o.logger.child('admission');
  const ctx: AdmissionCtx = {
    o,
    log,
    section: o.store.section('invites'),
    selfHex: toHex(o.selfKey),
    pendingJoins: new Map(),
    claimsOf: new Map(),
    claimCounts: new Map(),
    used: new Map(),
    firstSeen: new Map(),
    inFlight: new Set(),
    refusals: new JoinRefusals(log, o.now),
    admittedAtHeight: o.genesisMember ? 0 : null,
    stopped: false,
  };
  let unsubscribe: (() => void) | null = null;
  return {
    async start() {
      await loadStored(ctx);
      unsubscribe = o.consensus.onDecided((e) => onDecided(ctx, e));
      await settleAtStart(ctx);
    },
    stop() {
      ctx.stopped = true;
      unsubscribe?.();
    },
    onClaim: (claim, from) => onClaim(ctx, claim, from),
    pending: () => [...ctx.pendingJoins.values()].map((j) => ({ ...j, ...ctx.claimCounts.get(j.peer) })),
    approve: (peer, a) => approve(ctx, peer, a),
    status: () => {
      const admitted = isDecidedMember(ctx, ctx.selfHex);
      return { mode: o.mode, admitted, admittedAtHeight: ctx.admittedAtHeight, pendingJoins: ctx.pendingJoins.size, refused: admitted ? null : ctx.refusals.refusedUsBy() };
    },
    refusalFor: (peer) => ctx.refusals.refusalFor(peer),
    noteRefusedBy: (byPeer, r) => ctx.refusals.noteRefusedBy(byPeer, r),
  };
}

// --- membership and invite lookups in the decided registry ------------------------------

function isDecidedMember(ctx: AdmissionCtx, hexKey: string): boolean {
  return decidedMemberKeys(ctx.o.consensus.registry()).has(hexKey);
}

function isMemberPeer(ctx: AdmissionCtx, peer: string): boolean {
  try {
    return isDecidedMember(ctx, toHex(publicKeyOfPeerId(peer, 'peer')));
  } catch {
    return false;
  }
}

function digestOf(inviteKey: string): Uint8Array {
  return new Uint8Array(Buffer.from(inviteKey, 'hex'));
}

function decidedUsed(ctx: AdmissionCtx, inviteKey: string): boolean {
  return isInviteUsed(ctx.o.consensus.registry(), digestOf(inviteKey));
}

function signerOfClaim(cluster: string, claim: Uint8Array): string | null {
  const d = decodeEnvelope(claim, { kinds: [JOIN_KIND], cluster, maxBytes: 8192 });
  return d.ok ? d.envelope.signerId : null;
}

/** Drop the oldest entries (insertion order) until the map holds at most `max`. */
function bounded<K, V>(m: Map<K, V>, max: number): void {
  while (m.size > max) {
    const oldest = m.keys().next();
    if (oldest.done === true) break;
    m.delete(oldest.value);
  }
}

// --- the pending-joins list and this node's admission height in the store ----------------

async function dropPending(ctx: AdmissionCtx, peer: string): Promise<void> {
  ctx.claimsOf.delete(peer);
  ctx.firstSeen.delete(peer);
  ctx.claimCounts.delete(peer);
  if (ctx.pendingJoins.delete(peer)) await ctx.section.del(`pending:${peer}`).catch(() => undefined);
}

async function recordAdmission(ctx: AdmissionCtx, height: number): Promise<void> {
  if (ctx.admittedAtHeight !== null) return;
  ctx.admittedAtHeight = height;
  ctx.log.info('this node was admitted by a committed member.add', { height });
  await ctx.section.put('admitted', new TextEncoder().encode(String(height)), { sync: true });
}

/** Pending joins, used invites and the recorded admission height, as the store kept them (damaged entries dropped). */
async function loadStored(ctx: AdmissionCtx): Promise<void> {
  const { section, pendingJoins, used } = ctx;
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
    if (Number.isSafeInteger(h) && h >= 0) ctx.admittedAtHeight = h;
  }
}

/** After a restart: drop joins the decided log settled meanwhile, and find this node's own member.add if its height was not recorded. */
async function settleAtStart(ctx: AdmissionCtx): Promise<void> {
  for (const j of [...ctx.pendingJoins.values()]) {
    if (isMemberPeer(ctx, j.peer)) await dropPending(ctx, j.peer);
    else if (j.inviteKey !== undefined && decidedUsed(ctx, j.inviteKey)) await dropPending(ctx, j.peer); // another peer used its invite
  }
  if (ctx.admittedAtHeight === null && isDecidedMember(ctx, ctx.selfHex)) {
    // Admitted before this restart but the height was not recorded: find the member.add.
    const top = ctx.o.consensus.status().decidedHeight;
    for (let from = 1; from <= Math.min(top, ADMISSION_SCAN_MAX_HEIGHTS) && ctx.admittedAtHeight === null; from += SCAN_PAGE) {
      for (const e of await ctx.o.consensus.entries(from, SCAN_PAGE)) {
        if (e.ops.some((op) => op.kind === 'member.add' && toHex(op.publicKey) === ctx.selfHex)) {
          await recordAdmission(ctx, e.height);
          break;
        }
      }
    }
  }
}

// --- decided member.adds ---------------------------------------------------------------

function onDecided(ctx: AdmissionCtx, e: DecidedEntry): void {
  const { log, pendingJoins, section } = ctx;
  for (const op of e.ops) {
    if (op.kind !== 'member.add') continue;
    const peer = peerIdFromPublicKey(op.publicKey);
    if (toHex(op.publicKey) === ctx.selfHex) void recordAdmission(ctx, e.height).catch((err: unknown) => log.warn('cannot record admission height', { err }));
    void dropPending(ctx, peer);
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
}

// --- join claims -------------------------------------------------------------------------

async function onClaim(ctx: AdmissionCtx, claim: Uint8Array, from: string): Promise<boolean> {
  try {
    return await acceptClaim(ctx, claim, from);
  } catch (e) {
    ctx.log.warn('join claim handling failed', { from, err: e });
    return false;
  }
}

async function acceptClaim(ctx: AdmissionCtx, claim: Uint8Array, from: string): Promise<boolean> {
  const { o } = ctx;
  const v = verifyJoinClaim(claim, { cluster: o.cluster, isMember: (p) => isMemberPeer(ctx, p), now: o.now });
  if (!v.ok) {
    const signer = signerOfClaim(o.cluster, claim);
    if (signer !== null) ctx.refusals.refuse(signer, v.code, v.detail, from);
    else ctx.log.debug('join claim refused', { from, code: v.code, detail: v.detail });
    return false;
  }
  if (isDecidedMember(ctx, toHex(v.publicKey))) {
    if (ctx.pendingJoins.has(v.peerId)) await dropPending(ctx, v.peerId);
    return false;
  }
  if (!(await useInvite(ctx, v, from))) return false;
  ctx.refusals.clear(v.peerId);
  const name = v.name ?? v.peerId.slice(-8);
  if (!ctx.firstSeen.has(v.peerId)) {
    ctx.firstSeen.set(v.peerId, o.now());
    bounded(ctx.firstSeen, PENDING_JOINS_MAX);
  }
  ctx.claimsOf.set(v.peerId, { name, inviteKey: v.inviteKey });
  bounded(ctx.claimsOf, PENDING_JOINS_MAX);
  if (o.mode === 'approve') return keepForApproval(ctx, v, name);
  if (!o.consensus.status().isValidator) return true; // only voting members propose
  const waited = o.now() - (ctx.firstSeen.get(v.peerId) ?? o.now());
  if (v.inviter !== o.selfId && waited < AUTO_FALLBACK_MS) return true; // the inviter proposes first
  void submitAdd(ctx, v.peerId, v.publicKey, name, v.inviteKey); // waits for the commit; member sync must not
  return true;
}

/** One-time use: false (and the claim refused) when a decided add or another peer's claim used the invite; else it is recorded as this peer's. */
async function useInvite(ctx: AdmissionCtx, v: VerifiedClaim, from: string): Promise<boolean> {
  if (decidedUsed(ctx, v.inviteKey)) {
    ctx.refusals.refuse(v.peerId, 'ERR_INVITE_USED', 'invite already used (a decided member.add consumed it)', from);
    return false;
  }
  const prior = ctx.used.get(v.inviteKey);
  if (prior !== undefined && prior !== v.peerId) {
    ctx.refusals.refuse(v.peerId, 'ERR_INVITE_USED', `invite already used by ${prior}`, from);
    return false;
  }
  if (prior === undefined) {
    ctx.used.set(v.inviteKey, v.peerId);
    bounded(ctx.used, USED_INVITES_MAX);
    await ctx.section.put(`used:${v.inviteKey}`, new TextEncoder().encode(v.peerId), { sync: true });
  }
  return true;
}

/** Approve mode: the claim waits in the (bounded, stored) pending-joins list for `fednode approve`. */
async function keepForApproval(ctx: AdmissionCtx, v: VerifiedClaim, name: string): Promise<boolean> {
  const seen = ctx.claimCounts.get(v.peerId);
  ctx.claimCounts.set(v.peerId, { claims: (seen?.claims ?? 0) + 1, lastSeenMs: ctx.o.now() });
  bounded(ctx.claimCounts, PENDING_JOINS_MAX);
  if (ctx.pendingJoins.has(v.peerId)) return true;
  if (ctx.pendingJoins.size >= PENDING_JOINS_MAX) {
    ctx.log.warn('pending joins list is full; claim not kept', { peer: v.peerId, bound: PENDING_JOINS_MAX });
    return true;
  }
  const j: PendingJoin = { peer: v.peerId, name, inviter: v.inviter, seenMs: ctx.o.now(), expiresMs: v.expiresMs, inviteKey: v.inviteKey };
  ctx.pendingJoins.set(v.peerId, j);
  await ctx.section.put(`pending:${v.peerId}`, new TextEncoder().encode(JSON.stringify(j)), { sync: true });
  ctx.log.info('join waiting for approval (fednode approve <peer>)', { peer: v.peerId, name, inviter: v.inviter });
  return true;
}

// --- member.add submissions --------------------------------------------------------------

/** Auto mode: propose the claim's member.add and wait for its commit (one in flight per peer). */
async function submitAdd(ctx: AdmissionCtx, peer: string, publicKey: Uint8Array, name: string, inviteKey: string): Promise<void> {
  const { inFlight, log } = ctx;
  if (inFlight.has(peer) || inFlight.size >= PENDING_JOINS_MAX || ctx.stopped) return;
  const ops: PatternOp[] = [{ kind: 'member.add', publicKey, power: 1, name, invite: digestOf(inviteKey) }];
  const verdict = ctx.o.consensus.check(ops);
  if (!verdict.ok) {
    log.debug('member.add not proposed', { peer, reason: verdict.reason }); // usually: already a member (another member was first), or invite already used
    return;
  }
  inFlight.add(peer);
  try {
    const r = await ctx.o.consensus.submit(ops, { timeoutMs: AUTO_SUBMIT_TIMEOUT_MS });
    log.info('member admitted by consensus', { peer, name, height: r.height });
  } catch (e) {
    if (e instanceof ConsensusDriverError && (e.code === 'ERR_PATTERN_REJECTED' || e.code === 'ERR_CONSENSUS_STOPPED')) log.debug('member.add not committed', { peer, code: e.code, err: e.message });
    else if (e instanceof ConsensusDriverError && e.code === 'ERR_SUBMIT_TIMEOUT') log.info('member.add not committed yet; will retry on the next claim exchange', { peer });
    else log.warn('member.add submit failed', { peer, err: e });
  } finally {
    inFlight.delete(peer);
  }
}

/** An operator's approval (any mode): submit member.add for `peer`, with its claim's invite when one is known, and wait for the commit. */
async function approve(ctx: AdmissionCtx, peer: string, a: { timeoutMs: number; signal?: AbortSignal }): Promise<{ receipt: CommitReceipt; name: string; hadClaim: boolean }> {
  const publicKey = publicKeyOfPeerId(peer, 'peer');
  if (isDecidedMember(ctx, toHex(publicKey))) throw new RuntimeError('ERR_ALREADY_MEMBER', `${peer} is already a member (or its member.add is decided)`, { peer });
  const join = ctx.pendingJoins.get(peer);
  const claim = ctx.claimsOf.get(peer);
  const name = join?.name ?? claim?.name ?? peer.slice(-8);
  // The claim's invite goes with the add: the registry refuses it if another join used it
  // (ERR_PATTERN_REJECTED, "invite already used"). No claim known: an operator's add, as before.
  const inviteKey = join?.inviteKey ?? claim?.inviteKey;
  const add: PatternOp = { kind: 'member.add', publicKey, power: 1, name, ...(inviteKey !== undefined ? { invite: digestOf(inviteKey) } : {}) };
  const receipt = await ctx.o.consensus.submit([add], { timeoutMs: a.timeoutMs, ...(a.signal !== undefined ? { signal: a.signal } : {}) });
  await dropPending(ctx, peer);
  return { receipt, name, hadClaim: join !== undefined };
}
