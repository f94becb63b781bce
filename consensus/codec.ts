/**
 * Wire and storage encodings of the core's data (canonical CBOR, closed schemas). Pure.
 * Decoders never throw on bad input: they return `null` with no partial result, so a peer
 * sending garbage never crashes a node (the caller turns `null` into a gossip Reject).
 */
import { decodeCanonical, encodeCanonical, expectRecord } from '../crypto/cbor.js';
import type { CommitCertificate, ConsensusMessage, SignedProposal, SignedVote, SignerRecord, Vote } from './types.js';

/** 256 KiB: one gossip envelope; a proposal is the largest message (value <= DEFAULT_LIMITS.maxValueBytes). */
export const MAX_MESSAGE_BYTES = 256 * 1024;
/** Certificates: 256 members x ~150 bytes per precommit, with room. */
export const MAX_CERTIFICATE_BYTES = 64 * 1024;
/** Signer record: two values of <= 256 KiB plus small fields. */
export const MAX_RECORD_BYTES = 2 * MAX_MESSAGE_BYTES + 4096;

const VALUE_ID_RE = /^[0-9a-f]{64}$/;
const isInt = (n: unknown, min: number): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= min;
const isBytes = (b: unknown, len: number): b is Uint8Array => b instanceof Uint8Array && b.length === len;

function voteToCbor(v: Vote): Record<string, unknown> {
  return { type: v.type, height: v.height, round: v.round, value: v.valueId };
}

function signedVoteToCbor(sv: SignedVote): Record<string, unknown> {
  return { vote: voteToCbor(sv.vote), signer: sv.signer, signature: sv.signature };
}

function voteFromCbor(raw: unknown): SignedVote | null {
  const r = expectRecord(raw, ['vote', 'signer', 'signature'], 'signed vote');
  const v = expectRecord(r['vote'], ['type', 'height', 'round', 'value'], 'vote');
  const type = v['type'];
  if (type !== 'prevote' && type !== 'precommit') return null;
  if (!isInt(v['height'], 1) || !isInt(v['round'], 0)) return null;
  const value = v['value'];
  if (value !== null && (typeof value !== 'string' || !VALUE_ID_RE.test(value))) return null;
  if (!isBytes(r['signer'], 32) || !isBytes(r['signature'], 64)) return null;
  return { vote: { type, height: v['height'], round: v['round'], valueId: value }, signer: r['signer'], signature: r['signature'] };
}

function proposalFromCbor(raw: unknown): SignedProposal | null {
  const r = expectRecord(raw, ['proposal', 'signer', 'signature'], 'signed proposal');
  const p = expectRecord(r['proposal'], ['height', 'round', 'value', 'validRound'], 'proposal');
  if (!isInt(p['height'], 1) || !isInt(p['round'], 0) || !isInt(p['validRound'], -1)) return null;
  if (!(p['value'] instanceof Uint8Array)) return null;
  if (!isBytes(r['signer'], 32) || !isBytes(r['signature'], 64)) return null;
  return { proposal: { height: p['height'], round: p['round'], value: p['value'], validRound: p['validRound'] }, signer: r['signer'], signature: r['signature'] };
}

export function encodeMessage(m: ConsensusMessage): Uint8Array {
  return m.type === 'vote'
    ? encodeCanonical({ type: 'vote', vote: signedVoteToCbor(m.vote) })
    : encodeCanonical({ type: 'proposal', proposal: { proposal: { ...m.proposal.proposal }, signer: m.proposal.signer, signature: m.proposal.signature } });
}

export function decodeMessage(bytes: Uint8Array): ConsensusMessage | null {
  try {
    const r = expectRecord(decodeCanonical(bytes, MAX_MESSAGE_BYTES), ['type', 'vote', 'proposal'], 'consensus message');
    if (r['type'] === 'vote') {
      const vote = voteFromCbor(r['vote']);
      return vote === null || r['proposal'] !== undefined ? null : { type: 'vote', vote };
    }
    if (r['type'] === 'proposal') {
      const proposal = proposalFromCbor(r['proposal']);
      return proposal === null || r['vote'] !== undefined ? null : { type: 'proposal', proposal };
    }
    return null;
  } catch {
    return null;
  }
}

export function encodeCertificate(c: CommitCertificate): Uint8Array {
  return encodeCanonical({ height: c.height, round: c.round, value: c.valueId, precommits: c.precommits.map(signedVoteToCbor) });
}

/** Shape only: check it with `verifyCommitCertificate` against the validator set of its height. */
export function decodeCertificate(bytes: Uint8Array): CommitCertificate | null {
  try {
    const r = expectRecord(decodeCanonical(bytes, MAX_CERTIFICATE_BYTES), ['height', 'round', 'value', 'precommits'], 'certificate');
    if (!isInt(r['height'], 1) || !isInt(r['round'], 0) || typeof r['value'] !== 'string' || !VALUE_ID_RE.test(r['value'])) return null;
    if (!Array.isArray(r['precommits'])) return null;
    const precommits: SignedVote[] = [];
    for (const raw of r['precommits'] as unknown[]) {
      const sv = voteFromCbor(raw);
      if (sv === null) return null;
      precommits.push(sv);
    }
    return { height: r['height'], round: r['round'], valueId: r['value'], precommits };
  } catch {
    return null;
  }
}

export function encodeSignerRecord(rec: SignerRecord): Uint8Array {
  return encodeCanonical({ ...rec });
}

export function decodeSignerRecord(bytes: Uint8Array): SignerRecord | null {
  try {
    const r = expectRecord(decodeCanonical(bytes, MAX_RECORD_BYTES), ['height', 'round', 'step', 'signedDigest', 'signature', 'lockedRound', 'lockedValue', 'validRound', 'validValue'], 'signer record');
    const step = r['step'];
    if (!isInt(r['height'], 0) || !isInt(r['round'], 0) || (step !== 0 && step !== 1 && step !== 2 && step !== 3)) return null;
    if (!isInt(r['lockedRound'], -1) || !isInt(r['validRound'], -1)) return null;
    const bytesOrNull = (v: unknown, len: number | null): v is Uint8Array | null => v === null || (v instanceof Uint8Array && (len === null || v.length === len));
    const { signedDigest, signature, lockedValue, validValue } = r;
    if (!bytesOrNull(signedDigest, 32) || !bytesOrNull(signature, 64) || !bytesOrNull(lockedValue, null) || !bytesOrNull(validValue, null)) return null;
    return { height: r['height'], round: r['round'], step, signedDigest, signature, lockedRound: r['lockedRound'], lockedValue, validRound: r['validRound'], validValue };
  } catch {
    return null;
  }
}
