/** Sign bytes and value ids: what a vote or proposal signature covers (CometBFT types/vote.go, canonical.go). */
import { toHex } from '../base/hex.js';
import { encodeCanonical } from '../crypto/cbor.js';
import { blake3, domain } from '../crypto/blake3.js';
import { type Proposal, type ValidatorKey, type ValueId, type Vote } from './types.js';

// ---------------------------------------------------------------------------------------------
// Small helpers

export const keyMemo = new WeakMap<Uint8Array, ValidatorKey>();
/** toHex of a public key, memoised per array object (keys are immutable by contract, as values). */
export function keyOf(publicKey: Uint8Array): ValidatorKey {
  let k = keyMemo.get(publicKey);
  if (k === undefined) {
    k = toHex(publicKey);
    keyMemo.set(publicKey, k);
  }
  return k;
}

export function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const valueIdMemo = new WeakMap<Uint8Array, ValueId>();
/** hex(BLAKE3(value)): the id votes refer to. Memoised per array object (values are immutable by contract). */
export function valueIdOf(value: Uint8Array): ValueId {
  let id = valueIdMemo.get(value);
  if (id === undefined) {
    id = toHex(blake3(value));
    valueIdMemo.set(value, id);
  }
  return id;
}

export const VALUE_ID_RE = /^[0-9a-f]{64}$/;
export const isIndex = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
export const isKey = (k: unknown): k is Uint8Array => k instanceof Uint8Array && k.length === 32;
export const isList = (x: unknown): boolean => Array.isArray(x);
export const isSig = (s: unknown): s is Uint8Array => s instanceof Uint8Array && s.length === 64;

// ---------------------------------------------------------------------------------------------
// Sign bytes

export const voteDomain = domain('fednode/v1/vote');
export const proposalDomain = domain('fednode/v1/proposal');

/**
 * Digest memo per vote object (votes are immutable by contract): in one process (simnet,
 * benchmarks, tests) the same vote object reaches many cores and is digested once.
 */
export const voteDigestMemo = new WeakMap<Vote, { cluster: string; digest: Uint8Array }>();

export function voteDigest(cluster: string, vote: Vote): Uint8Array {
  const memo = voteDigestMemo.get(vote);
  if (memo !== undefined && memo.cluster === cluster) return memo.digest;
  const digest = voteDomain.digest(encodeCanonical({ cluster, type: vote.type, height: vote.height, round: vote.round, value: vote.valueId }));
  voteDigestMemo.set(vote, { cluster, digest });
  return digest;
}

export function proposalDigest(cluster: string, proposal: Proposal): Uint8Array {
  return proposalDomain.digest(
    encodeCanonical({
      cluster,
      height: proposal.height,
      round: proposal.round,
      value: valueIdOf(proposal.value),
      validRound: proposal.validRound,
    }),
  );
}
