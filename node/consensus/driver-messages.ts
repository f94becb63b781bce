/** Pure helpers of the consensus driver: message fields, wire bytes (memoised), decoded bodies, status parsing. */
import { expectRecord } from '../../crypto/cbor.js';
import { decodeMessage, encodeMessage } from '../../consensus/codec.js';
import { roundVotesFor } from '../../consensus/core.js';
import { toHex } from '../../base/hex.js';
import { decodeBatch, encodeBatch, type PatternOp } from '../../consensus/patterns.js';
import type { ConsensusMessage, ConsensusState } from '../../consensus/types.js';
import type { AuditLine } from './audit-log.js';
import type { PeerStatus } from './driver-types.js';

export function voteKind(m: ConsensusMessage): AuditLine['type'] {
  return m.type === 'proposal' ? 'proposal' : m.vote.vote.type;
}
export function msgHeight(m: ConsensusMessage): number {
  return m.type === 'proposal' ? m.proposal.proposal.height : m.vote.vote.height;
}
export function msgRound(m: ConsensusMessage): number {
  return m.type === 'proposal' ? m.proposal.proposal.round : m.vote.vote.round;
}
export function msgSigner(m: ConsensusMessage): Uint8Array {
  return m.type === 'proposal' ? m.proposal.signer : m.vote.signer;
}
export function msgKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * Wire bytes of a message, encoded once per message object: the own-message log, the broadcast
 * and catch-up answers all need them (weak keys: nothing is kept alive by the memo).
 */
const wireMemo = new WeakMap<ConsensusMessage, Uint8Array>();
export function wireBytes(m: ConsensusMessage): Uint8Array {
  let b = wireMemo.get(m);
  if (b === undefined) {
    b = encodeMessage(m);
    wireMemo.set(m, b);
  }
  return b;
}

/** The empty batch: a proposer with nothing pending proposes it once the height has started. */
export const EMPTY_VALUE = encodeBatch([]);

/** Decode a decided value: the empty batch or a pattern batch. */
export function opsOf(value: Uint8Array): PatternOp[] {
  try {
    return decodeBatch(value);
  } catch {
    return []; // never reached for a decided value (it passed the validity predicate)
  }
}


export function parseStatus(body: unknown, nowMs: number): PeerStatus | null {
  try {
    const r = expectRecord(body, ['height', 'round', 'decided', 'hash'], 'status');
    const { height, round, decided, hash } = r;
    const isN = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
    if (!isN(height) || !isN(round) || !isN(decided) || !(hash instanceof Uint8Array) || hash.length !== 32) return null;
    return { height, round, decided, hashHex: toHex(hash), atMs: nowMs };
  } catch {
    return null;
  }
}

/**
 * Decoded messages by body object: a body delivered as the same bytes object more than once (the
 * simulator hands one object to every receiver; production buffers are fresh per delivery, so
 * they miss) is decoded once. Messages are immutable; weak keys keep nothing alive.
 */
const decodedMemo = new WeakMap<Uint8Array, ConsensusMessage | null>();
export function decodeConsensusBody(bytes: Uint8Array): ConsensusMessage | null {
  let m = decodedMemo.get(bytes);
  if (m === undefined) {
    m = decodeMessage(bytes); // never throws: null on garbage
    decodedMemo.set(bytes, m);
  }
  return m;
}

/** Proposals and votes of the core's current height (for a peer at the same height). */
export function currentMessages(s: ConsensusState): ConsensusMessage[] {
  const out: ConsensusMessage[] = [];
  const rounds = [...s.rounds.keys()].sort((a, b) => b - a); // newest rounds first: they matter most
  for (const r of rounds) {
    const rv = s.rounds.get(r)!;
    if (rv.proposal !== null) out.push({ type: 'proposal', proposal: rv.proposal });
    // Per value (the core keeps up to two votes per validator when one equivocates).
    for (const id of rv.prevoteTally.keys()) for (const v of roundVotesFor(rv, 'prevote', id === 'nil' ? null : id)) out.push({ type: 'vote', vote: v });
    for (const id of rv.precommitTally.keys()) for (const v of roundVotesFor(rv, 'precommit', id === 'nil' ? null : id)) out.push({ type: 'vote', vote: v });
  }
  return out;
}
