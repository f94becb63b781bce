/**
 * The mesh keeper's decisions, pure (no libp2p, no clock, no randomness of its own): which
 * members this node keeps a connection to (`chooseTargets`) and when it dials a missing one
 * again (`DialSchedule`). mesh.ts carries them out; the unit tests drive them with explicit
 * time and random draws.
 */
import { Prng } from '../../base/prng.js';

/**
 * Full mesh up to this many other members: a home lab has tens of machines, and 64
 * connections per node (each a TCP socket, a yamux session, a gossipsub peer and a direct
 * channel) cost a few MiB. Past that the number of connections would grow with the square of
 * the cluster, so each node keeps a bounded subset instead.
 */
export const FULL_MESH_MAX = 64;
/**
 * Beyond FULL_MESH_MAX: this many non-validator members chosen at random (seeded by this
 * node's id, so the choice is stable across re-evaluations and differs between nodes, which
 * keeps the union connected), plus every validator of the current height (consensus messages
 * go direct to them). 32 random links per node make a graph of hundreds of nodes connected
 * with overwhelming probability while bounding a node's connections to 32 + validators.
 */
export const RANDOM_SUBSET_SIZE = 32;

export interface TargetInput {
  readonly self: string;
  /** Decided members (peer ids), any order. */
  readonly members: readonly string[];
  /** Validators of the current height (peer ids); always targets beyond the full-mesh bound. */
  readonly validators: readonly string[];
  /** Peers dialled before membership is known (bootstrap list): kept as targets until they are members or not. */
  readonly extra?: readonly string[];
  readonly fullMeshMax?: number;
  readonly subsetSize?: number;
}

/** The peers this node should stay connected to, sorted (never itself). */
export function chooseTargets(i: TargetInput): string[] {
  const fullMax = i.fullMeshMax ?? FULL_MESH_MAX;
  const subset = i.subsetSize ?? RANDOM_SUBSET_SIZE;
  const others = [...new Set(i.members)].filter((m) => m !== i.self).sort();
  const extra = (i.extra ?? []).filter((p) => p !== i.self);
  if (others.length <= fullMax) return [...new Set([...others, ...extra])].sort();
  const memberSet = new Set(others);
  const validators = [...new Set(i.validators)].filter((v) => v !== i.self && memberSet.has(v));
  const validatorSet = new Set(validators);
  const rest = others.filter((m) => !validatorSet.has(m));
  // A seeded shuffle of the sorted rest: the same membership gives the same subset (no churn
  // on re-evaluation); a membership change may redraw it.
  // The stream is forked by the node's id: stable per node, different between nodes.
  const picked = new Prng(0).fork(`mesh ${i.self}`).shuffle(rest).slice(0, subset);
  return [...new Set([...validators, ...picked, ...extra])].sort();
}

/** Exponential backoff with cap: base * 2^attempt, capped, with +-25% jitter (rand01 in [0, 1)) so peers do not redial in lockstep. */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number, rand01: number): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(raw * (0.75 + 0.5 * rand01));
}

export interface BackoffOptions {
  /** First retry delay. @default 500 */
  baseMs: number;
  /** Delay cap. @default 30_000 */
  maxMs: number;
  /** Failed dials in a row before the peer is parked until new address information or a membership change. @default 120 (~1 h at the cap) */
  maxAttempts: number;
  /** Dials in flight at once: more would only queue in libp2p's dialer and time out together. @default 8 */
  maxInFlight: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000, maxAttempts: 120, maxInFlight: 8 };

export type MissingReason = 'no-address' | 'dialling' | 'backoff' | 'gave-up';

interface PeerDial {
  /** Failed attempts in a row. */
  failures: number;
  notBeforeMs: number;
  inFlight: boolean;
  lastError: string | null;
}

export interface DialPlanEntry {
  readonly peer: string;
  readonly reason: MissingReason;
  readonly failures: number;
  /** ms until the next attempt (0: due now), null when parked or without an address. */
  readonly nextInMs: number | null;
  readonly lastError: string | null;
}

/**
 * Dial bookkeeping per target: due peers (not connected, with an address, not in backoff,
 * within the in-flight bound), failure -> next attempt after a jittered capped delay,
 * success or new address information -> due again at once.
 */
export class DialSchedule {
  private readonly o: BackoffOptions;
  /** One entry per target (targets are bounded by chooseTargets: FULL_MESH_MAX + validators + bootstrap). */
  private readonly peers = new Map<string, PeerDial>();

  constructor(o: Partial<BackoffOptions> = {}) {
    this.o = { ...DEFAULT_BACKOFF, ...o };
  }

  /** Replace the target set; state of peers that stay is kept. */
  setTargets(targets: readonly string[]): void {
    const want = new Set(targets);
    for (const p of [...this.peers.keys()]) if (!want.has(p)) this.peers.delete(p);
    for (const p of want) if (!this.peers.has(p)) this.peers.set(p, { failures: 0, notBeforeMs: 0, inFlight: false, lastError: null });
  }

  targets(): string[] {
    return [...this.peers.keys()].sort();
  }

  /** Peers to dial now, at most the free in-flight slots, longest-waiting first. */
  due(nowMs: number, isConnected: (peer: string) => boolean, hasAddress: (peer: string) => boolean): string[] {
    let inFlight = 0;
    for (const d of this.peers.values()) if (d.inFlight) inFlight++;
    const free = this.o.maxInFlight - inFlight;
    if (free <= 0) return [];
    const ready: Array<[string, number]> = [];
    for (const [p, d] of this.peers) {
      if (d.inFlight || isConnected(p) || d.failures >= this.o.maxAttempts || nowMs < d.notBeforeMs || !hasAddress(p)) continue;
      ready.push([p, d.notBeforeMs]);
    }
    ready.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    return ready.slice(0, free).map(([p]) => p);
  }

  started(peer: string): void {
    const d = this.peers.get(peer);
    if (d !== undefined) d.inFlight = true;
  }

  /** The dial failed: next attempt after backoffDelayMs(failures). */
  failed(peer: string, nowMs: number, rand01: number, error: string): void {
    const d = this.peers.get(peer);
    if (d === undefined) return;
    d.inFlight = false;
    d.lastError = error.slice(0, 200); // status line, not a log
    d.notBeforeMs = nowMs + backoffDelayMs(d.failures, this.o.baseMs, this.o.maxMs, rand01);
    d.failures++;
  }

  /** Connected (by our dial or theirs): the count starts over. */
  succeeded(peer: string): void {
    const d = this.peers.get(peer);
    if (d === undefined) return;
    d.inFlight = false;
    d.failures = 0;
    d.notBeforeMs = 0;
    d.lastError = null;
  }

  /** New address information for the peer (or it disconnected): try it at once, parked or not. */
  reset(peer: string): void {
    const d = this.peers.get(peer);
    if (d === undefined) return;
    d.failures = 0;
    d.notBeforeMs = 0;
  }

  /** Targets that are not connected, with why. */
  missing(nowMs: number, isConnected: (peer: string) => boolean, hasAddress: (peer: string) => boolean): DialPlanEntry[] {
    const out: DialPlanEntry[] = [];
    for (const p of this.targets()) {
      if (isConnected(p)) continue;
      const d = this.peers.get(p)!;
      const reason: MissingReason = d.inFlight ? 'dialling' : !hasAddress(p) ? 'no-address' : d.failures >= this.o.maxAttempts ? 'gave-up' : 'backoff';
      const nextInMs = reason === 'backoff' ? Math.max(0, d.notBeforeMs - nowMs) : reason === 'dialling' ? 0 : null;
      out.push({ peer: p, reason, failures: d.failures, nextInMs, lastError: d.lastError });
    }
    return out;
  }
}
