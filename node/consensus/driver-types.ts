import type { CommitCertificate } from '../../consensus/types.js';
import type { Registry } from '../../consensus/registry.js';
/** The consensus driver's bounds (each with its reason), counters, options and internal job types. */
import { DEFAULT_LIMITS } from '../../consensus/core.js';
import type { ConsensusMessage, Event } from '../../consensus/types.js';
import type { Consensus, CommitReceipt, OpenConsensusOptions } from './api.js';
import type { TestOnlyHooks } from './ports.js';
import { type SyncResponse } from './sync.js';

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
export const PEER_STATUS_MAX = 1024;
/** Verified (key, digest, signature) triples cached: a few seconds of votes at 100 validators. */
export const VERIFY_CACHE_MAX = 16_384;
/** Decided listeners and submit waiters: each waiter is one pending `submit` call. */
export const WAITERS_MAX = 4096;
/** Status gossip period: as CometBFT's peer-state gossip, once a second is enough to notice a lag. */
export const STATUS_INTERVAL_MS_DEFAULT = 1_000;
/** A `submit` without its own timeout waits this long (a few dozen rounds on a LAN). */
export const SUBMIT_TIMEOUT_MS_DEFAULT = 30_000;
/**
 * Decided op ids remembered to drop late gossip copies: 65,536 is two minutes at the 500/s
 * target, far longer than gossip takes to deliver a copy.
 */
export const RECENTLY_DECIDED_MAX = 65_536;
/** Room for a batch's own framing beyond its ops' bytes when coalescing ops for gossip. */
export const OPS_ENVELOPE_FRAMING_BYTES = 64;
/** Status ticks without progress before own messages are re-sent and the current votes fetched. */
export const STUCK_TICKS = 2;
/**
 * Idle cost (issue 15): while no height runs and nothing in the status changed, a member
 * re-publishes its unchanged status only every this many ticks (a keep-alive), not every tick.
 * A changed status (height, round, decided, hash), a running height and a newly connected peer
 * still publish at the next tick, so lag is noticed as fast as before: the keep-alive only
 * repairs a status lost on the wire, and says a silent peer is still there. 15 s at the 1 s
 * default (was 5 s: each status costs every member a few RPCs; `npm run bench -- idle`).
 */
export const STATUS_KEEPALIVE_TICKS = 15;
/**
 * A peer's status older than this many periods no longer counts (the peer may be gone). Three
 * keep-alive periods (tolerates two lost keep-alives of an idle peer, as the advert staleness
 * bound does); it was 10 when every tick published.
 */
export const STATUS_STALE_TICKS = 3 * STATUS_KEEPALIVE_TICKS;
/** Status ticks between re-gossips of this node's own still-pending ops. */
export const REGOSSIP_TICKS = 5;
/**
 * Status ticks without hearing any peer status before a connected peer is asked directly. Idle
 * peers publish only every STATUS_KEEPALIVE_TICKS: one keep-alive period plus two ticks (timer
 * phase and delivery) of slack, so an idle cluster does not poll; it was 3 when every tick published.
 */
export const QUIET_TICKS = STATUS_KEEPALIVE_TICKS + 2;

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

export type Job =
  | { readonly kind: 'core'; readonly event: Event }
  | { readonly kind: 'message'; readonly m: ConsensusMessage; readonly from: string }
  | { readonly kind: 'catchup'; readonly r: SyncResponse; readonly from: string; readonly done: () => void }
  | { readonly kind: 'kick' }
  | { readonly kind: 'store-retry' };

export interface Waiter {
  readonly remaining: Set<string>;
  readonly resolve: (r: CommitReceipt) => void;
  readonly reject: (e: Error) => void;
  readonly cleanup: () => void;
}

export interface PeerStatus {
  readonly height: number;
  readonly round: number;
  readonly decided: number;
  readonly hashHex: string;
  readonly atMs: number;
}

/** A decision durable in the log, with the registries before and after it (what `applied` takes). */
export interface AppliedDecision {
  readonly height: number;
  readonly round: number;
  readonly value: Uint8Array;
  readonly certificate: CommitCertificate;
  readonly before: Registry;
  readonly next: Registry;
  readonly hash: Uint8Array;
  readonly decidedMs: number;
}
