/**
 * Tendermint as a pure state machine (arXiv 1807.04938, Algorithm 1; CometBFT consensus spec).
 *
 * `step(state, event)` never mutates its input and does no I/O: it returns the next state and
 * the effects the driver must carry out, in order. Line numbers in comments refer to
 * Algorithm 1 of the paper.
 */
import { encodeCanonical } from '../crypto/cbor.js';
import { blake3, domain } from '../crypto/blake3.js';
import {
  ConsensusError,
  type CommitCertificate,
  type ConsensusConfig,
  type ConsensusMessage,
  type ConsensusState,
  type Effect,
  type Event,
  type Evidence,
  type Proposal,
  type RoundVotes,
  type SignedProposal,
  type SignedVote,
  type SignerRecord,
  type Step,
  type StepResult,
  type TimeoutConfig,
  type TimeoutKind,
  type Validator,
  type ValidatorKey,
  type ValidatorSet,
  type ValueId,
  type VerifyFn,
  type Vote,
  type VoteType,
} from './types.js';

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
const MAX_ROUND = 1 << 20;
/** Fixpoint loop bound of `evaluate`: each iteration changes step or round, at most a handful per event. */
const MAX_EVALUATE_ITERATIONS = 64;

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

// ---------------------------------------------------------------------------------------------
// Small helpers

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += HEX[b]!;
  return s;
}

function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const valueIdMemo = new WeakMap<Uint8Array, ValueId>();
/** hex(BLAKE3(value)): the id votes refer to. Memoised per array object (values are immutable by contract). */
export function valueIdOf(value: Uint8Array): ValueId {
  let id = valueIdMemo.get(value);
  if (id === undefined) {
    id = toHex(blake3(value));
    valueIdMemo.set(value, id);
  }
  return id;
}

const VALUE_ID_RE = /^[0-9a-f]{64}$/;
const isIndex = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isKey = (k: unknown): k is Uint8Array => k instanceof Uint8Array && k.length === 32;
const isList = (x: unknown): boolean => Array.isArray(x);
const isSig = (s: unknown): s is Uint8Array => s instanceof Uint8Array && s.length === 64;

// ---------------------------------------------------------------------------------------------
// Sign bytes

const voteDomain = domain('fednode/v1/vote');
const proposalDomain = domain('fednode/v1/proposal');

/**
 * Digest memo per vote object (votes are immutable by contract): in one process (simnet,
 * benchmarks, tests) the same vote object reaches many cores and is digested once.
 */
const voteDigestMemo = new WeakMap<Vote, { cluster: string; digest: Uint8Array }>();

export function voteDigest(cluster: string, vote: Vote): Uint8Array {
  const memo = voteDigestMemo.get(vote);
  if (memo !== undefined && memo.cluster === cluster) return memo.digest;
  const digest = voteDomain.digest(encodeCanonical({ cluster, type: vote.type, height: vote.height, round: vote.round, value: vote.valueId }));
  voteDigestMemo.set(vote, { cluster, digest });
  return digest;
}

export function proposalDigest(cluster: string, proposal: Proposal): Uint8Array {
  return proposalDomain.digest(
    encodeCanonical({
      cluster,
      height: proposal.height,
      round: proposal.round,
      value: valueIdOf(proposal.value),
      validRound: proposal.validRound,
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Validator sets and the proposer

export function makeValidatorSet(validators: readonly Validator[], sinceHeight: number): ValidatorSet {
  if (!isIndex(sinceHeight) || sinceHeight < 1) throw new ConsensusError('ERR_VALIDATOR_SET', 'sinceHeight must be a positive integer', { sinceHeight });
  if (validators.length === 0) throw new ConsensusError('ERR_VALIDATOR_SET', 'validator set is empty');
  const seen = new Set<string>();
  let total = 0;
  for (const v of validators) {
    if (!isKey(v.publicKey)) throw new ConsensusError('ERR_VALIDATOR_SET', 'validator public key must be 32 bytes');
    if (!isIndex(v.power) || v.power < 1) throw new ConsensusError('ERR_VALIDATOR_SET', 'validator power must be a positive integer', { power: v.power });
    const k = toHex(v.publicKey);
    if (seen.has(k)) throw new ConsensusError('ERR_VALIDATOR_SET', 'duplicate validator', { validator: k });
    seen.add(k);
    total += v.power;
  }
  // 2^40 total power keeps 3 * power exact in doubles.
  if (total > 2 ** 40) throw new ConsensusError('ERR_VALIDATOR_SET', 'total voting power too large', { total });
  const sorted = [...validators]
    .map((v) => ({ publicKey: v.publicKey, power: v.power }))
    .sort((a, b) => (toHex(a.publicKey) < toHex(b.publicKey) ? -1 : 1));
  return { validators: sorted, totalPower: total, sinceHeight };
}

const powerMemo = new WeakMap<ValidatorSet, Map<ValidatorKey, number>>();
/** Voting power by validator key (memoised per set object). */
export function powerMap(set: ValidatorSet): ReadonlyMap<ValidatorKey, number> {
  let m = powerMemo.get(set);
  if (m === undefined) {
    m = new Map(set.validators.map((v) => [toHex(v.publicKey), v.power]));
    powerMemo.set(set, m);
  }
  return m;
}

/** Checkpoints of the priority walk per set: at most 8, the smallest k evicted first. */
const PRIORITY_CHECKPOINTS = 8;
const priorityMemo = new WeakMap<ValidatorSet, Map<number, number[]>>();

/**
 * CometBFT's proposer-priority weighted round robin. Step k: every priority += power, the
 * highest priority (ties: smallest key, i.e. first in canonical order) proposes and pays
 * totalPower. Priorities start at zero at `sinceHeight` round 0, and sum to zero forever after,
 * so CometBFT's centering and rescaling are no-ops here. Proposer of (height, round) is the one
 * chosen at step k = (height - sinceHeight) + round, as CometBFT does within and across heights.
 */
export function proposerFor(set: ValidatorSet, height: number, round: number): Validator {
  const k = Math.max(0, height - set.sinceHeight) + round;
  let cps = priorityMemo.get(set);
  if (cps === undefined) {
    cps = new Map();
    priorityMemo.set(set, cps);
  }
  // Start from the nearest checkpoint at or below k (priorities after that many increments).
  let from = 0;
  for (const ck of cps.keys()) if (ck <= k && ck > from) from = ck;
  const pr = from === 0 ? set.validators.map(() => 0) : [...cps.get(from)!];
  for (let j = from; j < k; j++) {
    const best = argmaxAfterAdd(set, pr);
    for (let i = 0; i < pr.length; i++) pr[i] = pr[i]! + set.validators[i]!.power;
    pr[best] = pr[best]! - set.totalPower;
  }
  if (k > from && !cps.has(k)) {
    if (cps.size >= PRIORITY_CHECKPOINTS) {
      let min = Infinity;
      for (const ck of cps.keys()) min = Math.min(min, ck);
      cps.delete(min);
    }
    cps.set(k, [...pr]);
  }
  return set.validators[argmaxAfterAdd(set, pr)]!;
}

/** Index with the highest priority once every validator's power is added (ties: lowest index). */
function argmaxAfterAdd(set: ValidatorSet, pr: readonly number[]): number {
  let best = 0;
  let bestP = -Infinity;
  for (let i = 0; i < pr.length; i++) {
    const p = pr[i]! + set.validators[i]!.power;
    if (p > bestP) {
      best = i;
      bestP = p;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Commit certificates

export type CertificateVerdict = { ok: true; power: number } | { ok: false; reason: string };

/**
 * Pure check of a commit certificate: > 2/3 of `validators`' voting power, from distinct
 * validators, validly signed precommits for (cert.height, cert.round, cert.valueId).
 */
export function verifyCommitCertificate(cert: CommitCertificate, validators: ValidatorSet, verify: VerifyFn, cluster: string): CertificateVerdict {
  if (!isIndex(cert.height) || !isIndex(cert.round)) return { ok: false, reason: 'bad height or round' };
  if (typeof cert.valueId !== 'string' || !VALUE_ID_RE.test(cert.valueId)) return { ok: false, reason: 'bad value id' };
  if (!isList(cert.precommits)) return { ok: false, reason: 'precommits not a list' };
  // Cheapest bound first: no honest certificate holds more signatures than validators.
  if (cert.precommits.length > validators.validators.length) return { ok: false, reason: 'more precommits than validators' };
  const powers = powerMap(validators);
  const seen = new Set<string>();
  let power = 0;
  for (const sv of cert.precommits) {
    const v = sv.vote;
    if (v.type !== 'precommit') return { ok: false, reason: 'not a precommit' };
    if (v.height !== cert.height) return { ok: false, reason: 'precommit for another height' };
    if (v.round !== cert.round) return { ok: false, reason: 'precommit for another round' };
    if (v.valueId !== cert.valueId) return { ok: false, reason: 'precommit for another value' };
    if (!isKey(sv.signer) || !isSig(sv.signature)) return { ok: false, reason: 'malformed signer or signature' };
    const key = toHex(sv.signer);
    const p = powers.get(key);
    if (p === undefined) return { ok: false, reason: 'signer is not a validator' };
    if (seen.has(key)) return { ok: false, reason: 'duplicate signer' };
    seen.add(key);
    if (!verify(sv.signer, voteDigest(cluster, v), sv.signature)) return { ok: false, reason: 'bad signature' };
    power += p;
  }
  if (power * 3 <= validators.totalPower * 2) return { ok: false, reason: 'insufficient voting power' };
  return { ok: true, power };
}

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
    rounds: new Map(),
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
// The working copy of one step

interface Work {
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
  rounds: Map<number, RoundVotes>;
  values: Map<ValueId, Uint8Array>;
  validity: Map<ValueId, boolean>;
  fired: Set<string>;
  futureRounds: Map<ValidatorKey, readonly number[]>;
  buffered: ConsensusMessage[];
  signerRecord: SignerRecord;
  awaitingValueRound: number;
  decision: ConsensusState['decision'];
  evidence: Evidence[];
  owned: Set<Owned>;
  effects: Effect[];
}

function begin(s: ConsensusState): Work {
  // Collections are shared with the input state until first written (see `mut`): most events
  // touch one or two of them, and copying all of them per event dominated the step cost.
  return {
    ...s,
    rounds: s.rounds as Map<number, RoundVotes>,
    values: s.values as Map<ValueId, Uint8Array>,
    validity: s.validity as Map<ValueId, boolean>,
    fired: s.fired as Set<string>,
    futureRounds: s.futureRounds as Map<ValidatorKey, readonly number[]>,
    buffered: s.buffered as ConsensusMessage[],
    evidence: s.evidence as Evidence[],
    owned: new Set(),
    effects: [],
  };
}

type Owned = 'rounds' | 'values' | 'validity' | 'fired' | 'futureRounds' | 'buffered' | 'evidence';

/** Copy-on-first-write of one collection of the working copy; the input state is never mutated. */
function mut<K extends Owned>(w: Work, k: K): Work[K] {
  if (!w.owned.has(k)) {
    w.owned.add(k);
    const c = w[k] as unknown;
    const copy = c instanceof Map ? new Map(c) : c instanceof Set ? new Set(c) : [...(c as unknown[])];
    (w as unknown as Record<string, unknown>)[k] = copy;
  }
  return w[k];
}

function finish(w: Work): StepResult {
  const { effects, owned: _owned, ...state } = w;
  return { state, effects };
}

const EMPTY_ROUND: RoundVotes = { prevotes: new Map(), precommits: new Map(), proposal: null, prevoteTally: new Map(), prevotePower: 0, precommitTally: new Map(), precommitPower: 0 };

function roundOf(w: Work, r: number): RoundVotes {
  return w.rounds.get(r) ?? EMPTY_ROUND;
}

// ---------------------------------------------------------------------------------------------
// step

export function step(state: ConsensusState, event: Event): StepResult {
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
      break;
    case 'vote':
      if (acceptVote(w, event.vote, false)) evaluate(w);
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
  w.rounds = new Map();
  w.values = new Map();
  w.validity = new Map();
  w.fired = new Set();
  w.futureRounds = new Map();
  w.buffered = [];
  w.evidence = [...w.evidence];
  w.owned = new Set(['rounds', 'values', 'validity', 'fired', 'futureRounds', 'buffered', 'evidence']);
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
  if (toHex(proposerFor(set, w.height, round).publicKey) === w.self) {
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
  const key = toHex(signer);
  // Rule: only members of the current set (the next set differs by at most the H+2 changes).
  if (!powerMap(set).has(key)) return;
  let count = 0;
  for (const b of w.buffered) if (toHex(messageSigner(b)) === key) count++;
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
  const key = toHex(sp.signer);
  if (key !== toHex(proposerFor(set, p.height, p.round).publicKey)) return false; // rule: proposer of the round
  const rv = roundOf(w, p.round);
  if (rv.proposal !== null) return false; // rule: first proposal per round only
  // Signature before the future-round bound: a forger must not use up a validator's round slots.
  if (!own && !w.config.verify(sp.signer, proposalDigest(w.config.cluster, p), sp.signature)) return false; // rule: signature
  if (!own && !admitRound(w, key, p.round)) return false;
  mut(w, 'rounds').set(p.round, { ...rv, proposal: sp });
  mut(w, 'values').set(valueIdOf(p.value), p.value);
  return true;
}

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
  if (v.valueId !== null && (typeof v.valueId !== 'string' || !VALUE_ID_RE.test(v.valueId))) return false;
  if (!isKey(sv.signer) || !isSig(sv.signature)) return false;
  const key = toHex(sv.signer);
  if (!powerMap(set).has(key)) return false; // rule: validators only
  const rv = roundOf(w, v.round);
  const slot = v.type === 'prevote' ? rv.prevotes : rv.precommits;
  const prior = slot.get(key);
  if (prior !== undefined) {
    if (prior.vote.valueId === v.valueId) return false; // duplicate delivery
    // Conflicting vote: evidence if validly signed; never counted (the first one stands).
    if (w.config.verify(sv.signer, voteDigest(w.config.cluster, v), sv.signature)) addEvidence(w, key, prior, sv);
    return false;
  }
  if (!own && !w.config.verify(sv.signer, voteDigest(w.config.cluster, v), sv.signature)) return false; // rule: signature
  if (!own && !admitRound(w, key, v.round)) return false; // after the signature: forgers cannot use up slots
  const next = new Map(slot);
  next.set(key, sv);
  const power = powerMap(set).get(key)!;
  const id = v.valueId ?? 'nil';
  const tallyOld = v.type === 'prevote' ? rv.prevoteTally : rv.precommitTally;
  const tallyNew = new Map(tallyOld); // few distinct values: cheap
  tallyNew.set(id, (tallyOld.get(id) ?? 0) + power);
  mut(w, 'rounds').set(
    v.round,
    v.type === 'prevote'
      ? { ...rv, prevotes: next, prevoteTally: tallyNew, prevotePower: rv.prevotePower + power }
      : { ...rv, precommits: next, precommitTally: tallyNew, precommitPower: rv.precommitPower + power },
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

function evaluateOnce(w: Work, set: ValidatorSet): boolean {
  // Line 49: a proposal's value with 2f+1 precommits in any round decides.
  for (const [r, rv] of w.rounds) {
    for (const [id, power] of rv.precommitTally) {
      if (id === 'nil' || !quorum(power, set)) continue;
      const value = w.values.get(id);
      if (value === undefined || !isValid(w, value)) continue;
      const precommits = [...rv.precommits.entries()]
        .filter(([, sv]) => sv.vote.valueId === id)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([, sv]) => sv);
      decide(w, r, value, { height: w.height, round: r, valueId: id, precommits });
      return false;
    }
  }

  // Line 55: f+1 voting power seen in a higher round -> skip to it (the highest such round).
  let skipTo = -1;
  for (const [r, rv] of w.rounds) {
    if (r <= w.round || r <= skipTo) continue;
    const signers = new Set<string>([...rv.prevotes.keys(), ...rv.precommits.keys()]);
    if (rv.proposal !== null) signers.add(toHex(rv.proposal.signer));
    const powers = powerMap(set);
    let power = 0;
    for (const k of signers) power += powers.get(k) ?? 0;
    if (oneThird(power, set)) skipTo = r;
  }
  if (skipTo > w.round) {
    startRoundAt(w, skipTo);
    return true;
  }

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
    if (quorum(roundOf(w, p.validRound).prevoteTally.get(id) ?? 0, set)) {
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
  if ((w.step === 'prevote' || w.step === 'precommit') && sp !== null && !w.fired.has(`36:${r}`)) {
    const id = valueIdOf(sp.proposal.value);
    if (quorum(rv.prevoteTally.get(id) ?? 0, set) && isValid(w, sp.proposal.value)) {
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
  if (w.step === 'prevote' && quorum(rv.prevoteTally.get('nil') ?? 0, set)) {
    castVote(w, 'precommit', null);
    return true;
  }

  // Line 47: 2f+1 precommits of any kind -> schedule the precommit timeout, once per round.
  if (!w.fired.has(`47:${r}`) && quorum(rv.precommitPower, set)) {
    mut(w, 'fired').add(`47:${r}`);
    w.effects.push({ type: 'schedule-timeout', kind: 'precommit', height: w.height, round: r, durationMs: timeoutMs(w.config.timeouts, 'precommit', r) });
  }
  return false;
}
