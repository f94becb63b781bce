/** The validator set: power, canonical order and proposer priority (CometBFT types/validator_set.go). */
import { ConsensusError, type Validator, type ValidatorKey, type ValidatorSet } from './types.js';
import { isIndex, isKey, keyOf } from './sign-bytes.js';

// ---------------------------------------------------------------------------------------------
// Validator sets and the proposer

/** 2^40 total power keeps 3 * power exact in doubles. */
const MAX_TOTAL_POWER = 2 ** 40;

/** Keys (hex) and total power of `validators`, or the reason they cannot form a set. */
function checked(validators: readonly Validator[]): { keys: ValidatorKey[]; total: number } | { error: string; data?: Record<string, unknown> } {
  if (validators.length === 0) return { error: 'validator set is empty' };
  const seen = new Set<string>();
  const keys: ValidatorKey[] = [];
  let total = 0;
  for (const v of validators) {
    if (!isKey(v.publicKey)) return { error: 'validator public key must be 32 bytes' };
    if (!isIndex(v.power) || v.power < 1) return { error: 'validator power must be a positive integer', data: { power: v.power } };
    const k = keyOf(v.publicKey);
    if (seen.has(k)) return { error: 'duplicate validator', data: { validator: k } };
    seen.add(k);
    keys.push(k);
    total += v.power;
  }
  if (total > MAX_TOTAL_POWER) return { error: 'total voting power too large', data: { total } };
  return { keys, total };
}

/** Why `validators` cannot form a set (empty, bad key or power, duplicate, total too large), or null: makeValidatorSet's checks without building it. */
export function checkPower(validators: readonly Validator[]): string | null {
  const c = checked(validators);
  return 'error' in c ? c.error : null;
}

export function makeValidatorSet(validators: readonly Validator[], sinceHeight: number): ValidatorSet {
  if (!isIndex(sinceHeight) || sinceHeight < 1) throw new ConsensusError('ERR_VALIDATOR_SET', 'sinceHeight must be a positive integer', { sinceHeight });
  const c = checked(validators);
  if ('error' in c) throw new ConsensusError('ERR_VALIDATOR_SET', c.error, c.data);
  // Sorted by hex key, each key computed once (not per comparison).
  const order = validators.map((v, i) => ({ key: c.keys[i]!, v }));
  order.sort((a, b) => (a.key < b.key ? -1 : 1));
  const sorted = order.map(({ v }) => ({ publicKey: v.publicKey, power: v.power }));
  return { validators: sorted, totalPower: c.total, sinceHeight };
}

export const powerMemo = new WeakMap<ValidatorSet, Map<ValidatorKey, number>>();
/** Voting power by validator key (memoised per set object). */
export function powerMap(set: ValidatorSet): ReadonlyMap<ValidatorKey, number> {
  let m = powerMemo.get(set);
  if (m === undefined) {
    m = new Map(set.validators.map((v) => [keyOf(v.publicKey), v.power]));
    powerMemo.set(set, m);
  }
  return m;
}

/** Checkpoints of the priority walk per set: at most 8, the smallest k evicted first. */
export const PRIORITY_CHECKPOINTS = 8;
export const priorityMemo = new WeakMap<ValidatorSet, Map<number, number[]>>();

/**
 * CometBFT's proposer-priority weighted round robin. Step k: every priority += power, the
 * highest priority (ties: smallest key, i.e. first in canonical order) proposes and pays
 * totalPower. Priorities start at zero at `sinceHeight` round 0, and sum to zero forever after,
 * so CometBFT's centering and rescaling are no-ops here. Proposer of (height, round) is the one
 * chosen at step k = (height - sinceHeight) + round, as CometBFT does within and across heights.
 */
export function proposerFor(set: ValidatorSet, height: number, round: number): Validator {
  const k = Math.max(0, height - set.sinceHeight) + round;
  let cps = priorityMemo.get(set);
  if (cps === undefined) {
    cps = new Map();
    priorityMemo.set(set, cps);
  }
  // Start from the nearest checkpoint at or below k (priorities after that many increments).
  let from = 0;
  for (const ck of cps.keys()) if (ck <= k && ck > from) from = ck;
  const pr = from === 0 ? set.validators.map(() => 0) : [...cps.get(from)!];
  for (let j = from; j < k; j++) {
    const best = argmaxAfterAdd(set, pr);
    for (let i = 0; i < pr.length; i++) pr[i] = pr[i]! + set.validators[i]!.power;
    pr[best] = pr[best]! - set.totalPower;
  }
  if (k > from && !cps.has(k)) {
    if (cps.size >= PRIORITY_CHECKPOINTS) {
      let min = Infinity;
      for (const ck of cps.keys()) min = Math.min(min, ck);
      cps.delete(min);
    }
    cps.set(k, [...pr]);
  }
  return set.validators[argmaxAfterAdd(set, pr)]!;
}

/** Index with the highest priority once every validator's power is added (ties: lowest index). */
export function argmaxAfterAdd(set: ValidatorSet, pr: readonly number[]): number {
  let best = 0;
  let bestP = -Infinity;
  for (let i = 0; i < pr.length; i++) {
    const p = pr[i]! + set.validators[i]!.power;
    if (p > bestP) {
      best = i;
      bestP = p;
    }
  }
  return best;
}
