/** The consensus driver, part 1 of 4: state, construction, verification cache, the event loop. */
import { DEFAULT_LIMITS } from '../../consensus/core.js';
import { ed25519 } from '../../crypto/ed25519.js';
import { createConsensusState, LAN_TIMEOUTS } from '../../consensus/core.js';
import { toHex } from '../../base/hex.js';
import { type PatternOp } from '../../consensus/patterns.js';
import { genesisRegistry, registryHash, validityFor, type Registry } from '../../consensus/registry.js';
import type { CommitCertificate, ConsensusState, Evidence, SignerRecord, VerifyFn } from '../../consensus/types.js';
import type { Logger } from '../log.js';
import type { Host } from '../p2p/host.js';
import type { DecidedEntry, HeightCause } from './api.js';
import { Mempool } from './mempool.js';
import { RegistryMembers } from './members.js';
import type { AuditSink, ConsensusTransport, DecidedStore, DriverPorts, SignerStore, TimerHandle, Timers } from './ports.js';
import { SYNC_TIMEOUT_MS_DEFAULT } from './sync.js';
import type { Job, PeerStatus, Waiter, DriverCounters, DriverOptions } from './driver-types.js';
import { EVENT_QUEUE_MAX, VERIFY_CACHE_MAX, STATUS_INTERVAL_MS_DEFAULT, SUBMIT_TIMEOUT_MS_DEFAULT } from './driver-types.js';
import { msgKey } from './driver-messages.js';

/**
 * The driver's state and its serialized event loop (one job at a time feeds the core). The
 * layers above add effects (driver-effects.ts), receiving and catch-up (driver-receive.ts) and
 * the public API (driver.ts); one class, split by responsibility.
 */
export abstract class DriverState {
  readonly members: RegistryMembers;
  protected readonly log: Logger;
  protected readonly cluster: string;
  protected readonly now: () => number;
  protected readonly signerFile: SignerStore;
  protected readonly decidedLog: DecidedStore;
  protected readonly audit: AuditSink | null;
  protected readonly t: Timers;
  protected readonly pool = new Mempool(undefined, undefined, (id, reason) => this.rejectWaiters(id, reason));
  protected readonly statusIntervalMs: number;
  protected readonly syncTimeoutMs: number;
  protected readonly submitTimeoutMs: number;
  protected readonly selfHex: string;
  protected readonly c: DriverCounters = {
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

  protected reg: Registry;
  protected regHashHex: string;
  protected state: ConsensusState;
  /** Own signed messages at `ownHeight` (durable in the signer file), wire bytes, oldest first. */
  protected own: Uint8Array[] = [];
  protected ownHeight = 0;
  protected restartRecord: SignerRecord | null = null;
  protected wireT: ConsensusTransport | null = null;
  protected started = false;
  protected stopped = false;
  protected lastDecidedMs: number | null = null;
  /** What started the height the core runs (status().work.cause). */
  protected heightCause: HeightCause | null = null;
  /** When the core started the height it works on (see DecidedEntry.startedMs). */
  protected heightStarted: { readonly height: number; readonly ms: number } | null = null;
  protected caughtUpHeights = 0;
  protected readonly evidenceList: Evidence[] = [];
  protected readonly listeners = new Set<(e: DecidedEntry) => void>();
  protected readonly waiters = new Map<string, Set<Waiter>>();
  protected waiterCount = 0;
  protected readonly verified = new Set<string>();
  protected readonly peerStatus = new Map<string, PeerStatus>();
  /** Own submitted ops waiting to be gossiped (flushed on the next turn; bounded by the pool). */
  protected gossipOps: { id: string; op: PatternOp; bytes: number }[] = [];
  protected gossipFlushScheduled = false;
  /** Op id -> height that decided it (LRU, RECENTLY_DECIDED_MAX): late gossip copies are not new work. */
  protected readonly recentlyDecided = new Map<string, number>();

  // event loop
  /**
   * Internal jobs: bounded by construction (at most one queued kick, one catch-up response, the
   * value to propose, and the few live timeouts of the current height), so never dropped.
   */
  protected readonly internal: Job[] = [];
  protected kickQueued = false;
  protected stoppedResolve: () => void = () => undefined;
  /** Settles when `stop()` is called (waiters on queued jobs give up then: the queues are dropped). */
  protected readonly stoppedPromise = new Promise<void>((resolve) => {
    this.stoppedResolve = resolve;
  });
  protected readonly external: Job[] = [];
  protected pumping: Promise<void> | null = null;
  protected readonly timers = new Set<TimerHandle>();
  protected statusTimer: TimerHandle | null = null;
  protected unsubscribe: (() => void) | null = null;
  // catch-up / liveness bookkeeping
  protected syncing = false;
  protected lastProgressMark = '';
  protected ticksWithoutProgress = 0;
  protected ticksWithoutStatus = 0;
  /** The status last published (height/round/decided/hash) and the ticks since (STATUS_KEEPALIVE_TICKS). */
  protected lastStatusMark = '';
  protected ticksSinceOwnStatus = 0;
  /** Peers connected at the previous tick: a new one gets our status at once (it may be behind). */
  protected statusPeers = new Set<string>();
  protected peerCursor = 0;
  protected ticksSinceRegossip = 0;
  protected polRelayedRound = 0;
  /**
   * A decision the core made that the log could not store (disk full, I/O error). Nothing may
   * act on it before it is durable, and the core will not decide that height again: the write
   * is retried every status period (and by catch-up, when a peer has it) until it succeeds.
   */
  protected unstored: { height: number; round: number; value: Uint8Array; certificate: CommitCertificate; error: string; attempts: number; sinceMs: number } | null = null;

  constructor(
    protected readonly o: Omit<DriverOptions, 'store' | 'stateDir' | 'auditLogPath'>,
    protected readonly ports: DriverPorts,
    protected readonly bindHost: ((host: Host) => ConsensusTransport) | null,
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

  protected newCore(record: SignerRecord | null): ConsensusState {
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

  protected readonly validityOf = validityFor((h) => (h === this.reg.height + 1 ? this.reg : null));
  protected validateValue(height: number, value: Uint8Array): boolean {
    return this.validityOf(height, value);
  }

  protected verify(pk: Uint8Array, digest: Uint8Array, sig: Uint8Array): boolean {
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
  // The event loop

  /** Queue a start of the next height (at most one queued: the internal queue stays small). */
  protected kick(): void {
    if (this.kickQueued) return;
    this.kickQueued = true;
    this.push({ kind: 'kick' }, true);
  }

  protected push(job: Job, internal: boolean): void {
    if (this.stopped) return;
    if (internal) this.internal.push(job);
    else if (this.external.length >= EVENT_QUEUE_MAX) {
      this.c.queueDropped++;
      return;
    } else this.external.push(job);
    if (this.pumping === null) this.pumping = this.pump();
  }

  protected async pump(): Promise<void> {
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

  /** The height being decided: one past the last decided height. */
  protected get current(): number {
    return this.reg.height + 1;
  }

  /** Is the core running the current height (not idle after the last decision)? */
  protected get running(): boolean {
    return this.state.height === this.current;
  }

  protected abstract handle(job: Job): Promise<void>;
  protected abstract rejectWaiters(id: string, reason: string): void;
}
