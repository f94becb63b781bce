import { describe, it, expect } from 'vitest';
import { encodeCanonical } from '../../../crypto/cbor.js';
import { toHex } from '../../../base/hex.js';
import { proposerFor } from '../../../consensus/core.js';
import { contentHashOf, decodeBatch, encodeBatch, MAX_BATCH_BYTES, MAX_BATCH_OPS, MAX_CONTENT_BYTES, type PatternOp } from '../../../consensus/patterns.js';
import { applyBatch, genesisRegistry, registryHash, validateBatch, validatorSetAt, validityFor, type Registry } from '../../../consensus/registry.js';
import { ConsensusError } from '../../../consensus/types.js';
import { Router, ident } from '../../helpers/consensus-harness.js';

const ids = [0, 1, 2, 3].map(ident);
const genesis = (): Registry => genesisRegistry({ members: ids.map((id, i) => ({ publicKey: id.publicKey, power: 1, name: `node-${i}` })), qualityGates: { accuracy: 0.8 } });

const pattern = (name: string, content: string, quality: Record<string, number> | null = null): PatternOp => ({ kind: 'pattern', name, content, contentHash: contentHashOf(content), tags: ['t'], quality });

describe('pattern batches', () => {
  it('round-trips every op kind through canonical CBOR', () => {
    const ops: PatternOp[] = [
      { kind: 'member.add', publicKey: ident(7).publicKey, power: 2, name: 'gpu-box' },
      { kind: 'member.remove', publicKey: ids[0]!.publicKey },
      { kind: 'route.policy', weights: { load: 1, latency: 2 }, batteryFloorPct: 30, temperatureCeilingC: 80 },
      { kind: 'model.alias', alias: 'fast', model: 'llama3:8b' },
      { kind: 'quality.gates', gates: { accuracy: 0.5 } },
      pattern('greeting', 'Hello {{name}}', { accuracy: 0.9 }),
    ];
    const bytes = encodeBatch(ops);
    expect(decodeBatch(bytes)).toEqual(ops);
  });

  it('rejects garbage, unknown fields and unknown kinds with specific errors', () => {
    const codeOf = (f: () => unknown): string => {
      try {
        f();
        return 'none';
      } catch (err) {
        return err instanceof ConsensusError ? err.code : 'other';
      }
    };
    expect(codeOf(() => decodeBatch(new Uint8Array([0xff, 0x00])))).toBe('ERR_PATTERN_ENCODING');
    expect(codeOf(() => decodeBatch(encodeCanonical({ v: 2, ops: [] })))).toBe('ERR_PATTERN_ENCODING');
    expect(codeOf(() => decodeBatch(encodeCanonical({ v: 1, ops: [{ kind: 'nope' }] })))).toBe('ERR_PATTERN_INVALID');
    expect(codeOf(() => decodeBatch(encodeCanonical({ v: 1, ops: [{ kind: 'model.alias', alias: 'a', model: 'b', extra: 1 }] })))).toBe('ERR_PATTERN_INVALID');
    expect(codeOf(() => decodeBatch(encodeCanonical({ v: 1, ops: [{ kind: 'route.policy', weights: { __proto__x: 1 }, batteryFloorPct: 1, temperatureCeilingC: 1 }] })))).toBe('ERR_PATTERN_INVALID');
    expect(codeOf(() => decodeBatch(encodeCanonical({ v: 1, ops: [{ kind: 'route.policy', weights: {}, batteryFloorPct: 101, temperatureCeilingC: 1 }] })))).toBe('ERR_PATTERN_INVALID');
  });

  it('enforces the batch bounds (ops and bytes)', () => {
    const many: PatternOp[] = Array.from({ length: MAX_BATCH_OPS + 1 }, (_, i) => ({ kind: 'model.alias' as const, alias: `a${i}`, model: 'm' }));
    expect(() => encodeBatch(many)).toThrow(ConsensusError);
    expect(() => decodeBatch(encodeCanonical({ v: 1, ops: many }))).toThrow(/at most 512 ops/);
    const big = 'x'.repeat(MAX_CONTENT_BYTES);
    const oversize = [0, 1, 2, 3].map((i) => pattern(`p${i}`, big));
    expect(() => encodeBatch(oversize)).toThrow(/exceeds/);
    const raw = encodeCanonical({ v: 1, ops: oversize });
    expect(raw.length).toBeGreaterThan(MAX_BATCH_BYTES);
    const verdict = validateBatch(genesis(), 1, raw);
    expect(verdict.ok).toBe(false);
    expect(() => encodeBatch([pattern('big', 'x'.repeat(MAX_CONTENT_BYTES + 1))])).toThrow(/content/);
  });
});

describe('validity predicates', () => {
  it('rejects a content hash that does not match the content', () => {
    const bad = encodeCanonical({ v: 1, ops: [{ kind: 'pattern', name: 'p', content: 'real', contentHash: contentHashOf('fake'), tags: [], quality: null }] });
    const v = validateBatch(genesis(), 1, bad);
    expect(v).toMatchObject({ ok: false, index: 0 });
    expect(!v.ok && v.reason).toMatch(/content hash/);
  });

  it('gates quality scores cluster-wide: below gate and missing metric fail, absent scores pass', () => {
    const reg = genesis();
    expect(validateBatch(reg, 1, encodeBatch([pattern('p', 'c', { accuracy: 0.5 })]))).toMatchObject({ ok: false, index: 0 });
    expect(validateBatch(reg, 1, encodeBatch([pattern('p', 'c', { fluency: 0.99 })]))).toMatchObject({ ok: false });
    expect(validateBatch(reg, 1, encodeBatch([pattern('p', 'c', { accuracy: 0.8 })])).ok).toBe(true);
    expect(validateBatch(reg, 1, encodeBatch([pattern('p', 'c', null)])).ok).toBe(true);
    // A gate change earlier in the same batch applies to later ops.
    expect(validateBatch(reg, 1, encodeBatch([{ kind: 'quality.gates', gates: { accuracy: 0.95 } }, pattern('p', 'c', { accuracy: 0.9 })])).ok).toBe(false);
  });

  it('checks membership against the projected member list', () => {
    const reg = genesis();
    expect(validateBatch(reg, 1, encodeBatch([{ kind: 'member.add', publicKey: ids[1]!.publicKey, power: 1, name: 'dup' }])).ok).toBe(false);
    expect(validateBatch(reg, 1, encodeBatch([{ kind: 'member.remove', publicKey: ident(8).publicKey }])).ok).toBe(false);
    const add = { kind: 'member.add', publicKey: ident(8).publicKey, power: 1, name: 'new' } as const;
    expect(validateBatch(reg, 1, encodeBatch([add])).ok).toBe(true);
    expect(validateBatch(reg, 1, encodeBatch([add, add])).ok).toBe(false);
    // Pending (not yet in force) additions count as members for later batches.
    const reg1 = applyBatch(reg, 1, encodeBatch([add]));
    expect(validateBatch(reg1, 2, encodeBatch([add])).ok).toBe(false);
    // Wrong height: the registry must be at height - 1.
    expect(validateBatch(reg, 2, encodeBatch([add])).ok).toBe(false);
    expect(validateBatch(reg, 1, encodeBatch([{ kind: 'model.alias', alias: 'x', model: null }])).ok).toBe(false);
  });
});

describe('registry', () => {
  it('a membership change decided at H takes effect at H+2', () => {
    const reg0 = genesis();
    const newcomer = ident(8);
    const reg1 = applyBatch(reg0, 1, encodeBatch([{ kind: 'member.add', publicKey: newcomer.publicKey, power: 3, name: 'new' }]));
    const at2 = validatorSetAt(reg1, 2);
    const at3 = validatorSetAt(reg1, 3);
    expect(at2.validators).toHaveLength(4);
    expect(at2.totalPower).toBe(4);
    expect(at3.validators).toHaveLength(5);
    expect(at3.totalPower).toBe(7);
    expect(at3.sinceHeight).toBe(3);
    expect(() => validatorSetAt(reg1, 1)).toThrow(ConsensusError);
    const reg2 = applyBatch(reg1, 2, encodeBatch([{ kind: 'model.alias', alias: 'a', model: 'b' }]));
    expect(reg2.members).toHaveLength(4);
    const reg3 = applyBatch(reg2, 3, encodeBatch([{ kind: 'member.remove', publicKey: ids[0]!.publicKey }]));
    expect(reg3.members).toHaveLength(5);
    expect(reg3.membersSince).toBe(3);
    expect(validatorSetAt(reg3, 4).validators).toHaveLength(5);
    expect(validatorSetAt(reg3, 5).validators).toHaveLength(4);
    expect(validatorSetAt(reg3, 5).validators.some((v) => toHex(v.publicKey) === toHex(ids[0]!.publicKey))).toBe(false);
  });

  it('the empty batch (an idle proposer\'s value) is valid and only brings pending membership changes into force', () => {
    const empty = encodeBatch([]);
    expect(decodeBatch(empty)).toEqual([]);
    const reg0 = genesis();
    const newcomer = ident(8);
    const reg1 = applyBatch(reg0, 1, encodeBatch([{ kind: 'member.add', publicKey: newcomer.publicKey, power: 1, name: 'new' }]));
    expect(validateBatch(reg1, 2, empty).ok).toBe(true);
    expect(validityFor((h) => (h === 2 ? reg1 : null))(2, empty)).toBe(true);
    const reg2 = applyBatch(reg1, 2, empty);
    expect(reg2.members).toHaveLength(4); // not yet: in force at 3
    expect(reg2.pending).toHaveLength(1);
    const reg3 = applyBatch(reg2, 3, empty);
    expect(reg3.members).toHaveLength(5);
    expect(reg3.pending).toHaveLength(0);
    expect(reg3.membersSince).toBe(3);
    expect({ ...reg3, height: 0 }).toEqual({ ...reg1, height: 0, members: reg3.members, membersSince: 3, pending: [] }); // nothing else changed
  });

  it('applies aliases, policies and pattern versions, and hashes equal for equal histories', () => {
    const batches = [
      encodeBatch([{ kind: 'model.alias', alias: 'fast', model: 'llama3:8b' }, pattern('p', 'one')]),
      encodeBatch([{ kind: 'route.policy', weights: { load: 2 }, batteryFloorPct: 40, temperatureCeilingC: 75 }, pattern('p', 'two')]),
      encodeBatch([{ kind: 'model.alias', alias: 'fast', model: null }]),
    ];
    let a = genesis();
    let b = genesis();
    const hashes: string[] = [];
    batches.forEach((bytes, i) => {
      a = applyBatch(a, i + 1, bytes);
      b = applyBatch(b, i + 1, new Uint8Array(bytes)); // an independent copy, as another node would hold
      expect(toHex(registryHash(a))).toBe(toHex(registryHash(b)));
      hashes.push(toHex(registryHash(a)));
    });
    expect(new Set(hashes).size).toBe(3);
    expect(a.patterns).toEqual([expect.objectContaining({ name: 'p', content: 'two', version: 2, height: 2 })]);
    expect(a.aliases).toEqual([]);
    expect(a.routePolicy).toEqual({ weights: { load: 2 }, batteryFloorPct: 40, temperatureCeilingC: 75 });
    // A different history gives a different hash.
    const c = applyBatch(genesis(), 1, encodeBatch([pattern('p', 'other')]));
    expect(toHex(registryHash(c))).not.toBe(toHex(registryHash(applyBatch(genesis(), 1, batches[0]!))));
    expect(() => applyBatch(a, 3, batches[0]!)).toThrow(ConsensusError);
  });
});

describe('consensus over pattern batches', () => {
  function cluster() {
    const regs: Registry[][] = ids.map(() => [genesis()]);
    const r = new Router(ids, null, (i) => ({ validateValue: validityFor((h) => regs[i]![h - 1] ?? null) }));
    return { r, regs };
  }
  function runHeights(r: Router, regs: Registry[][], heights: number): void {
    for (let h = 1; h <= heights; h++) {
      r.startAll(h);
      r.nodes.forEach((n, i) => {
        const d = n.decided[h - 1];
        if (d?.type !== 'decide') return;
        regs[i]!.push(applyBatch(regs[i]![h - 1]!, h, d.value));
      });
    }
  }

  it('4 nodes decide batches and report equal registry hashes at every height', () => {
    const { r, regs } = cluster();
    r.valueFor = (n, h) => encodeBatch([pattern(`p${h}`, `from ${n} at ${h}`), { kind: 'model.alias', alias: `a${h}`, model: `m${n}` }]);
    runHeights(r, regs, 4);
    for (let h = 1; h <= 4; h++) {
      const hs = regs.map((rs) => toHex(registryHash(rs[h]!)));
      expect(new Set(hs).size).toBe(1);
    }
    expect(regs[0]![4]!.patterns).toHaveLength(4);
  });

  it('an invalid batch from the proposer is prevoted nil by everyone and not decided in that round', () => {
    const { r, regs } = cluster();
    const proposer = r.index(toHex(proposerFor(r.validators, 1, 0).publicKey));
    const badBatch = encodeCanonical({ v: 1, ops: [{ kind: 'pattern', name: 'p', content: 'real', contentHash: contentHashOf('fake'), tags: [], quality: null }] });
    r.valueFor = (n, h, round) => (n === proposer && round === 0 ? badBatch : encodeBatch([pattern(`ok${h}`, 'fine')]));
    r.startAll(1);
    for (const n of r.nodes) {
      const prevotes = n.broadcasts.flatMap((m) => (m.type === 'vote' && m.vote.vote.type === 'prevote' ? [m.vote.vote] : []));
      expect(prevotes[0]).toEqual({ type: 'prevote', height: 1, round: 0, valueId: null });
      expect(n.decided).toHaveLength(0);
    }
    r.fireTimeouts('precommit');
    for (const n of r.nodes) expect(n.decided[0]).toMatchObject({ type: 'decide', height: 1, round: 1 });
    r.nodes.forEach((n, i) => {
      const d = n.decided[0]!;
      if (d.type === 'decide') regs[i]!.push(applyBatch(regs[i]![0]!, 1, d.value));
    });
    expect(new Set(regs.map((rs) => toHex(registryHash(rs[1]!)))).size).toBe(1);
  });
});
