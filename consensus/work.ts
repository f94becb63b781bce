/** The working copy of one step: copy-on-write ownership of the state's parts, and the result. */
import { type ConsensusConfig, type ConsensusMessage, type ConsensusState, type Effect, type Evidence, type SignerRecord, type Step, type StepResult, type ValidatorKey, type ValidatorSet, type ValueId } from './types.js';
import type { RoundData} from './vote-set.js';
import { emptyRound, adoptRound, RoundTable } from './vote-set.js';

// ---------------------------------------------------------------------------------------------
// The working copy of one step

export interface Work {
  config: ConsensusConfig;
  self: ValidatorKey;
  height: number;
  round: number;
  step: Step;
  validators: ValidatorSet | null;
  lockedRound: number;
  lockedValue: Uint8Array | null;
  validRound: number;
  validValue: Uint8Array | null;
  rounds: RoundTable;
  values: Map<ValueId, Uint8Array>;
  validity: Map<ValueId, boolean>;
  fired: Set<string>;
  futureRounds: Map<ValidatorKey, readonly number[]>;
  buffered: ConsensusMessage[];
  signerRecord: SignerRecord;
  awaitingValueRound: number;
  decision: ConsensusState['decision'];
  evidence: Evidence[];
  /** Bit set of the collections already copied in this step (see `mut`). */
  owned: number;
  effects: Effect[];
}

export function begin(s: ConsensusState): Work {
  // Collections are shared with the input state until first written (see `mut`): most events
  // touch one or two of them. An explicit literal (not a spread) keeps one object shape.
  return {
    config: s.config,
    self: s.self,
    height: s.height,
    round: s.round,
    step: s.step,
    validators: s.validators,
    lockedRound: s.lockedRound,
    lockedValue: s.lockedValue,
    validRound: s.validRound,
    validValue: s.validValue,
    rounds: RoundTable.from(s.rounds),
    values: s.values as Map<ValueId, Uint8Array>,
    validity: s.validity as Map<ValueId, boolean>,
    fired: s.fired as Set<string>,
    futureRounds: s.futureRounds as Map<ValidatorKey, readonly number[]>,
    buffered: s.buffered as ConsensusMessage[],
    signerRecord: s.signerRecord,
    awaitingValueRound: s.awaitingValueRound,
    decision: s.decision,
    evidence: s.evidence as Evidence[],
    owned: 0,
    effects: [],
  };
}

export type Owned = 'rounds' | 'values' | 'validity' | 'fired' | 'futureRounds' | 'buffered' | 'evidence';
export const OWNED_BIT: Record<Owned, number> = { rounds: 1, values: 2, validity: 4, fired: 8, futureRounds: 16, buffered: 32, evidence: 64 };
export const OWNED_ALL = 127;

/**
 * Copy-on-first-write of one collection of the working copy; the input state is never mutated.
 * The copies are shallow and per step: `rounds` holds a few rounds, and each round's vote sets
 * are shared logs extended in O(1) (see VoteLog), so no step copies a round's votes.
 */
export function mut<K extends Owned>(w: Work, k: K): Work[K] {
  const bit = OWNED_BIT[k];
  if ((w.owned & bit) === 0) {
    w.owned |= bit;
    const c = w[k] as unknown;
    const copy = c instanceof RoundTable ? c.copy() : c instanceof Map ? new Map(c) : c instanceof Set ? new Set(c) : [...(c as unknown[])];
    (w as unknown as Record<string, unknown>)[k] = copy;
  }
  return w[k];
}

export function finish(w: Work): StepResult {
  const state: ConsensusState = {
    config: w.config,
    self: w.self,
    height: w.height,
    round: w.round,
    step: w.step,
    validators: w.validators,
    lockedRound: w.lockedRound,
    lockedValue: w.lockedValue,
    validRound: w.validRound,
    validValue: w.validValue,
    rounds: w.rounds,
    values: w.values,
    validity: w.validity,
    fired: w.fired,
    futureRounds: w.futureRounds,
    buffered: w.buffered,
    signerRecord: w.signerRecord,
    awaitingValueRound: w.awaitingValueRound,
    decision: w.decision,
    evidence: w.evidence,
  };
  return { state, effects: w.effects };
}

/** Round r as stored (read only: an absent round is a fresh empty one, not stored). */
export function roundOf(w: Work, r: number): RoundData {
  const rv = w.rounds.get(r);
  return rv === undefined ? emptyRound() : adoptRound(rv, w.validators);
}
