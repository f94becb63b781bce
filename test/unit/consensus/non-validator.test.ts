// A node outside the height's validator set (admitted, voting from H+2; or being removed)
// follows the height but signs nothing: no persist, no broadcast, on any path.
import { describe, expect, it } from 'vitest';
import { createConsensusState, makeValidatorSet, proposerFor, step, valueIdOf } from '../../../consensus/core.js';
import type { ConsensusState, Effect, Event } from '../../../consensus/types.js';
import { configFor, ident, signProposal, signVote } from '../../helpers/consensus-harness.js';

const validators = [0, 1, 2, 3].map(ident);
const outsider = ident(9);
const set = makeValidatorSet(validators.map((id) => ({ publicKey: id.publicKey, power: 1 })), 1);

function feed(s: ConsensusState, events: readonly Event[]): { state: ConsensusState; effects: Effect[] } {
  const effects: Effect[] = [];
  for (const e of events) {
    const r = step(s, e);
    s = r.state;
    effects.push(...r.effects);
  }
  return { state: s, effects };
}

describe('a non-validator core', () => {
  it('signs nothing on timeouts, proposals or quorums, yet decides with the validators', () => {
    const v = new TextEncoder().encode('value');
    const p = validators.findIndex((id) => proposerFor(set, 1, 0).publicKey === id.publicKey);
    const vote = (i: number, type: 'prevote' | 'precommit', round: number, value: Uint8Array | null): Event => ({
      type: 'vote',
      vote: signVote(validators[i]!, { type, height: 1, round, valueId: value === null ? null : valueIdOf(value) }),
    });
    const start = feed(createConsensusState(configFor(outsider)), [{ type: 'start-height', height: 1, validators: set }]);
    // every timeout path of round 0, then a nil quorum that moves it to round 1
    const timeouts = feed(start.state, [
      { type: 'timeout', kind: 'propose', height: 1, round: 0 },
      vote(0, 'prevote', 0, null),
      vote(1, 'prevote', 0, null),
      vote(2, 'prevote', 0, null),
      { type: 'timeout', kind: 'prevote', height: 1, round: 0 },
      vote(0, 'precommit', 0, null),
      vote(1, 'precommit', 0, null),
      vote(2, 'precommit', 0, null),
      { type: 'timeout', kind: 'precommit', height: 1, round: 0 },
    ]);
    const signed = (es: readonly Effect[]): Effect[] => es.filter((e) => e.type === 'persist' || e.type === 'broadcast' || e.type === 'request-value');
    expect(signed(start.effects)).toEqual([]);
    expect(signed(timeouts.effects)).toEqual([]);
    expect(timeouts.state.round).toBe(1);
    // round 1: a proposal and the validators' quorums: it decides, still without signing
    const p1 = validators.findIndex((id) => proposerFor(set, 1, 1).publicKey === id.publicKey);
    expect(p1).toBeGreaterThanOrEqual(0);
    expect(p).toBeGreaterThanOrEqual(0);
    const others = [0, 1, 2, 3].filter((i) => i !== p1);
    const decided = feed(timeouts.state, [
      { type: 'proposal', proposal: signProposal(validators[p1]!, { height: 1, round: 1, value: v, validRound: -1 }) },
      ...others.map((i) => vote(i, 'prevote', 1, v)),
      ...others.map((i) => vote(i, 'precommit', 1, v)),
    ]);
    expect(signed(decided.effects)).toEqual([]);
    expect(decided.effects.filter((e) => e.type === 'decide')).toHaveLength(1);
    expect(decided.state.signerRecord.height).toBe(0); // never signed at all
  });

  it('a validator in the same situation does sign (control)', () => {
    const r = feed(createConsensusState(configFor(validators[0]!)), [
      { type: 'start-height', height: 1, validators: set },
      { type: 'timeout', kind: 'propose', height: 1, round: 0 },
    ]);
    expect(r.effects.some((e) => e.type === 'persist')).toBe(true);
    expect(r.effects.some((e) => e.type === 'broadcast' && e.message.type === 'vote' && e.message.vote.vote.valueId === null)).toBe(true);
  });
});
