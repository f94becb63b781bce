/**
 * The fault plan of one seed (what goes wrong, when) and the partition's link rule, shared by
 * every simulated world. Drawn from the seed's `plan` stream only, so a plan is reproducible.
 */
import type { Prng } from '../base/prng.js';

/** What can go wrong on the simulated network and nodes (`fednode simnet --faults`). */
export type FaultKind = 'loss' | 'tail' | 'reorder' | 'duplicate' | 'partition' | 'crash' | 'skew' | 'churn';
export const FAULT_KINDS: readonly FaultKind[] = ['loss', 'tail', 'reorder', 'duplicate', 'partition', 'crash', 'skew', 'churn'];
/** How a Byzantine node misbehaves (`fednode simnet --byz-behaviours`). */
export type ByzBehaviour = 'equivocate' | 'invalid-value' | 'forge' | 'future-round' | 'silent' | 'amnesia';
export const BYZ_BEHAVIOURS: readonly ByzBehaviour[] = ['equivocate', 'invalid-value', 'forge', 'future-round', 'silent', 'amnesia'];

export interface FaultPlan {
  lossRate: number;
  tailProb: number;
  reorderProb: number;
  duplicateProb: number;
  partition: { kind: 'halves' | 'isolate' | 'one-way'; startUs: number; healUs: number; side: number[] } | null;
  crash: { node: number; atUs: number; restartUs: number } | null;
  /**
   * Join/leave churn: node `joiner` (index n, not a genesis member) comes online at joinUs and
   * proposers put `member.add` for it in their batches until one is decided; once the add is
   * decided, `member.remove` of honest genesis node `leaver` is proposed the same way (join
   * first: the Byzantine bound holds at every height). Both take effect at H+2 (registry rule);
   * the leaver stops when its own registry says it is no longer a validator.
   */
  churn: { joiner: number; joinUs: number; leaver: number } | null;
  faultEndUs: number;
}

export interface PlanInput {
  readonly has: (k: FaultKind) => boolean;
  /** Negative control: the honest groups cannot reach each other during the fault phase. */
  readonly splitBrain: boolean;
  /** Genesis members (a churn joiner is index n). */
  readonly n: number;
  readonly honestIdx: readonly number[];
  readonly groupOf: (node: number) => number;
  readonly faultPhaseUs: number;
  readonly churnOn: boolean;
  readonly rPlan: Prng;
}

export function planFaults(i: PlanInput): FaultPlan {
  const { has, n, honestIdx, faultPhaseUs, rPlan } = i;
  const plan: FaultPlan = {
    lossRate: has('loss') ? 0.3 * rPlan.float() : 0,
    tailProb: has('tail') ? 0.02 + 0.08 * rPlan.float() : 0,
    reorderProb: has('reorder') ? 0.1 + 0.4 * rPlan.float() : 0,
    duplicateProb: has('duplicate') ? 0.02 + 0.08 * rPlan.float() : 0,
    partition: null,
    crash: null,
    churn: null,
    faultEndUs: faultPhaseUs,
  };
  if (i.splitBrain) {
    const side = honestIdx.filter((h) => i.groupOf(h) === 1);
    plan.partition = { kind: 'halves', startUs: 0, healUs: faultPhaseUs, side };
  } else if (has('partition')) {
    const kind = rPlan.pick(['halves', 'isolate', 'one-way'] as const);
    const startUs = Math.round(rPlan.float() * faultPhaseUs * 0.5);
    const healUs = startUs + Math.round((0.2 + 0.6 * rPlan.float()) * faultPhaseUs);
    const side = kind === 'halves' ? rPlan.shuffle(Array.from({ length: n }, (_, k) => k)).slice(0, Math.floor(n / 2)) : [rPlan.int(n)];
    plan.partition = { kind, startUs, healUs, side };
  }
  if (has('crash') && honestIdx.length > 0) {
    const node = rPlan.pick(honestIdx.filter((h) => h < n));
    const atUs = Math.round(rPlan.float() * faultPhaseUs * 0.7);
    const restartUs = atUs + Math.round((0.05 + 0.25 * rPlan.float()) * faultPhaseUs);
    plan.crash = { node, atUs, restartUs };
  }
  if (i.churnOn) {
    const genesisHonest = honestIdx.filter((h) => h < n && h !== plan.crash?.node);
    if (genesisHonest.length > 0) plan.churn = { joiner: n, joinUs: Math.round((0.1 + 0.4 * rPlan.float()) * faultPhaseUs), leaver: rPlan.pick(genesisHonest) };
  }
  plan.faultEndUs = Math.max(faultPhaseUs, plan.partition?.healUs ?? 0, plan.crash?.restartUs ?? 0);
  return plan;
}

/** The partition's rule: is the link from -> to cut at time `now`? */
export function partitionCut(plan: FaultPlan, splitBrain: boolean, honest: (node: number) => boolean, groupOf: (node: number) => number): (from: number, to: number, now: number) => boolean {
  const sideSet = new Set(plan.partition?.side ?? []);
  return (from, to, now) => {
    const p = plan.partition;
    if (p === null || now < p.startUs || now >= p.healUs) return false;
    switch (p.kind) {
      case 'halves':
        // Negative control: only honest-to-honest links across groups are cut; Byzantine forks bridge.
        if (splitBrain) return honest(from) && honest(to) && groupOf(from) !== groupOf(to);
        return sideSet.has(from) !== sideSet.has(to);
      case 'isolate':
        return sideSet.has(from) || sideSet.has(to);
      case 'one-way':
        return sideSet.has(from); // the node hears everyone but nobody hears it
    }
  };
}
