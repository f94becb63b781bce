/**
 * Safety and liveness checkers. They read a plain-data `History` recorded by the
 * world (simnet/driver-world.ts) and never look inside the consensus core, so a test can
 * feed them a crafted bad history to prove that each one fires.
 */

/** One `decide` effect carried out by a node (honest or not; checkers filter). */
export interface DecisionRecord {
  node: number;
  height: number;
  round: number;
  /** Hex of the decided value bytes (values in the simnet are small). */
  valueHex: string;
  /** Validity predicate's verdict on the decided value, computed when it was decided. */
  valid: boolean;
  atUs: number;
  /** Registry (replicated state) hash after applying this height. */
  registryHash: string;
}

/** One signature an honest node emitted (scanned for double-signing). */
export interface SignedRecord {
  node: number;
  kind: 'proposal' | 'prevote' | 'precommit';
  height: number;
  round: number;
  /** Value id (or 'nil'); for proposals the proposed value id plus its validRound. */
  payload: string;
}

export interface LivenessWindow {
  /** Time at which the network became stable (faults healed, all crashed nodes restarted). */
  stableAtUs: number;
  /** Height of the most advanced honest node at stableAtUs (no honest node has decided it yet). */
  heightAtStable: number;
  /** Highest round an honest node was in at heightAtStable at stableAtUs. */
  maxRoundAtStable: number;
}

export interface History {
  nodes: number;
  /** Byzantine fault bound the run claims to tolerate: floor((n-1)/3). */
  f: number;
  /** honest[i] is false for Byzantine nodes (their decisions and signatures are not checked). */
  honest: readonly boolean[];
  /** left[i]: node i was removed from the cluster (churn) and stopped; its log ends there. */
  left?: readonly boolean[];
  decisions: readonly DecisionRecord[];
  signed: readonly SignedRecord[];
  /** Per node, its decided log at the end (valueHex by height index 0 = height 1). */
  finalLogs: readonly (readonly string[])[];
  /** Heights every honest node should reach when the run is live. */
  targetHeight: number;
  liveness: LivenessWindow | null;
}

export type ViolationKind =
  | 'agreement'
  | 'validity'
  | 'integrity-double-decide'
  | 'integrity-log-rewritten'
  | 'honest-double-sign'
  | 'liveness-after-heal'
  | 'catch-up'
  | 'registry-hash';

export const SAFETY_KINDS: readonly ViolationKind[] = ['agreement', 'validity', 'integrity-double-decide', 'integrity-log-rewritten', 'honest-double-sign', 'registry-hash'];

export interface Violation {
  kind: ViolationKind;
  height: number;
  nodes: number[];
  detail: string;
}

/** Compares every honest decision with the first honest decision of its height. */
function againstFirstOfHeight(h: History, compare: (first: DecisionRecord, d: DecisionRecord) => Violation | null): Violation[] {
  const first = new Map<number, DecisionRecord>();
  const out: Violation[] = [];
  for (const d of h.decisions) {
    if (h.honest[d.node] !== true) continue;
    const f = first.get(d.height);
    if (f === undefined) first.set(d.height, d);
    else {
      const v = compare(f, d);
      if (v !== null) out.push(v);
    }
  }
  return out;
}

/** Agreement: no two honest nodes decide different values at one height. */
export function checkAgreement(h: History): Violation[] {
  return againstFirstOfHeight(h, (f, d) =>
    f.valueHex === d.valueHex
      ? null
      : { kind: 'agreement', height: d.height, nodes: [f.node, d.node], detail: `node ${f.node} decided ${short(f.valueHex)} (round ${f.round}), node ${d.node} decided ${short(d.valueHex)} (round ${d.round})` },
  );
}

/** Validity: every value an honest node decides passes the validity predicate. */
export function checkValidity(h: History): Violation[] {
  return h.decisions
    .filter((d) => h.honest[d.node] === true && !d.valid)
    .map((d) => ({ kind: 'validity' as const, height: d.height, nodes: [d.node], detail: `node ${d.node} decided invalid value ${short(d.valueHex)}` }));
}

/** Integrity: no honest node decides a height twice; no node's final log differs from what it decided. */
export function checkIntegrity(h: History): Violation[] {
  const out: Violation[] = [];
  const seen = new Map<string, DecisionRecord>();
  const decidedBy = new Map<number, Map<number, string>>();
  for (const d of h.decisions) {
    if (h.honest[d.node] !== true) continue;
    const key = `${d.node}:${d.height}`;
    const prev = seen.get(key);
    if (prev !== undefined) {
      out.push({ kind: 'integrity-double-decide', height: d.height, nodes: [d.node], detail: `node ${d.node} decided height ${d.height} twice (${short(prev.valueHex)} then ${short(d.valueHex)})` });
    } else seen.set(key, d);
    let m = decidedBy.get(d.node);
    if (m === undefined) {
      m = new Map<number, string>();
      decidedBy.set(d.node, m);
    }
    if (!m.has(d.height)) m.set(d.height, d.valueHex);
  }
  h.finalLogs.forEach((log, node) => {
    if (h.honest[node] !== true) return;
    const m = decidedBy.get(node);
    log.forEach((v, i) => {
      const decided = m?.get(i + 1);
      if (decided !== undefined && decided !== v) {
        out.push({ kind: 'integrity-log-rewritten', height: i + 1, nodes: [node], detail: `node ${node} decided ${short(decided)} at height ${i + 1} but its log now holds ${short(v)}` });
      }
    });
  });
  return out;
}

/** No honest double-sign: one honest signature per (node, kind, height, round), unless identical. */
export function checkDoubleSign(h: History): Violation[] {
  const seen = new Map<string, SignedRecord>();
  const out: Violation[] = [];
  for (const s of h.signed) {
    if (h.honest[s.node] !== true) continue;
    const key = `${s.node}:${s.kind}:${s.height}:${s.round}`;
    const prev = seen.get(key);
    if (prev === undefined) seen.set(key, s);
    else if (prev.payload !== s.payload) {
      out.push({ kind: 'honest-double-sign', height: s.height, nodes: [s.node], detail: `honest node ${s.node} signed two ${s.kind}s at round ${s.round}: ${short(prev.payload)} and ${short(s.payload)}` });
    }
  }
  return out;
}

/** Equal registry hashes on honest nodes at equal heights. */
export function checkRegistryHashes(h: History): Violation[] {
  // (different values are already an agreement violation; here the same log gave different states)
  return againstFirstOfHeight(h, (f, d) =>
    f.registryHash === d.registryHash || f.valueHex !== d.valueHex
      ? null
      : { kind: 'registry-hash', height: d.height, nodes: [f.node, d.node], detail: `registry hash ${short(f.registryHash)} on node ${f.node} vs ${short(d.registryHash)} on node ${d.node}` },
  );
}

/**
 * Liveness after heal: once the network is stable, the height the most advanced
 * honest node was working on is decided by an honest node within f+2 rounds of the
 * highest round seen there at stabilisation (f rounds may have Byzantine
 * proposers, one to resynchronise rounds, one to decide).
 */
export function checkLiveness(h: History): Violation[] {
  const w = h.liveness;
  if (w === null) return [];
  const bound = w.maxRoundAtStable + h.f + 2;
  const first = h.decisions.find((d) => h.honest[d.node] === true && d.height === w.heightAtStable);
  if (first === undefined) {
    return [{ kind: 'liveness-after-heal', height: w.heightAtStable, nodes: [], detail: `height ${w.heightAtStable} never decided by an honest node after the network stabilised` }];
  }
  if (first.round > bound) {
    return [{ kind: 'liveness-after-heal', height: first.height, nodes: [first.node], detail: `height ${first.height} decided at round ${first.round} > bound ${bound} (max round at stable ${w.maxRoundAtStable} + f + 2)` }];
  }
  return [];
}

/** Catch-up: every honest node still in the cluster (a joiner too) ends with the target number of heights decided. */
export function checkCatchUp(h: History): Violation[] {
  const out: Violation[] = [];
  h.finalLogs.forEach((log, node) => {
    if (h.honest[node] === true && h.left?.[node] !== true && log.length < h.targetHeight) {
      out.push({ kind: 'catch-up', height: log.length + 1, nodes: [node], detail: `honest node ${node} ended at height ${log.length} < target ${h.targetHeight}` });
    }
  });
  return out;
}

export function checkSafety(h: History): Violation[] {
  return [...checkAgreement(h), ...checkValidity(h), ...checkIntegrity(h), ...checkDoubleSign(h), ...checkRegistryHashes(h)];
}

export function checkLivenessAll(h: History): Violation[] {
  return [...checkLiveness(h), ...checkCatchUp(h)];
}

export function checkAll(h: History): Violation[] {
  return [...checkSafety(h), ...checkLivenessAll(h)];
}

export function isSafetyViolation(v: Violation): boolean {
  return SAFETY_KINDS.includes(v.kind);
}

function short(hex: string): string {
  return hex.length > 16 ? `${hex.slice(0, 16)}…` : hex;
}
