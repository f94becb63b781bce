/** Commit certificates: verification against the validator set of their height (CometBFT types/validation.go). */
import { type CommitCertificate, type ValidatorSet, type VerifyFn } from './types.js';
import { keyOf, VALUE_ID_RE, isIndex, isKey, isList, isSig, voteDigest } from './sign-bytes.js';
import { powerMap } from './validator-set.js';

// ---------------------------------------------------------------------------------------------
// Commit certificates

export type CertificateVerdict = { ok: true; power: number } | { ok: false; reason: string };

/**
 * Pure check of a commit certificate: > 2/3 of `validators`' voting power, from distinct
 * validators, validly signed precommits for (cert.height, cert.round, cert.valueId).
 */
export function verifyCommitCertificate(cert: CommitCertificate, validators: ValidatorSet, verify: VerifyFn, cluster: string): CertificateVerdict {
  if (!isIndex(cert.height) || !isIndex(cert.round)) return { ok: false, reason: 'bad height or round' };
  if (typeof cert.valueId !== 'string' || !VALUE_ID_RE.test(cert.valueId)) return { ok: false, reason: 'bad value id' };
  if (!isList(cert.precommits)) return { ok: false, reason: 'precommits not a list' };
  // Cheapest bound first: no honest certificate holds more signatures than validators.
  if (cert.precommits.length > validators.validators.length) return { ok: false, reason: 'more precommits than validators' };
  const powers = powerMap(validators);
  const seen = new Set<string>();
  let power = 0;
  for (const sv of cert.precommits) {
    const v = sv.vote;
    if (v.type !== 'precommit') return { ok: false, reason: 'not a precommit' };
    if (v.height !== cert.height) return { ok: false, reason: 'precommit for another height' };
    if (v.round !== cert.round) return { ok: false, reason: 'precommit for another round' };
    if (v.valueId !== cert.valueId) return { ok: false, reason: 'precommit for another value' };
    if (!isKey(sv.signer) || !isSig(sv.signature)) return { ok: false, reason: 'malformed signer or signature' };
    const key = keyOf(sv.signer);
    const p = powers.get(key);
    if (p === undefined) return { ok: false, reason: 'signer is not a validator' };
    if (seen.has(key)) return { ok: false, reason: 'duplicate signer' };
    seen.add(key);
    if (!verify(sv.signer, voteDigest(cluster, v), sv.signature)) return { ok: false, reason: 'bad signature' };
    power += p;
  }
  if (power * 3 <= validators.totalPower * 2) return { ok: false, reason: 'insufficient voting power' };
  return { ok: true, power };
}
