/**
 * The seam between the consensus driver (node/consensus/driver.ts) and the rest of the
 * runtime (node/runtime/node.ts, control routes, the CLI). The driver carries out the pure
 * core's effects (consensus/core.ts) over libp2p and LevelDB; everything else talks to it
 * only through this interface.
 *
 * Two phases, because the p2p host needs membership before it starts and the driver needs
 * the host: `openConsensus()` loads the decided log and the signer record from disk and
 * exposes `members` (the decided membership); `start(host)` joins the consensus topic,
 * serves catch-up and starts voting.
 */
import type { PatternOp } from '../../consensus/patterns.js';
import type { Genesis, Registry } from '../../consensus/registry.js';
import type { CommitCertificate, Evidence, Step, TimeoutConfig } from '../../consensus/types.js';
import type { Identity } from '../../crypto/keys.js';
import { FednodeError } from '../../base/errors.js';
import type { Logger } from '../log.js';
import type { Host } from '../p2p/host.js';
import type { MemberSource } from '../p2p/members.js';
import type { Store } from '../store/index.js';

export type ConsensusDriverErrorCode =
  /** The ops fail their validity predicate against the current registry (data: reason, index). */
  | 'ERR_PATTERN_REJECTED'
  /** Not committed within the caller's timeout (the ops may still commit later). */
  | 'ERR_SUBMIT_TIMEOUT'
  /** The pending-op pool is full (bounded); try again later. */
  | 'ERR_MEMPOOL_FULL'
  /** This node is not a member of the cluster (yet), so its submissions would be rejected. */
  | 'ERR_NOT_MEMBER'
  /** The signer record or decided log on disk cannot be read (data: path, reason). */
  | 'ERR_CONSENSUS_STATE_CORRUPT'
  /** The driver is stopped or stopping. */
  | 'ERR_CONSENSUS_STOPPED';

export class ConsensusDriverError extends FednodeError<ConsensusDriverErrorCode> {
  constructor(code: ConsensusDriverErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
    this.name = 'ConsensusDriverError';
  }
}

/** One decided height as kept in the log (LevelDB, section `consensus`). */
export interface DecidedEntry {
  readonly height: number;
  readonly round: number;
  /** Hex BLAKE3 of the decided value (the batch bytes). */
  readonly valueId: string;
  readonly ops: readonly PatternOp[];
  readonly certificate: CommitCertificate;
  /** Hex registry hash after applying this height (equal on every honest node). */
  readonly registryHash: string;
  /** This node's clock when it decided or learned the height. */
  readonly decidedMs: number;
  /**
   * This node's clock when its core started working on the height (ops pending, membership
   * to bring into force, a resume, or a validator's message for it); null when the height was
   * learnt by catch-up without being started here, or read back from the decided log.
   */
  readonly startedMs: number | null;
}

/** What `submit` resolves with once the ops are decided. */
export interface CommitReceipt {
  readonly height: number;
  readonly round: number;
  readonly valueId: string;
  readonly registryHash: string;
  /** Peer ids of the precommit signers in the certificate. */
  readonly signers: readonly string[];
  readonly power: number;
  readonly totalPower: number;
}

/** What started the height the core works on (see ConsensusStatus.work). */
export type HeightCause = 'ops' | 'membership' | 'resume' | 'peer';

export interface ConsensusStatus {
  /** Height being decided now (last decided + 1). */
  readonly height: number;
  readonly round: number;
  readonly step: Step;
  /** Last decided height, 0 at genesis. */
  readonly decidedHeight: number;
  readonly registryHash: string;
  /** Peer ids of the validators at `height`. */
  readonly validators: readonly string[];
  readonly isValidator: boolean;
  readonly mempoolOps: number;
  /** Equivocations seen (bounded), newest last; validator as peer id. */
  readonly evidence: ReadonlyArray<{ readonly validator: string; readonly height: number; readonly round: number; readonly voteType: string }>;
  /** Heights fetched by catch-up since start. */
  readonly caughtUpHeights: number;
  /**
   * How consensus messages travel: `direct` other validators of the height have an open direct
   * channel from this node; `withoutChannel` (peer ids) have none, so every message is also
   * published by gossip for them (a partly connected cluster, or channels still opening);
   * `gossipFallbacks` counts those publishes since start.
   */
  readonly wire: { readonly direct: number; readonly withoutChannel: readonly string[]; readonly gossipFallbacks: number };
  /**
   * Set while a decided height could not be stored (disk full, I/O error): the node holds at
   * that height and retries every status period; null when all is well.
   */
  readonly storeError: { readonly height: number; readonly error: string; readonly attempts: number; readonly sinceMs: number } | null;
  /**
   * Why heights are being decided. `running`: the core works on `height` now (false: idle after
   * the last decision, nothing to do). `cause`: what started that height: `ops` (pending ops in
   * the pool), `membership` (membership changes decided but not yet in force: the driver decides
   * the empty heights that bring them in, and no more), `resume` (a restart inside a height this
   * node had signed at), `peer` (a message for it arrived from a validator); null when idle.
   * `pendingMembership`: the decided changes not yet in force, with the height each takes effect.
   */
  readonly work: {
    readonly running: boolean;
    readonly cause: HeightCause | null;
    readonly pendingMembership: ReadonlyArray<{ readonly kind: 'member.add' | 'member.remove'; readonly peerId: string; readonly effectiveHeight: number }>;
  };
  readonly lastDecidedMs: number | null;
}

export interface OpenConsensusOptions {
  readonly identity: Identity;
  readonly cluster: string;
  readonly store: Store;
  /** Directory holding the signer-record file (written: tmp, fsync, rename, fsync dir). */
  readonly stateDir: string;
  /** Genesis registry (the cluster file's genesis members). */
  readonly genesis: Genesis;
  readonly logger: Logger;
  readonly now: () => number;
  /** LAN defaults (consensus/core.ts LAN_TIMEOUTS) when absent. */
  readonly timeouts?: TimeoutConfig;
  /**
   * Append-only audit of every signature this node produces, written and fsynced before the
   * message leaves the node (JSON lines; size-bounded). null = off. The crash test reads it
   * to prove no conflicting signature was ever produced.
   */
  readonly auditLogPath?: string | null;
  /**
   * Awaited before each signer record is made durable, with its height (node/store/integrity.ts:
   * the store manifest's signer ceiling is advanced first, so a lost signer file can be fenced
   * above everything this node signed). A rejection fails that step like a failed signer write.
   */
  readonly beforeSignerWrite?: (height: number) => Promise<void>;
}

export interface Consensus {
  /** Decided membership (members in force at the next height); give it to createHost. */
  readonly members: MemberSource;
  /** Join the consensus topic, serve catch-up, start voting. */
  start(host: Host): Promise<void>;
  /** Stop voting and timers, finish pending disk writes; the store is closed by the caller after. */
  stop(): Promise<void>;
  /**
   * Gossip `ops` to the cluster's pending pool and resolve when all of them are decided
   * (one receipt: the height that decided the last of them). Rejects with
   * ConsensusDriverError ERR_PATTERN_REJECTED before gossiping when they fail validation
   * against the current registry.
   */
  submit(ops: readonly PatternOp[], opts?: { readonly timeoutMs?: number; readonly signal?: AbortSignal }): Promise<CommitReceipt>;
  /** Validity of `ops` against the current registry, without submitting. */
  check(ops: readonly PatternOp[]): { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly index: number | null };
  /** The registry after the last decided height. */
  registry(): Registry;
  /** Decided entries with height >= from, ascending, at most `limit` (bounded by the caller). */
  entries(from: number, limit: number): Promise<DecidedEntry[]>;
  evidence(): readonly Evidence[];
  onDecided(listener: (e: DecidedEntry) => void): () => void;
  status(): ConsensusStatus;
}

export type OpenConsensus = (o: OpenConsensusOptions) => Promise<Consensus>;
