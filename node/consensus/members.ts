/**
 * MemberSource backed by the decided registry: the members in force at the next height, plus
 * those a decided `member.add` will bring in (a member being added must be able to gossip as
 * soon as it votes, i.e. from H+2, and be heard before that). A `member.remove` takes the peer
 * out once it is in force. Emits onChange when a decision changes the set.
 */
import { validatorSetAt, type Registry } from '../../consensus/registry.js';
import { peerIdFromPublicKey } from '../../crypto/keys.js';
import { MemberSet } from '../p2p/members.js';

export function memberPeerIds(reg: Registry): Set<string> {
  const out = new Set<string>();
  for (const v of validatorSetAt(reg, reg.height + 1).validators) out.add(peerIdFromPublicKey(v.publicKey));
  for (const p of reg.pending) if (p.op.kind === 'member.add') out.add(peerIdFromPublicKey(p.op.publicKey));
  return out;
}

export class RegistryMembers extends MemberSet {
  constructor(reg: Registry) {
    super(memberPeerIds(reg));
  }

  /** Recompute from a newly decided registry; emits the difference, if any. */
  update(reg: Registry): void {
    this.replace(memberPeerIds(reg));
  }
}
