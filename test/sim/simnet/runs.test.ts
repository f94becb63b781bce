// `fednode simnet`'s runs (simnet/run.ts) over the PRODUCTION consensus driver
// (simnet/driver-world.ts): determinism of many seeds, every fault and churn acting, the
// split-brain negative control (the checkers can fail), and the CLI surface. Seeded property
// runs per behaviour live in test/sim/consensus/driver-seeds.test.ts.
import { describe, it, expect } from 'vitest';
import { runDriverSeed, type DriverCountersSim, type DriverWorldOptions } from '../../../simnet/driver-world.js';
import { BYZ_BEHAVIOURS, FAULT_KINDS, type ByzBehaviour, type FaultKind } from '../../../simnet/faults.js';
import { runSimnet, formatSummaryTable, parseSimnetArgs, type SimnetSummary } from '../../../simnet/run.js';
import { SimnetError } from '../../../simnet/errors.js';

const base: DriverWorldOptions = { nodes: 4, byzantine: 1, heights: 6, seed: 1, faults: FAULT_KINDS, behaviours: BYZ_BEHAVIOURS };

function explain(s: SimnetSummary): string {
  return s.violations.map((v) => `${v.kind} seed ${v.seed} h${v.height}: ${v.detail}\n  ${v.replay}`).join('\n');
}

describe('determinism', () => {
  it('runSimnet over the same seeds gives the same combined hash; other seeds another', async () => {
    const opts = { nodes: 4, seeds: 4, heights: 4, seed: 100, now: () => 0 };
    const a = await runSimnet(opts);
    expect((await runSimnet(opts)).combinedTraceHash).toBe(a.combinedTraceHash);
    expect((await runSimnet({ ...opts, seed: 200 })).combinedTraceHash).not.toBe(a.combinedTraceHash);
  });
});

describe('each fault acts on the production driver', () => {
  const sum = async (faults: readonly FaultKind[], behaviours: readonly ByzBehaviour[], seeds: number, heights = 6): Promise<DriverCountersSim> => {
    const total: Record<string, number> = {};
    for (let s = 1; s <= seeds; s++) {
      const r = await runDriverSeed({ ...base, seed: s, faults, behaviours, heights });
      expect(r.violations, `${faults.join(',')} seed ${s}`).toEqual([]);
      for (const [k, v] of Object.entries(r.counters)) if (typeof v === 'number') total[k] = (total[k] ?? 0) + v;
    }
    return total as unknown as DriverCountersSim;
  };

  it('loss, tail, reorder, duplicate, partition, crash (with unsynced writes lost), skew; a clean network drops nothing', async () => {
    expect((await sum(['loss'], [], 3)).lost).toBeGreaterThan(0);
    expect((await sum(['tail'], [], 2)).tailDelayed).toBeGreaterThan(0);
    expect((await sum(['reorder'], [], 2)).reordered).toBeGreaterThan(0);
    expect((await sum(['duplicate'], [], 2)).duplicated).toBeGreaterThan(0);
    expect((await sum(['partition'], [], 3)).partitionDropped).toBeGreaterThan(0);
    const crash = await sum(['crash'], [], 6, 8);
    expect(crash.crashes).toBe(6);
    expect(crash.restarts).toBe(6);
    expect((await sum(['skew'], [], 1)).skewedNodes).toBe(4);
    const none = await sum([], [], 2);
    expect(none.lost + none.partitionDropped + none.duplicated + none.tailDelayed + none.crashes).toBe(0);
  });

  it('churn: a node joins by a decided member.add and catches up by certificates, a member leaves by member.remove and stops', async () => {
    let caughtUp = 0;
    for (let s = 1; s <= 5; s++) {
      const r = await runDriverSeed({ ...base, seed: s, faults: ['churn'], heights: 10 });
      const churn = r.plan.churn;
      if (churn === null) throw new Error('churn not planned');
      expect(r.violations).toEqual([]);
      expect(r.counters).toMatchObject({ joins: 1, joinsDecided: 1, removesDecided: 1, leaves: 1 });
      const logs = r.history.finalLogs;
      // the joiner reached the target like every staying honest node, with the same values ...
      const staying = logs.find((_, i) => i !== churn.joiner && i !== churn.leaver && r.history.honest[i])!;
      expect(logs[churn.joiner]!.length).toBeGreaterThanOrEqual(10);
      expect(logs[churn.joiner]!.slice(0, 10)).toEqual(staying.slice(0, 10));
      // ... and the leaver stopped: it is marked left and its log ends before the target
      expect(r.history.left?.[churn.leaver]).toBe(true);
      expect(logs[churn.leaver]!.length).toBeLessThan(10);
      caughtUp += r.counters.caughtUpHeights;
    }
    expect(caughtUp).toBeGreaterThan(0);
  });

  it('churn with no honest member that could leave: the spare node never joins and nobody waits for it', async () => {
    const r = await runDriverSeed({ ...base, nodes: 1, byzantine: 0, seed: 5, faults: ['crash', 'churn'], heights: 3 });
    expect(r.plan.churn).toBeNull();
    expect(r.counters.joins).toBe(0);
    expect(r.violations).toEqual([]);
    expect(r.commits).toBe(3);
  });
});

describe('n=4 and n=7 with every fault (churn included) and every Byzantine behaviour', () => {
  it('n=4, f=1, 40 seeds: safe and live, equivocation seen as evidence', async () => {
    const s = await runSimnet({ nodes: 4, seeds: 40, heights: 6, seed: 1 });
    expect(s.safetyViolations + s.livenessViolations, explain(s)).toBe(0);
    expect(s.counters.evidence).toBeGreaterThan(0);
    expect(s.counters.joins).toBe(40); // every seed had a node join ...
    expect(s.counters.leaves).toBeGreaterThan(20); // ... and, in most, a member leave before the run's end
  });

  it('n=7, f=2, 10 seeds: safe and live', async () => {
    const s = await runSimnet({ nodes: 7, seeds: 10, heights: 5, seed: 1 });
    expect(s.safetyViolations + s.livenessViolations, explain(s)).toBe(0);
    expect(s.counters.joins).toBe(10);
    expect(s.counters.leaves).toBeGreaterThan(0);
  });
});

describe('negative control: more than f Byzantine keys, each forked across a split brain, break agreement', () => {
  it('finds agreement violations with f+1 (with a replay that reproduces them), none with f', async () => {
    const bad = await runSimnet({ nodes: 4, byzantine: 2, seeds: 6, heights: 3, splitBrain: true });
    expect(bad.safetyViolations).toBeGreaterThan(0);
    const first = bad.violations.find((v) => v.safety);
    expect(first?.kind).toBe('agreement');
    expect(first?.replay).toMatch(/--byzantine 2 .*--seed \d+ --seeds 1 --split-brain$/);
    expect(first?.trace.some((l) => /decides/.test(l))).toBe(true);
    const again = await runDriverSeed({ ...base, byzantine: 2, heights: 3, seed: first!.seed, splitBrain: true });
    expect(again.violations.some((v) => v.kind === 'agreement')).toBe(true);
    const good = await runSimnet({ nodes: 4, byzantine: 1, seeds: 6, heights: 3, splitBrain: true });
    expect(good.safetyViolations + good.livenessViolations, explain(good)).toBe(0);
  });
});

describe('CLI surface', () => {
  it('parses the documented flags and rejects bad ones with specific errors', () => {
    expect(parseSimnetArgs(['--nodes', '50', '--byzantine', '16', '--seeds', '1000', '--heights=200', '--faults', 'loss,crash', '--seed', '7', '--json', '--split-brain'])).toMatchObject({
      nodes: 50,
      byzantine: 16,
      seeds: 1000,
      heights: 200,
      faults: ['loss', 'crash'],
      seed: 7,
      json: true,
      splitBrain: true,
    });
    expect(() => parseSimnetArgs(['--nodes', 'x'])).toThrow(/--nodes needs an integer/);
    expect(() => parseSimnetArgs(['--faults', 'meteor'])).toThrow(/unknown fault 'meteor'/);
    expect(() => parseSimnetArgs(['--nodes', '4', '--byzantine', '4'])).toThrow(SimnetError);
    expect(() => parseSimnetArgs(['--frobnicate'])).toThrow(/unknown simnet option/);
  });

  it('formats a summary table', async () => {
    const s = await runSimnet({ nodes: 4, seeds: 2, heights: 2, faults: 'none' });
    const lines = formatSummaryTable(s).join('\n');
    expect(lines).toMatch(/seeds run\s+2 \(from 1\)/);
    expect(lines).toMatch(/safety violations\s+0/);
    expect(s.commits).toBeGreaterThanOrEqual(4);
  });
});
