// Seeded runs of the PRODUCTION consensus driver (node/consensus/driver.ts) over the simulator's
// ports (simnet/driver-world.ts): virtual time, a simulated wire (direct + gossip + catch-up),
// crashable in-memory stores, real submit() work. The checkers judge every run.
import { describe, expect, it } from 'vitest';
import { runDriverSeed, DRIVER_BYZ_BEHAVIOURS, DRIVER_FAULT_KINDS, type DriverWorldOptions } from '../../../simnet/driver-world.js';
import { checkAgreement, checkDoubleSign } from '../../../simnet/checkers.js';

const base: DriverWorldOptions = { nodes: 4, byzantine: 1, heights: 12, seed: 1, faults: DRIVER_FAULT_KINDS, behaviours: DRIVER_BYZ_BEHAVIOURS };

describe('simnet over the production driver', () => {
  it('same seed, same trace hash (bit-for-bit replay); another seed, another run', async () => {
    const a = await runDriverSeed({ ...base, seed: 7 });
    const b = await runDriverSeed({ ...base, seed: 7 });
    const c = await runDriverSeed({ ...base, seed: 8 });
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.events).toBe(a.events);
    expect(b.history.decisions).toEqual(a.history.decisions);
    expect(c.traceHash).not.toBe(a.traceHash);
  });

  it('n=4, f=1: every modelled fault and Byzantine behaviour mixed, 0 violations, every honest node at the target', async () => {
    const totals = { crashes: 0, restarts: 0, lost: 0, partitionDropped: 0, evidence: 0, caughtUpHeights: 0, gossipFallbacks: 0 };
    for (let seed = 1; seed <= 12; seed++) {
      const r = await runDriverSeed({ ...base, seed });
      expect(r.violations, `seed ${seed}: ${JSON.stringify(r.violations.slice(0, 2))}`).toEqual([]);
      expect(r.commits).toBeGreaterThanOrEqual(base.heights);
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.counters[k];
    }
    // the faults really happened (a run where nothing went wrong proves little)
    for (const [k, v] of Object.entries(totals)) expect(v, k).toBeGreaterThan(0);
  });

  // Each behaviour alone, with the counter that proves it acted.
  const acted = { equivocate: 'byzExtras', forge: 'byzExtras', 'future-round': 'byzExtras', silent: 'silentDropped', 'invalid-value': 'invalidProposals', amnesia: 'amnesiaResets' } as const;
  for (const b of DRIVER_BYZ_BEHAVIOURS) {
    it(`Byzantine '${b}' acts and changes nothing honest nodes decide`, async () => {
      const r = await runDriverSeed({ ...base, seed: 21, behaviours: [b] });
      expect(r.byzantine.map((x) => x.behaviour)).toEqual([b]);
      expect(r.counters[acted[b]]).toBeGreaterThan(0);
      expect(r.violations, JSON.stringify(r.violations.slice(0, 2))).toEqual([]);
    });
  }

  it('n=7, f=2 and n=10, f=3 with all modelled faults: safe and live', async () => {
    for (const nodes of [7, 10]) {
      for (let seed = 1; seed <= 3; seed++) {
        const r = await runDriverSeed({ ...base, nodes, byzantine: Math.floor((nodes - 1) / 3), heights: 8, seed });
        expect(r.violations, `n=${nodes} seed ${seed}: ${JSON.stringify(r.violations.slice(0, 2))}`).toEqual([]);
      }
    }
  });

  it('the history the checkers read is the driver\'s: decisions agree per height and honest signatures are recorded', async () => {
    const r = await runDriverSeed({ ...base, seed: 3, byzantine: 0, behaviours: [] });
    const heights = new Set(r.history.decisions.map((d) => d.height));
    expect(heights.size).toBeGreaterThanOrEqual(base.heights);
    expect(r.history.signed.length).toBeGreaterThan(3 * base.heights); // prevote + precommit per node per height at least
    expect(checkAgreement(r.history)).toEqual([]);
    expect(checkDoubleSign(r.history)).toEqual([]);
    // a forged history with two values at one height is caught (the checker is live on this data)
    const d0 = r.history.decisions.find((d) => d.node === 0)!;
    const forged = { ...r.history, decisions: [...r.history.decisions, { ...d0, node: 1, valueHex: 'ff'.repeat(32) }] };
    expect(checkAgreement(forged).length).toBeGreaterThan(0);
  });

  it('an idle cluster decides nothing: no work, no heights (production semantics, not a timer)', async () => {
    // One op at t=0, then none: the run goes on to its time bound (a target of 2 is never reached).
    const r = await runDriverSeed({ ...base, seed: 5, byzantine: 0, behaviours: [], faults: [], heights: 2, workIntervalMs: 10_000_000 });
    expect(r.counters.submits).toBe(1);
    expect(r.simTimeUs).toBeGreaterThan(60_000_000); // a minute of simulated time observed
    expect(r.history.finalLogs.map((l) => l.length)).toEqual([1, 1, 1, 1]);
    // The nodes kept talking: idle, not dead. An idle member re-sends its unchanged status every
    // STATUS_KEEPALIVE_TICKS (15 s; driver-types.ts), 4 a minute per ordered pair; 3 leaves slack.
    expect(r.counters.deliveredByKind['status']).toBeGreaterThan(4 * 3 * 3);
  });

  it('options the driver world does not know are refused by name', async () => {
    await expect(runDriverSeed({ ...base, faults: ['meteor' as never] })).rejects.toThrow(/unknown fault 'meteor'/);
    await expect(runDriverSeed({ ...base, behaviours: ['bribe' as never] })).rejects.toThrow(/unknown Byzantine behaviour 'bribe'/);
    await expect(runDriverSeed({ ...base, seed: -1 })).rejects.toThrow(/seed must be/);
  });
});
