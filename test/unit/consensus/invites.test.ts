// One-time invites in the registry: `member.add` may carry the invite digest; the registry
// keeps the used digests (bounded), hashes them once there are any, and refuses a reuse.
import { describe, expect, it } from 'vitest';
import { blake3 } from '../../../crypto/blake3.js';
import { encodeCanonical } from '../../../crypto/cbor.js';
import { toHex } from '../../../base/hex.js';
import { contentHashOf, decodeBatch, encodeBatch, type PatternOp } from '../../../consensus/patterns.js';
import { applyBatch, genesisRegistry, isInviteUsed, MAX_USED_INVITES, registryHash, validateBatch, type Registry } from '../../../consensus/registry.js';
import { ConsensusError } from '../../../consensus/types.js';
import { ident } from '../../helpers/consensus-harness.js';

const ids = [0, 1, 2, 3].map(ident);
const genesis = (): Registry => genesisRegistry({ members: ids.map((id, i) => ({ publicKey: id.publicKey, power: 1, name: `node-${i}` })), qualityGates: { accuracy: 0.8 } });
const digest = (i: number): Uint8Array => blake3(new TextEncoder().encode(`invite-${i}`));
const add = (i: number, invite?: Uint8Array): PatternOp => ({ kind: 'member.add', publicKey: ident(i).publicKey, power: 2, name: 'gpu-box', ...(invite !== undefined ? { invite } : {}) });
const pat: PatternOp = { kind: 'pattern', name: 'p', content: 'c', contentHash: contentHashOf('c'), tags: [], quality: null };
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// Computed by the code BEFORE member.add had an invite field (same ops, same genesis):
// decided logs and registry hashes of that time must stay valid byte for byte.
const OLD_BATCH_HEX =
  'a2617601636f707382a4646b696e646a6d656d6265722e616464646e616d65676770752d626f7865706f77657202697075626c69634b65795820d3cb8e7b19a30f096144adfe48537c3cf2981ec47db72df6c77e18b049febdbda6646b696e64677061747465726e646e616d65617064746167738067636f6e74656e746163677175616c697479f66b636f6e74656e74486173685820ea7aa1fc9efdbe106dbb70369a75e9671fa29d52bd55536711bf197477b8f021';
const OLD_GENESIS_HASH = 'd517d92773545bf469c6ce7d94c5e77d3f7743221810c65600c12d76dd1510b2';
/** After applying OLD_BATCH at height 1 (the add pending). */
const OLD_H1_HASH = 'b4d8c7c998dca6e81f4bcfccd083fdb0d930d0e40fbd19be5b1fe967bd5f96c0';
/** After two more empty heights (the add in force, nothing pending). */
const OLD_H3_HASH = '8f4a79f75a50c8ae74abe6e4199f43e3718e195799344a35b3a8fe53823e7627';

const upTo3 = (first: Uint8Array): Registry[] => {
  const r1 = applyBatch(genesis(), 1, first);
  const r2 = applyBatch(r1, 2, encodeBatch([]));
  return [r1, r2, applyBatch(r2, 3, encodeBatch([]))];
};

describe('member.add without an invite: encoding and hashes unchanged', () => {
  it('an old-form op encodes to the same bytes, decodes without the field and re-encodes identically', () => {
    expect(hex(encodeBatch([add(7), pat]))).toBe(OLD_BATCH_HEX);
    const decoded = decodeBatch(Buffer.from(OLD_BATCH_HEX, 'hex'));
    expect('invite' in decoded[0]!).toBe(false);
    expect(hex(encodeBatch(decoded))).toBe(OLD_BATCH_HEX);
  });

  it('genesis and registries that never used an invite hash exactly as before', () => {
    expect(hex(registryHash(genesis()))).toBe(OLD_GENESIS_HASH);
    const [r1, , r3] = upTo3(Buffer.from(OLD_BATCH_HEX, 'hex'));
    expect(r3!.usedInvites).toEqual([]);
    expect(hex(registryHash(r1!))).toBe(OLD_H1_HASH);
    expect(hex(registryHash(r3!))).toBe(OLD_H3_HASH);
  });
});

describe('member.add with an invite digest', () => {
  it('round-trips through canonical CBOR; null, wrong length and non-bytes are refused on the wire', () => {
    const ops = [add(7, digest(1)), pat];
    expect(decodeBatch(encodeBatch(ops))).toEqual(ops);
    const wire = (invite: unknown): Uint8Array => encodeCanonical({ v: 1, ops: [{ kind: 'member.add', publicKey: ident(7).publicKey, power: 1, name: '', invite }] });
    for (const bad of [null, new Uint8Array(31), 'ab'.repeat(32), 0]) {
      let err: unknown = null;
      try {
        decodeBatch(wire(bad));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConsensusError);
      expect((err as ConsensusError).code).toBe('ERR_PATTERN_INVALID');
      expect((err as ConsensusError).message).toMatch(/invite must be 32 bytes/);
    }
    expect(() => encodeBatch([{ ...add(7), invite: null } as unknown as PatternOp])).toThrow(/invite must be 32 bytes/);
  });

  it('recording a digest changes the registry hash (and only the digest list differs)', () => {
    const withInvite = upTo3(encodeBatch([add(7, digest(1)), pat]));
    const without = upTo3(encodeBatch([add(7), pat]));
    const r3 = withInvite[2]!;
    expect(r3.usedInvites.map(hex)).toEqual([hex(digest(1))]);
    expect(r3.members).toEqual(without[2]!.members);
    expect(r3.pending).toEqual([]);
    expect(hex(registryHash(without[2]!))).toBe(OLD_H3_HASH);
    expect(hex(registryHash(r3))).not.toBe(OLD_H3_HASH);
    expect(hex(registryHash({ ...r3, usedInvites: [] }))).toBe(OLD_H3_HASH); // the digest list is what differs
    expect(hex(registryHash({ ...r3, usedInvites: [digest(2)] }))).not.toBe(hex(registryHash(r3))); // and its content counts
    expect(isInviteUsed(r3, digest(1))).toBe(true);
    expect(isInviteUsed(r3, digest(2))).toBe(false);
  });

  it('is recorded when decided (not when in force), so a second add with the same digest is invalid at the next height', () => {
    const r1 = applyBatch(genesis(), 1, encodeBatch([add(7, digest(1))]));
    expect(r1.pending).toHaveLength(1);
    expect(isInviteUsed(r1, digest(1))).toBe(true);
    const again = validateBatch(r1, 2, encodeBatch([pat, add(8, digest(1))]));
    expect(again).toEqual({ ok: false, reason: 'op 1 (member.add): invite already used (a decided member.add consumed it)', index: 1 });
    expect(() => applyBatch(r1, 2, encodeBatch([add(8, digest(1))]))).toThrow(/invite already used/);
    // another digest, or no digest (an operator's add), is fine
    expect(validateBatch(r1, 2, encodeBatch([add(8, digest(2))])).ok).toBe(true);
    expect(validateBatch(r1, 2, encodeBatch([add(8)])).ok).toBe(true);
  });

  it('the same digest twice in one batch is invalid, naming the earlier op', () => {
    const v = validateBatch(genesis(), 1, encodeBatch([add(7, digest(1)), pat, add(8, digest(1))]));
    expect(v).toEqual({ ok: false, reason: 'op 2 (member.add): invite already used by op 0 of this batch', index: 2 });
    const ok = applyBatch(genesis(), 1, encodeBatch([add(7, digest(1)), add(8, digest(2))]));
    expect(ok.usedInvites.map(hex)).toEqual([hex(digest(1)), hex(digest(2))]); // decision order
  });

  it(`keeps the most recent ${MAX_USED_INVITES} digests, evicting the oldest first`, () => {
    // Members are bounded (256), so cycle 64 joiners: add them with fresh invites, then remove them.
    const joiners = Array.from({ length: 64 }, (_, i) => ident(20 + i).publicKey);
    let reg = genesis();
    let next = 0;
    while (next <= MAX_USED_INVITES) {
      const n = Math.min(joiners.length, MAX_USED_INVITES + 1 - next);
      const adds: PatternOp[] = joiners.slice(0, n).map((publicKey) => ({ kind: 'member.add', publicKey, power: 1, name: '', invite: digest(next++) }));
      reg = applyBatch(reg, reg.height + 1, encodeBatch(adds));
      reg = applyBatch(reg, reg.height + 1, encodeBatch(joiners.slice(0, n).map((publicKey) => ({ kind: 'member.remove', publicKey }))));
    }
    expect(next).toBe(MAX_USED_INVITES + 1);
    expect(reg.usedInvites).toHaveLength(MAX_USED_INVITES);
    expect(hex(reg.usedInvites[0]!)).toBe(hex(digest(1))); // digest 0 evicted, the rest oldest first
    expect(hex(reg.usedInvites[MAX_USED_INVITES - 1]!)).toBe(hex(digest(MAX_USED_INVITES)));
    expect(isInviteUsed(reg, digest(0))).toBe(false);
    expect(isInviteUsed(reg, digest(1))).toBe(true);
    // past the bound the registry no longer refuses the evicted digest (its invite expired long ago)
    expect(validateBatch(reg, reg.height + 1, encodeBatch([add(7, digest(0))])).ok).toBe(true);
    expect(validateBatch(reg, reg.height + 1, encodeBatch([add(7, digest(1))])).ok).toBe(false);
    expect(new Set(reg.usedInvites.map(toHex)).size).toBe(MAX_USED_INVITES);
  });
});
