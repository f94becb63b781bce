/**
 * Public types of the Tendermint core (arXiv 1807.04938, Algorithm 1; CometBFT spec).
 *
 * The core is a pure state machine: `step(state, event) -> { state, effects }`.
 * Nothing here does I/O; the driver (node/ or simnet/) carries out the effects.
 * Keep this file stable: the simnet and the node driver code against it.
 */
import { FednodeError } from '../base/errors.js';

/** Hex of the 32-byte BLAKE3 of a proposal value: what votes refer to. */
export type ValueId = string;
/** Lower-case hex of a validator's 32-byte Ed25519 public key. */
export type ValidatorKey = string;

export interface Validator {
  readonly publicKey: Uint8Array; // 32 bytes
  readonly power: number; // positive safe integer
}

export interface ValidatorSet {
  /** Sorted by public key hex (canonical order, so every node derives the same proposer). */
  readonly validators: readonly Validator[];
  readonly totalPower: number;
  /**
   * First height this set is in force. The proposer sequence restarts here (proposer
   * priorities reset to zero when the set changes), so every node derives it from
   * (set, height, round) alone.
   */
  readonly sinceHeight: number;
}

export type VoteType = 'prevote' | 'precommit';
export type Step = 'propose' | 'prevote' | 'precommit' | 'decided';
export type TimeoutKind = 'propose' | 'prevote' | 'precommit';

export interface Proposal {
  readonly height: number;
  readonly round: number;
  /** Opaque value bytes (for fednode: canonical CBOR of a pattern batch). */
  readonly value: Uint8Array;
  /** Round of the proof-of-lock this value carries, -1 if none (Algorithm 1 `validRound`). */
  readonly validRound: number;
}

export interface Vote {
  readonly type: VoteType;
  readonly height: number;
  readonly round: number;
  /** null = nil vote. */
  readonly valueId: ValueId | null;
}

export interface SignedProposal {
  readonly proposal: Proposal;
  readonly signer: Uint8Array; // 32-byte public key
  readonly signature: Uint8Array; // 64 bytes
}

export interface SignedVote {
  readonly vote: Vote;
  readonly signer: Uint8Array; // 32-byte public key
  readonly signature: Uint8Array; // 64 bytes
}

export type ConsensusMessage =
  | { readonly type: 'proposal'; readonly proposal: SignedProposal }
  | { readonly type: 'vote'; readonly vote: SignedVote };

/** > 2/3 of voting power of distinct validators' precommits for `valueId` at (height, round). */
export interface CommitCertificate {
  readonly height: number;
  readonly round: number;
  readonly valueId: ValueId;
  readonly precommits: readonly SignedVote[];
}

/** Two validly signed, conflicting votes of one validator at the same (height, round, type). */
export interface DuplicateVoteEvidence {
  readonly type: 'duplicate-vote';
  readonly validator: ValidatorKey;
  readonly height: number;
  readonly round: number;
  readonly voteType: VoteType;
  readonly first: SignedVote;
  readonly second: SignedVote;
}
export type Evidence = DuplicateVoteEvidence;

/**
 * What must be durable before any signature it covers leaves the node (CometBFT privval
 * "last sign state", plus the lock and valid value of Algorithm 1).
 */
export interface SignerRecord {
  readonly height: number;
  readonly round: number;
  /** 0 = nothing signed at (height, round) yet, 1 = proposal, 2 = prevote, 3 = precommit. */
  readonly step: 0 | 1 | 2 | 3;
  /** Digest signed last (32 bytes) and its signature; null when nothing signed yet. */
  readonly signedDigest: Uint8Array | null;
  readonly signature: Uint8Array | null;
  readonly lockedRound: number;
  readonly lockedValue: Uint8Array | null;
  readonly validRound: number;
  readonly validValue: Uint8Array | null;
}

export interface Signer {
  readonly publicKey: Uint8Array; // 32 bytes
  /** Ed25519 over a 32-byte digest; deterministic, so the core stays pure. */
  sign(digest: Uint8Array): Uint8Array;
}

/** Ed25519 verification of a 64-byte signature over a 32-byte digest. May be cached by the caller. */
export type VerifyFn = (publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array) => boolean;

/** Validity predicate of Algorithm 1 (`valid(v)`), run before prevote. Must be deterministic. */
export type ValidateValueFn = (height: number, value: Uint8Array) => boolean;

/** Timeout of round r = baseMs + r * deltaMs (grows linearly so some round eventually fits the delays). */
export interface TimeoutConfig {
  readonly proposeBaseMs: number;
  readonly proposeDeltaMs: number;
  readonly prevoteBaseMs: number;
  readonly prevoteDeltaMs: number;
  readonly precommitBaseMs: number;
  readonly precommitDeltaMs: number;
}

export interface ConsensusConfig {
  /** Cluster id, part of every sign-bytes so a signature cannot be replayed in another cluster. */
  readonly cluster: string;
  readonly signer: Signer;
  readonly verify: VerifyFn;
  readonly validateValue: ValidateValueFn;
  readonly timeouts: TimeoutConfig;
  /** Proposal values larger than this are ignored (never verified). */
  readonly maxValueBytes: number;
  /** Evidence kept in state; older entries are dropped first. */
  readonly maxEvidence: number;
  /** Messages for height+1 buffered per signer until that height starts. */
  readonly maxFutureMessagesPerSigner: number;
  /** Distinct rounds above the current round one signer may open (Byzantine round spam bound). */
  readonly maxFutureRoundsPerSigner: number;
}

export type Event =
  /** Start (or restart) consensus at `height` with the validator set in force there. */
  | { readonly type: 'start-height'; readonly height: number; readonly validators: ValidatorSet }
  /** Answer to a `request-value` effect: the value this node proposes at (height, round). */
  | { readonly type: 'value-to-propose'; readonly height: number; readonly round: number; readonly value: Uint8Array }
  | { readonly type: 'proposal'; readonly proposal: SignedProposal }
  | { readonly type: 'vote'; readonly vote: SignedVote }
  | { readonly type: 'timeout'; readonly kind: TimeoutKind; readonly height: number; readonly round: number }
  /** A decided height learned by catch-up; accepted only for the current height with a valid certificate. */
  | { readonly type: 'decided'; readonly height: number; readonly value: Uint8Array; readonly certificate: CommitCertificate };

export type Effect =
  /** Make durable BEFORE carrying out any later effect of the same step. */
  | { readonly type: 'persist'; readonly record: SignerRecord }
  | { readonly type: 'broadcast'; readonly message: ConsensusMessage }
  | { readonly type: 'schedule-timeout'; readonly kind: TimeoutKind; readonly height: number; readonly round: number; readonly durationMs: number }
  /** This node proposes at (height, round): answer with a `value-to-propose` event. */
  | { readonly type: 'request-value'; readonly height: number; readonly round: number }
  /** Persist the decision with its certificate, apply it, then send `start-height` for height+1. */
  | { readonly type: 'decide'; readonly height: number; readonly round: number; readonly value: Uint8Array; readonly certificate: CommitCertificate }
  | { readonly type: 'evidence'; readonly evidence: Evidence };

export interface StepResult {
  readonly state: ConsensusState;
  readonly effects: readonly Effect[];
}

/**
 * Everything received in one round of the current height. Read-only views shared between
 * successive states (the core appends to shared logs; a state never sees later votes).
 */
export interface RoundVotes {
  /** Each signer's FIRST vote. An equivocator's other votes count in the tallies; `roundVotesFor` (core.ts) lists them per value. */
  readonly prevotes: ReadonlyMap<ValidatorKey, SignedVote>;
  readonly precommits: ReadonlyMap<ValidatorKey, SignedVote>;
  /** Proposal from this round's proposer (first valid one only). */
  readonly proposal: SignedProposal | null;
  /**
   * Voting power per value id ('nil' for nil): each validator counted once per value it voted
   * for (an equivocator in each of its values). The *Power totals count each validator once.
   */
  readonly prevoteTally: ReadonlyMap<string, number>;
  readonly prevotePower: number;
  readonly precommitTally: ReadonlyMap<string, number>;
  readonly precommitPower: number;
}

export interface ConsensusState {
  readonly config: ConsensusConfig;
  /** Hex of config.signer.publicKey. */
  readonly self: ValidatorKey;
  /** 0 before the first start-height. */
  readonly height: number;
  readonly round: number;
  readonly step: Step;
  readonly validators: ValidatorSet | null;
  readonly lockedRound: number;
  readonly lockedValue: Uint8Array | null;
  readonly validRound: number;
  readonly validValue: Uint8Array | null;
  readonly rounds: ReadonlyMap<number, RoundVotes>;
  /** Value bytes of every verified proposal at this height, by id. */
  readonly values: ReadonlyMap<ValueId, Uint8Array>;
  /** Cached `validateValue` verdicts at this height. */
  readonly validity: ReadonlyMap<ValueId, boolean>;
  /** "for the first time" guards of Algorithm 1, as `${rule}:${round}` strings. */
  readonly fired: ReadonlySet<string>;
  /** Rounds above `round` opened by each signer (bounded by maxFutureRoundsPerSigner). */
  readonly futureRounds: ReadonlyMap<ValidatorKey, readonly number[]>;
  /** Messages for height+1, replayed on start-height (bounded per signer). */
  readonly buffered: readonly ConsensusMessage[];
  readonly signerRecord: SignerRecord;
  /** Round whose value this node has asked the driver for (-1 if none outstanding). */
  readonly awaitingValueRound: number;
  readonly decision: { readonly round: number; readonly value: Uint8Array; readonly certificate: CommitCertificate } | null;
  readonly evidence: readonly Evidence[];
}

export type ConsensusErrorCode = 'ERR_CONSENSUS_CONFIG' | 'ERR_VALIDATOR_SET' | 'ERR_PATTERN_ENCODING' | 'ERR_PATTERN_INVALID';

export class ConsensusError extends FednodeError<ConsensusErrorCode> {
  constructor(code: ConsensusErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
    this.name = 'ConsensusError';
  }
}
