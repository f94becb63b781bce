// Seeded property runs at small n with f Byzantine nodes and every network fault.
// Whole file: about a minute on 2 cores.
import { describe, it, expect } from 'vitest';
import { runSimnet } from '../../simnet/run.js';
import type { SimnetSummary } from '../../simnet/run.js';
import type { ByzBehaviour } from '../../simnet/world.js';

/**
 * Behaviours whose runs must also be LIVE. The others (equivocate, future-round,
 * amnesia: all of them sign conflicting votes) are checked for SAFETY only, because
 * the consensus core keeps the first of two conflicting votes and drops the second,
 * so an honest node that locked on a quorum including a Byzantine vote can wait
 * forever for the rest to see that quorum (CometBFT fixes this with per-block vote
 * sets, SetPeerMaj23). Reported to the consensus owner; see simnet/README.md.
 */
const LIVE_BEHAVIOURS: readonly ByzBehaviour[] = ['invalid-value', 'forge', 'silent'];

function explain(s: SimnetSummary): string {
  return s.violations.map((v) => `${v.kind} seed ${v.seed} h${v.height}: ${v.detail}\n  ${v.replay}`).join('\n');
}

describe('n=4, f=1', () => {
  it('200 seeds, all faults, every Byzantine behaviour: no safety violation', () => {
    const s = runSimnet({ nodes: 4, seeds: 200, heights: 6, seed: 1 });
    expect(s.safetyViolations, explain(s)).toBe(0);
    expect(s.counters.evidence).toBeGreaterThan(0); // equivocation was seen
    expect(s.counters.evidenceAgainstHonest).toBe(0);
  });

  it('150 seeds, all faults, non-equivocating Byzantine: every honest node decides every height', () => {
    const s = runSimnet({ nodes: 4, seeds: 150, heights: 6, seed: 5000, behaviours: LIVE_BEHAVIOURS });
    expect(s.safetyViolations, explain(s)).toBe(0);
    const stalls = s.violations.filter((v) => v.kind === 'catch-up' || v.detail.includes('never decided'));
    expect(stalls, explain(s)).toEqual([]);
    // The f+2-rounds bound after the heal: held by nearly every seed (see README: the
    // core's validValue only follows the current round, so a stale lock can cost rounds).
    expect(s.livenessViolations, explain(s)).toBeLessThanOrEqual(Math.ceil(s.seedsRun * 0.03));
  });
});

describe('n=7, f=2', () => {
  it('40 seeds, all faults, every Byzantine behaviour: no safety violation', () => {
    const s = runSimnet({ nodes: 7, seeds: 40, heights: 4, seed: 1 });
    expect(s.safetyViolations, explain(s)).toBe(0);
  });

  it('30 seeds, all faults, non-equivocating Byzantine: every honest node decides every height', () => {
    const s = runSimnet({ nodes: 7, seeds: 30, heights: 4, seed: 9000, behaviours: LIVE_BEHAVIOURS });
    expect(s.safetyViolations, explain(s)).toBe(0);
    const stalls = s.violations.filter((v) => v.kind === 'catch-up' || v.detail.includes('never decided'));
    expect(stalls, explain(s)).toEqual([]);
  });
});
