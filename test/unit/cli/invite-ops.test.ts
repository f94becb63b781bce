// JSON form (control API) of member.add's optional invite digest, and its summary line.
import { describe, expect, it } from 'vitest';
import { identityFromSeed } from '../../../crypto/keys.js';
import { encodeBatch } from '../../../consensus/patterns.js';
import { applyBatch, genesisRegistry } from '../../../consensus/registry.js';
import { isRuntimeError } from '../../../node/runtime/errors.js';
import { opFromJson, opSummary, opToJson, registryToJson } from '../../../node/runtime/consensus-ops.js';

const m = identityFromSeed(new Uint8Array(32).fill(1));
const other = identityFromSeed(new Uint8Array(32).fill(2));
const D = 'ab'.repeat(32);

function badField(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isRuntimeError(e, 'ERR_BAD_REQUEST')) return String(e.data['field']);
    throw e;
  }
  return 'accepted';
}

describe('member.add invite digest in JSON', () => {
  it('parses a hex digest to 32 bytes; absent or null leaves the field out of the op', () => {
    const op = opFromJson({ kind: 'member.add', peer: other.peerId, invite: D });
    expect(op).toMatchObject({ kind: 'member.add', power: 1, name: '' });
    expect(op.kind === 'member.add' && Buffer.from(op.invite!).toString('hex')).toBe(D);
    for (const raw of [{ kind: 'member.add', peer: other.peerId }, { kind: 'member.add', peer: other.peerId, invite: null }]) {
      const o = opFromJson(raw);
      expect('invite' in o).toBe(false);
    }
  });

  it.each([
    ['too short', 'ab'.repeat(31)],
    ['not hex', 'zz'.repeat(32)],
    ['not a string', 5],
    ['bytes as a list', Array.from({ length: 32 }, () => 1)],
  ])('rejects an invite that is %s, naming the field', (_name, invite) => {
    expect(badField(() => opFromJson({ kind: 'member.add', peer: other.peerId, invite }, 'ops[3]'))).toBe('ops[3].invite');
  });

  it('prints the digest in hex (only when there is one) and in the summary line; the registry reports the count', () => {
    const op = opFromJson({ kind: 'member.add', peer: other.peerId, name: 'box', invite: D });
    const j = opToJson(op);
    expect(j).toEqual({ kind: 'member.add', peer: other.peerId, power: 1, name: 'box', invite: D });
    expect(opFromJson(j)).toEqual(op); // round trip
    expect(opSummary(j)).toBe(`member.add ${other.peerId} (box) power 1 invite ${D.slice(0, 12)}…`);
    const plain = opToJson(opFromJson({ kind: 'member.add', peer: other.peerId }));
    expect(plain).toEqual({ kind: 'member.add', peer: other.peerId, power: 1, name: '' });
    expect(opSummary(plain)).toBe(`member.add ${other.peerId} power 1`);
    const g = genesisRegistry({ members: [{ publicKey: m.publicKey, power: 1, name: '' }] });
    expect(registryToJson(g).usedInvites).toBe(0);
    const r = registryToJson(applyBatch(g, 1, encodeBatch([op])));
    expect(r.usedInvites).toBe(1);
    expect(r.pending[0]!.op).toEqual(j);
  });
});
