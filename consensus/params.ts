/** The core's defaults: LAN timeouts, bounds, the timeout schedule per round. */
import { type TimeoutConfig, type TimeoutKind } from './types.js';

// ---------------------------------------------------------------------------------------------
// Defaults

/**
 * LAN defaults. Three message delays on a LAN are a few ms; signing ~50 us. The propose
 * timeout also covers the proposer fetching its batch. Linear growth per round (CometBFT's
 * timeout_*_delta) guarantees that after GST some round's timeouts exceed the real delays.
 */
export const LAN_TIMEOUTS: TimeoutConfig = {
  proposeBaseMs: 300,
  proposeDeltaMs: 100,
  prevoteBaseMs: 100,
  prevoteDeltaMs: 50,
  precommitBaseMs: 100,
  precommitDeltaMs: 50,
};

export const DEFAULT_LIMITS = {
  /** Below the 256 KiB envelope limit minus the proposal's own fields (pattern batches are <= 192 KiB). */
  maxValueBytes: 256 * 1024 - 4096,
  /** Evidence is for operators (`fednode status`); 64 entries name every faulty node of a lab cluster. */
  maxEvidence: 64,
  /** Per signer for height+1: a proposal plus prevote and precommit of a few rounds. */
  maxFutureMessagesPerSigner: 8,
  /** As CometBFT's peerCatchupRounds (2), doubled: an honest node rarely leads by more than a round or two. */
  maxFutureRoundsPerSigner: 4,
} as const;

/** Most rounds one height keeps (beyond it, messages of higher rounds are dropped; round 2^20 takes days). */
export const MAX_ROUND = 1 << 20;
/** Fixpoint loop bound of `evaluate`: each iteration changes step or round, at most a handful per event. */
export const MAX_EVALUATE_ITERATIONS = 64;

export function timeoutMs(t: TimeoutConfig, kind: TimeoutKind, round: number): number {
  switch (kind) {
    case 'propose':
      return t.proposeBaseMs + round * t.proposeDeltaMs;
    case 'prevote':
      return t.prevoteBaseMs + round * t.prevoteDeltaMs;
    case 'precommit':
      return t.precommitBaseMs + round * t.precommitDeltaMs;
  }
}
