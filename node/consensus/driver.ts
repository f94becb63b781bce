/**
 * The consensus driver: carries out the pure Tendermint core's effects (consensus/core.ts)
 * over libp2p gossip, a durable signer file and the LevelDB decided log.
 *
 * One serialized event loop per node feeds `step()`; the effects of a step are carried out in
 * order, and durability comes first: the signer record (with this node's own signed messages of
 * the height) is written before any broadcast of that step, and a decision is written to the log
 * (sync) and applied to the registry before anything else happens.
 *
 * Idle clusters do not spin (CometBFT's `create_empty_blocks = false`): after deciding H, H+1
 * starts only when there is work: this node's pool holds ops, a message for H+1 arrives, or the
 * node restarts inside a height it had signed at.
 */
import { domain } from '../../crypto/blake3.js';
import { expectRecord } from '../../crypto/cbor.js';
import { ed25519 } from '../../crypto/ed25519.js';
import { peerIdFromPublicKey } from '../../crypto/keys.js';
import { decodeMessage, encodeMessage } from '../../consensus/codec.js';
import { createConsensusState, DEFAULT_LIMITS, LAN_TIMEOUTS, proofOfLockMessages, roundVotesFor, step, valueIdOf, verifyCommitCertificate } from '../../consensus/core.js';
import { toHex } from '../../base/hex.js';
import { decodeBatch, encodeBatch, MAX_BATCH_BYTES, MAX_BATCH_OPS, type PatternOp } from '../../consensus/patterns.js';
import { applyBatch, genesisRegistry, registryHash, validateBatch, validatorSetAt, validityFor, type Registry } from '../../consensus/registry.js';
import type { CommitCertificate, ConsensusMessage, ConsensusState, Effect, Event, Evidence, SignerRecord, VerifyFn } from '../../consensus/types.js';
import type { Logger } from '../log.js';
import type { Host } from '../p2p/host.js';
import type { Consensus, ConsensusStatus, CommitReceipt, DecidedEntry, HeightCause, OpenConsensusOptions } from './api.js';
import { ConsensusDriverError } from './api.js';
import type { AuditLine } from './audit-log.js';
import { decodeDecision, type StoredDecision } from './decided-log.js';
import { Mempool, opId } from './mempool.js';
import { RegistryMembers } from './members.js';
import { MAX_OWN_MESSAGES, ownMessages } from './signer-file.js';
import { libp2pTransport } from './bind-libp2p.js';
import { nodePorts } from './bind-node.js';
import type { AuditSink, ConsensusTransport, Sealed, DecidedStore, DriverPorts, InboundEnvelope, SignerStore, TestOnlyHooks, TimerHandle, Timers } from './ports.js';
import {
  decodeSyncResponse,
  encodeSyncResponse,
  MAX_SYNC_HEIGHTS,
  MAX_SYNC_MESSAGES,
  SYNC_RESPONSE_BUDGET_BYTES,
  SYNC_TIMEOUT_MS_DEFAULT,
  type SyncRequest,
  type SyncResponse,
} from './sync.js';

// ---------------------------------------------------------------------------------------------
// Bounds and defaults (each with its reason)

/**
 * Received consensus messages waiting for the event loop: the gossip layer's own queue bound
 * (4,096 ~ 100 validators x 4 message types x 10 rounds). When full the NEWEST is dropped
 * (counted): the loop needs the head first, and catch-up refetches what was lost. Internal
 * events (timeouts, proposals to make, decisions) are never dropped: a handful at a time.
 */
export const EVENT_QUEUE_MAX = 4096;
/** Evidence kept for `evidence()` / status: the core's own bound (64 names every faulty node of a lab). */
export const EVIDENCE_MAX = DEFAULT_LIMITS.maxEvidence;
/** Peer statuses remembered: the member bound of the p2p layer (1,024). */
const PEER_STATUS_MAX = 1024;
/** Verified (key, digest, signature) triples cached: a few seconds of votes at 100 validators. */
const VERIFY_CACHE_MAX = 16_384;
/** Decided listeners and submit waiters: each waiter is one pending `submit` call. */
const WAITERS_MAX = 4096;
/** Status gossip period: as CometBFT's peer-state gossip, once a second is enough to notice a lag. */
export const STATUS_INTERVAL_MS_DEFAULT = 1_000;
/** A `submit` without its own timeout waits this long (a few dozen rounds on a LAN). */
export const SUBMIT_TIMEOUT_MS_DEFAULT = 30_000;
/**
 * Decided op ids remembered to drop late gossip copies: 65,536 is two minutes at the 500/s
 * target, far longer than gossip takes to deliver a copy.
 */
const RECENTLY_DECIDED_MAX = 65_536;
/** Room for a batch's own framing beyond its ops' bytes when coalescing ops for gossip. */
const OPS_ENVELOPE_FRAMING_BYTES = 64;
/** Status ticks without progress before own messages are re-sent and the current votes fetched. */
const STUCK_TICKS = 2;
/** A peer's status older than this many periods no longer counts (the peer may be gone). */
const STATUS_STALE_TICKS = 10;
/** Status ticks between re-gossips of this node's own still-pending ops. */
const REGOSSIP_TICKS = 5;
/** Status ticks without hearing any peer status before a connected peer is asked directly. */
const QUIET_TICKS = 3;

/** Envelope kinds this driver puts on the consensus topic. */
export const KIND_PROPOSAL = 'proposal';
export const KIND_VOTE = 'vote';
export const KIND_STATUS = 'status';
export const KIND_OPS = 'ops';

export interface DriverCounters {
  /** Consensus envelopes whose body did not decode, or whose kind and body disagree. */
  badMessages: number;
  /** Envelopes from a signer that is not a member (the gossip layer rejects them first). */
  nonMember: number;
  /** Messages for heights beyond the next one (ignored; they trigger catch-up). */
  farAhead: number;
  /** Messages for heights already decided (ignored). */
  stale: number;
  /** Proposals or votes whose inner signer is not a validator of that height (relayed by a member). */
  nonValidator: number;
  /** Proposals whose value exceeds the batch bound (never verified or validated). */
  oversize: number;
  /** Signatures that did not verify (forged or corrupted votes, proposals, certificate precommits). */
  badSignatures: number;
  /** Received messages dropped because the event queue was full. */
  queueDropped: number;
  /** Pending-op gossip: ops received and accepted into the pool / rejected as malformed / dropped as the pool was full. */
  opsReceived: number;
  opsRejected: number;
  opsDropped: number;
  /** Status messages that did not parse. */
  badStatus: number;
  /** Catch-up: requests served, malformed requests, responses that failed to decode, certificates rejected. */
  syncServed: number;
  syncBadRequests: number;
  syncBadResponses: number;
  syncFailures: number;
  certificatesRejected: number;
  /** Peer statuses whose registry hash differs from ours at the same decided height (divergence). */
  hashMismatch: number;
  /** Broadcasts that failed (host stopping, oversize). */
  broadcastFailures: number;
  /**
   * Proposals, votes and ops sent point to point (direct channels) / also published by gossip
   * because a validator of the height had no open direct channel (not connected to us, channel
   * opening, or a node without the protocol): a steadily growing fallback count means a partly
   * connected cluster.
   */
  directSent: number;
  gossipFallbacks: number;
  /** Decided heights the log could not store at the first attempt (disk full, I/O error); retried. */
  storeFailures: number;
  /** Steps whose handling threw (a bug; logged, never crashes the node). */
  internalErrors: number;
}

export type { TestOnlyHooks } from './ports.js';

export interface DriverOptions extends OpenConsensusOptions {
  /** Status gossip and catch-up check period. @default 1_000 */
  readonly statusIntervalMs?: number;
  /** Catch-up exchange timeout. @default 5_000 */
  readonly syncTimeoutMs?: number;
  /** Default `submit` timeout. @default 30_000 */
  readonly submitTimeoutMs?: number;
  /** TEST ONLY (Byzantine wrappers). */
  readonly testOnly?: TestOnlyHooks;
}

export interface DriverConsensus extends Consensus {
  counters(): DriverCounters;
}

type Job =
  | { readonly kind: 'core'; readonly event: Event }
  | { readonly kind: 'message'; readonly m: ConsensusMessage; readonly from: string }
  | { readonly kind: 'catchup'; readonly r: SyncResponse; readonly from: string; readonly done: () => void }
  | { readonly kind: 'kick' }
  | { readonly kind: 'store-retry' };

interface Waiter {
  readonly remaining: Set<string>;
  readonly resolve: (r: CommitReceipt) => void;
  readonly reject: (e: Error) => void;
  readonly cleanup: () => void;
}

interface PeerStatus {
  readonly height: number;
  readonly round: number;
  readonly decided: number;
  readonly hashHex: string;
  readonly atMs: number;
}

function voteKind(m: ConsensusMessage): AuditLine['type'] {
  return m.type === 'proposal' ? 'proposal' : m.vote.vote.type;
}
function msgHeight(m: ConsensusMessage): number {
  return m.type === 'proposal' ? m.proposal.proposal.height : m.vote.vote.height;
}
function msgRound(m: ConsensusMessage): number {
  return m.type === 'proposal' ? m.proposal.proposal.round : m.vote.vote.round;
}
function msgSigner(m: ConsensusMessage): Uint8Array {
  return m.type === 'proposal' ? m.proposal.signer : m.vote.signer;
}
function msgKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * Wire bytes of a message, encoded once per message object: the own-message log, the broadcast
 * and catch-up answers all need them (weak keys: nothing is kept alive by the memo).
 */
const wireMemo = new WeakMap<ConsensusMessage, Uint8Array>();
function wireBytes(m: ConsensusMessage): Uint8Array {
  let b = wireMemo.get(m);
  if (b === undefined) {
    b = encodeMessage(m);
    wireMemo.set(m, b);
  }
  return b;
}

/** The empty batch: a proposer with nothing pending proposes it once the height has started. */
export const EMPTY_VALUE = encodeBatch([]);

/** Decode a decided value: the empty batch or a pattern batch. */
function opsOf(value: Uint8Array): PatternOp[] {
  try {
    return decodeBatch(value);
  } catch {
    return []; // never reached for a decided value (it passed the validity predicate)
  }
}

export async function openConsensus(o: DriverOptions): Promise<DriverConsensus> {
  const syncTimeoutMs = o.syncTimeoutMs ?? SYNC_TIMEOUT_MS_DEFAULT;
  const driver = new Driver(o, nodePorts(o), (host) => libp2pTransport({ host, identity: o.identity, cluster: o.cluster, now: o.now, syncTimeoutMs }));
  await driver.open();
  return driver;
}

/**
 * The driver over its ports (ports.ts): production (openConsensus) binds libp2p, LevelDB, the
 * signer file and real timers; simnet binds its deterministic engine and crashable stores.
 */
export function createDriver(o: Omit<DriverOptions, 'store' | 'stateDir' | 'auditLogPath'>, ports: DriverPorts): Driver {
  return new Driver(o, ports, null);
}

export class Driver implements DriverConsensus {
  readonly members: RegistryMembers;
  private readonly log: Logger;
  private readonly cluster: string;
  private readonly now: () => number;
  private readonly signerFile: SignerStore;
  private readonly decidedLog: DecidedStore;
  private readonly audit: AuditSink | null;
  private readonly t: Timers;
  private readonly pool = new Mempool(undefined, undefined, (id, reason) => this.rejectWaiters(id, reason));
  private readonly statusIntervalMs: number;
  private readonly syncTimeoutMs: number;
  private readonly submitTimeoutMs: number;
  private readonly selfHex: string;
  private readonly c: DriverCounters = {
    badMessages: 0,
    nonMember: 0,
    farAhead: 0,
    stale: 0,
    nonValidator: 0,
    oversize: 0,
    badSignatures: 0,
    queueDropped: 0,
    opsReceived: 0,
    opsRejected: 0,
    opsDropped: 0,
    badStatus: 0,
    syncServed: 0,
    syncBadRequests: 0,
    syncBadResponses: 0,
    syncFailures: 0,
    certificatesRejected: 0,
    hashMismatch: 0,
    broadcastFailures: 0,
    directSent: 0,
    gossipFallbacks: 0,
    storeFailures: 0,
    internalErrors: 0,
  };

  private reg: Registry;
  private regHashHex: string;
  private state: ConsensusState;
  /** Own signed messages at `ownHeight` (durable in the signer file), wire bytes, oldest first. */
  private own: Uint8Array[] = [];
  private ownHeight = 0;
  private restartRecord: SignerRecord | null = null;
  private wireT: ConsensusTransport | null = null;
  private started = false;
  private stopped = false;
  private lastDecidedMs: number | null = null;
  /** What started the height the core runs (status().work.cause). */
  private heightCause: HeightCause | null = null;
  private caughtUpHeights = 0;
  private readonly evidenceList: Evidence[] = [];
  private readonly listeners = new Set<(e: DecidedEntry) => void>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private waiterCount = 0;
  private readonly verified = new Set<string>();
  private readonly peerStatus = new Map<string, PeerStatus>();
  /** Own submitted ops waiting to be gossiped (flushed on the next turn; bounded by the pool). */
  private gossipOps: { id: string; op: PatternOp; bytes: number }[] = [];
  private gossipFlushScheduled = false;
  /** Op id -> height that decided it (LRU, RECENTLY_DECIDED_MAX): late gossip copies are not new work. */
  private readonly recentlyDecided = new Map<string, number>();

  // event loop
  /**
   * Internal jobs: bounded by construction (at most one queued kick, one catch-up response, the
   * value to propose, and the few live timeouts of the current height), so never dropped.
   */
  private readonly internal: Job[] = [];
  private kickQueued = false;
  private stoppedResolve: () => void = () => undefined;
  /** Settles when `stop()` is called (waiters on queued jobs give up then: the queues are dropped). */
  private readonly stoppedPromise = new Promise<void>((resolve) => {
    this.stoppedResolve = resolve;
  });
  private readonly external: Job[] = [];
  private pumping: Promise<void> | null = null;
  private readonly timers = new Set<TimerHandle>();
  private statusTimer: TimerHandle | null = null;
  private unsubscribe: (() => void) | null = null;
  // catch-up / liveness bookkeeping
  private syncing = false;
  private lastProgressMark = '';
  private ticksWithoutProgress = 0;
  private ticksWithoutStatus = 0;
  private peerCursor = 0;
  private ticksSinceRegossip = 0;
  private polRelayedRound = 0;
  /**
   * A decision the core made that the log could not store (disk full, I/O error). Nothing may
   * act on it before it is durable, and the core will not decide that height again: the write
   * is retried every status period (and by catch-up, when a peer has it) until it succeeds.
   */
  private unstored: { height: number; round: number; value: Uint8Array; certificate: CommitCertificate; error: string; attempts: number; sinceMs: number } | null = null;

  constructor(
    private readonly o: Omit<DriverOptions, 'store' | 'stateDir' | 'auditLogPath'>,
    private readonly ports: DriverPorts,
    private readonly bindHost: ((host: Host) => ConsensusTransport) | null,
  ) {
    this.log = o.logger.child('consensus');
    this.cluster = o.cluster;
    this.now = ports.now;
    this.t = ports.timers;
    this.signerFile = ports.signer;
    this.decidedLog = ports.decided;
    this.audit = ports.audit;
    this.statusIntervalMs = o.statusIntervalMs ?? STATUS_INTERVAL_MS_DEFAULT;
    this.syncTimeoutMs = o.syncTimeoutMs ?? SYNC_TIMEOUT_MS_DEFAULT;
    this.submitTimeoutMs = o.submitTimeoutMs ?? SUBMIT_TIMEOUT_MS_DEFAULT;
    this.selfHex = toHex(o.identity.publicKey);
    this.reg = genesisRegistry(o.genesis);
    this.regHashHex = toHex(registryHash(this.reg));
    this.members = new RegistryMembers(this.reg);
    this.state = this.newCore(null);
  }

  private newCore(record: SignerRecord | null): ConsensusState {
    const identity = this.o.identity;
    const verify: VerifyFn = (pk, d, s) => this.verify(pk, d, s);
    return createConsensusState(
      {
        cluster: this.cluster,
        signer: { publicKey: identity.publicKey, sign: this.ports.sign ?? ((d) => ed25519.sign(identity.secretKey, d)) },
        verify,
        validateValue: (h, v) => this.validateValue(h, v),
        timeouts: this.o.timeouts ?? LAN_TIMEOUTS,
        ...DEFAULT_LIMITS,
      },
      record,
    );
  }

  private readonly validityOf = validityFor((h) => (h === this.reg.height + 1 ? this.reg : null));
  private validateValue(height: number, value: Uint8Array): boolean {
    return this.validityOf(height, value);
  }

  private verify(pk: Uint8Array, digest: Uint8Array, sig: Uint8Array): boolean {
    const key = msgKey(sig) + msgKey(digest) + msgKey(pk);
    if (this.verified.has(key)) return true;
    const ok = this.ports.verify !== undefined ? this.ports.verify(pk, digest, sig) : ed25519.verify(pk, digest, sig);
    if (!ok) {
      this.c.badSignatures++;
      return false;
    }
    if (this.verified.size >= VERIFY_CACHE_MAX) {
      const oldest = this.verified.values().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.add(key);
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Open: replay the decided log, load the signer file

  async open(): Promise<void> {
    await Promise.all(['fednode/v1/vote', 'fednode/v1/proposal'].map((c) => domain(c).ready));
    await this.signerFile.open();
    const path = this.ports.decidedWhere;
    let reg = this.reg;
    let expected = 1;
    let last: StoredDecision | null = null;
    for await (const { height, bytes } of this.decidedLog.raw(1, Number.MAX_SAFE_INTEGER)) {
      const bad = (reason: string): ConsensusDriverError =>
        new ConsensusDriverError(
          'ERR_CONSENSUS_STATE_CORRUPT',
          `decided log in ${path} is damaged at height ${height}: ${reason}. The log is never rewritten silently. To fix: restore the data directory from a backup, or remove this node's store and let it catch up from the cluster (it refetches and re-verifies every height).`,
          { path, height, reason },
        );
      if (height !== expected) throw bad(`expected height ${expected} next`);
      const dec = decodeDecision(height, bytes);
      if (!dec.ok) throw bad(dec.reason);
      const d = dec.d;
      if (valueIdOf(d.value) !== d.certificate.valueId) throw bad('value does not match its certificate');
      try {
        reg = applyBatch(reg, height, d.value);
      } catch (err) {
        throw bad(`batch does not apply: ${(err as Error).message}`);
      }
      const h = registryHash(reg);
      if (toHex(h) !== toHex(d.registryHash)) throw bad('registry hash after applying differs from the stored one');
      expected++;
      last = d;
    }
    this.reg = reg;
    this.regHashHex = toHex(registryHash(reg));
    this.members.update(reg);
    if (last !== null) this.lastDecidedMs = last.decidedMs;

    const signer = await this.signerFile.load();
    if (signer !== null) {
      this.restartRecord = signer.record;
      this.state = this.newCore(signer.record);
      if (signer.record.height > this.reg.height) {
        this.own = [...signer.own];
        this.ownHeight = signer.record.height;
      }
    }
    if (this.audit !== null) await this.audit.open();
    this.log.info('consensus opened', { decidedHeight: this.reg.height, registryHash: this.regHashHex, signerHeight: signer?.record.height ?? 0 });
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  async start(host: Host): Promise<void> {
    if (this.bindHost === null) throw new ConsensusDriverError('ERR_CONSENSUS_STOPPED', 'this driver was built over its own transport: start it with startOn(transport)');
    await this.startOn(this.bindHost(host));
  }

  /** Start over a transport (production: libp2p via start(host); simnet: its own). */
  async startOn(wire: ConsensusTransport): Promise<void> {
    if (this.stopped) throw new ConsensusDriverError('ERR_CONSENSUS_STOPPED', 'consensus driver is stopped');
    if (this.started) return;
    this.started = true;
    this.wireT = wire;
    this.unsubscribe = wire.onEnvelope((e) => this.onGossip(e));
    await wire.serveSync((req) => this.answer(req), (ok, remote) => this.served(ok, remote));
    this.statusTimer = this.t.every(this.statusIntervalMs, () => {
      try {
        this.tick();
      } catch (err) {
        // a bug here must not take the node down (a timer's exception would end the process)
        this.c.internalErrors++;
        this.log.error('consensus status tick failed', { err: err instanceof Error ? err.message : String(err) });
      }
    });
    // Resume a height this node had signed at before a restart (its own messages are re-sent).
    if (this.restartRecord !== null && this.restartRecord.height === this.reg.height + 1) this.kick();
    else if (this.hasWork()) this.kick();
    this.log.info('consensus started', { height: this.reg.height + 1, peerId: this.o.identity.peerId });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stoppedResolve();
    this.statusTimer?.cancel();
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    this.unsubscribe?.();
    if (this.wireT !== null) await this.wireT.close().catch(() => undefined);
    this.internal.length = 0;
    this.external.length = 0;
    if (this.pumping !== null) await this.pumping; // finish the step in progress (its disk writes)
    await this.signerFile.close();
    await this.audit?.close();
    const err = new ConsensusDriverError('ERR_CONSENSUS_STOPPED', 'consensus driver stopped before the ops were decided');
    for (const set of this.waiters.values()) for (const w of set) w.reject(err);
    this.waiters.clear();
  }

  // -------------------------------------------------------------------------------------------
  // The event loop

  /** Queue a start of the next height (at most one queued: the internal queue stays small). */
  private kick(): void {
    if (this.kickQueued) return;
    this.kickQueued = true;
    this.push({ kind: 'kick' }, true);
  }

  private push(job: Job, internal: boolean): void {
    if (this.stopped) return;
    if (internal) this.internal.push(job);
    else if (this.external.length >= EVENT_QUEUE_MAX) {
      this.c.queueDropped++;
      return;
    } else this.external.push(job);
    if (this.pumping === null) this.pumping = this.pump();
  }

  private async pump(): Promise<void> {
    await Promise.resolve(); // let the caller finish before the first job runs
    try {
      for (;;) {
        if (this.stopped) return;
        const job = this.internal.shift() ?? this.external.shift();
        if (job === undefined) return;
        try {
          await this.handle(job);
        } catch (err) {
          this.c.internalErrors++;
          this.log.error('consensus step failed', { err: err instanceof Error ? err.message : String(err), job: job.kind });
        }
      }
    } finally {
      this.pumping = null;
      if (!this.stopped && (this.internal.length > 0 || this.external.length > 0)) this.pumping = this.pump();
    }
  }

  private async handle(job: Job): Promise<void> {
    switch (job.kind) {
      case 'core':
        return this.feed(job.event);
      case 'kick':
        this.kickQueued = false;
        return this.startNextIfIdle(this.kickCause());
      case 'store-retry':
        return this.retryStore();
      case 'message':
        return this.onMessage(job.m);
      case 'catchup':
        try {
          return await this.onCatchup(job.r, job.from);
        } finally {
          job.done();
        }
    }
  }

  /** The height being decided: one past the last decided height. */
  private get current(): number {
    return this.reg.height + 1;
  }

  /** Is the core running the current height (not idle after the last decision)? */
  private get running(): boolean {
    return this.state.height === this.current;
  }

  private async startNextIfIdle(cause: HeightCause): Promise<void> {
    if (this.running) return;
    const h = this.current;
    this.heightCause = cause;
    await this.feed({ type: 'start-height', height: h, validators: validatorSetAt(this.reg, h) });
    this.polRelayedRound = 0;
    // After a restart inside this height: our own messages count again and are re-sent.
    if (this.ownHeight === h && this.own.length > 0) {
      const mine = ownMessages({ record: this.state.signerRecord, own: this.own });
      await this.auditLines(mine);
      for (const m of mine) await this.feed(m.type === 'vote' ? { type: 'vote', vote: m.vote } : { type: 'proposal', proposal: m.proposal });
      for (const m of mine) this.broadcast(m);
    }
  }

  private async feed(event: Event): Promise<void> {
    const r = step(this.state, event);
    this.state = r.state;
    await this.carryOut(r.effects);
    // Entering a round above 0: relay the proof-of-lock at once (the prevotes that justify
    // our valid value and the current proposal's validRound), as CometBFT's vote gossip does.
    if (this.running && this.state.round > 0 && this.state.round !== this.polRelayedRound) {
      this.polRelayedRound = this.state.round;
      for (const m of proofOfLockMessages(this.state)) this.broadcast(m);
    }
  }

  private async carryOut(effects: readonly Effect[]): Promise<void> {
    // Durability first: the newest signer record of this step together with every message
    // this step signed, written (tmp, fsync, rename, fsync dir) before any of them leaves.
    let record: SignerRecord | null = null;
    for (const e of effects) if (e.type === 'persist') record = e.record;
    if (record !== null) {
      if (record.height !== this.ownHeight) {
        this.own = [];
        this.ownHeight = record.height;
      }
      const fresh: ConsensusMessage[] = [];
      const known = new Set(this.own.map(msgKey));
      for (const e of effects) {
        if (e.type !== 'broadcast' || msgHeight(e.message) !== record.height) continue;
        const bytes = wireBytes(e.message);
        if (known.has(msgKey(bytes))) continue;
        known.add(msgKey(bytes));
        this.own.push(bytes);
        fresh.push(e.message);
      }
      if (this.own.length > MAX_OWN_MESSAGES) this.own = this.own.slice(this.own.length - MAX_OWN_MESSAGES);
      await this.signerFile.write({ record, own: this.own });
      await this.auditLines(fresh);
    }
    for (const e of effects) {
      switch (e.type) {
        case 'persist':
          break; // done above
        case 'broadcast':
          this.broadcast(e.message);
          break;
        case 'schedule-timeout': {
          const t = this.t.after(e.durationMs, () => {
            this.timers.delete(t);
            this.push({ kind: 'core', event: { type: 'timeout', kind: e.kind, height: e.height, round: e.round } }, true);
          });
          this.timers.add(t);
          break;
        }
        case 'request-value': {
          const value = this.pool.build(this.reg, e.height) ?? EMPTY_VALUE;
          this.push({ kind: 'core', event: { type: 'value-to-propose', height: e.height, round: e.round, value } }, true);
          break;
        }
        case 'decide':
          try {
            await this.decide(e.height, e.round, e.value, e.certificate);
          } catch (err) {
            this.storeFailed({ height: e.height, round: e.round, value: e.value, certificate: e.certificate }, err);
          }
          break;
        case 'evidence':
          this.evidenceList.push(e.evidence);
          if (this.evidenceList.length > EVIDENCE_MAX) this.evidenceList.shift(); // bound: oldest dropped
          this.log.warn('equivocation detected', { validator: peerIdFromPublicKey(e.evidence.first.signer), height: e.evidence.height, round: e.evidence.round, voteType: e.evidence.voteType });
          break;
      }
    }
  }

  private async auditLines(ms: readonly ConsensusMessage[]): Promise<void> {
    if (this.audit === null || ms.length === 0) return;
    await this.audit.append(
      ms.map((m) => ({
        height: msgHeight(m),
        round: msgRound(m),
        type: voteKind(m),
        valueId: m.type === 'proposal' ? valueIdOf(m.proposal.proposal.value) : m.vote.vote.valueId,
      })),
    );
  }

  /** Is this node a validator of the height its core runs? Only validators' messages are sent. */
  private isValidatorNow(): boolean {
    const set = this.state.validators;
    return set !== null && set.validators.some((v) => toHex(v.publicKey) === this.selfHex);
  }

  private broadcast(m: ConsensusMessage): void {
    if (this.wireT === null || this.stopped) return;
    const own = toHex(msgSigner(m)) === this.selfHex;
    if (own && !this.isValidatorNow()) return;
    this.publish(m.type === 'proposal' ? KIND_PROPOSAL : KIND_VOTE, wireBytes(m));
    if (own) for (const extra of this.o.testOnly?.extraBroadcasts?.(m) ?? []) this.publish(extra.type === 'proposal' ? KIND_PROPOSAL : KIND_VOTE, encodeMessage(extra));
  }

  private publish(kind: string, body: unknown): void {
    const wire = this.wireT;
    if (wire === null || this.stopped) return;
    let sealed: Sealed;
    try {
      sealed = wire.seal(kind, body);
    } catch (err) {
      this.c.broadcastFailures++;
      this.log.warn('cannot build envelope', { kind, err: (err as Error).message });
      return;
    }
    // Proposals, votes and ops go point to point to every other member; gossip (flood and
    // relay) only when a validator could not be reached so. Status stays on gossip: it is
    // how lagging or partly connected nodes are noticed.
    if (kind !== KIND_STATUS && this.sentDirect(wire, sealed)) return;
    wire.publish(sealed).catch((err: unknown) => {
      this.c.broadcastFailures++;
      this.log.debug('publish failed', { kind, err: err instanceof Error ? err.message : String(err) });
    });
  }

  /** Send on the direct channels; true when every other validator of the current height got it. */
  private sentDirect(wire: ConsensusTransport, m: Sealed): boolean {
    const { others, validators } = this.directPeers();
    if (others.length === 0) return validators.size === 0;
    let r: { readonly sent: readonly string[]; readonly missing: readonly string[] };
    try {
      r = wire.sendDirect(m, others);
    } catch (err) {
      this.log.debug('direct send failed', { err: err instanceof Error ? err.message : String(err) });
      return false;
    }
    this.c.directSent += r.sent.length;
    if (r.missing.some((p) => validators.has(p))) {
      this.c.gossipFallbacks++;
      return false;
    }
    return true;
  }

  private directPeersMemo: { reg: Registry; others: string[]; validators: Set<string> } | null = null;
  /** Other members (peer ids) and the other validators of the current height, memoised per registry. */
  private directPeers(): { others: string[]; validators: Set<string> } {
    const m = this.directPeersMemo;
    if (m !== null && m.reg === this.reg) return m;
    const self = this.o.identity.peerId;
    const others = this.members.members().filter((p) => p !== self);
    const validators = new Set(validatorSetAt(this.reg, this.current).validators.map((v) => peerIdFromPublicKey(v.publicKey)).filter((p) => p !== self));
    this.directPeersMemo = { reg: this.reg, others, validators };
    return this.directPeersMemo;
  }

  // -------------------------------------------------------------------------------------------
  // Decisions

  private async decide(height: number, round: number, value: Uint8Array, certificate: CommitCertificate): Promise<void> {
    if (height !== this.current) return;
    const before = this.reg;
    // Pure first (a batch that does not apply is refused before anything is written).
    const next = applyBatch(before, height, value);
    const hash = registryHash(next);
    const decidedMs = Math.floor(this.now());
    await this.decidedLog.put({ height, round, value, certificate, registryHash: hash, decidedMs });
    this.applied({ height, round, value, certificate, before, next, hash, decidedMs });
  }

  private storeFailed(d: { height: number; round: number; value: Uint8Array; certificate: CommitCertificate }, err: unknown): void {
    const error = err instanceof Error ? err.message : String(err);
    const prev = this.unstored;
    this.unstored = { ...d, error, attempts: (prev?.height === d.height ? prev.attempts : 0) + 1, sinceMs: prev?.height === d.height ? prev.sinceMs : this.now() };
    this.c.storeFailures++;
    this.log.error('cannot store decided height; consensus waits and retries every status period', { height: d.height, attempts: this.unstored.attempts, err: error });
  }

  /** Retry storing a decision that failed (status tick). Catch-up may have stored it meanwhile. */
  private async retryStore(): Promise<void> {
    const u = this.unstored;
    if (u === null) return;
    if (u.height !== this.current) {
      this.unstored = null; // decided and stored since (catch-up)
      return;
    }
    try {
      await this.decide(u.height, u.round, u.value, u.certificate);
      this.unstored = null;
      this.log.info('decided height stored after retry', { height: u.height, attempts: u.attempts });
    } catch (err) {
      this.storeFailed(u, err);
    }
  }

  /** In-memory consequences of a decision already durable in the log. */
  private applied(d: { height: number; round: number; value: Uint8Array; certificate: CommitCertificate; before: Registry; next: Registry; hash: Uint8Array; decidedMs: number }): void {
    const { height, round, value, certificate, before, next } = d;
    this.reg = next;
    this.regHashHex = toHex(d.hash);
    this.lastDecidedMs = d.decidedMs;
    this.members.update(next);
    const ops = opsOf(value);
    const ids = ops.map((op) => opId(op).id);
    for (const id of ids) {
      this.pool.remove(id);
      this.recentlyDecided.delete(id);
      this.recentlyDecided.set(id, height);
    }
    while (this.recentlyDecided.size > RECENTLY_DECIDED_MAX) {
      const oldest = this.recentlyDecided.keys().next().value;
      if (oldest === undefined) break;
      this.recentlyDecided.delete(oldest);
    }
    const entry: DecidedEntry = { height, round, valueId: certificate.valueId, ops, certificate, registryHash: this.regHashHex, decidedMs: d.decidedMs };
    this.resolveWaiters(ids, entry, before);
    for (const l of [...this.listeners]) {
      try {
        l(entry);
      } catch (err) {
        this.log.warn('decided listener failed', { err: err instanceof Error ? err.message : String(err) });
      }
    }
    for (const t of this.timers) t.cancel(); // timers of the decided height are moot
    this.timers.clear();
    if (this.pool.size > 0) this.pool.pruneInvalid(next, height + 1);
    if (this.hasWork()) this.kick();
  }

  /**
   * Why the next height should start now, or null when there is nothing to do (an idle cluster
   * decides nothing). Membership changes decided at H come into force at H+2: while any is
   * pending, the (possibly empty) heights that bring it into force are work, and no more.
   */
  private workReason(): 'ops' | 'membership' | null {
    if (this.pool.size > 0) return 'ops';
    if (this.reg.pending.length > 0) return 'membership';
    return null;
  }

  private hasWork(): boolean {
    return this.workReason() !== null;
  }

  /** The cause of a height a kick starts: a restart inside it, else the work there is. */
  private kickCause(): HeightCause {
    if (this.ownHeight === this.current && this.own.length > 0) return 'resume';
    return this.workReason() ?? 'ops'; // a kick without work left (decided meanwhile by catch-up): submit's own kick
  }

  /** An op of a pending submit was evicted as invalid (the registry changed since it was checked). */
  private rejectWaiters(id: string, reason: string): void {
    const set = this.waiters.get(id);
    if (set === undefined) return;
    for (const w of [...set]) {
      w.cleanup();
      w.reject(new ConsensusDriverError('ERR_PATTERN_REJECTED', `ops rejected: one became invalid before being decided (${reason}); the others of this submit may still be decided`, { reason, index: null }));
    }
  }

  private resolveWaiters(ids: readonly string[], entry: DecidedEntry, before: Registry): void {
    const done = new Set<Waiter>();
    for (const id of ids) {
      const set = this.waiters.get(id);
      if (set === undefined) continue;
      for (const w of set) {
        w.remaining.delete(id);
        if (w.remaining.size === 0) done.add(w);
      }
    }
    if (done.size === 0) return;
    const set = validatorSetAt(before, entry.height);
    const signers = entry.certificate.precommits.map((p) => peerIdFromPublicKey(p.signer));
    const powers = new Map(set.validators.map((v) => [toHex(v.publicKey), v.power]));
    const power = entry.certificate.precommits.reduce((a, p) => a + (powers.get(toHex(p.signer)) ?? 0), 0);
    const receipt: CommitReceipt = { height: entry.height, round: entry.round, valueId: entry.valueId, registryHash: entry.registryHash, signers, power, totalPower: set.totalPower };
    for (const w of done) {
      w.cleanup();
      w.resolve(receipt);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Receiving

  private onGossip(env: InboundEnvelope): void {
    if (this.stopped) return;
    // [member] the gossip layer checked it already; membership may have changed since
    if (!this.members.isMember(env.signerId)) {
      this.c.nonMember++;
      return;
    }
    switch (env.kind) {
      case KIND_PROPOSAL:
      case KIND_VOTE: {
        const m = env.body instanceof Uint8Array ? decodeConsensusBody(env.body) : null;
        if (m === null || m.type !== env.kind) {
          this.c.badMessages++;
          return;
        }
        this.push({ kind: 'message', m, from: env.signerId }, false);
        return;
      }
      case KIND_STATUS:
        this.onStatus(env.signerId, env.body);
        return;
      case KIND_OPS:
        this.onOps(env.body);
        return;
      default:
        this.c.badMessages++;
    }
  }

  private async onMessage(m: ConsensusMessage): Promise<void> {
    // [size] a proposal's value is a batch (<= MAX_BATCH_BYTES); larger ones are never looked at
    if (m.type === 'proposal' && m.proposal.proposal.value.length > MAX_BATCH_BYTES) {
      this.c.oversize++;
      return;
    }
    // [height] only the current and the next height are worked on
    const h = msgHeight(m);
    if (h < this.current) {
      this.c.stale++;
      return;
    }
    if (h > this.current + 1) {
      this.c.farAhead++; // a peer is ahead: the status tick fetches the decided heights
      return;
    }
    // [validator] the inner signer must vote at that height (the set of h <= reg.height + 2 is known)
    if (!this.validatorKeysAt(h).has(toHex(msgSigner(m)))) {
      this.c.nonValidator++;
      return;
    }
    if (!this.running) await this.startNextIfIdle('peer'); // a message for the next height is work
    await this.feed(m.type === 'vote' ? { type: 'vote', vote: m.vote } : { type: 'proposal', proposal: m.proposal });
  }

  private validatorKeysMemo: { reg: Registry; height: number; keys: Set<string> } | null = null;
  /** Validator keys (hex) at `height` (<= reg.height + 2), memoised per registry and height. */
  private validatorKeysAt(height: number): Set<string> {
    const m = this.validatorKeysMemo;
    if (m !== null && m.reg === this.reg && m.height === height) return m.keys;
    const keys = new Set(validatorSetAt(this.reg, height).validators.map((v) => toHex(v.publicKey)));
    this.validatorKeysMemo = { reg: this.reg, height, keys };
    return keys;
  }

  private onStatus(from: string, body: unknown): void {
    const s = parseStatus(body, this.now());
    if (s === null) {
      this.c.badStatus++;
      return;
    }
    this.peerStatus.delete(from);
    if (this.peerStatus.size >= PEER_STATUS_MAX) {
      const oldest = this.peerStatus.keys().next().value;
      if (oldest !== undefined) this.peerStatus.delete(oldest);
    }
    this.peerStatus.set(from, s);
    this.ticksWithoutStatus = 0;
    // Same decided height, different registry hash: the two nodes' states diverged (a bug or a
    // corrupted store; > 1/3 faulty validators could also do it). Loud, never silent.
    if (s.decided === this.reg.height && s.decided > 0 && s.hashHex !== this.regHashHex) {
      this.c.hashMismatch++;
      this.log.error('registry hash differs from a peer at the same decided height', { peer: from, height: s.decided, ours: this.regHashHex, theirs: s.hashHex });
    }
    if (s.decided >= this.current) void this.catchUp(from);
  }

  private onOps(body: unknown): void {
    let ops: PatternOp[];
    let senderDecided: number;
    try {
      const r = expectRecord(body, ['decided', 'batch'], 'ops');
      const { decided, batch } = r;
      if (typeof decided !== 'number' || !Number.isSafeInteger(decided) || decided < 0) throw new TypeError('decided');
      if (!(batch instanceof Uint8Array) || batch.length > MAX_BATCH_BYTES) throw new TypeError('batch');
      ops = decodeBatch(batch);
      senderDecided = decided;
    } catch {
      this.c.opsRejected++;
      return;
    }
    let added = 0;
    for (const op of ops) {
      const { id, bytes } = opId(op);
      // Decided after the sender sent it: a late copy, not new work.
      const at = this.recentlyDecided.get(id);
      if (at !== undefined && at > senderDecided) continue;
      const r = this.pool.add(id, op, bytes);
      if (r === 'added') added++;
      else if (r === 'full') this.c.opsDropped++;
    }
    this.c.opsReceived += added;
    if (added > 0 && !this.running) this.kick();
  }

  // -------------------------------------------------------------------------------------------
  // Status and catch-up

  private tick(): void {
    if (this.stopped || this.wireT === null) return;
    if (this.unstored !== null) this.push({ kind: 'store-retry' }, true);
    const isMember = this.members.isMember(this.o.identity.peerId);
    if (isMember) {
      this.publish(KIND_STATUS, { height: this.current, round: this.running ? this.state.round : 0, decided: this.reg.height, hash: new Uint8Array(Buffer.from(this.regHashHex, 'hex')) });
    }
    // Behind a peer: fetch decided heights, from a directly connected peer when there is one
    // (a status can come from a member we only reach through the mesh), rotating on each tick.
    const freshMs = this.now() - STATUS_STALE_TICKS * this.statusIntervalMs;
    const ahead = [...this.peerStatus].filter(([, s]) => s.decided > this.reg.height && s.atMs >= freshMs).map(([p]) => p);
    if (ahead.length > 0) {
      const connected = new Set(this.wireT.connectedPeers());
      const direct = ahead.filter((p) => connected.has(p));
      const list = direct.length > 0 ? direct : ahead;
      this.peerCursor = (this.peerCursor + 1) % list.length;
      void this.catchUp(list[this.peerCursor]!);
      return;
    }
    // Own submitted ops still pending: gossip them again now and then (a copy may have been lost
    // before the mesh formed), and make sure pending work starts a height.
    if (++this.ticksSinceRegossip >= REGOSSIP_TICKS) {
      this.ticksSinceRegossip = 0;
      for (const id of this.waiters.keys()) {
        if (this.gossipOps.length >= MAX_BATCH_OPS) break;
        const e = this.pool.get(id);
        if (e !== undefined) this.gossipOps.push({ id, ...e });
      }
      if (this.gossipOps.length > 0 && !this.gossipFlushScheduled) {
        this.gossipFlushScheduled = true;
        this.t.soon(() => this.flushOpsGossip());
      }
    }
    if (!this.running && this.hasWork()) this.kick();
    const mark = `${this.current}/${this.running ? this.state.round : -1}/${this.running ? this.state.step : 'idle'}`;
    if (mark === this.lastProgressMark) this.ticksWithoutProgress++;
    else {
      this.lastProgressMark = mark;
      this.ticksWithoutProgress = 0;
    }
    this.ticksWithoutStatus++;
    if (this.running && this.ticksWithoutProgress >= STUCK_TICKS) {
      // Stuck in a height: re-send our own messages of this round (new envelopes: gossip
      // de-duplicates identical bytes) and fetch the votes a peer at this height has.
      this.ticksWithoutProgress = 0;
      for (const b of this.own) {
        const m = decodeConsensusBody(b);
        if (m !== null && msgHeight(m) === this.current && msgRound(m) === this.state.round) this.broadcast(m);
      }
      const peer = this.pickPeer((s) => s.height === this.current);
      if (peer !== null) void this.catchUp(peer);
    } else if (!isMember || this.ticksWithoutStatus >= QUIET_TICKS) {
      // Heard nobody (or not a member yet, e.g. a joining node): ask a connected peer.
      this.ticksWithoutStatus = 0;
      const peer = this.pickPeer(() => true);
      if (peer !== null) void this.catchUp(peer);
    }
  }

  /** A connected peer (round robin), preferring those whose status matches `want`. */
  private pickPeer(want: (s: PeerStatus) => boolean): string | null {
    const wire = this.wireT;
    if (wire === null) return null;
    const connected = wire.connectedPeers();
    if (connected.length === 0) return null;
    const preferred = connected.filter((p) => {
      const s = this.peerStatus.get(p);
      return s !== undefined && want(s);
    });
    const list = preferred.length > 0 ? preferred : connected;
    this.peerCursor = (this.peerCursor + 1) % list.length;
    return list[this.peerCursor] ?? null;
  }

  /** Fetch decided heights (and the current height's messages) from `peer` until level with it. */
  private async catchUp(peer: string): Promise<void> {
    const wire = this.wireT;
    if (this.syncing || wire === null || this.stopped) return;
    this.syncing = true;
    try {
      // Bounded: each round trip either advances by >= 1 height or stops.
      for (let trips = 0; trips < 1_000_000 && !this.stopped; trips++) {
        const from = this.current;
        let raw: Uint8Array;
        try {
          raw = await wire.requestSync(peer, { from, limit: MAX_SYNC_HEIGHTS }, this.syncTimeoutMs);
        } catch (err) {
          this.c.syncFailures++;
          this.log.debug('catch-up request failed', { peer, err: err instanceof Error ? err.message : String(err) });
          return;
        }
        const r = decodeSyncResponse(raw);
        if (r === null) {
          this.c.syncBadResponses++;
          return;
        }
        const s = this.peerStatus.get(peer);
        if (s !== undefined && s.decided < r.decided) this.peerStatus.set(peer, { ...s, decided: r.decided, height: r.height, hashHex: '' });
        // Wait for this response to be applied (not for the loop to drain: a busy cluster never drains).
        await Promise.race([new Promise<void>((done) => this.push({ kind: 'catchup', r, from: peer, done }, true)), this.stoppedPromise]);
        if (this.current <= from || r.decided < this.current || r.entries.length === 0) return;
      }
    } finally {
      this.syncing = false;
    }
  }

  private async onCatchup(r: SyncResponse, from: string): Promise<void> {
    // Verified heights behind the core are written in ONE synced batch, then applied: a node
    // 1,000 heights behind pays ~16 fsyncs, not 1,000 (each is still durable before it is used).
    const batch: Parameters<Driver['applied']>[0][] = [];
    let reg = this.reg;
    for (const e of r.entries) {
      if (this.stopped) return;
      const h = e.height;
      if (h < reg.height + 1) continue;
      if (h > reg.height + 1) break; // a gap: the next request fills it
      const cert = e.certificate;
      const verdict =
        cert.height !== h || valueIdOf(e.value) !== cert.valueId
          ? { ok: false as const, reason: 'certificate does not match the entry' }
          : verifyCommitCertificate(cert, validatorSetAt(reg, h), (pk, d, s) => this.verify(pk, d, s), this.cluster);
      if (!verdict.ok) {
        this.c.certificatesRejected++;
        this.log.warn('catch-up certificate rejected', { from, height: h, reason: verdict.reason });
        break;
      }
      // A decided value is judged by the decided rules (as applyBatch and the log replay do):
      // rules added after it was decided must not make a certified height unfetchable.
      if (!validateBatch(reg, h, e.value, { decided: true }).ok) {
        this.c.certificatesRejected++;
        this.log.error('catch-up: a certified batch does not apply (more than a third of the validators are faulty?)', { from, height: h });
        break;
      }
      if (batch.length === 0 && this.running && h === this.current) {
        // The height the core is deciding: through the core (it checks the certificate again).
        await this.feed({ type: 'decided', height: h, value: e.value, certificate: cert });
        if (this.current === h) return; // not applied (cannot happen after the checks above)
        this.caughtUpHeights++;
        reg = this.reg;
        continue;
      }
      const next = applyBatch(reg, h, e.value);
      batch.push({ height: h, round: cert.round, value: e.value, certificate: cert, before: reg, next, hash: registryHash(next), decidedMs: Math.floor(this.now()) });
      reg = next;
    }
    if (batch.length > 0) {
      await this.decidedLog.putMany(batch.map((d) => ({ height: d.height, round: d.round, value: d.value, certificate: d.certificate, registryHash: d.hash, decidedMs: d.decidedMs })));
      for (const d of batch) {
        this.applied(d);
        this.caughtUpHeights++;
      }
    }
    // Level with the peer and it is mid-height: take its messages of this height.
    if (r.decided < this.current && r.height === this.current) {
      for (const m of r.messages) if (msgHeight(m) === this.current) await this.onMessage(m);
    }
  }

  private served(ok: boolean, remote: string): void {
    if (ok) this.c.syncServed++;
    else {
      this.c.syncBadRequests++;
      this.log.debug('bad or failed sync request', { remote });
    }
  }

  private async answer(req: SyncRequest): Promise<Uint8Array> {
    const entries: { height: number; round: number; value: Uint8Array; certificate: Uint8Array }[] = [];
    let budget = SYNC_RESPONSE_BUDGET_BYTES;
    for await (const { height, bytes } of this.decidedLog.raw(req.from, req.limit)) {
      const d = decodeDecision(height, bytes);
      if (!d.ok) break;
      const size = d.d.value.length + d.d.certificateBytes.length;
      if (entries.length > 0 && size > budget) break;
      budget -= size;
      entries.push({ height, round: d.d.round, value: d.d.value, certificate: d.d.certificateBytes });
    }
    const messages: Uint8Array[] = [];
    if (req.from > this.reg.height && this.running) {
      for (const m of currentMessages(this.state)) {
        if (messages.length >= MAX_SYNC_MESSAGES) break;
        const b = wireBytes(m);
        if (b.length > budget) break;
        budget -= b.length;
        messages.push(b);
      }
    }
    return encodeSyncResponse({ decided: this.reg.height, height: this.running ? this.current : this.reg.height, entries, messages });
  }

  // -------------------------------------------------------------------------------------------
  // Public API

  submit(ops: readonly PatternOp[], opts?: { readonly timeoutMs?: number; readonly signal?: AbortSignal }): Promise<CommitReceipt> {
    if (this.stopped) return Promise.reject(new ConsensusDriverError('ERR_CONSENSUS_STOPPED', 'consensus driver is stopped'));
    if (!this.members.isMember(this.o.identity.peerId)) {
      return Promise.reject(new ConsensusDriverError('ERR_NOT_MEMBER', `this node (${this.o.identity.peerId}) is not a member of the cluster yet; its ops would be rejected`));
    }
    const verdict = this.check(ops);
    if (!verdict.ok) return Promise.reject(new ConsensusDriverError('ERR_PATTERN_REJECTED', `ops rejected: ${verdict.reason}`, { reason: verdict.reason, index: verdict.index }));
    const ids = ops.map(opId);
    const bytes = ids.reduce((a, x) => a + x.bytes, 0);
    const fresh = ids.filter((x) => !this.pool.has(x.id));
    if (!this.pool.fits(fresh.length, bytes) || this.waiterCount >= WAITERS_MAX) {
      return Promise.reject(new ConsensusDriverError('ERR_MEMPOOL_FULL', `pending-op pool is full (${this.pool.size} ops, ${this.pool.bytes} bytes); try again later`, { ops: this.pool.size, bytes: this.pool.bytes }));
    }
    const timeoutMs = opts?.timeoutMs ?? this.submitTimeoutMs;
    const promise = new Promise<CommitReceipt>((resolve, reject) => {
      const remaining = new Set(ids.map((x) => x.id));
      let timer: TimerHandle | null = null;
      const onAbort = (): void => {
        w.cleanup();
        reject(new ConsensusDriverError('ERR_SUBMIT_TIMEOUT', 'submit aborted before the ops were decided (they may still be decided later)', { aborted: true }));
      };
      const w: Waiter = {
        remaining,
        resolve,
        reject,
        cleanup: () => {
          timer?.cancel();
          opts?.signal?.removeEventListener('abort', onAbort);
          for (const id of ids) {
            const set = this.waiters.get(id.id);
            set?.delete(w);
            if (set?.size === 0) this.waiters.delete(id.id);
          }
          this.waiterCount--;
        },
      };
      for (const id of ids) {
        let set = this.waiters.get(id.id);
        if (set === undefined) {
          set = new Set();
          this.waiters.set(id.id, set);
        }
        set.add(w);
      }
      this.waiterCount++;
      timer = this.t.after(timeoutMs, () => {
        w.cleanup();
        reject(new ConsensusDriverError('ERR_SUBMIT_TIMEOUT', `ops not decided within ${timeoutMs} ms (they may still be decided later)`, { timeoutMs }));
      });
      if (opts?.signal !== undefined) {
        if (opts.signal.aborted) onAbort();
        else opts.signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    for (let i = 0; i < ops.length; i++) {
      if (this.pool.add(ids[i]!.id, ops[i]!, ids[i]!.bytes) === 'added') this.gossipOps.push({ id: ids[i]!.id, op: ops[i]!, bytes: ids[i]!.bytes });
    }
    if (!this.gossipFlushScheduled && this.gossipOps.length > 0) {
      // Submits of the same turn of the event loop travel in one envelope (one signature, one
      // gossip message per batch instead of one per submit: the throughput target needs it).
      this.gossipFlushScheduled = true;
      this.t.soon(() => this.flushOpsGossip());
    }
    if (!this.running) this.kick();
    return promise;
  }

  private flushOpsGossip(): void {
    try {
      this.flushOpsGossipUnsafe();
    } catch (err) {
      this.c.internalErrors++;
      this.log.error('ops gossip failed', { err: err instanceof Error ? err.message : String(err) });
    }
  }

  private flushOpsGossipUnsafe(): void {
    this.gossipFlushScheduled = false;
    const all = this.gossipOps;
    this.gossipOps = [];
    let chunk: PatternOp[] = [];
    let size = OPS_ENVELOPE_FRAMING_BYTES;
    const flush = (): void => {
      // `decided`: the sender's last decided height, so receivers can tell a late copy of an op
      // decided since (dropped) from a deliberate re-submission of an op decided before (kept).
      if (chunk.length > 0) this.publish(KIND_OPS, { decided: this.reg.height, batch: encodeBatch(chunk) });
      chunk = [];
      size = OPS_ENVELOPE_FRAMING_BYTES;
    };
    for (const x of all) {
      // Decided since it was queued (it left the pool): sending it now, stamped with the new
      // decided height, would make receivers take it for a re-submission.
      if (!this.pool.has(x.id)) continue;
      if (chunk.length >= MAX_BATCH_OPS || size + x.bytes > MAX_BATCH_BYTES) flush();
      chunk.push(x.op);
      size += x.bytes;
    }
    flush();
  }

  check(ops: readonly PatternOp[]): { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly index: number | null } {
    // The empty batch is a proposer's value, not something to submit: there is nothing to wait for.
    if (ops.length === 0) return { ok: false, reason: 'no ops to submit', index: null };
    let bytes: Uint8Array;
    try {
      bytes = encodeBatch(ops);
    } catch (err) {
      const data = (err as { data?: Record<string, unknown> }).data;
      return { ok: false, reason: (err as Error).message, index: typeof data?.['index'] === 'number' ? data['index'] : null };
    }
    const v = validateBatch(this.reg, this.reg.height + 1, bytes);
    return v.ok ? { ok: true } : { ok: false, reason: v.reason, index: v.index };
  }

  registry(): Registry {
    return this.reg;
  }

  async entries(from: number, limit: number): Promise<DecidedEntry[]> {
    const out: DecidedEntry[] = [];
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(limit) || limit <= 0) return out;
    for await (const { height, bytes } of this.decidedLog.raw(Math.max(1, from), limit)) {
      const d = decodeDecision(height, bytes);
      if (!d.ok) break;
      out.push({
        height,
        round: d.d.round,
        valueId: d.d.certificate.valueId,
        ops: opsOf(d.d.value),
        certificate: d.d.certificate,
        registryHash: toHex(d.d.registryHash),
        decidedMs: d.d.decidedMs,
      });
    }
    return out;
  }

  evidence(): readonly Evidence[] {
    return [...this.evidenceList];
  }

  onDecided(listener: (e: DecidedEntry) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  status(): ConsensusStatus {
    const h = this.current;
    const set = this.running && this.state.validators !== null ? this.state.validators : validatorSetAt(this.reg, h);
    return {
      height: h,
      round: this.running ? this.state.round : 0,
      step: this.running ? this.state.step : 'propose',
      decidedHeight: this.reg.height,
      registryHash: this.regHashHex,
      validators: set.validators.map((v) => peerIdFromPublicKey(v.publicKey)),
      isValidator: set.validators.some((v) => toHex(v.publicKey) === this.selfHex),
      mempoolOps: this.pool.size,
      evidence: this.evidenceList.map((e) => ({ validator: peerIdFromPublicKey(e.first.signer), height: e.height, round: e.round, voteType: e.voteType })),
      caughtUpHeights: this.caughtUpHeights,
      lastDecidedMs: this.lastDecidedMs,
      wire: this.wire(),
      storeError: this.unstored === null ? null : { height: this.unstored.height, error: this.unstored.error, attempts: this.unstored.attempts, sinceMs: this.unstored.sinceMs },
      work: {
        running: this.running,
        cause: this.running ? this.heightCause : null,
        pendingMembership: this.reg.pending.map((p) => ({ kind: p.op.kind, peerId: peerIdFromPublicKey(p.op.publicKey), effectiveHeight: p.effectiveHeight })),
      },
    };
  }

  /** The same validator set the direct send checks (directPeers), against the channels open now. */
  private wire(): ConsensusStatus['wire'] {
    const open = new Set(this.wireT?.directPeers() ?? []);
    const others = [...this.directPeers().validators];
    return { direct: others.filter((p) => open.has(p)).length, withoutChannel: others.filter((p) => !open.has(p)), gossipFallbacks: this.c.gossipFallbacks };
  }

  counters(): DriverCounters {
    return { ...this.c };
  }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers

function parseStatus(body: unknown, nowMs: number): PeerStatus | null {
  try {
    const r = expectRecord(body, ['height', 'round', 'decided', 'hash'], 'status');
    const { height, round, decided, hash } = r;
    const isN = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
    if (!isN(height) || !isN(round) || !isN(decided) || !(hash instanceof Uint8Array) || hash.length !== 32) return null;
    return { height, round, decided, hashHex: toHex(hash), atMs: nowMs };
  } catch {
    return null;
  }
}

/**
 * Decoded messages by body object: a body delivered as the same bytes object more than once (the
 * simulator hands one object to every receiver; production buffers are fresh per delivery, so
 * they miss) is decoded once. Messages are immutable; weak keys keep nothing alive.
 */
const decodedMemo = new WeakMap<Uint8Array, ConsensusMessage | null>();
function decodeConsensusBody(bytes: Uint8Array): ConsensusMessage | null {
  let m = decodedMemo.get(bytes);
  if (m === undefined) {
    m = decodeMessage(bytes); // never throws: null on garbage
    decodedMemo.set(bytes, m);
  }
  return m;
}

/** Proposals and votes of the core's current height (for a peer at the same height). */
function currentMessages(s: ConsensusState): ConsensusMessage[] {
  const out: ConsensusMessage[] = [];
  const rounds = [...s.rounds.keys()].sort((a, b) => b - a); // newest rounds first: they matter most
  for (const r of rounds) {
    const rv = s.rounds.get(r)!;
    if (rv.proposal !== null) out.push({ type: 'proposal', proposal: rv.proposal });
    // Per value (the core keeps up to two votes per validator when one equivocates).
    for (const id of rv.prevoteTally.keys()) for (const v of roundVotesFor(rv, 'prevote', id === 'nil' ? null : id)) out.push({ type: 'vote', vote: v });
    for (const id of rv.precommitTally.keys()) for (const v of roundVotesFor(rv, 'precommit', id === 'nil' ? null : id)) out.push({ type: 'vote', vote: v });
  }
  return out;
}

