// Seeded random schedules over the pure core (a miniature of the simnet, to catch core bugs
// here first): reordering, long-tail delays, duplication, optional loss, one equivocator.
import { describe, it, expect } from 'vitest';
import { createConsensusState, makeValidatorSet, step, valueIdOf } from '../../../consensus/core.js';
import { toHex } from '../../../base/hex.js';
import type { ConsensusMessage, ConsensusState, Event } from '../../../consensus/types.js';
import { configFor, ident, signVote } from '../../helpers/consensus-harness.js';
import { Prng } from '../../../base/prng.js';

interface Options {
  n: number;
  heights: number;
  lossRate: number;
  byzantine: number[]; // equivocate: send a second, conflicting vote to half the peers
}

function simulate(seed: number, o: Options) {
  const prng = new Prng(seed >>> 0);
  const rand = (): number => prng.float();
  const ids = Array.from({ length: o.n }, (_, i) => ident(i));
  const set = makeValidatorSet(ids.map((id) => ({ publicKey: id.publicKey, power: 1 })), 1);
  const states: ConsensusState[] = ids.map((id) => createConsensusState(configFor(id)));
  const decisions: Map<number, string>[] = ids.map(() => new Map());
  const signed = new Map<string, Set<string>>(); // signer|h|r|type -> value ids (honest nodes only)
  // Catch-up as the node driver does it: a periodic status tick; a node whose current height is
  // already decided elsewhere receives that decision with its certificate.
  const decidedAnywhere = new Map<number, Extract<Event, { type: 'decided' }>>();
  const TICK = { type: 'timeout', kind: 'propose', height: -1, round: -1 } as const; // marker, never reaches the core
  let queue: { at: number; seq: number; to: number; event: Event }[] = [];
  let seq = 0;
  // Kept sorted by (at, seq): binary search for the insertion point.
  const push = (at: number, to: number, event: Event): void => {
    let lo = 0;
    let hi = queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (queue[mid]!.at <= at) lo = mid + 1;
      else hi = mid;
    }
    queue.splice(lo, 0, { at, seq: seq++, to, event });
  };
  const delay = (): number => (rand() < 0.1 ? 50 + rand() * 400 : 1 + rand() * 10); // long tail
  const deliver = (now: number, from: number, m: ConsensusMessage): void => {
    for (let j = 0; j < o.n; j++) {
      if (j === from || rand() < o.lossRate) continue;
      const ev: Event = m.type === 'vote' ? { type: 'vote', vote: m.vote } : { type: 'proposal', proposal: m.proposal };
      push(now + delay(), j, ev);
      if (rand() < 0.05) push(now + delay(), j, ev); // duplicate
    }
  };
  for (let i = 0; i < o.n; i++) {
    push(0, i, { type: 'start-height', height: 1, validators: set });
    push(200, i, TICK);
  }
  let now = 0;
  let steps = 0;
  while (queue.length > 0 && steps < 200_000 && now < 120_000) { // 2 virtual minutes
    const item = queue.shift()!;
    now = item.at;
    steps++;
    const i = item.to;
    if (item.event === TICK) {
      if (decisions.every((d) => d.size >= o.heights)) continue;
      const known = decidedAnywhere.get(states[i]!.height);
      if (known !== undefined && states[i]!.step !== 'decided') push(now, i, known);
      push(now + 200, i, TICK);
      continue;
    }
    const res = step(states[i]!, item.event);
    states[i] = res.state;
    for (const e of res.effects) {
      switch (e.type) {
        case 'schedule-timeout':
          push(now + e.durationMs, i, { type: 'timeout', kind: e.kind, height: e.height, round: e.round });
          break;
        case 'request-value':
          push(now, i, { type: 'value-to-propose', height: e.height, round: e.round, value: new TextEncoder().encode(`n${i}h${e.height}r${e.round}`) });
          break;
        case 'decide': {
          expect(decisions[i]!.has(e.height)).toBe(false); // integrity: never decide a height twice
          decisions[i]!.set(e.height, valueIdOf(e.value));
          decidedAnywhere.set(e.height, { type: 'decided', height: e.height, value: e.value, certificate: e.certificate });
          if (e.height < o.heights) push(now + 1, i, { type: 'start-height', height: e.height + 1, validators: set });
          break;
        }
        case 'broadcast': {
          const m = e.message;
          if (m.type === 'vote' && !o.byzantine.includes(i)) {
            const k = `${toHex(m.vote.signer)}|${m.vote.vote.height}|${m.vote.vote.round}|${m.vote.vote.type}`;
            const s = signed.get(k) ?? new Set<string>();
            s.add(m.vote.vote.valueId ?? 'nil');
            signed.set(k, s);
          }
          deliver(now, i, m);
          if (m.type === 'vote' && o.byzantine.includes(i)) {
            // Equivocate: a conflicting vote (nil <-> value) to a random half of the peers.
            const other = m.vote.vote.valueId === null ? valueIdOf(new TextEncoder().encode(`evil${seed}`)) : null;
            const evil = signVote(ids[i]!, { ...m.vote.vote, valueId: other });
            for (let j = 0; j < o.n; j++) if (j !== i && rand() < 0.5) push(now + delay(), j, { type: 'vote', vote: evil });
          }
          break;
        }
        case 'persist':
        case 'evidence':
          break;
      }
    }
    // Drop timeouts of heights everyone has finished, to let the run end.
    if (decisions.every((d) => d.size >= o.heights)) queue = queue.filter((q) => q.event.type !== 'timeout');
  }
  return { decisions, signed, states };
}

function checkSafety(r: ReturnType<typeof simulate>, honest: number[]): void {
  const heights = new Set(r.decisions.flatMap((d) => [...d.keys()]));
  for (const h of heights) {
    const values = new Set(honest.flatMap((i) => (r.decisions[i]!.has(h) ? [r.decisions[i]!.get(h)!] : [])));
    expect(values.size, `agreement at height ${h}`).toBe(1);
  }
  for (const [k, vs] of r.signed) expect(vs.size, `honest double-sign ${k}`).toBe(1);
}

describe('seeded random schedules', () => {
  it('n=4, reordering + duplication + long-tail delay: safe and every height decided', () => {
    for (let seed = 1; seed <= 15; seed++) {
      const r = simulate(seed, { n: 4, heights: 5, lossRate: 0, byzantine: [] });
      checkSafety(r, [0, 1, 2, 3]);
      for (const d of r.decisions) expect(d.size, `seed ${seed}`).toBe(5);
    }
  });

  it('n=4 with 15% loss: never unsafe', () => {
    let decided = 0;
    for (let seed = 100; seed < 110; seed++) {
      const r = simulate(seed, { n: 4, heights: 4, lossRate: 0.15, byzantine: [] });
      checkSafety(r, [0, 1, 2, 3]);
      decided += r.decisions.reduce((a, d) => a + d.size, 0);
    }
    expect(decided).toBeGreaterThan(40); // not vacuous: most heights are decided despite the loss
  });

  it('n=4 with one equivocating validator: safe, live, and the equivocation is seen as evidence', () => {
    let evidence = 0;
    for (let seed = 200; seed < 210; seed++) {
      const r = simulate(seed, { n: 4, heights: 3, lossRate: 0, byzantine: [3] });
      checkSafety(r, [0, 1, 2]);
      for (const i of [0, 1, 2]) expect(r.decisions[i]!.size, `seed ${seed}`).toBe(3);
      evidence += r.states.slice(0, 3).reduce((a, s) => a + s.evidence.filter((e) => e.validator === toHex(ident(3).publicKey)).length, 0);
    }
    expect(evidence).toBeGreaterThan(0);
  });
});
