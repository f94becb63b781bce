/** Vote sets: append-only logs shared between states, seen through prefix views (CometBFT types/vote_set.go). */
import { type ConsensusMessage, type ConsensusState, type RoundVotes, type SignedProposal, type SignedVote, type ValidatorKey, type ValidatorSet, type ValueId, type VoteType } from './types.js';
import { keyOf, valueIdOf } from './sign-bytes.js';
import { powerMap } from './validator-set.js';

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
export class VoteLog {
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
export function lastBelow(ix: readonly number[], len: number): number {
  for (let j = ix.length - 1; j >= 0; j--) if (ix[j]! < len) return ix[j]!;
  return -1;
}

/** A state's view of a `VoteLog`: its first `len` entries. As a map: each signer's first vote. */
export class VoteView implements ReadonlyMap<ValidatorKey, SignedVote> {
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
export class TallyView implements ReadonlyMap<string, number> {
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
export class SignerLog {
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
export class RoundData implements RoundVotes {
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

export function makeRound(proposal: SignedProposal | null, prevotes: VoteView, precommits: VoteView, signers: SignerLog, signerCount: number): RoundData {
  return new RoundData(proposal, prevotes, precommits, signers, signerCount);
}

export const emptyRound = (): RoundData => makeRound(null, new VoteView(new VoteLog(), 0), new VoteView(new VoteLog(), 0), new SignerLog(), 0);

/** `view` plus one vote: appended in place when `view` is its log's full length, else on a copy. */
export function appendVote(view: VoteView, sv: SignedVote, key: ValidatorKey, id: string, power: number): VoteView {
  const log = view.len === view.log.votes.length ? view.log : view.log.copyPrefix(view.len);
  log.push(sv, key, id, power);
  return new VoteView(log, view.len + 1);
}

/** `rv` with `key` among its signers (no change if it is one already). */
export function withSigner(rv: RoundData, key: ValidatorKey, power: number): { signers: SignerLog; signerCount: number } {
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
export function adoptRound(rv: RoundVotes, set: ValidatorSet | null): RoundData {
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
export class RoundTable implements ReadonlyMap<number, RoundVotes> {
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
