import { describe, it, expect } from 'vitest';
import { createConsensusState, makeValidatorSet, proposerFor, roundVotesFor, step, valueIdOf, verifyCommitCertificate, LAN_TIMEOUTS, timeoutMs } from '../../../consensus/core.js';
import { toHex } from '../../../base/hex.js';
import type { ConsensusState, Effect, Event, SignedVote, StepResult, Vote } from '../../../consensus/types.js';
import { CLUSTER, Router, configFor, ident, signProposal, signVote, verify } from '../../helpers/consensus-harness.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const ids = [0, 1, 2, 3].map(ident);

function run(s: ConsensusState, events: Event[]): { state: ConsensusState; effects: Effect[] } {
  const effects: Effect[] = [];
  let state = s;
  for (const e of events) {
    const r: StepResult = step(state, e);
    state = r.state;
    effects.push(...r.effects);
  }
  return { state, effects };
}

const votesOf = (effects: Effect[], type: 'prevote' | 'precommit'): Vote[] =>
  effects.flatMap((e) => (e.type === 'broadcast' && e.message.type === 'vote' && e.message.vote.vote.type === type ? [e.message.vote.vote] : []));

describe('good case', () => {
  it('4 validators commit the proposer value in round 0, with a certificate that verifies', () => {
    const r = new Router(ids);
    r.startAll(1);
    const proposer = r.index(toHex(proposerFor(r.validators, 1, 0).publicKey));
    const expected = r.valueFor(proposer, 1, 0);
    for (const n of r.nodes) {
      expect(n.decided).toHaveLength(1);
      const d = n.decided[0]!;
      if (d.type !== 'decide') throw new Error('not a decide');
      expect(d.height).toBe(1);
      expect(d.round).toBe(0);
      expect(toHex(d.value)).toBe(toHex(expected));
      expect(verifyCommitCertificate(d.certificate, r.validators, verify, CLUSTER)).toMatchObject({ ok: true });
      expect(n.state.step).toBe('decided');
    }
  });

  it('persists the signer record before every broadcast it covers', () => {
    const r = new Router(ids);
    r.startAll(1);
    for (const n of r.nodes) {
      n.effects.forEach((e, i) => {
        if (e.type !== 'broadcast') return;
        const sig = e.message.type === 'vote' ? e.message.vote.signature : e.message.proposal.signature;
        const persistedBefore = n.effects.slice(0, i).some((p) => p.type === 'persist' && p.record.signature !== null && toHex(p.record.signature) === toHex(sig));
        expect(persistedBefore).toBe(true);
      });
    }
  });

  it('decides consecutive heights with the next height buffered and replayed', () => {
    const r = new Router(ids);
    for (let h = 1; h <= 5; h++) r.startAll(h);
    for (const n of r.nodes) expect(n.decided.map((d) => (d.type === 'decide' ? d.height : -1))).toEqual([1, 2, 3, 4, 5]);
    // Start height 6 on nodes 0-2 only: their messages for height 6 reach node 3 while it is at 5 (decided).
    r.startAll(6, [0, 1, 2]);
    expect(r.nodes[3]!.state.buffered.length).toBeGreaterThan(0);
    expect(r.nodes[3]!.state.buffered.length).toBeLessThanOrEqual(3 * 8);
    r.startAll(6, [3]);
    expect(r.nodes[3]!.decided).toHaveLength(6);
  });
});

describe('faulty minority', () => {
  it('7 validators with 2 silent still commit (by timeouts if a silent one proposes)', () => {
    const seven = [0, 1, 2, 3, 4, 5, 6].map(ident);
    const r = new Router(seven);
    const silent = [r.index(toHex(proposerFor(r.validators, 1, 0).publicKey)), r.index(toHex(proposerFor(r.validators, 1, 2).publicKey))];
    r.link = (from) => !silent.includes(from);
    r.startAll(1);
    const live = [0, 1, 2, 3, 4, 5, 6].filter((i) => !silent.includes(i));
    for (let round = 0; round < 5 && r.nodes[live[0]!]!.decided.length === 0; round++) {
      r.fireTimeouts('propose', live);
      r.fireTimeouts('prevote', live);
      r.fireTimeouts('precommit', live);
    }
    const values = new Set(live.map((i) => { const d = r.nodes[i]!.decided[0]; return d?.type === 'decide' ? toHex(d.value) : 'none'; }));
    expect(values.size).toBe(1);
    expect(values.has('none')).toBe(false);
    // Round 0's proposer was silent: the decision came in round 1 (a live proposer).
    expect(r.nodes[live[0]!]!.decided[0]).toMatchObject({ round: 1 });
  });
});

describe('purity', () => {
  it('step never mutates the state it is given', () => {
    const r = new Router(ids);
    const proposer = r.index(toHex(proposerFor(r.validators, 1, 0).publicKey));
    r.link = (from) => from !== proposer;
    r.startAll(1);
    const other = (proposer + 1) % 4;
    const s = r.nodes[other]!.state;
    const snapshot = (x: ConsensusState): string =>
      JSON.stringify({
        h: x.height, r: x.round, st: x.step, l: x.lockedRound, v: x.validRound,
        rounds: [...x.rounds.entries()].map(([k, v]) => [k, v.prevotes.size, v.precommits.size, v.proposal !== null, [...v.prevoteTally], [...v.precommitTally]]),
        values: x.values.size, validity: x.validity.size, fired: [...x.fired], fr: [...x.futureRounds], b: x.buffered.length, e: x.evidence.length, rec: [x.signerRecord.height, x.signerRecord.round, x.signerRecord.step],
      });
    const before = snapshot(s);
    const a = (proposer + 2) % 4;
    const events: Event[] = [
      { type: 'timeout', kind: 'propose', height: 1, round: 0 },
      { type: 'vote', vote: signVote(ids[a]!, { type: 'prevote', height: 1, round: 0, valueId: valueIdOf(enc('q')) }) },
      { type: 'vote', vote: signVote(ids[a]!, { type: 'prevote', height: 1, round: 7, valueId: null }) },
      { type: 'vote', vote: signVote(ids[a]!, { type: 'prevote', height: 2, round: 0, valueId: null }) },
      { type: 'start-height', height: 2, validators: r.validators },
    ];
    for (const e of events) step(s, e);
    run(s, events);
    expect(snapshot(s)).toBe(before);
  });

  it('an old state stepped again branches: the newer state does not see the other branch', () => {
    const me = coreIndex();
    const { set, state } = lone(me);
    const [a, b, c] = [0, 1, 2, 3].filter((i) => i !== me) as [number, number, number];
    const v = enc('branch');
    const s0 = run(state, [{ type: 'start-height', height: 1, validators: set }, pv(a, 0, v)]).state;
    const left = step(s0, pv(b, 0, v)).state; // appended in place to the shared vote log
    const right = step(s0, pv(c, 0, null)).state; // s0 is no longer the log's tip: a copy
    const view = (x: ConsensusState): string[] => [...x.rounds.get(0)!.prevotes.keys()].sort();
    expect(view(s0)).toEqual([toHex(ids[a]!.publicKey)]);
    expect(view(left)).toEqual([toHex(ids[a]!.publicKey), toHex(ids[b]!.publicKey)].sort());
    expect(view(right)).toEqual([toHex(ids[a]!.publicKey), toHex(ids[c]!.publicKey)].sort());
    expect(left.rounds.get(0)!.prevoteTally.get('nil')).toBeUndefined();
    expect(right.rounds.get(0)!.prevoteTally.get(valueIdOf(v))).toBe(1);
    // And both branches go on independently.
    const left2 = step(left, pv(c, 0, v)).state;
    expect(left2.rounds.get(0)!.prevoteTally.get(valueIdOf(v))).toBe(3);
    expect(right.rounds.get(0)!.prevotes.size).toBe(2);
  });
});

describe('proposer', () => {
  it('rotates through equal-power validators', () => {
    const set = makeValidatorSet(ids.map((id) => ({ publicKey: id.publicKey, power: 1 })), 1);
    const seen = new Set([1, 2, 3, 4].map((h) => toHex(proposerFor(set, h, 0).publicKey)));
    expect(seen.size).toBe(4);
    // Round r of height h is the same slot as round 0 of height h + r.
    expect(toHex(proposerFor(set, 2, 1).publicKey)).toBe(toHex(proposerFor(set, 3, 0).publicKey));
  });

  it('chooses proposers in proportion to voting power, deterministically', () => {
    const powers = [1, 1, 1, 3];
    const set = makeValidatorSet(ids.map((id, i) => ({ publicKey: id.publicKey, power: powers[i]! })), 1);
    const counts = new Map<string, number>();
    for (let h = 1; h <= 60; h++) {
      const k = toHex(proposerFor(set, h, 0).publicKey);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.get(toHex(ids[3]!.publicKey))).toBe(30);
    for (const i of [0, 1, 2]) expect(counts.get(toHex(ids[i]!.publicKey))).toBe(10);
    // Same answers from a fresh set object (no memo) and out of order queries.
    const set2 = makeValidatorSet([...ids].reverse().map((id, i) => ({ publicKey: id.publicKey, power: powers[3 - i]! })), 1);
    for (const h of [57, 3, 40, 1]) expect(toHex(proposerFor(set2, h, 2).publicKey)).toBe(toHex(proposerFor(set, h, 2).publicKey));
  });
});

describe('timeouts', () => {
  it('propose timeout -> prevote nil -> precommit nil -> precommit timeout -> next round', () => {
    const r = new Router(ids);
    const proposer = r.index(toHex(proposerFor(r.validators, 1, 0).publicKey));
    r.link = (from) => from !== proposer; // the proposer is silent
    r.startAll(1);
    const others = [0, 1, 2, 3].filter((i) => i !== proposer);
    for (const i of others) {
      const n = r.nodes[i]!;
      expect(n.effects).toContainEqual({ type: 'schedule-timeout', kind: 'propose', height: 1, round: 0, durationMs: timeoutMs(LAN_TIMEOUTS, 'propose', 0) });
      expect(n.state.step).toBe('propose');
    }
    r.fireTimeouts('propose', others);
    for (const i of others) {
      const n = r.nodes[i]!;
      expect(votesOf(n.effects, 'prevote')).toEqual([{ type: 'prevote', height: 1, round: 0, valueId: null }]);
      // 3 of 4 nil prevotes is a quorum: precommit nil without waiting for the prevote timeout.
      expect(votesOf(n.effects, 'precommit')).toEqual([{ type: 'precommit', height: 1, round: 0, valueId: null }]);
      expect(n.effects.some((e) => e.type === 'schedule-timeout' && e.kind === 'precommit' && e.round === 0)).toBe(true);
    }
    r.fireTimeouts('precommit', others);
    for (const i of others) {
      expect(r.nodes[i]!.state.round).toBe(1);
      expect(r.nodes[i]!.effects).toContainEqual({ type: 'schedule-timeout', kind: 'propose', height: 1, round: 1, durationMs: 400 });
    }
    // Round 1 has a live proposer: the three connected nodes commit in round 1, and so does the
    // silent one, which received everything (line 49 decides in any round).
    for (const n of r.nodes) {
      expect(n.decided).toHaveLength(1);
      expect(n.decided[0]).toMatchObject({ type: 'decide', height: 1, round: 1 });
    }
  });

  it('prevote timeout -> precommit nil when prevotes are split', () => {
    const r = new Router(ids);
    const proposer = r.index(toHex(proposerFor(r.validators, 1, 0).publicKey));
    const helper = (proposer + 1) % 4;
    // The proposal reaches only `helper`; the other two prevote nil after their timeout.
    r.link = (from, to, m) => m.type !== 'proposal' || to === helper;
    r.startAll(1);
    const late = [0, 1, 2, 3].filter((i) => i !== proposer && i !== helper);
    r.fireTimeouts('propose', late);
    for (const n of r.nodes) {
      // 2 value + 2 nil prevotes: quorum of "any" but not for one value.
      expect(n.state.step).toBe('prevote');
      expect(n.effects.some((e) => e.type === 'schedule-timeout' && e.kind === 'prevote' && e.round === 0)).toBe(true);
    }
    r.fireTimeouts('prevote');
    for (const n of r.nodes) {
      expect(votesOf(n.effects, 'precommit')).toEqual([{ type: 'precommit', height: 1, round: 0, valueId: null }]);
      expect(n.state.step).toBe('precommit');
    }
  });

  it('timeouts grow linearly per round', () => {
    expect(timeoutMs(LAN_TIMEOUTS, 'propose', 0)).toBe(300);
    expect(timeoutMs(LAN_TIMEOUTS, 'propose', 3)).toBe(600);
    expect(timeoutMs(LAN_TIMEOUTS, 'prevote', 2)).toBe(200);
    expect(timeoutMs(LAN_TIMEOUTS, 'precommit', 4)).toBe(300);
  });

  it('ignores stale timeouts', () => {
    const r = new Router(ids);
    r.startAll(1);
    const n = r.nodes[0]!;
    const before = n.state;
    const res = step(before, { type: 'timeout', kind: 'precommit', height: 1, round: 0 });
    expect(res.effects).toEqual([]);
    expect(res.state.step).toBe('decided');
    // Restarting a decided height is refused: a decided height stays decided.
    const again = step(before, { type: 'start-height', height: 1, validators: r.validators });
    expect(again.effects).toEqual([]);
    expect(again.state.decision).toBe(before.decision);
  });
});

/** A single core under test at index `me`, others simulated by hand-signed messages. */
function lone(me: number, over: Parameters<typeof configFor>[1] = {}) {
  const set = makeValidatorSet(ids.map((id) => ({ publicKey: id.publicKey, power: 1 })), 1);
  const state = createConsensusState(configFor(ids[me]!, over));
  const proposerOf = (round: number): number => ids.findIndex((id) => toHex(id.publicKey) === toHex(proposerFor(set, 1, round).publicKey));
  return { set, state, proposerOf };
}

/** The validator that proposes round 3 at height 1 (so it is not the proposer of rounds 0-2). */
function coreIndex(): number {
  const set = makeValidatorSet(ids.map((id) => ({ publicKey: id.publicKey, power: 1 })), 1);
  return ids.findIndex((id) => toHex(id.publicKey) === toHex(proposerFor(set, 1, 3).publicKey));
}

const pv = (i: number, round: number, v: Uint8Array | null): Event => ({ type: 'vote', vote: signVote(ids[i]!, { type: 'prevote', height: 1, round, valueId: v === null ? null : valueIdOf(v) }) });
const pc = (i: number, round: number, v: Uint8Array | null): Event => ({ type: 'vote', vote: signVote(ids[i]!, { type: 'precommit', height: 1, round, valueId: v === null ? null : valueIdOf(v) }) });
const prop = (i: number, round: number, v: Uint8Array, validRound = -1): Event => ({ type: 'proposal', proposal: signProposal(ids[i]!, { height: 1, round, value: v, validRound }) });

describe('locking (Algorithm 1 lines 22-43)', () => {
  it('locks on a value with a prevote quorum, keeps the lock against a new value, unlocks only with a later POL', () => {
    const me = coreIndex();
    const { set, state, proposerOf } = lone(me);
    const others = [0, 1, 2, 3].filter((i) => i !== me);
    const [a, b, c] = others as [number, number, number];
    const v = enc('value-v');
    const w2 = enc('value-w');
    // Round 0: v proposed, prevoted by a and b (and us) -> we lock v and precommit v.
    let s = run(state, [{ type: 'start-height', height: 1, validators: set }, prop(proposerOf(0), 0, v), pv(a, 0, v), pv(b, 0, v)]);
    expect(s.state.lockedRound).toBe(0);
    expect(votesOf(s.effects, 'precommit')).toEqual([{ type: 'precommit', height: 1, round: 0, valueId: valueIdOf(v) }]);
    // The lock is persisted with (before) the precommit signature.
    const persistIdx = s.effects.findIndex((e) => e.type === 'persist' && e.record.lockedRound === 0);
    const precommitIdx = s.effects.findIndex((e) => e.type === 'broadcast' && e.message.type === 'vote' && e.message.vote.vote.type === 'precommit');
    expect(persistIdx).toBeGreaterThanOrEqual(0);
    expect(persistIdx).toBeLessThan(precommitIdx);
    // Others precommit nil: round 0 ends by the precommit timeout.
    s = run(s.state, [pc(a, 0, null), pc(b, 0, null), pc(c, 0, null), { type: 'timeout', kind: 'precommit', height: 1, round: 0 }]);
    expect(s.state.round).toBe(1);
    // Round 1: w proposed without POL -> we are locked on v -> prevote nil (line 22).
    s = run(s.state, [prop(proposerOf(1), 1, w2)]);
    expect(votesOf(s.effects, 'prevote')).toEqual([{ type: 'prevote', height: 1, round: 1, valueId: null }]);
    expect(s.state.lockedRound).toBe(0);
    // a and b prevote w in round 1 (c silent): 3 prevotes, no quorum for w -> prevote timeout -> precommit nil.
    s = run(s.state, [pv(a, 1, w2), pv(b, 1, w2), { type: 'timeout', kind: 'prevote', height: 1, round: 1 }]);
    expect(votesOf(s.effects, 'precommit')).toEqual([{ type: 'precommit', height: 1, round: 1, valueId: null }]);
    s = run(s.state, [pc(a, 1, null), pc(b, 1, null), { type: 'timeout', kind: 'precommit', height: 1, round: 1 }]);
    expect(s.state.round).toBe(2);
    // Round 2: w re-proposed with validRound 1, but the POL (2 of 4) is not a quorum: no prevote.
    s = run(s.state, [prop(proposerOf(2), 2, w2, 1)]);
    expect(votesOf(s.effects, 'prevote')).toEqual([]);
    expect(s.state.step).toBe('propose');
    // c's round-1 prevote for w completes the POL (round 1 > lockedRound 0) -> prevote w (line 28).
    s = run(s.state, [pv(c, 1, w2)]);
    expect(votesOf(s.effects, 'prevote')).toEqual([{ type: 'prevote', height: 1, round: 2, valueId: valueIdOf(w2) }]);
    // And with a quorum of round-2 prevotes for w it re-locks on w.
    s = run(s.state, [pv(a, 2, w2), pv(b, 2, w2)]);
    expect(s.state.lockedRound).toBe(2);
    expect(valueIdOf(s.state.lockedValue!)).toBe(valueIdOf(w2));
  });

  it('a POL older than the lock does not unlock (prevote nil)', () => {
    const me = coreIndex();
    const { set, state, proposerOf } = lone(me);
    const [a, b, c] = [0, 1, 2, 3].filter((i) => i !== me) as [number, number, number];
    const v = enc('value-v');
    const w2 = enc('value-w');
    // Round 0: w gets prevotes from a, b, c (a POL for w at round 0) but we never saw its proposal.
    let s = run(state, [{ type: 'start-height', height: 1, validators: set }, pv(a, 0, w2), pv(b, 0, w2), pv(c, 0, w2), { type: 'timeout', kind: 'propose', height: 1, round: 0 }]);
    s = run(s.state, [pc(a, 0, null), pc(b, 0, null), { type: 'timeout', kind: 'precommit', height: 1, round: 0 }]);
    // Round 1: we lock on v.
    s = run(s.state, [prop(proposerOf(1), 1, v), pv(a, 1, v), pv(b, 1, v)]);
    expect(s.state.lockedRound).toBe(1);
    s = run(s.state, [pc(a, 1, null), pc(b, 1, null), { type: 'timeout', kind: 'precommit', height: 1, round: 1 }]);
    // Round 2: w proposed with the round-0 POL: 0 < lockedRound 1 -> prevote nil.
    s = run(s.state, [prop(proposerOf(2), 2, w2, 0)]);
    expect(votesOf(s.effects, 'prevote')).toEqual([{ type: 'prevote', height: 1, round: 2, valueId: null }]);
  });

  it('a proposer with a valid value re-proposes it with its validRound', () => {
    const r = new Router(ids);
    const p0 = r.index(toHex(proposerFor(r.validators, 1, 0).publicKey));
    const p1 = r.index(toHex(proposerFor(r.validators, 1, 1).publicKey));
    // Precommits are lost: everyone locks on p0's value in round 0 but nobody decides.
    r.link = (_f, _t, m) => !(m.type === 'vote' && m.vote.vote.type === 'precommit');
    r.startAll(1);
    for (const n of r.nodes) expect(n.state.lockedRound).toBe(0);
    r.link = () => true;
    r.fireTimeouts('prevote'); // no-op: everyone is already in precommit
    // Every node has its own precommit only: no quorum of precommits, so fire by hand to move on.
    for (let i = 0; i < 4; i++) r.send(i, { type: 'timeout', kind: 'precommit', height: 1, round: 0 });
    const reproposal = r.nodes[p1]!.broadcasts.find((m) => m.type === 'proposal' && m.proposal.proposal.round === 1);
    expect(reproposal?.type === 'proposal' && reproposal.proposal.proposal.validRound).toBe(0);
    expect(reproposal?.type === 'proposal' && toHex(reproposal.proposal.proposal.value)).toBe(toHex(r.valueFor(p0, 1, 0)));
    for (const n of r.nodes) expect(n.decided).toHaveLength(1);
  });
});

describe('safety guards', () => {
  it('never signs two different votes for one (height, round, type), also after a restart from the persisted record', () => {
    const me = coreIndex();
    const { set, state, proposerOf } = lone(me);
    const v = enc('value-v');
    let s = run(state, [{ type: 'start-height', height: 1, validators: set }, prop(proposerOf(0), 0, v)]);
    const first = votesOf(s.effects, 'prevote');
    expect(first).toHaveLength(1);
    const records = s.effects.flatMap((e) => (e.type === 'persist' ? [e.record] : []));
    const record = records[records.length - 1]!;
    expect(record).toMatchObject({ height: 1, round: 0, step: 2 });
    // Re-delivery and a late propose timeout produce nothing new.
    s = run(s.state, [prop(proposerOf(0), 0, v), { type: 'timeout', kind: 'propose', height: 1, round: 0 }]);
    expect(s.effects.filter((e) => e.type === 'broadcast')).toEqual([]);
    // Crash and restart from the durable record: a propose timeout would prevote nil -> refused.
    const restarted = createConsensusState(configFor(ids[me]!), record);
    let t = run(restarted, [{ type: 'start-height', height: 1, validators: set }, { type: 'timeout', kind: 'propose', height: 1, round: 0 }]);
    expect(votesOf(t.effects, 'prevote')).toEqual([]);
    expect(t.state.step).toBe('prevote');
    // A second restart that sees the same proposal again re-sends the identical signature.
    t = run(createConsensusState(configFor(ids[me]!), record), [{ type: 'start-height', height: 1, validators: set }, prop(proposerOf(0), 0, v)]);
    const again = t.effects.flatMap((e) => (e.type === 'broadcast' && e.message.type === 'vote' ? [e.message.vote] : []));
    expect(again).toHaveLength(1);
    expect(toHex(again[0]!.signature)).toBe(toHex(record.signature!));
    expect(t.effects.some((e) => e.type === 'persist')).toBe(false);
  });

  it('restores the lock from the record after a restart', () => {
    const me = coreIndex();
    const { set, state, proposerOf } = lone(me);
    const [a, b] = [0, 1, 2, 3].filter((i) => i !== me) as [number, number];
    const v = enc('value-v');
    const s = run(state, [{ type: 'start-height', height: 1, validators: set }, prop(proposerOf(0), 0, v), pv(a, 0, v), pv(b, 0, v)]);
    const rec = s.effects.flatMap((e) => (e.type === 'persist' ? [e.record] : [])).pop()!;
    const t = run(createConsensusState(configFor(ids[me]!), rec), [{ type: 'start-height', height: 1, validators: set }]);
    expect(t.state.lockedRound).toBe(0);
    expect(valueIdOf(t.state.lockedValue!)).toBe(valueIdOf(v));
  });

  it('skips to a higher round on f+1 voting power, not on less', () => {
    const me = coreIndex();
    const { set, state } = lone(me);
    const [a, b] = [0, 1, 2, 3].filter((i) => i !== me) as [number, number];
    let s = run(state, [{ type: 'start-height', height: 1, validators: set }, pv(a, 5, null)]);
    expect(s.state.round).toBe(0);
    s = run(s.state, [pc(b, 5, null)]);
    expect(s.state.round).toBe(5);
    expect(s.effects).toContainEqual({ type: 'schedule-timeout', kind: 'propose', height: 1, round: 5, durationMs: 800 });
  });

  it('prevotes nil for an invalid value', () => {
    const me = coreIndex();
    const { set, state, proposerOf } = lone(me, { validateValue: (_h, v) => new TextDecoder().decode(v) !== 'bad' });
    const s = run(state, [{ type: 'start-height', height: 1, validators: set }, prop(proposerOf(0), 0, enc('bad'))]);
    expect(votesOf(s.effects, 'prevote')).toEqual([{ type: 'prevote', height: 1, round: 0, valueId: null }]);
  });

  it('ignores a forged signature, a non-member, a wrong proposer, and far-future heights', () => {
    const me = coreIndex();
    const { set, state, proposerOf } = lone(me);
    const [a] = [0, 1, 2, 3].filter((i) => i !== me) as [number];
    const s0 = run(state, [{ type: 'start-height', height: 1, validators: set }]).state;
    const good = signVote(ids[a]!, { type: 'prevote', height: 1, round: 0, valueId: null });
    const forged: SignedVote = { ...good, signature: signVote(ids[me]!, good.vote).signature };
    const outsider = signVote(ident(9), { type: 'prevote', height: 1, round: 0, valueId: null });
    const far = signVote(ids[a]!, { type: 'prevote', height: 3, round: 0, valueId: null });
    const old = signVote(ids[a]!, { type: 'prevote', height: 0, round: 0, valueId: null });
    for (const vote of [forged, outsider, far, old]) {
      const r = step(s0, { type: 'vote', vote });
      expect(r.effects).toEqual([]);
      expect(r.state.rounds.get(0)?.prevotes.size ?? 0).toBe(0);
      expect(r.state.buffered).toEqual([]);
    }
    const wrongProposer = prop((proposerOf(0) + 1) % 4 === me ? (proposerOf(0) + 2) % 4 : (proposerOf(0) + 1) % 4, 0, enc('x'));
    expect(step(s0, wrongProposer).state.rounds.get(0)?.proposal ?? null).toBeNull();
    // Oversize proposal values are dropped before any hashing or signature check.
    const small = lone(me, { maxValueBytes: 1024 });
    const s1 = run(small.state, [{ type: 'start-height', height: 1, validators: set }]).state;
    expect(step(s1, prop(proposerOf(0), 0, new Uint8Array(1025))).state.rounds.get(0)?.proposal ?? null).toBeNull();
    expect(step(s1, prop(proposerOf(0), 0, new Uint8Array(1024))).state.rounds.get(0)?.proposal).not.toBeNull();
    // Garbage shapes never throw.
    expect(() => step(s0, { type: 'vote', vote: { vote: null, signer: 1, signature: 'x' } as unknown as SignedVote })).not.toThrow();
    // The genuine vote is accepted.
    expect(step(s0, { type: 'vote', vote: good }).state.rounds.get(0)?.prevotes.size).toBe(1);
  });

  it('buffers height+1 messages boundedly per signer', () => {
    const me = coreIndex();
    const { set, state } = lone(me);
    const [a] = [0, 1, 2, 3].filter((i) => i !== me) as [number];
    let s = run(state, [{ type: 'start-height', height: 1, validators: set }]).state;
    for (let round = 0; round < 20; round++) s = step(s, { type: 'vote', vote: signVote(ids[a]!, { type: 'prevote', height: 2, round, valueId: null }) }).state;
    expect(s.buffered).toHaveLength(8);
  });

  it('bounds the rounds one signer may open ahead', () => {
    const me = coreIndex();
    const { set, state } = lone(me);
    const [a] = [0, 1, 2, 3].filter((i) => i !== me) as [number];
    let s = run(state, [{ type: 'start-height', height: 1, validators: set }]).state;
    for (let round = 10; round < 30; round++) s = step(s, pv(a, round, null)).state;
    expect(s.rounds.size).toBe(4);
  });

  it('forged messages do not use up a validator\'s future-round or next-height slots', () => {
    const me = coreIndex();
    const { set, state } = lone(me);
    const [a] = [0, 1, 2, 3].filter((i) => i !== me) as [number];
    let s = run(state, [{ type: 'start-height', height: 1, validators: set }]).state;
    const forge = (v: Vote): SignedVote => ({ vote: v, signer: ids[a]!.publicKey, signature: signVote(ids[me]!, v).signature });
    for (let round = 10; round < 30; round++) s = step(s, { type: 'vote', vote: forge({ type: 'prevote', height: 1, round, valueId: null }) }).state;
    for (let round = 0; round < 20; round++) s = step(s, { type: 'vote', vote: forge({ type: 'prevote', height: 2, round, valueId: null }) }).state;
    expect(s.rounds.size).toBe(0);
    expect(s.buffered).toHaveLength(0);
    s = step(s, pv(a, 10, null)).state;
    expect(s.rounds.get(10)?.prevotes.size).toBe(1);
  });

  it('keeps evidence of equivocation and counts only the first vote', () => {
    const me = coreIndex();
    const { set, state } = lone(me);
    const [a] = [0, 1, 2, 3].filter((i) => i !== me) as [number];
    const s = run(state, [{ type: 'start-height', height: 1, validators: set }, pv(a, 0, enc('x')), pv(a, 0, enc('y')), pv(a, 0, enc('y'))]);
    expect(s.state.evidence).toHaveLength(1);
    expect(s.state.evidence[0]).toMatchObject({ type: 'duplicate-vote', validator: toHex(ids[a]!.publicKey), height: 1, round: 0, voteType: 'prevote' });
    expect(s.effects.filter((e) => e.type === 'evidence')).toHaveLength(1);
    expect(s.state.rounds.get(0)?.prevotes.get(toHex(ids[a]!.publicKey))?.vote.valueId).toBe(valueIdOf(enc('x')));
    // A forged conflicting vote is not evidence.
    const forged = signVote(ids[a]!, { type: 'precommit', height: 1, round: 0, valueId: null });
    const t = run(s.state, [{ type: 'vote', vote: forged }, { type: 'vote', vote: { ...signVote(ids[a]!, { type: 'precommit', height: 1, round: 0, valueId: valueIdOf(enc('z')) }), signature: forged.signature } }]);
    expect(t.state.evidence).toHaveLength(1);
  });
});

describe('valid value from a late proof-of-lock', () => {
  it('an unlocked node that learns an earlier round\'s POL late proposes that value with its validRound, not a fresh one', () => {
    const me = coreIndex(); // proposer of round 3
    const { set, state, proposerOf } = lone(me);
    const [a, b, c] = [0, 1, 2, 3].filter((i) => i !== me) as [number, number, number];
    const v = enc('late-pol');
    const t = (round: number): Event => ({ type: 'timeout', kind: 'precommit', height: 1, round });
    let s = run(state, [{ type: 'start-height', height: 1, validators: set }, t(0), t(1)]);
    expect(s.state.round).toBe(2);
    // Round 0's proposal and its 3-of-4 prevotes arrive while we are in round 2.
    s = run(s.state, [prop(proposerOf(0), 0, v), pv(a, 0, v), pv(b, 0, v), pv(c, 0, v)]);
    expect(s.state.validRound).toBe(0);
    expect(toHex(s.state.validValue!)).toBe(toHex(v));
    expect(s.state.lockedRound).toBe(-1); // the lock is only taken in the current round (line 36)
    expect(s.effects.some((e) => e.type === 'persist' && e.record.validRound === 0)).toBe(true);
    // Round 3 is ours: we re-propose v with validRound 0 instead of asking for a new value.
    s = run(s.state, [t(2)]);
    const proposals = s.effects.flatMap((e) => (e.type === 'broadcast' && e.message.type === 'proposal' ? [e.message.proposal.proposal] : []));
    expect(proposals).toHaveLength(1);
    expect(proposals[0]).toMatchObject({ height: 1, round: 3, validRound: 0 });
    expect(toHex(proposals[0]!.value)).toBe(toHex(v));
    expect(s.effects.some((e) => e.type === 'request-value')).toBe(false);
  });
});

describe('equivocation: per-value vote sets (liveness)', () => {
  // me, two honest others (a, b) and an equivocator (e). e's FIRST vote seen is nil, its second is for v.
  const setup = (): { me: number; a: number; b: number; e: number; set: ReturnType<typeof lone>['set']; state: ConsensusState; proposerOf: (r: number) => number } => {
    const me = coreIndex();
    const { set, state, proposerOf } = lone(me);
    const others = [0, 1, 2, 3].filter((i) => i !== me);
    const e = others.find((i) => i !== proposerOf(0)) ?? others[0]!;
    const [a, b] = others.filter((i) => i !== e) as [number, number];
    return { me, a, b, e, set, state, proposerOf };
  };

  it("locks on a prevote quorum that needs an equivocator's second vote", () => {
    const { a, e, set, state, proposerOf } = setup();
    const v = enc('value-v');
    // Proposal v; prevotes for v: ours, a's, and e's second (its first was nil). b is silent.
    const s = run(state, [{ type: 'start-height', height: 1, validators: set }, prop(proposerOf(0), 0, v), pv(e, 0, null), pv(a, 0, v), pv(e, 0, v)]);
    expect(s.state.evidence).toHaveLength(1);
    expect(s.state.lockedRound).toBe(0);
    expect(toHex(s.state.lockedValue!)).toBe(toHex(v));
    expect(votesOf(s.effects, 'precommit')).toEqual([{ type: 'precommit', height: 1, round: 0, valueId: valueIdOf(v) }]);
    // Each validator counts once in the round's power, in both value tallies.
    const r0 = s.state.rounds.get(0)!;
    expect(r0.prevotePower).toBe(3);
    expect(r0.prevoteTally.get(valueIdOf(v))).toBe(3);
    expect(r0.prevoteTally.get('nil')).toBe(1);
    expect(r0.prevotes.get(toHex(ids[e]!.publicKey))?.vote.valueId).toBeNull(); // the first vote stays the map's
    expect(roundVotesFor(r0, 'prevote', valueIdOf(v)).map((sv) => toHex(sv.signer)).sort()).toHaveLength(3);
  });

  it("accepts a re-proposal whose proof-of-lock needs an equivocator's second vote (line 28)", () => {
    const { a, b, e, set, state, proposerOf } = setup();
    const v = enc('value-v');
    // Round 0: we never saw the proposal; prevotes nil from e first, then v from a, b and e.
    let s = run(state, [{ type: 'start-height', height: 1, validators: set }, pv(e, 0, null), pv(a, 0, v), pv(b, 0, v), pv(e, 0, v), { type: 'timeout', kind: 'propose', height: 1, round: 0 }]);
    s = run(s.state, [pc(a, 0, null), pc(b, 0, null), pc(e, 0, null), { type: 'timeout', kind: 'precommit', height: 1, round: 0 }]);
    expect(s.state.round).toBe(1);
    // Round 1 re-proposes v with validRound 0: without e's second vote there is no POL (2 of 4).
    s = run(s.state, [prop(proposerOf(1), 1, v, 0)]);
    expect(votesOf(s.effects, 'prevote')).toEqual([{ type: 'prevote', height: 1, round: 1, valueId: valueIdOf(v) }]);
  });

  it("decides on a precommit quorum that needs an equivocator's second vote, with a certificate that verifies", () => {
    const { a, e, set, state, proposerOf } = setup();
    const v = enc('value-v');
    const s = run(state, [{ type: 'start-height', height: 1, validators: set }, prop(proposerOf(0), 0, v), pv(a, 0, v), pv(e, 0, v), pc(e, 0, null), pc(a, 0, v), pc(e, 0, v)]);
    const d = s.effects.find((x) => x.type === 'decide');
    if (d?.type !== 'decide') throw new Error('no decision');
    expect(toHex(d.value)).toBe(toHex(v));
    expect(d.certificate.precommits).toHaveLength(3);
    expect(d.certificate.precommits.map((sv) => toHex(sv.signer))).toContain(toHex(ids[e]!.publicKey));
    expect(verifyCommitCertificate(d.certificate, set, verify, CLUSTER)).toMatchObject({ ok: true, power: 3 });
  });

  it('keeps two votes per validator per (round, type); a third only for a value that has > 1/3 of the power already', () => {
    const { a, b, e, set, state } = setup();
    const s = run(state, [{ type: 'start-height', height: 1, validators: set }, pv(e, 0, enc('x')), pv(e, 0, enc('y')), pv(e, 0, enc('z')), pv(e, 0, null)]);
    const r0 = s.state.rounds.get(0)!;
    expect(r0.prevotePower).toBe(1);
    expect([...r0.prevoteTally.keys()].sort()).toEqual([valueIdOf(enc('x')), valueIdOf(enc('y'))].sort());
    expect(r0.prevoteTally.get(valueIdOf(enc('z')))).toBeUndefined();
    expect(s.state.evidence).toHaveLength(1);
    // Two honest validators vote z (2 of 4 > 1/3): e's vote for z is kept now and completes a quorum.
    const t = run(s.state, [pv(a, 0, enc('z')), pv(b, 0, enc('z')), pv(e, 0, enc('z')), pv(e, 0, enc('w'))]);
    const t0 = t.state.rounds.get(0)!;
    expect(t0.prevoteTally.get(valueIdOf(enc('z')))).toBe(3);
    expect(t0.prevoteTally.get(valueIdOf(enc('w')))).toBeUndefined(); // noise from e alone stays out
    expect(t0.prevotePower).toBe(3);
    expect(t.state.evidence).toHaveLength(1);
  });
});

describe('commit certificates and catch-up', () => {
  const v = enc('decided');
  const id = valueIdOf(v);
  const set = makeValidatorSet(ids.map((i) => ({ publicKey: i.publicKey, power: 1 })), 1);
  const pcs = (who: number[], height = 1): SignedVote[] => who.map((i) => signVote(ids[i]!, { type: 'precommit', height, round: 0, valueId: id }));

  it('accepts > 2/3 of voting power and rejects the rest', () => {
    expect(verifyCommitCertificate({ height: 1, round: 0, valueId: id, precommits: pcs([0, 1, 2]) }, set, verify, CLUSTER)).toEqual({ ok: true, power: 3 });
    expect(verifyCommitCertificate({ height: 1, round: 0, valueId: id, precommits: pcs([0, 1]) }, set, verify, CLUSTER)).toEqual({ ok: false, reason: 'insufficient voting power' });
    expect(verifyCommitCertificate({ height: 2, round: 0, valueId: id, precommits: pcs([0, 1, 2]) }, set, verify, CLUSTER)).toEqual({ ok: false, reason: 'precommit for another height' });
    expect(verifyCommitCertificate({ height: 1, round: 0, valueId: id, precommits: pcs([0, 1, 1]) }, set, verify, CLUSTER)).toEqual({ ok: false, reason: 'duplicate signer' });
    const bad = pcs([0, 1, 2]);
    bad[2] = { ...bad[2]!, signature: bad[0]!.signature };
    expect(verifyCommitCertificate({ height: 1, round: 0, valueId: id, precommits: bad }, set, verify, CLUSTER)).toEqual({ ok: false, reason: 'bad signature' });
    expect(verifyCommitCertificate({ height: 1, round: 0, valueId: id, precommits: pcs([0, 1, 2]) }, set, verify, 'other-cluster')).toEqual({ ok: false, reason: 'bad signature' });
    const outsider = signVote(ident(9), { type: 'precommit', height: 1, round: 0, valueId: id });
    expect(verifyCommitCertificate({ height: 1, round: 0, valueId: id, precommits: [...pcs([0, 1]), outsider] }, set, verify, CLUSTER)).toEqual({ ok: false, reason: 'signer is not a validator' });
  });

  it('weights power: one heavy validator is not a quorum alone', () => {
    const weighted = makeValidatorSet(ids.map((i, k) => ({ publicKey: i.publicKey, power: k === 0 ? 6 : 1 })), 1);
    expect(verifyCommitCertificate({ height: 1, round: 0, valueId: id, precommits: pcs([0]) }, weighted, verify, CLUSTER).ok).toBe(false); // 6/9
    expect(verifyCommitCertificate({ height: 1, round: 0, valueId: id, precommits: pcs([0, 1]) }, weighted, verify, CLUSTER).ok).toBe(true); // 7/9
  });

  it('a decided event with a valid certificate decides the current height; a bad one is ignored', () => {
    const s0 = run(createConsensusState(configFor(ids[3]!)), [{ type: 'start-height', height: 1, validators: set }]).state;
    const bad = step(s0, { type: 'decided', height: 1, value: v, certificate: { height: 1, round: 0, valueId: id, precommits: pcs([0, 1]) } });
    expect(bad.state.step).not.toBe('decided');
    const wrongValue = step(s0, { type: 'decided', height: 1, value: enc('other'), certificate: { height: 1, round: 0, valueId: id, precommits: pcs([0, 1, 2]) } });
    expect(wrongValue.state.step).not.toBe('decided');
    const good = step(s0, { type: 'decided', height: 1, value: v, certificate: { height: 1, round: 0, valueId: id, precommits: pcs([0, 1, 2]) } });
    expect(good.state.step).toBe('decided');
    expect(good.effects.filter((e) => e.type === 'decide')).toHaveLength(1);
  });
});
