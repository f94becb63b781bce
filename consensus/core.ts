/**
 * Tendermint as a pure state machine (arXiv 1807.04938, Algorithm 1; CometBFT consensus spec).
 *
 * `step(state, event)` never mutates its input and does no I/O: it returns the next state and
 * the effects the driver must carry out, in order. Line numbers in comments refer to
 * Algorithm 1 of the paper.
 */
import { toHex } from '../base/hex.js';
import { encodeCanonical } from '../crypto/cbor.js';
import { blake3, domain } from '../crypto/blake3.js';
import { ConsensusError, type CommitCertificate, type ConsensusConfig, type ConsensusMessage, type ConsensusState, type Effect, type Event, type Evidence, type Proposal, type RoundVotes, type SignedProposal, type SignedVote, type SignerRecord, type Step, type StepResult, type TimeoutConfig, type TimeoutKind, type Validator, type ValidatorKey, type ValidatorSet, type ValueId, type VerifyFn, type Vote, type VoteType } from './types.js';

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

const keyMemo = new WeakMap<Uint8Array, ValidatorKey>();
/** toHex of a public key, memoised per array object (keys are immutable by contract, as values). */
function keyOf(publicKey: Uint8Array): ValidatorKey {
  let k = keyMemo.get(publicKey);
  if (k === undefined) {
    k = toHex(publicKey);
    keyMemo.set(publicKey, k);
  }
  return k;
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
    const key = keyOf(sv.signer);
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
// Vote sets: append-only logs shared between states, seen through prefix views

/**
 * Distinct votes per validator per (height, round, type) kept unconditionally. An honest
 * validator signs one. The second is the evidence of equivocation and, kept as a vote, lets a
 * proof-of-lock or a commit that a Byzantine signer's OTHER vote completed be proven to nodes
 * that saw its first vote first (CometBFT keeps per-block vote sets for this).
 * Beyond these two, a vote is kept only for a value that already has more than 1/3 of the power
 * at that (round, type) (so some honest validator voted for it: a value that may be part of a
 * quorum somebody saw, as CometBFT accepts votes for a block a peer claims +2/3 for); others are
 * dropped. Honest validators vote once each, so at most n - f values ever pass that bar: a
 * Byzantine signer costs at most 2 + (n - f) entries per (round, type), never more than it
 * signs for honest-backed values. (Found by the simnet: with a limit of 2, n = 10 seed 43 stalled
 * when an amnesic signer's third prevote at round 2 completed the quorum others had locked on.)
 */
export const MAX_VOTES_PER_SIGNER = 2;

/**
 * Storage of one (round, type): votes in arrival order with running sums, never rewritten.
 * States see it through `VoteView`s of a prefix length, so a state created earlier never sees
 * a vote appended later: `step` appends in place (O(1) per vote) when the view it extends is the
 * log's full length, and copies the prefix (O(votes), only when a caller steps an old state
 * again) otherwise.
 */
class VoteLog {
  readonly votes: SignedVote[] = [];
  readonly keys: ValidatorKey[] = [];
  /** Value id per entry, 'nil' for nil. */
  readonly ids: string[] = [];
  readonly powers: number[] = [];
  /** Whether the entry is its signer's first vote here (the one `get` returns, counted once in `power`). */
  readonly first: boolean[] = [];
  /** Power / count of distinct signers after entry i. */
  readonly distinctPower: number[] = [];
  readonly distinctCount: number[] = [];
  /** Power of distinct signers for ids[i] after entry i. */
  readonly tally: number[] = [];
  /** Entry indices per signer (at most MAX_VOTES_PER_SIGNER) and per value id, ascending. */
  readonly byKey = new Map<ValidatorKey, number[]>();
  readonly byId = new Map<string, number[]>();

  push(sv: SignedVote, key: ValidatorKey, id: string, power: number): void {
    const i = this.votes.length;
    const mine = this.byKey.get(key);
    const same = this.byId.get(id);
    const isFirst = mine === undefined;
    this.votes.push(sv);
    this.keys.push(key);
    this.ids.push(id);
    this.powers.push(power);
    this.first.push(isFirst);
    this.distinctPower.push((i === 0 ? 0 : this.distinctPower[i - 1]!) + (isFirst ? power : 0));
    this.distinctCount.push((i === 0 ? 0 : this.distinctCount[i - 1]!) + (isFirst ? 1 : 0));
    this.tally.push((same === undefined ? 0 : this.tally[same[same.length - 1]!]!) + power);
    if (mine === undefined) this.byKey.set(key, [i]);
    else mine.push(i);
    if (same === undefined) this.byId.set(id, [i]);
    else same.push(i);
  }

  copyPrefix(len: number): VoteLog {
    const c = new VoteLog();
    for (let i = 0; i < len; i++) c.push(this.votes[i]!, this.keys[i]!, this.ids[i]!, this.powers[i]!);
    return c;
  }
}

/** Last index in ascending `ix` below `len`, or -1. */
function lastBelow(ix: readonly number[], len: number): number {
  for (let j = ix.length - 1; j >= 0; j--) if (ix[j]! < len) return ix[j]!;
  return -1;
}

/** A state's view of a `VoteLog`: its first `len` entries. As a map: each signer's first vote. */
class VoteView implements ReadonlyMap<ValidatorKey, SignedVote> {
  private materialized: Map<ValidatorKey, SignedVote> | null = null;
  constructor(
    readonly log: VoteLog,
    readonly len: number,
  ) {}

  get size(): number {
    return this.len === 0 ? 0 : this.log.distinctCount[this.len - 1]!;
  }
  /** Voting power of distinct signers (each counted once, whatever it signed). */
  get power(): number {
    return this.len === 0 ? 0 : this.log.distinctPower[this.len - 1]!;
  }
  get(key: ValidatorKey): SignedVote | undefined {
    const ix = this.log.byKey.get(key);
    if (ix === undefined || ix[0]! >= this.len) return undefined;
    return this.log.votes[ix[0]!];
  }
  has(key: ValidatorKey): boolean {
    return this.get(key) !== undefined;
  }
  /** Power of distinct signers that voted for `id` ('nil' for nil), second votes included. */
  tallyOf(id: string): number {
    const ix = this.log.byId.get(id);
    if (ix === undefined) return 0;
    const i = lastBelow(ix, this.len);
    return i < 0 ? 0 : this.log.tally[i]!;
  }
  /** Every visible vote for `id` (one per signer), in arrival order. */
  votesFor(id: string): SignedVote[] {
    const out: SignedVote[] = [];
    for (const i of this.log.byId.get(id) ?? []) if (i < this.len) out.push(this.log.votes[i]!);
    return out;
  }
  /** Ids with at least one visible vote. */
  ids(): string[] {
    const out: string[] = [];
    for (const [id, ix] of this.log.byId) if (ix[0]! < this.len) out.push(id);
    return out;
  }
  private map(): Map<ValidatorKey, SignedVote> {
    if (this.materialized === null) {
      const m = new Map<ValidatorKey, SignedVote>();
      for (let i = 0; i < this.len; i++) if (this.log.first[i]!) m.set(this.log.keys[i]!, this.log.votes[i]!);
      this.materialized = m;
    }
    return this.materialized;
  }
  entries(): MapIterator<[ValidatorKey, SignedVote]> {
    return this.map().entries();
  }
  keys(): MapIterator<ValidatorKey> {
    return this.map().keys();
  }
  values(): MapIterator<SignedVote> {
    return this.map().values();
  }
  forEach(cb: (value: SignedVote, key: ValidatorKey, map: ReadonlyMap<ValidatorKey, SignedVote>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.map()) cb.call(thisArg, v, k, this);
  }
  [Symbol.iterator](): MapIterator<[ValidatorKey, SignedVote]> {
    return this.map().entries();
  }
}

/** The same prefix as a tally: value id ('nil' for nil) -> power of distinct signers for it. */
class TallyView implements ReadonlyMap<string, number> {
  private materialized: Map<string, number> | null = null;
  constructor(private readonly votes: VoteView) {}
  get size(): number {
    return this.map().size;
  }
  get(id: string): number | undefined {
    const t = this.votes.tallyOf(id);
    return t === 0 ? undefined : t;
  }
  has(id: string): boolean {
    return this.votes.tallyOf(id) > 0;
  }
  private map(): Map<string, number> {
    if (this.materialized === null) this.materialized = new Map(this.votes.ids().map((id) => [id, this.votes.tallyOf(id)]));
    return this.materialized;
  }
  entries(): MapIterator<[string, number]> {
    return this.map().entries();
  }
  keys(): MapIterator<string> {
    return this.map().keys();
  }
  values(): MapIterator<number> {
    return this.map().values();
  }
  forEach(cb: (value: number, key: string, map: ReadonlyMap<string, number>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.map()) cb.call(thisArg, v, k, this);
  }
  [Symbol.iterator](): MapIterator<[string, number]> {
    return this.map().entries();
  }
}

/** Distinct signers of anything at one round (line 55), with their power: append-only, prefix views. */
class SignerLog {
  readonly index = new Map<ValidatorKey, number>();
  readonly keys: ValidatorKey[] = [];
  readonly powers: number[] = [];
  readonly cumulative: number[] = [];
  push(key: ValidatorKey, power: number): void {
    const i = this.keys.length;
    this.index.set(key, i);
    this.keys.push(key);
    this.powers.push(power);
    this.cumulative.push((i === 0 ? 0 : this.cumulative[i - 1]!) + power);
  }
}

/**
 * Everything one round holds, as the core stores it (a `RoundVotes` with its logs). The tally
 * maps are built on first read (the core reads `tallyOf` directly; one RoundData is made per
 * accepted vote).
 */
class RoundData implements RoundVotes {
  private pt: TallyView | null = null;
  private ct: TallyView | null = null;
  readonly prevotePower: number;
  readonly precommitPower: number;
  /** Power of distinct signers of a proposal, prevote or precommit at this round. */
  readonly signerPower: number;
  constructor(
    readonly proposal: SignedProposal | null,
    readonly prevotes: VoteView,
    readonly precommits: VoteView,
    readonly signers: SignerLog,
    readonly signerCount: number,
  ) {
    this.prevotePower = prevotes.power;
    this.precommitPower = precommits.power;
    this.signerPower = signerCount === 0 ? 0 : signers.cumulative[signerCount - 1]!;
  }
  get prevoteTally(): TallyView {
    return (this.pt ??= new TallyView(this.prevotes));
  }
  get precommitTally(): TallyView {
    return (this.ct ??= new TallyView(this.precommits));
  }
}

function makeRound(proposal: SignedProposal | null, prevotes: VoteView, precommits: VoteView, signers: SignerLog, signerCount: number): RoundData {
  return new RoundData(proposal, prevotes, precommits, signers, signerCount);
}

const emptyRound = (): RoundData => makeRound(null, new VoteView(new VoteLog(), 0), new VoteView(new VoteLog(), 0), new SignerLog(), 0);

/** `view` plus one vote: appended in place when `view` is its log's full length, else on a copy. */
function appendVote(view: VoteView, sv: SignedVote, key: ValidatorKey, id: string, power: number): VoteView {
  const log = view.len === view.log.votes.length ? view.log : view.log.copyPrefix(view.len);
  log.push(sv, key, id, power);
  return new VoteView(log, view.len + 1);
}

/** `rv` with `key` among its signers (no change if it is one already). */
function withSigner(rv: RoundData, key: ValidatorKey, power: number): { signers: SignerLog; signerCount: number } {
  const i = rv.signers.index.get(key);
  if (i !== undefined && i < rv.signerCount) return { signers: rv.signers, signerCount: rv.signerCount };
  let log = rv.signers;
  if (rv.signerCount !== log.keys.length) {
    log = new SignerLog();
    for (let j = 0; j < rv.signerCount; j++) log.push(rv.signers.keys[j]!, rv.signers.powers[j]!);
  }
  log.push(key, power);
  return { signers: log, signerCount: rv.signerCount + 1 };
}

/**
 * A round of a state built outside the core (a test, a decoded snapshot) as the core stores it:
 * rebuilt once from its maps, the first-vote maps only (O(votes)).
 */
function adoptRound(rv: RoundVotes, set: ValidatorSet | null): RoundData {
  if (rv instanceof RoundData) return rv;
  const powers = set === null ? new Map<ValidatorKey, number>() : powerMap(set);
  let round = emptyRound();
  const add = (type: VoteType, sv: SignedVote): void => {
    const key = keyOf(sv.signer);
    const power = powers.get(key) ?? 0;
    const id = sv.vote.valueId ?? 'nil';
    const pv = type === 'prevote' ? appendVote(round.prevotes, sv, key, id, power) : round.prevotes;
    const pc = type === 'precommit' ? appendVote(round.precommits, sv, key, id, power) : round.precommits;
    const sg = withSigner(round, key, power);
    round = makeRound(round.proposal, pv, pc, sg.signers, sg.signerCount);
  };
  for (const sv of rv.prevotes.values()) add('prevote', sv);
  for (const sv of rv.precommits.values()) add('precommit', sv);
  if (rv.proposal !== null) {
    const key = keyOf(rv.proposal.signer);
    const sg = withSigner(round, key, powers.get(key) ?? 0);
    round = makeRound(rv.proposal, round.prevotes, round.precommits, sg.signers, sg.signerCount);
  }
  return round;
}

/**
 * The votes of one type for one value at a round, second votes of equivocators included (one per
 * signer). For relaying a proof-of-lock: `rv.prevotes` alone holds each signer's FIRST vote only.
 */
export function roundVotesFor(rv: RoundVotes, type: VoteType, valueId: ValueId | null): SignedVote[] {
  const view = type === 'prevote' ? rv.prevotes : rv.precommits;
  const id = valueId ?? 'nil';
  if (view instanceof VoteView) return view.votesFor(id);
  return [...view.values()].filter((sv) => (sv.vote.valueId ?? 'nil') === id);
}

/**
 * The rounds of the current height as the core stores them: a handful of entries (current,
 * a few ahead, bounded by maxFutureRoundsPerSigner) in insertion order, in two short arrays.
 * Copy-on-write per step is two array slices (a Map copy per accepted vote cost more than the
 * vote itself). Read-only to everyone but the step that copied it.
 */
class RoundTable implements ReadonlyMap<number, RoundVotes> {
  constructor(
    private readonly ks: number[] = [],
    private readonly vs: RoundVotes[] = [],
  ) {}
  static from(m: ReadonlyMap<number, RoundVotes>): RoundTable {
    return m instanceof RoundTable ? m : new RoundTable([...m.keys()], [...m.values()]);
  }
  get size(): number {
    return this.ks.length;
  }
  keyAt(i: number): number {
    return this.ks[i]!;
  }
  valueAt(i: number): RoundVotes {
    return this.vs[i]!;
  }
  get(k: number): RoundVotes | undefined {
    const i = this.ks.indexOf(k);
    return i < 0 ? undefined : this.vs[i];
  }
  has(k: number): boolean {
    return this.ks.includes(k);
  }
  /** Only on a table this step owns (see `mut`). */
  set(k: number, v: RoundVotes): void {
    const i = this.ks.indexOf(k);
    if (i < 0) {
      this.ks.push(k);
      this.vs.push(v);
    } else this.vs[i] = v;
  }
  copy(): RoundTable {
    return new RoundTable(this.ks.slice(), this.vs.slice());
  }
  private map(): Map<number, RoundVotes> {
    return new Map(this.ks.map((k, i) => [k, this.vs[i]!]));
  }
  entries(): MapIterator<[number, RoundVotes]> {
    return this.map().entries();
  }
  keys(): MapIterator<number> {
    return this.map().keys();
  }
  values(): MapIterator<RoundVotes> {
    return this.map().values();
  }
  forEach(cb: (value: RoundVotes, key: number, map: ReadonlyMap<number, RoundVotes>) => void, thisArg?: unknown): void {
    for (let i = 0; i < this.ks.length; i++) cb.call(thisArg, this.vs[i]!, this.ks[i]!, this);
  }
  [Symbol.iterator](): MapIterator<[number, RoundVotes]> {
    return this.map().entries();
  }
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

function begin(s: ConsensusState): Work {
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

type Owned = 'rounds' | 'values' | 'validity' | 'fired' | 'futureRounds' | 'buffered' | 'evidence';
const OWNED_BIT: Record<Owned, number> = { rounds: 1, values: 2, validity: 4, fired: 8, futureRounds: 16, buffered: 32, evidence: 64 };
const OWNED_ALL = 127;

/**
 * Copy-on-first-write of one collection of the working copy; the input state is never mutated.
 * The copies are shallow and per step: `rounds` holds a few rounds, and each round's vote sets
 * are shared logs extended in O(1) (see VoteLog), so no step copies a round's votes.
 */
function mut<K extends Owned>(w: Work, k: K): Work[K] {
  const bit = OWNED_BIT[k];
  if ((w.owned & bit) === 0) {
    w.owned |= bit;
    const c = w[k] as unknown;
    const copy = c instanceof RoundTable ? c.copy() : c instanceof Map ? new Map(c) : c instanceof Set ? new Set(c) : [...(c as unknown[])];
    (w as unknown as Record<string, unknown>)[k] = copy;
  }
  return w[k];
}

function finish(w: Work): StepResult {
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
function roundOf(w: Work, r: number): RoundData {
  const rv = w.rounds.get(r);
  return rv === undefined ? emptyRound() : adoptRound(rv, w.validators);
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

function evaluateOnce(w: Work, set: ValidatorSet): boolean {
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
        return false;
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
    return true;
  }
  if (validFrom !== null && validFrom.proposal !== null) {
    w.validValue = validFrom.proposal.proposal.value;
    w.validRound = validRound;
    persistLocks(w);
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

/**
 * Proof-of-lock relay (CometBFT's gossipVotesRoutine sends a peer the prevotes of the
 * proposal's POL round): once a height needs more than one round, re-gossip the
 * proposal and the prevotes that justify this node's valid value and the current
 * proposal's validRound. Without it an unlocked node that lost those prevotes can
 * never accept a re-proposal of the locked value, and locked and unlocked nodes
 * split the prevotes forever (found by the simnet: seed 26, n=4, amnesia + crash).
 * Pure: read from the state; used by the node's driver and the simnet alike; at most 2 (n + 1) messages per tick.
 */
export function proofOfLockMessages(core: ConsensusState): ConsensusMessage[] {
  if (core.step === 'decided' || core.round === 0) return [];
  const out: ConsensusMessage[] = [];
  const relay = (vr: number, valueId: string | null): void => {
    if (vr < 0 || valueId === null) return;
    const rv = core.rounds.get(vr);
    if (rv === undefined) return;
    if (rv.proposal !== null) out.push({ type: 'proposal', proposal: rv.proposal });
    for (const sv of roundVotesFor(rv, 'prevote', valueId)) out.push({ type: 'vote', vote: sv });
  };
  relay(core.validRound, core.validValue === null ? null : valueIdOf(core.validValue));
  const p = core.rounds.get(core.round)?.proposal ?? null;
  if (p !== null && p.proposal.validRound !== core.validRound) relay(p.proposal.validRound, valueIdOf(p.proposal.value));
  return out;
}
