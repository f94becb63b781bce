// The validity rules of route.policy weights and model aliases (consensus/registry.ts): a
// proposal naming a weight the score does not have, or closing an alias cycle, is refused,
// while a log decided before these rules still replays with its registry hashes unchanged.
import { describe, it, expect } from 'vitest';
import { applyBatch, genesisRegistry, registryHash, validateBatch } from '../../../consensus/registry.js';
import type { Registry } from '../../../consensus/registry.js';
import { encodeBatch } from '../../../consensus/patterns.js';
import type { PatternOp } from '../../../consensus/patterns.js';
import { identityFromSeed } from '../../../crypto/keys.js';
import { toHex } from '../../../base/hex.js';

const ids = [1, 2, 3, 4].map((i) => identityFromSeed(new Uint8Array(32).fill(i)));
const genesis = (): Registry => genesisRegistry({ members: ids.map((id, i) => ({ publicKey: id.publicKey, power: 1, name: `n${i}` })) });
const policy = (weights: Record<string, number>): PatternOp => ({ kind: 'route.policy', weights, batteryFloorPct: 30, temperatureCeilingC: 80 });
const alias = (a: string, m: string | null): PatternOp => ({ kind: 'model.alias', alias: a, model: m });
const verdict = (reg: Registry, ops: PatternOp[]) => validateBatch(reg, reg.height + 1, encodeBatch(ops));

describe('route.policy weights', () => {
  it('a proposal with an unknown weight is rejected, naming it and the known ones', () => {
    const v = verdict(genesis(), [policy({ load: 1, speed: 2 })]);
    expect(v).toEqual({ ok: false, index: 0, reason: "op 0 (route.policy): unknown weight 'speed' (known: load, latency, power, heat, battery)" });
    expect(verdict(genesis(), [policy({ load: 1, latency: 2, power: 0, heat: 1, battery: 3 })]).ok).toBe(true);
    expect(verdict(genesis(), [policy({})]).ok).toBe(true); // every weight at its default
  });

  it('the height that decided the policy is recorded (not hashed)', () => {
    const r1 = applyBatch(genesis(), 1, encodeBatch([]));
    expect(r1.routePolicyHeight).toBe(0);
    const r2 = applyBatch(r1, 2, encodeBatch([policy({ latency: 2 })]));
    expect(r2.routePolicyHeight).toBe(2);
    expect(applyBatch(r2, 3, encodeBatch([])).routePolicyHeight).toBe(2);
    expect(toHex(registryHash({ ...r2, routePolicyHeight: 99 }))).toBe(toHex(registryHash(r2)));
  });
});

describe('model aliases', () => {
  it('an alias cycle is rejected, in one batch or across heights; chains and removals are fine', () => {
    expect(verdict(genesis(), [alias('a', 'b'), alias('b', 'a')])).toMatchObject({ ok: false, index: 1, reason: 'op 1 (model.alias): alias cycle b -> a -> b' });
    const r1 = applyBatch(genesis(), 1, encodeBatch([alias('a', 'b'), alias('b', 'c')]));
    expect(verdict(r1, [alias('c', 'a')])).toMatchObject({ ok: false, reason: 'op 0 (model.alias): alias cycle c -> a -> b -> c' });
    expect(verdict(r1, [alias('c', 'llama3')]).ok).toBe(true);
    expect(verdict(r1, [alias('b', null), alias('c', 'a')]).ok).toBe(true); // b removed first: no cycle
  });
});

describe('logs decided before these rules', () => {
  // Hashes computed with the code before this change (git HEAD fdb9660) over the same batches:
  // an unknown weight 'foo' at height 1 and the alias cycle a -> b -> a at heights 2-3.
  const GOLDEN = [
    'ad1f1b10c222a8835ab43a068c299336d8a1c94362bd6621a2cf0f7f41afb2f4',
    'c8da59fe3b9c4cf58659359a4ed70b235258e3977745bf31315c919b418e8bca',
    '902f4437da24f88310bb396dbb8183bd99c6dd601e681af700991554aee0048a',
    '0fa9dabad1db04b4eda31db52d471646f0302d6707c8d9f822f95444a3d0a979',
    'adccf9f7d472ba54cf7566246c0e0349621aa5ec4735a7b8db755dc8db7f8e23',
  ];
  const old: PatternOp[][] = [[policy({ load: 2, foo: 1 })], [alias('a', 'b')], [alias('b', 'a')], []];

  it('still replay (applyBatch), with the same registry hash at every height', () => {
    let reg = genesis();
    const hashes = [toHex(registryHash(reg))];
    old.forEach((ops, i) => {
      reg = applyBatch(reg, i + 1, encodeBatch(ops));
      hashes.push(toHex(registryHash(reg)));
    });
    expect(hashes).toEqual(GOLDEN);
    expect(reg.routePolicy.weights).toEqual({ foo: 1, load: 2 });
    expect(reg.aliases).toEqual([['a', 'b'], ['b', 'a']]);
  });

  it('but the same batches are refused as proposals', () => {
    expect(verdict(genesis(), old[0]!).ok).toBe(false);
    const r2 = applyBatch(applyBatch(genesis(), 1, encodeBatch([])), 2, encodeBatch(old[1]!));
    expect(verdict(r2, old[2]!).ok).toBe(false);
  });
});
