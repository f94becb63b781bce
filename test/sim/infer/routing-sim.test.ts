// The herding test: a pure discrete-event simulation (routing/simulate.ts) of
// 5 routers and 5 servers with 2 s adverts, seeded Poisson arrivals and exponential
// service times. The fednode policy must keep max/mean in-flight below plain
// least-loaded (advert only), round robin and random on the same arrivals.
import { describe, it, expect } from 'vitest';
import { comparePolicies, simulate, SIM_POLICIES } from '../../../routing/simulate.js';
import type { SimPolicy } from '../../../routing/simulate.js';

describe('routing simulation (5 routers, 5 servers, 2 s adverts)', () => {
  it('fednode policy does not herd: lower max/mean in-flight than least-loaded, round robin, random', () => {
    const seeds = [1, 2, 3];
    const sum: Record<SimPolicy, { mm: number; p99: number }> = { fednode: { mm: 0, p99: 0 }, 'least-loaded': { mm: 0, p99: 0 }, 'round-robin': { mm: 0, p99: 0 }, random: { mm: 0, p99: 0 } };
    for (const seed of seeds) {
      const { results } = comparePolicies({ seed, durationMs: 120_000 });
      for (const p of SIM_POLICIES) {
        sum[p].mm += results[p].maxOverMeanInFlight / seeds.length;
        sum[p].p99 += results[p].p99LatencyMs / seeds.length;
        expect(results[p].completed).toBe(results[p].requests);
      }
    }
    const lines = SIM_POLICIES.map((p) => `${p.padEnd(13)} max/mean ${sum[p].mm.toFixed(3)}  (x${(sum[p].mm / sum.fednode.mm).toFixed(2)} of fednode)  p99 ${sum[p].p99.toFixed(0)} ms (x${(sum[p].p99 / sum.fednode.p99).toFixed(2)})`);
    process.stdout.write(`routing simulation, mean of seeds ${seeds.join(',')}:\n${lines.join('\n')}\n`);
    for (const p of ['least-loaded', 'round-robin', 'random'] as const) {
      expect(sum.fednode.mm).toBeLessThan(sum[p].mm);
      expect(sum.fednode.p99).toBeLessThan(sum[p].p99);
    }
    // plain least-loaded herds: clearly worse than everything
    expect(sum['least-loaded'].mm).toBeGreaterThan(sum.fednode.mm * 1.2);
  });

  it('is deterministic for a seed', () => {
    const a = simulate({ policy: 'fednode', seed: 7, durationMs: 20_000 });
    const b = simulate({ policy: 'fednode', seed: 7, durationMs: 20_000 });
    expect(a).toEqual(b);
  });

  it('under a burst of 1,000 requests every policy completes all and fednode beats least-loaded', () => {
    const { results } = comparePolicies({ seed: 11, burst: 1000, burstWindowMs: 1000 });
    for (const p of SIM_POLICIES) expect(results[p].completed).toBe(1000);
    process.stdout.write(
      `burst of 1000: ${SIM_POLICIES.map((p) => `${p} end-of-burst max/mean ${results[p].atHorizonMaxOverMean.toFixed(3)} peak ${results[p].peakInFlight}`).join('; ')}\n`,
    );
    expect(results.fednode.atHorizonMaxOverMean).toBeLessThan(results['least-loaded'].atHorizonMaxOverMean);
    expect(results.fednode.peakInFlight).toBeLessThan(results['least-loaded'].peakInFlight);
  });
});
