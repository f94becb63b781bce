import { describe, it, expect } from 'vitest';
import { encodeCanonical } from '../../../crypto/cbor.js';
import { decodeCertificate, decodeMessage, decodeSignerRecord, encodeCertificate, encodeMessage, encodeSignerRecord } from '../../../consensus/codec.js';
import { EMPTY_SIGNER_RECORD, makeValidatorSet, valueIdOf, verifyCommitCertificate } from '../../../consensus/core.js';
import type { ConsensusMessage, SignerRecord } from '../../../consensus/types.js';
import { CLUSTER, ident, signProposal, signVote, verify } from '../../helpers/consensus-harness.js';

const ids = [0, 1, 2, 3].map(ident);
const value = new TextEncoder().encode('batch');

describe('codec', () => {
  it('round-trips votes and proposals, and rejects garbage with null', () => {
    const vote: ConsensusMessage = { type: 'vote', vote: signVote(ids[0]!, { type: 'precommit', height: 3, round: 1, valueId: valueIdOf(value) }) };
    const nil: ConsensusMessage = { type: 'vote', vote: signVote(ids[1]!, { type: 'prevote', height: 3, round: 0, valueId: null }) };
    const prop: ConsensusMessage = { type: 'proposal', proposal: signProposal(ids[2]!, { height: 3, round: 1, value, validRound: 0 }) };
    for (const m of [vote, nil, prop]) expect(decodeMessage(encodeMessage(m))).toEqual(m);
    expect(decodeMessage(new Uint8Array([1, 2, 3]))).toBeNull();
    expect(decodeMessage(encodeCanonical({ type: 'vote', vote: { vote: { type: 'prevote', height: 1, round: 0, value: 'zz' }, signer: ids[0]!.publicKey, signature: new Uint8Array(64) } }))).toBeNull();
    expect(decodeMessage(encodeCanonical({ type: 'vote', vote: { vote: { type: 'prevote', height: 1, round: 0, value: null }, signer: new Uint8Array(31), signature: new Uint8Array(64) } }))).toBeNull();
    expect(decodeMessage(encodeCanonical({ type: 'other' }))).toBeNull();
    expect(decodeMessage(new Uint8Array(300 * 1024))).toBeNull();
  });

  it('round-trips a certificate that still verifies', () => {
    const set = makeValidatorSet(ids.map((i) => ({ publicKey: i.publicKey, power: 1 })), 1);
    const cert = { height: 2, round: 0, valueId: valueIdOf(value), precommits: [0, 1, 2].map((i) => signVote(ids[i]!, { type: 'precommit', height: 2, round: 0, valueId: valueIdOf(value) })) };
    const back = decodeCertificate(encodeCertificate(cert));
    expect(back).toEqual(cert);
    expect(verifyCommitCertificate(back!, set, verify, CLUSTER).ok).toBe(true);
    expect(decodeCertificate(encodeCanonical({ height: 2, round: 0, value: 'x', precommits: [] }))).toBeNull();
  });

  it('round-trips signer records', () => {
    const rec: SignerRecord = { height: 5, round: 2, step: 3, signedDigest: new Uint8Array(32).fill(1), signature: new Uint8Array(64).fill(2), lockedRound: 1, lockedValue: value, validRound: 2, validValue: value };
    expect(decodeSignerRecord(encodeSignerRecord(rec))).toEqual(rec);
    expect(decodeSignerRecord(encodeSignerRecord(EMPTY_SIGNER_RECORD))).toEqual(EMPTY_SIGNER_RECORD);
    expect(decodeSignerRecord(encodeCanonical({ ...rec, step: 4 }))).toBeNull();
  });
});
