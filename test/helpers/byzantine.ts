// TEST-ONLY Byzantine wrapper: an equivocating validator. After each of its own votes it also
// sends a second, validly signed vote for the same (height, round, type) with a different value
// (nil for a value vote, a made-up value for a nil vote).
import { ed25519 } from '../../crypto/ed25519.js';
import type { Identity } from '../../crypto/keys.js';
import { voteDigest } from '../../consensus/core.js';
import type { ConsensusMessage, Vote } from '../../consensus/types.js';
import type { TestOnlyHooks } from '../../node/consensus/driver.js';

export function equivocator(id: Identity, cluster: string): TestOnlyHooks {
  return {
    extraBroadcasts: (m: ConsensusMessage): ConsensusMessage[] => {
      if (m.type !== 'vote') return [];
      const v = m.vote.vote;
      const other: Vote = { ...v, valueId: v.valueId === null ? 'ee'.repeat(32) : null };
      return [{ type: 'vote', vote: { vote: other, signer: id.publicKey, signature: ed25519.sign(id.secretKey, voteDigest(cluster, other)) } }];
    },
  };
}
