/**
 * Tendermint as a pure state machine (arXiv 1807.04938, Algorithm 1; CometBFT consensus spec).
 *
 * `step(state, event)` never mutates its input and does no I/O: it returns the next state and
 * the effects the driver must carry out, in order. Line numbers in comments refer to
 * Algorithm 1 of the paper.
 *
 * Split by responsibility as CometBFT is: the rules and the step function here; sign bytes
 * (sign-bytes.ts), the validator set and proposer priority (validator-set.ts), certificates
 * (certificates.ts), vote sets (vote-set.ts), the step's working copy (work.ts), defaults
 * (params.ts). This module re-exports their public names, so callers import from core.js.
 */
import { toHex } from '../base/hex.js';
import { ConsensusError, type CommitCertificate, type ConsensusConfig, type ConsensusMessage, type ConsensusState, type Effect, type Event, type Evidence, type Proposal, type SignedProposal, type SignedVote, type SignerRecord, type StepResult, type TimeoutKind, type ValidatorKey, type ValidatorSet, type ValueId, type Vote, type VoteType } from './types.js';
import { MAX_ROUND, MAX_EVALUATE_ITERATIONS, timeoutMs } from './params.js';
import { keyOf, bytesEqual, valueIdOf, VALUE_ID_RE, isIndex, isKey, isSig, voteDigest, proposalDigest } from './sign-bytes.js';
import { powerMap, proposerFor } from './validator-set.js';
import { verifyCommitCertificate } from './certificates.js';
import type { RoundData} from './vote-set.js';
import { MAX_VOTES_PER_SIGNER, makeRound, appendVote, withSigner, adoptRound, RoundTable } from './vote-set.js';
import { begin, OWNED_ALL, mut, finish, roundOf } from './work.js';
import type { Work } from './work.js';
export { LAN_TIMEOUTS, DEFAULT_LIMITS, timeoutMs } from './params.js';
export { valueIdOf, voteDigest, proposalDigest } from './sign-bytes.js';
export { makeValidatorSet, powerMap, proposerFor } from './validator-set.js';
export { verifyCommitCertificate } from './certificates.js';
export type { CertificateVerdict } from './certificates.js';
export { MAX_VOTES_PER_SIGNER, roundVotesFor, proofOfLockMessages } from './vote-set.js';

// ---------------------------------------------------------------------------------------------
// State construction

export const EMPTY_SIGNER_RECORD: SignerRecord = {
  height: 0,
  round: 0,
  step: 0,
  signedDigest: null,
  signature: null,
  lockedRound: -1,
  lockedValue: null,
  validRound: -1,
  validValue: null,
};

export function createConsensusState(config: ConsensusConfig, record: SignerRecord | null = null): ConsensusState {
  if (!isKey(config.signer.publicKey)) throw new ConsensusError('ERR_CONSENSUS_CONFIG', 'signer public key must be 32 bytes');
  if (typeof config.cluster !== 'string' || config.cluster.length === 0) throw new ConsensusError('ERR_CONSENSUS_CONFIG', 'cluster id required');
  for (const [k, v] of Object.entries(config.timeouts as unknown as Record<string, unknown>)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConsensusError('ERR_CONSENSUS_CONFIG', `timeout ${k} must be a non-negative number`, { [k]: v });
  }
  for (const k of ['maxValueBytes', 'maxEvidence', 'maxFutureMessagesPerSigner', 'maxFutureRoundsPerSigner'] as const) {
    if (!isIndex(config[k])) throw new ConsensusError('ERR_CONSENSUS_CONFIG', `${k} must be a non-negative integer`, { [k]: config[k] });
  }
  return {
    config,
    self: toHex(config.signer.publicKey),
    height: 0,
    round: 0,
    step: 'propose',
    validators: null,
    lockedRound: -1,
    lockedValue: null,
    validRound: -1,
    validValue: null,
    rounds: new RoundTable(),
    values: new Map(),
    validity: new Map(),
    fired: new Set(),
    futureRounds: new Map(),
    buffered: [],
    signerRecord: record ?? EMPTY_SIGNER_RECORD,
    awaitingValueRound: -1,
    decision: null,
    evidence: [],
  };
}


// ---------------------------------------------------------------------------------------------
// step

const NO_EFFECTS: readonly Effect[] = Object.freeze([]);

/** Height of a vote or proposal event, when it is one a state at `state.height` ignores outright (older heights, later than next, or a decided height). */
function ignoredOutright(state: ConsensusState, height: unknown): boolean {
  if (typeof height !== 'number' || state.validators === null) return false; // the full checks decide
  return height < state.height || height > state.height + 1 || (height === state.height && state.step === 'decided');
}

export function step(state: ConsensusState, event: Event): StepResult {
  // Late messages (a height this node has decided or left) are most of what a busy node
  // receives: answered without building a working copy.
  if (event.type === 'vote' && typeof event.vote === 'object' && event.vote !== null && typeof event.vote.vote === 'object' && event.vote.vote !== null && ignoredOutright(state, event.vote.vote.height)) return { state, effects: NO_EFFECTS };
  if (event.type === 'proposal' && typeof event.proposal === 'object' && event.proposal !== null && typeof event.proposal.proposal === 'object' && event.proposal.proposal !== null && ignoredOutright(state, event.proposal.proposal.height)) return { state, effects: NO_EFFECTS };
  const w = begin(state);
  switch (event.type) {
    case 'start-height':
      onStartHeight(w, event.height, event.validators);
      break;
    case 'value-to-propose':
      onValueToPropose(w, event.height, event.round, event.value);
      break;
    case 'proposal':
      if (acceptProposal(w, event.proposal, false)) evaluate(w);
      else if (w.owned === 0 && w.effects.length === 0) return { state, effects: NO_EFFECTS }; // ignored: nothing changed
      break;
    case 'vote':
      if (acceptVote(w, event.vote, false)) evaluate(w);
      else if (w.owned === 0 && w.effects.length === 0) return { state, effects: NO_EFFECTS }; // ignored (a late or duplicate vote)
      break;
    case 'timeout':
      onTimeout(w, event.kind, event.height, event.round);
      break;
    case 'decided':
      onDecided(w, event.height, event.value, event.certificate);
      break;
  }
  return finish(w);
}

function onStartHeight(w: Work, height: number, validators: ValidatorSet): void {
  if (!isIndex(height) || height < 1) return;
  // Never go back, never restart a running or decided height (a decided height stays decided).
  if (height <= w.height) return;
  if (!(typeof validators === 'object' && validators !== null && Array.isArray(validators.validators) && validators.totalPower > 0)) return;
  const replay = w.buffered.filter((m) => messageHeight(m) === height);
  const rec = w.signerRecord;
  w.height = height;
  w.validators = validators;
  w.rounds = new RoundTable();
  w.values = new Map();
  w.validity = new Map();
  w.fired = new Set();
  w.futureRounds = new Map();
  w.buffered = [];
  w.evidence = [...w.evidence];
  w.owned = OWNED_ALL;
  w.decision = null;
  w.awaitingValueRound = -1;
  let startRound = 0;
  if (rec.height === height) {
    // Restart within a height we already signed at: resume with the durable lock.
    startRound = rec.round;
    w.lockedRound = rec.lockedRound;
    w.lockedValue = rec.lockedValue;
    w.validRound = rec.validRound;
    w.validValue = rec.validValue;
  } else {
    w.lockedRound = -1;
    w.lockedValue = null;
    w.validRound = -1;
    w.validValue = null;
  }
  startRoundAt(w, startRound);
  for (const m of replay) {
    if (m.type === 'proposal') acceptProposal(w, m.proposal, false);
    else acceptVote(w, m.vote, false);
  }
  evaluate(w);
}

function messageHeight(m: ConsensusMessage): number {
  return m.type === 'proposal' ? m.proposal.proposal.height : m.vote.vote.height;
}
function messageSigner(m: ConsensusMessage): Uint8Array {
  return m.type === 'proposal' ? m.proposal.signer : m.vote.signer;
}

/** Line 11: StartRound(round). */
function startRoundAt(w: Work, round: number): void {
  const set = w.validators!;
  w.round = round;
  w.step = 'propose';
  w.awaitingValueRound = -1;
  // Rounds at or below the new round no longer count against the future-round bound.
  if (w.futureRounds.size > 0) {
    const fr = mut(w, 'futureRounds');
    for (const [k, rs] of fr) {
      const left = rs.filter((r) => r > round);
      if (left.length === 0) fr.delete(k);
      else fr.set(k, left);
    }
  }
  // Every node schedules the propose timeout (CometBFT does too): a proposer whose driver
  // never answers `request-value` must not stall the round.
  w.effects.push({ type: 'schedule-timeout', kind: 'propose', height: w.height, round, durationMs: timeoutMs(w.config.timeouts, 'propose', round) });
  if (keyOf(proposerFor(set, w.height, round).publicKey) === w.self) {
    if (w.validValue !== null) propose(w, w.validValue, w.validRound); // line 14-15
    else {
      w.awaitingValueRound = round; // line 16: getValue()
      w.effects.push({ type: 'request-value', height: w.height, round });
    }
  }
}

function onValueToPropose(w: Work, height: number, round: number, value: Uint8Array): void {
  if (height !== w.height || round !== w.round || w.step !== 'propose' || w.awaitingValueRound !== round) return;
  if (!(value instanceof Uint8Array) || value.length > w.config.maxValueBytes) return;
  w.awaitingValueRound = -1;
  propose(w, value, -1);
  evaluate(w);
}

function onTimeout(w: Work, kind: TimeoutKind, height: number, round: number): void {
  if (height !== w.height || round !== w.round || w.step === 'decided' || w.validators === null) return;
  switch (kind) {
    case 'propose': // line 57
      if (w.step === 'propose') castVote(w, 'prevote', null);
      break;
    case 'prevote': // line 61
      if (w.step === 'prevote') castVote(w, 'precommit', null);
      break;
    case 'precommit': // line 65
      startRoundAt(w, round + 1);
      break;
  }
  evaluate(w);
}

function onDecided(w: Work, height: number, value: Uint8Array, cert: CommitCertificate): void {
  if (height !== w.height || w.step === 'decided' || w.validators === null) return;
  if (!(value instanceof Uint8Array) || cert.height !== height) return;
  if (valueIdOf(value) !== cert.valueId) return;
  if (!verifyCommitCertificate(cert, w.validators, w.config.verify, w.config.cluster).ok) return;
  decide(w, cert.round, value, cert);
}

// ---------------------------------------------------------------------------------------------
// Signing with the double-sign guard

function hrsAfter(h: number, r: number, s: number, rec: SignerRecord): -1 | 0 | 1 {
  if (h !== rec.height) return h > rec.height ? 1 : -1;
  if (r !== rec.round) return r > rec.round ? 1 : -1;
  if (s !== rec.step) return s > rec.step ? 1 : -1;
  return 0;
}

/**
 * Sign `digest` at (height, round, stepNo) unless the durable record forbids it: anything at or
 * below the last signed HRS is refused, except the identical digest (re-use the signature).
 * A fresh signature is preceded by a `persist` effect carrying the new record.
 */
function signAt(w: Work, stepNo: 1 | 2 | 3, digest: Uint8Array): Uint8Array | null {
  // A node outside the height's validator set (a member admitted but not yet voting, one being
  // removed) takes part in no quorum: it signs nothing, so it persists and broadcasts nothing.
  if (w.validators === null || !powerMap(w.validators).has(w.self)) return null;
  const rec = w.signerRecord;
  const cmp = hrsAfter(w.height, w.round, stepNo, rec);
  if (cmp === 0 && bytesEqual(rec.signedDigest, digest)) return rec.signature;
  if (cmp <= 0) return null;
  const signature = w.config.signer.sign(digest);
  w.signerRecord = {
    height: w.height,
    round: w.round,
    step: stepNo,
    signedDigest: digest,
    signature,
    lockedRound: w.lockedRound,
    lockedValue: w.lockedValue,
    validRound: w.validRound,
    validValue: w.validValue,
  };
  w.effects.push({ type: 'persist', record: w.signerRecord });
  return signature;
}

/** Persist lock / valid value changes that happen without a signature (line 42-43). */
function persistLocks(w: Work): void {
  const rec = w.signerRecord;
  // Never move the record below a height it is at (a fence written by `fednode repair`, a log
  // behind its signer record): the lock of a lower height is moot, nothing is signed there.
  if (rec.height > w.height) return;
  if (rec.lockedRound === w.lockedRound && rec.validRound === w.validRound && rec.lockedValue === w.lockedValue && rec.validValue === w.validValue) return;
  // Keep the HRS of the last signature; only the height-scoped lock fields change.
  w.signerRecord = { ...rec, lockedRound: w.lockedRound, lockedValue: w.lockedValue, validRound: w.validRound, validValue: w.validValue };
  if (rec.height !== w.height) w.signerRecord = { ...w.signerRecord, height: w.height, round: w.round, step: 0, signedDigest: null, signature: null };
  w.effects.push({ type: 'persist', record: w.signerRecord });
}

function propose(w: Work, value: Uint8Array, validRound: number): void {
  const proposal: Proposal = { height: w.height, round: w.round, value, validRound };
  const signature = signAt(w, 1, proposalDigest(w.config.cluster, proposal));
  if (signature === null) return;
  const sp: SignedProposal = { proposal, signer: w.config.signer.publicKey, signature };
  w.effects.push({ type: 'broadcast', message: { type: 'proposal', proposal: sp } });
  acceptProposal(w, sp, true);
}

/** Sign and broadcast our vote for the current round and move to that step (even if the guard refuses). */
function castVote(w: Work, type: VoteType, valueId: ValueId | null): void {
  w.step = type;
  const vote: Vote = { type, height: w.height, round: w.round, valueId };
  const signature = signAt(w, type === 'prevote' ? 2 : 3, voteDigest(w.config.cluster, vote));
  if (signature === null) return;
  const sv: SignedVote = { vote, signer: w.config.signer.publicKey, signature };
  w.effects.push({ type: 'broadcast', message: { type: 'vote', vote: sv } });
  acceptVote(w, sv, true);
}

// ---------------------------------------------------------------------------------------------
// Receiving messages (checks cheapest first)

function bufferFuture(w: Work, m: ConsensusMessage): void {
  const set = w.validators;
  if (set === null) return;
  const signer = messageSigner(m);
  if (!isKey(signer)) return;
  const key = keyOf(signer);
  // Rule: only members of the current set (the next set differs by at most the H+2 changes).
  if (!powerMap(set).has(key)) return;
  let count = 0;
  for (const b of w.buffered) if (keyOf(messageSigner(b)) === key) count++;
  if (count >= w.config.maxFutureMessagesPerSigner) return; // bound: per signer, drop newest
  // Signature before buffering: forged messages must not use up a validator's slots.
  const ok =
    m.type === 'proposal'
      ? isSig(m.proposal.signature) && isIndex(m.proposal.proposal.round) && m.proposal.proposal.value instanceof Uint8Array && m.proposal.proposal.value.length <= w.config.maxValueBytes && w.config.verify(signer, proposalDigest(w.config.cluster, m.proposal.proposal), m.proposal.signature)
      : isSig(m.vote.signature) && w.config.verify(signer, voteDigest(w.config.cluster, m.vote.vote), m.vote.signature);
  if (ok) mut(w, 'buffered').push(m);
}

/** Rule: one signer may open at most maxFutureRoundsPerSigner rounds above ours. */
function admitRound(w: Work, key: ValidatorKey, round: number): boolean {
  if (round <= w.round) return true;
  const rs = w.futureRounds.get(key) ?? [];
  if (rs.includes(round)) return true;
  if (rs.length >= w.config.maxFutureRoundsPerSigner) return false;
  mut(w, 'futureRounds').set(key, [...rs, round]);
  return true;
}

function acceptProposal(w: Work, sp: SignedProposal, own: boolean): boolean {
  const set = w.validators;
  if (set === null || typeof sp !== 'object' || sp === null || typeof sp.proposal !== 'object' || sp.proposal === null) return false;
  const p = sp.proposal;
  if (!isIndex(p.height)) return false;
  if (p.height === w.height + 1) {
    bufferFuture(w, { type: 'proposal', proposal: sp }); // rule: next height buffered
    return false;
  }
  if (p.height !== w.height || w.step === 'decided') return false; // rule: other heights ignored
  if (!isIndex(p.round) || p.round > MAX_ROUND) return false;
  if (typeof p.validRound !== 'number' || !Number.isSafeInteger(p.validRound) || p.validRound < -1 || p.validRound >= p.round) return false;
  if (!(p.value instanceof Uint8Array) || p.value.length > w.config.maxValueBytes) return false; // rule: size
  if (!isKey(sp.signer) || !isSig(sp.signature)) return false;
  const key = keyOf(sp.signer);
  if (key !== keyOf(proposerFor(set, p.height, p.round).publicKey)) return false; // rule: proposer of the round
  const rv = roundOf(w, p.round);
  if (rv.proposal !== null) return false; // rule: first proposal per round only
  // Signature before the future-round bound: a forger must not use up a validator's round slots.
  if (!own && !w.config.verify(sp.signer, proposalDigest(w.config.cluster, p), sp.signature)) return false; // rule: signature
  if (!own && !admitRound(w, key, p.round)) return false;
  const sg = withSigner(rv, key, powerMap(set).get(key) ?? 0);
  mut(w, 'rounds').set(p.round, makeRound(sp, rv.prevotes, rv.precommits, sg.signers, sg.signerCount));
  mut(w, 'values').set(valueIdOf(p.value), p.value);
  return true;
}

/** Votes whose value id passed VALUE_ID_RE (votes are immutable by contract, as for voteDigestMemo). */
const wellFormedIds = new WeakSet<Vote>();

function acceptVote(w: Work, sv: SignedVote, own: boolean): boolean {
  const set = w.validators;
  if (set === null || typeof sv !== 'object' || sv === null || typeof sv.vote !== 'object' || sv.vote === null) return false;
  const v = sv.vote;
  if (!isIndex(v.height)) return false;
  if (v.height === w.height + 1) {
    bufferFuture(w, { type: 'vote', vote: sv });
    return false;
  }
  if (v.height !== w.height || w.step === 'decided') return false;
  if (v.type !== 'prevote' && v.type !== 'precommit') return false;
  if (!isIndex(v.round) || v.round > MAX_ROUND) return false;
  if (v.valueId !== null && !wellFormedIds.has(v)) {
    if (typeof v.valueId !== 'string' || !VALUE_ID_RE.test(v.valueId)) return false;
    wellFormedIds.add(v); // one vote object reaches every node of a simnet or benchmark: checked once
  }
  if (!isKey(sv.signer) || !isSig(sv.signature)) return false;
  const key = keyOf(sv.signer);
  const power = powerMap(set).get(key);
  if (power === undefined) return false; // rule: validators only
  const rv = roundOf(w, v.round);
  const view = v.type === 'prevote' ? rv.prevotes : rv.precommits;
  const id = v.valueId ?? 'nil';
  // This signer's votes already here (at most MAX_VOTES_PER_SIGNER).
  let seen = 0;
  let first: SignedVote | undefined;
  for (const i of view.log.byKey.get(key) ?? []) {
    if (i >= view.len) break;
    if (view.log.ids[i] === id) return false; // duplicate delivery
    seen++;
    first ??= view.log.votes[i];
  }
  if (seen >= MAX_VOTES_PER_SIGNER && !oneThird(view.tallyOf(id), set)) return false; // bound: see MAX_VOTES_PER_SIGNER
  if (!own && !w.config.verify(sv.signer, voteDigest(w.config.cluster, v), sv.signature)) return false; // rule: signature
  if (first === undefined) {
    if (!own && !admitRound(w, key, v.round)) return false; // after the signature: forgers cannot use up slots
  } else {
    // Conflicting, validly signed: evidence, and the vote is kept in its value's set (it counts
    // towards that value's quorum; the signer's power counts once in the round's total).
    addEvidence(w, key, first, sv);
  }
  const next = appendVote(view, sv, key, id, power);
  const sg = first === undefined ? withSigner(rv, key, power) : { signers: rv.signers, signerCount: rv.signerCount };
  mut(w, 'rounds').set(
    v.round,
    v.type === 'prevote' ? makeRound(rv.proposal, next, rv.precommits, sg.signers, sg.signerCount) : makeRound(rv.proposal, rv.prevotes, next, sg.signers, sg.signerCount),
  );
  return true;
}

function addEvidence(w: Work, key: ValidatorKey, first: SignedVote, second: SignedVote): void {
  const v = first.vote;
  if (w.evidence.some((e) => e.validator === key && e.height === v.height && e.round === v.round && e.voteType === v.type)) return;
  const ev: Evidence = { type: 'duplicate-vote', validator: key, height: v.height, round: v.round, voteType: v.type, first, second };
  const evidence = mut(w, 'evidence');
  evidence.push(ev);
  if (evidence.length > w.config.maxEvidence) evidence.shift(); // bound: oldest dropped
  w.effects.push({ type: 'evidence', evidence: ev });
}

// ---------------------------------------------------------------------------------------------
// The "upon" rules

const quorum = (power: number, set: ValidatorSet): boolean => power * 3 > set.totalPower * 2;
const oneThird = (power: number, set: ValidatorSet): boolean => power * 3 > set.totalPower;

function isValid(w: Work, value: Uint8Array): boolean {
  const id = valueIdOf(value);
  let ok = w.validity.get(id);
  if (ok === undefined) {
    ok = w.config.validateValue(w.height, value);
    mut(w, 'validity').set(id, ok); // bounded by the proposals kept (one per round)
  }
  return ok;
}

function idOrNull(v: Uint8Array | null): ValueId | null {
  return v === null ? null : valueIdOf(v);
}

function decide(w: Work, round: number, value: Uint8Array, certificate: CommitCertificate): void {
  w.step = 'decided';
  w.decision = { round, value, certificate };
  w.effects.push({ type: 'decide', height: w.height, round, value, certificate });
}

/** Apply the rules of Algorithm 1 until none fires. */
function evaluate(w: Work): void {
  for (let i = 0; i < MAX_EVALUATE_ITERATIONS; i++) {
    if (w.step === 'decided' || w.validators === null) return;
    if (!evaluateOnce(w, w.validators)) return;
  }
}

/** One pass of the rules; true when one fired that may enable another. */
function evaluateOnce(w: Work, set: ValidatorSet): boolean {
  const across = acrossRounds(w, set);
  if (across === 'decided') return false;
  if (across === 'skipped') return true;
  return inCurrentRound(w, set);
}

/** The rules over every round: decide (line 49), skip ahead (line 55), a late valid value. */
function acrossRounds(w: Work, set: ValidatorSet): 'decided' | 'skipped' | 'none' {
  // One pass over the rounds (a handful), O(1) each from their running totals, for three rules:
  // - line 49: a proposal's value with 2f+1 precommits in any round decides (a value's tally
  //   never exceeds the round's distinct precommit power, so most rounds stop at that check);
  // - line 55: f+1 voting power seen in a higher round -> skip to it (the highest such round);
  // - valid value from an EARLIER round's proof-of-lock (line 36 only looks at the current
  //   round): a POL at validRound < r' < round, learnt late (relayed), makes this node propose
  //   that value with validRound r' instead of a fresh value that locked nodes refuse. Safe:
  //   validValue only decides what this node proposes, others check the POL (line 28), and the
  //   lock is untouched. Without it the simnet saw heights need rounds beyond f+2 after a heal.
  // Precedence as listed: decide, else skip, else update the valid value.
  const rounds = w.rounds;
  let skipTo = -1;
  let validFrom: RoundData | null = null;
  let validRound = w.validRound;
  for (let i = 0; i < rounds.size; i++) {
    const r = rounds.keyAt(i);
    const rv = adoptRound(rounds.valueAt(i), set);
    if (quorum(rv.precommitPower, set)) {
      for (const id of rv.precommits.ids()) {
        if (id === 'nil' || !quorum(rv.precommits.tallyOf(id), set)) continue;
        const value = w.values.get(id);
        if (value === undefined || !isValid(w, value)) continue;
        const precommits = rv.precommits.votesFor(id).sort((a, b) => (keyOf(a.signer) < keyOf(b.signer) ? -1 : 1));
        decide(w, r, value, { height: w.height, round: r, valueId: id, precommits });
        return 'decided';
      }
    }
    if (r > w.round && r > skipTo && oneThird(rv.signerPower, set)) skipTo = r;
    const op = rv.proposal;
    if (r > validRound && r < w.round && op !== null && quorum(rv.prevotePower, set) && quorum(rv.prevotes.tallyOf(valueIdOf(op.proposal.value)), set) && isValid(w, op.proposal.value)) {
      validFrom = rv;
      validRound = r;
    }
  }
  if (skipTo > w.round) {
    startRoundAt(w, skipTo);
    return 'skipped';
  }
  if (validFrom !== null && validFrom.proposal !== null) {
    w.validValue = validFrom.proposal.proposal.value;
    w.validRound = validRound;
    persistLocks(w);
  }
  return 'none';
}

/** The rules of the current round (lines 22, 28, 34, 36, 44, 47); true when one fired. */
function inCurrentRound(w: Work, set: ValidatorSet): boolean {
  const r = w.round;
  const rv = roundOf(w, r);
  const sp = rv.proposal;

  if (w.step === 'propose' && sp !== null) {
    const p = sp.proposal;
    const id = valueIdOf(p.value);
    if (p.validRound === -1) {
      // Line 22.
      const ok = isValid(w, p.value) && (w.lockedRound === -1 || idOrNull(w.lockedValue) === id);
      castVote(w, 'prevote', ok ? id : null);
      return true;
    }
    // Line 28: the proposal carries a proof-of-lock from validRound < r.
    if (quorum(roundOf(w, p.validRound).prevotes.tallyOf(id), set)) {
      const ok = isValid(w, p.value) && (w.lockedRound <= p.validRound || idOrNull(w.lockedValue) === id);
      castVote(w, 'prevote', ok ? id : null);
      return true;
    }
  }

  // Line 34: 2f+1 prevotes of any kind -> schedule the prevote timeout, once per round.
  if (w.step === 'prevote' && quorum(rv.prevotePower, set) && !w.fired.has(`34:${r}`)) {
    mut(w, 'fired').add(`34:${r}`);
    w.effects.push({ type: 'schedule-timeout', kind: 'prevote', height: w.height, round: r, durationMs: timeoutMs(w.config.timeouts, 'prevote', r) });
  }

  // Line 36: proposal + 2f+1 prevotes for it, step >= prevote, for the first time.
  if ((w.step === 'prevote' || w.step === 'precommit') && sp !== null) {
    const id = valueIdOf(sp.proposal.value);
    if (quorum(rv.prevotes.tallyOf(id), set) && !w.fired.has(`36:${r}`) && isValid(w, sp.proposal.value)) {
      mut(w, 'fired').add(`36:${r}`);
      const wasPrevote = w.step === 'prevote';
      if (wasPrevote) {
        w.lockedValue = sp.proposal.value;
        w.lockedRound = r;
      }
      w.validValue = sp.proposal.value;
      w.validRound = r;
      if (wasPrevote) castVote(w, 'precommit', id); // persists the new lock with the signature
      else persistLocks(w);
      return true;
    }
  }

  // Line 44: 2f+1 nil prevotes -> precommit nil.
  if (w.step === 'prevote' && quorum(rv.prevotes.tallyOf('nil'), set)) {
    castVote(w, 'precommit', null);
    return true;
  }

  // Line 47: 2f+1 precommits of any kind -> schedule the precommit timeout, once per round.
  if (quorum(rv.precommitPower, set) && !w.fired.has(`47:${r}`)) {
    mut(w, 'fired').add(`47:${r}`);
    w.effects.push({ type: 'schedule-timeout', kind: 'precommit', height: w.height, round: r, durationMs: timeoutMs(w.config.timeouts, 'precommit', r) });
  }
  return false;
}
