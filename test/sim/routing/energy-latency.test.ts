// The energy and latency claims of issue 11 in the routing simulator (simnet/routing.ts), each
// against least-loaded, round robin and random measured in the same run on the same arrivals.
// Energy: 8 nodes of 4 slots at the same speed (200 tokens/s) whose GPUs draw 120..350 W, so
// 0.6..1.75 J/token. Latency: 6 equal nodes, one behind a slow 40 ms access link.
import { describe, it, expect } from 'vitest';
import { runRoutingComparison } from '../../../simnet/routing.js';
import type { RoutingComparison, RoutingPolicyName, RoutingPolicyResult, SimNodeSpec } from '../../../simnet/routing.js';

const WATTS = [120, 140, 160, 200, 250, 300, 320, 350];
const ENERGY_NODES: SimNodeSpec[] = WATTS.map((watts) => ({ capacity: 4, watts, tokensPerS: 200 }));
const FAR = 5;
const LATENCY_NODES: SimNodeSpec[] = [0, 1, 2, 3, 4, 5].map((i) => ({ capacity: 4, linkMs: i === FAR ? 40 : 0.5 }));
const SEEDS = [1, 2, 3, 4, 5];
const DURATION_MS = 60_000;

const of = (c: RoutingComparison, p: RoutingPolicyName): RoutingPolicyResult => c.results.find((r) => r.policy === p)!;
const BASELINES = ['least-loaded', 'round-robin', 'random'] as const;
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

function report(label: string, runs: readonly RoutingComparison[]): void {
  const lines = (['fednode', ...BASELINES] as const).map((p) => {
    const e = mean(runs.map((c) => of(c, p).energyPerTokenJ));
    const p99 = mean(runs.map((c) => of(c, p).p99LatencyMs));
    return `  ${p.padEnd(13)} energy ${e.toFixed(3)} J/token  p99 ${p99.toFixed(0)} ms`;
  });
  const er = runs.map((c) => of(c, 'fednode').energyPerTokenJ / of(c, 'least-loaded').energyPerTokenJ);
  const pr = runs.map((c) => of(c, 'fednode').p99LatencyMs / of(c, 'least-loaded').p99LatencyMs);
  process.stdout.write(`${label} (seeds ${SEEDS.join(',')}, ${DURATION_MS / 1000} s each):\n${lines.join('\n')}\n  fednode / least-loaded: energy per token ${er.map((x) => x.toFixed(3)).join(', ')}; p99 ${pr.map((x) => x.toFixed(3)).join(', ')}\n`);
}

describe('energy: light load consolidates on efficient members, heavy load is pure balance', () => {
  it('at 30 % load: energy per token below every baseline on every seed, p99 within 10 % of least-loaded', () => {
    const runs = SEEDS.map((seed) => runRoutingComparison({ seed, nodes: ENERGY_NODES, utilisation: 0.3, durationMs: DURATION_MS }));
    report('energy nodes at 30 % load', runs);
    for (const c of runs) {
      for (const b of BASELINES) expect(of(c, 'fednode').energyPerTokenJ, `seed ${c.seed} vs ${b}`).toBeLessThan(of(c, b).energyPerTokenJ * 0.9);
      expect(of(c, 'fednode').p99LatencyMs, `seed ${c.seed} p99`).toBeLessThanOrEqual(of(c, 'least-loaded').p99LatencyMs * 1.1);
      // the most efficient node serves more than its share, the least efficient less
      const served = of(c, 'fednode').servedShare;
      expect(served[0]!).toBeGreaterThan(1 / 8);
      expect(served[7]!).toBeLessThan(1 / 8);
    }
  });

  it('at 90 % load: p99 within 5 % of least-loaded, and the energy preference is gone (energy per token within 3 % of least-loaded)', () => {
    const runs = SEEDS.slice(0, 3).map((seed) => runRoutingComparison({ seed, nodes: ENERGY_NODES, utilisation: 0.9, durationMs: DURATION_MS }));
    report('energy nodes at 90 % load', runs);
    for (const c of runs) {
      expect(of(c, 'fednode').p99LatencyMs, `seed ${c.seed} p99`).toBeLessThanOrEqual(of(c, 'least-loaded').p99LatencyMs * 1.05);
      expect(Math.abs(of(c, 'fednode').energyPerTokenJ / of(c, 'least-loaded').energyPerTokenJ - 1), `seed ${c.seed} energy`).toBeLessThan(0.03);
    }
  });

  it('the saving comes from the power weight: with power = 0 the policy spends what least-loaded spends', () => {
    const c = runRoutingComparison({ seed: 1, nodes: ENERGY_NODES, utilisation: 0.3, durationMs: DURATION_MS, params: { weights: { power: 0 } } });
    expect(Math.abs(of(c, 'fednode').energyPerTokenJ / of(c, 'least-loaded').energyPerTokenJ - 1)).toBeLessThan(0.03);
  });
});

describe('latency: a member behind a slow link loses light-load traffic to near ones', () => {
  it('at 30 % load the far member gets almost none of the forwarded requests; at 90 % its share of balance again', () => {
    const light = SEEDS.slice(0, 3).map((seed) => runRoutingComparison({ seed, nodes: LATENCY_NODES, utilisation: 0.3, durationMs: DURATION_MS }));
    const heavy = SEEDS.slice(0, 3).map((seed) => runRoutingComparison({ seed, nodes: LATENCY_NODES, utilisation: 0.9, durationMs: DURATION_MS }));
    const share = (runs: readonly RoutingComparison[], p: RoutingPolicyName): number => mean(runs.map((c) => of(c, p).forwardedShare[FAR]!));
    const lat = (runs: readonly RoutingComparison[], p: RoutingPolicyName): number => mean(runs.map((c) => of(c, p).meanLatencyMs));
    process.stdout.write(
      `far member's share of forwarded requests (fair share 1/5 = 0.2), mean latency:\n` +
        (['fednode', ...BASELINES] as const).map((p) => `  ${p.padEnd(13)} 30 %: ${share(light, p).toFixed(3)} (${lat(light, p).toFixed(0)} ms)  90 %: ${share(heavy, p).toFixed(3)} (${lat(heavy, p).toFixed(0)} ms)`).join('\n') +
        '\n',
    );
    expect(share(light, 'fednode')).toBeLessThan(0.05);
    for (const b of BASELINES) {
      expect(share(light, b)).toBeGreaterThan(0.1);
      expect(lat(light, 'fednode'), `mean latency vs ${b}`).toBeLessThan(lat(light, b));
    }
    expect(share(heavy, 'fednode')).toBeGreaterThan(0.1);
    // and it is the latency weight that does it
    const noLatency = runRoutingComparison({ seed: 1, nodes: LATENCY_NODES, utilisation: 0.3, durationMs: DURATION_MS, params: { weights: { latency: 0 } } });
    expect(of(noLatency, 'fednode').forwardedShare[FAR]!).toBeGreaterThan(0.1);
  });
});
