// A validator whose signer record is a repair fence (node/store/repair.ts: height F + 1, nothing
// signed) follows heights at or below F without signing anything, the lock changes of those
// heights do not move the record down (consensus/core.ts persistLocks), and it decides with the
// others; above the fence it signs again.
import { describe, expect, it } from 'vitest';
import { createConsensusState, makeValidatorSet, proposerFor, step, valueIdOf } from '../../../consensus/core.js';
import type { ConsensusState, Effect, Event } from '../../../consensus/types.js';
import { fenceRecord } from '../../../node/store/repair.js';
import { configFor, ident, signProposal, signVote } from '../../helpers/consensus-harness.js';

const validators = [0, 1, 2, 3].map(ident);
const set = makeValidatorSet(validators.map((id) => ({ publicKey: id.publicKey, power: 1 })), 1);
const me = validators[0]!;

function feed(s: ConsensusState, events: readonly Event[]): { state: ConsensusState; effects: Effect[] } {
  const effects: Effect[] = [];
  for (const e of events) {
    const r = step(s, e);
    s = r.state;
    effects.push(...r.effects);
  }
  return { state: s, effects };
}
const signed = (es: readonly Effect[]): Effect[] => es.filter((e) => e.type === 'persist' || e.type === 'broadcast');

/** Height h, round 0: a proposal by its proposer (not us) and the others' prevotes and precommits. */
function heightEvents(h: number, value: Uint8Array): Event[] {
  const p = validators.findIndex((id) => proposerFor(set, h, 0).publicKey === id.publicKey);
  const others = [1, 2, 3];
  // The proposal arrives late, after the prevote timeout moved the core to the precommit step:
  // then the prevote quorum for it sets the valid value WITHOUT a signature (Tendermint line 36
  // past the prevote step), which the core persists on its own (persistLocks).
  return [
    { type: 'start-height', height: h, validators: set },
    { type: 'timeout', kind: 'propose', height: h, round: 0 },
    ...others.map((i): Event => ({ type: 'vote', vote: signVote(validators[i]!, { type: 'prevote', height: h, round: 0, valueId: valueIdOf(value) }) })),
    { type: 'timeout', kind: 'prevote', height: h, round: 0 },
    { type: 'proposal', proposal: signProposal(validators[p]!, { height: h, round: 0, value, validRound: -1 }) },
    ...others.map((i): Event => ({ type: 'vote', vote: signVote(validators[i]!, { type: 'precommit', height: h, round: 0, valueId: valueIdOf(value) }) })),
  ];
}

describe('a fenced signer', () => {
  it('signs nothing at or below the fence, keeps the fence through lock changes, and decides', () => {
    const fence = 5;
    // a height whose proposer is someone else, so the proposal (and the lock/valid value) arrives from outside
    const h = [1, 2, 3, 4, 5].find((x) => proposerFor(set, x, 0).publicKey !== me.publicKey)!;
    const v = new TextEncoder().encode(`value ${h}`);
    const r = feed(createConsensusState(configFor(me), fenceRecord(fence)), heightEvents(h, v));
    expect(signed(r.effects)).toEqual([]);
    expect(r.effects.filter((e) => e.type === 'decide')).toHaveLength(1);
    expect(r.state.signerRecord).toMatchObject({ height: fence + 1, step: 0, signedDigest: null });
  });

  it('above the fence it signs again (control)', () => {
    const fence = 5;
    const r = feed(createConsensusState(configFor(me), fenceRecord(fence)), [
      { type: 'start-height', height: fence + 1, validators: set },
      { type: 'timeout', kind: 'propose', height: fence + 1, round: 0 },
    ]);
    expect(r.effects.some((e) => e.type === 'persist')).toBe(true);
    expect(r.effects.some((e) => e.type === 'broadcast')).toBe(true);
  });

  it('without the fence the same height is signed (control)', () => {
    const h = [1, 2, 3, 4, 5].find((x) => proposerFor(set, x, 0).publicKey !== me.publicKey)!;
    const r = feed(createConsensusState(configFor(me)), heightEvents(h, new TextEncoder().encode(`value ${h}`)));
    expect(signed(r.effects).length).toBeGreaterThan(0);
  });
});
