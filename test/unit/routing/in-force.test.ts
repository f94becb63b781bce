// The policy in force (routing/in-force.ts): a pure function of the decided registry plus the
// node's config defaults, fed here with real registries built by the consensus code.
import { describe, it, expect } from 'vitest';
import { applyBatch, genesisRegistry } from '../../../consensus/registry.js';
import type { Registry } from '../../../consensus/registry.js';
import { encodeBatch } from '../../../consensus/patterns.js';
import type { PatternOp } from '../../../consensus/patterns.js';
import { identityFromSeed } from '../../../crypto/keys.js';
import { describeSource, policyInForce, resolveModel } from '../../../routing/in-force.js';
import { DEFAULT_ROUTE_WEIGHTS } from '../../../routing/policy.js';

const me = identityFromSeed(new Uint8Array(32).fill(7));
const CONFIG = { batteryFloorPct: 50, tempCeilingC: 70 };
function registryAfter(...heights: PatternOp[][]): Registry {
  let reg = genesisRegistry({ members: [{ publicKey: me.publicKey, power: 1, name: 'me' }] });
  heights.forEach((ops, i) => (reg = applyBatch(reg, i + 1, encodeBatch(ops))));
  return reg;
}

describe('policyInForce', () => {
  it('until a route.policy is decided: the config defaults and the built-in weights', () => {
    const p = policyInForce(registryAfter([], []), CONFIG);
    expect(p.source).toEqual({ kind: 'config' });
    expect(describeSource(p.source)).toBe('config defaults');
    expect(p.registryHeight).toBe(2);
    expect(p.params).toMatchObject({ batteryFloorPct: 50, tempCeilingC: 70, weights: DEFAULT_ROUTE_WEIGHTS });
    expect(p.problems).toEqual([]);
  });

  it('a decided route.policy wins over the config entirely; weights it does not name keep their defaults', () => {
    const reg = registryAfter([], [{ kind: 'route.policy', weights: { latency: 2, power: 0 }, batteryFloorPct: 25, temperatureCeilingC: 90 }], []);
    const p = policyInForce(reg, CONFIG);
    expect(p.source).toEqual({ kind: 'registry', height: 2 });
    expect(describeSource(p.source)).toBe('route policy from height 2');
    expect(p.params).toMatchObject({ batteryFloorPct: 25, tempCeilingC: 90, weights: { load: 1, latency: 2, power: 0, heat: 1, battery: 1 } });
  });

  it('names what it cannot apply from a log decided before the rules (unknown weight, alias cycle)', () => {
    const reg = registryAfter([{ kind: 'route.policy', weights: { load: 3, foo: 1 }, batteryFloorPct: 20, temperatureCeilingC: 85 }], [{ kind: 'model.alias', alias: 'x', model: 'y' }], [{ kind: 'model.alias', alias: 'y', model: 'x' }]);
    const p = policyInForce(reg, CONFIG);
    expect(p.params.weights.load).toBe(3);
    expect(p.problems).toEqual([
      "route.policy weight 'foo' is not a weight of the score (known: load, latency, power, heat, battery); not applied",
      "alias 'x' is not applied: alias cycle x -> y -> x",
      "alias 'y' is not applied: alias cycle y -> x -> y",
    ]);
    expect(resolveModel(p, 'x')).toEqual({ ok: false, reason: 'alias cycle x -> y -> x' });
  });

  it('resolves aliases, chains to their end, and anything else to itself', () => {
    const reg = registryAfter([{ kind: 'model.alias', alias: 'fast', model: 'small' }, { kind: 'model.alias', alias: 'small', model: 'llama3:8b' }]);
    const p = policyInForce(reg, CONFIG);
    expect(resolveModel(p, 'fast')).toEqual({ ok: true, model: 'llama3:8b', via: ['fast', 'small'] });
    expect(resolveModel(p, 'small')).toEqual({ ok: true, model: 'llama3:8b', via: ['small'] });
    expect(resolveModel(p, 'llama3:8b')).toEqual({ ok: true, model: 'llama3:8b', via: [] });
    // a removed alias resolves to itself again
    const after = policyInForce(applyBatch(reg, 2, encodeBatch([{ kind: 'model.alias', alias: 'fast', model: null }])), CONFIG);
    expect(resolveModel(after, 'fast')).toEqual({ ok: true, model: 'fast', via: [] });
  });
});
