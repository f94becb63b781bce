/**
 * One simulated run: N nodes, each driving the REAL consensus core
 * (`consensus/core.ts` `step`) the way node/'s driver does (carry out effects in
 * order, persist before broadcast, start the next height after a decision,
 * periodic status + catch-up of decided heights with their certificates), over a
 * modelled gossip mesh with seeded faults and Byzantine nodes.
 *
 * What is durable across a crash: the last `persist` record (signer record with
 * lock / valid value) and the decided log with certificates. Everything else
 * (the core's in-memory state, pending timers, re-gossip buffer) is lost.
 *
 * Byzantine nodes are wrappers around the real core or hand-crafted messages
 * signed with the Byzantine node's OWN key (via the core's exported sign bytes):
 * - equivocate: two real cores with the same key ("forks"), each talking to one
 *   half of the honest nodes (with some leakage, so evidence gets seen);
 * - invalid-value: real core, answers `request-value` with a value the validity
 *   predicate rejects;
 * - forge: real core, plus copies of its votes re-labelled as another node's
 *   (impersonation) or with a changed value under the old signature;
 * - future-round: real core, plus validly signed votes for rounds ahead;
 * - silent: never sends anything;
 * - amnesia: real core that periodically forgets its lock and signer record.
 */
import { blake3 } from '../crypto/blake3.js';
import type { Identity } from '../crypto/keys.js';
import { createConsensusState, DEFAULT_LIMITS, LAN_TIMEOUTS, proofOfLockMessages, step, valueIdOf, voteDigest } from '../consensus/core.js';
import { toHex } from '../base/hex.js';
import { encodeBatch } from '../consensus/patterns.js';
import { applyBatch, genesisRegistry, registryHash, validateBatch, validatorSetAt } from '../consensus/registry.js';
import type { PatternOp } from '../consensus/patterns.js';
import type { Registry } from '../consensus/registry.js';
import type {
  CommitCertificate,
  ConsensusConfig,
  ConsensusMessage,
  ConsensusState,
  Effect,
  Event,
  SignedVote,
  SignerRecord,
  TimeoutKind,
  ValidatorSet,
} from '../consensus/types.js';
import { Engine } from './engine.js';
import { partitionCut, planFaults } from './faults.js';
import type { FaultPlan } from './faults.js';
import { cachedSign, cachedVerify, identityOf, SIM_CLUSTER } from './keys.js';
import { Prng } from '../base/prng.js';
import { SimnetError } from './errors.js';
import { checkAll } from './checkers.js';
import type { DecisionRecord, History, LivenessWindow, SignedRecord, Violation } from './checkers.js';

export type FaultKind = 'loss' | 'tail' | 'reorder' | 'duplicate' | 'partition' | 'crash' | 'skew' | 'churn';
export const FAULT_KINDS: readonly FaultKind[] = ['loss', 'tail', 'reorder', 'duplicate', 'partition', 'crash', 'skew', 'churn'];
export type ByzBehaviour = 'equivocate' | 'invalid-value' | 'forge' | 'future-round' | 'silent' | 'amnesia';
export const BYZ_BEHAVIOURS: readonly ByzBehaviour[] = ['equivocate', 'invalid-value', 'forge', 'future-round', 'silent', 'amnesia'];

export interface NetworkParams {
  /** Median one-way link latency. @default 5 (a home lab across a LAN and a VPN hop) */
  latencyMedianMs: number;
  /** Log-normal shape of per-message latency. @default 0.5 */
  latencySigma: number;
  /**
   * Delay between deciding a height and starting the next (CometBFT's timeout_commit, 1 s by
   * default there: the proposer batches pattern operations meanwhile; fednode's driver starts
   * a height only when there is work, so a lab cluster decides far less often). @default 1000
   */
  commitIntervalMs: number;
  /** Status / re-gossip period: the driver's STATUS_INTERVAL_MS_DEFAULT. @default 1000 */
  statusIntervalMs: number;
  /** Faults (loss, tail, reordering, duplication) are drawn inside [0, faultPhaseMs]. @default 3000 */
  faultPhaseMs: number;
}

export const DEFAULT_NETWORK: NetworkParams = { latencyMedianMs: 5, latencySigma: 0.5, commitIntervalMs: 1000, statusIntervalMs: 1000, faultPhaseMs: 3000 };

export interface WorldOptions {
  nodes: number;
  byzantine: number;
  heights: number;
  seed: number;
  faults: readonly FaultKind[];
  behaviours: readonly ByzBehaviour[];
  /**
   * Negative control: every Byzantine node equivocates and the honest nodes are split
   * in two groups that cannot reach each other during the fault phase. With more than
   * f Byzantine nodes, agreement can break (and the checkers must say so).
   */
  splitBrain?: boolean;
  network?: Partial<NetworkParams>;
  /** Keep up to 200 trace lines about this height (for a violation's replay). */
  traceHeight?: number;
}

/** What each fault and behaviour actually did in a run (tests assert they happen). */
export interface Counters {
  delivered: number;
  lost: number;
  tailDelayed: number;
  reordered: number;
  duplicated: number;
  partitionDropped: number;
  crashes: number;
  restarts: number;
  crashLostEffects: number;
  skewedNodes: number;
  equivocationForks: number;
  invalidProposals: number;
  forgedSent: number;
  futureRoundSent: number;
  silentDropped: number;
  amnesiaResets: number;
  evidence: number;
  evidenceAgainstHonest: number;
  catchUpApplied: number;
  statusSent: number;
  /** Churn: member.add / member.remove decided (first honest decision of each), nodes that joined (booted) and left (stopped). */
  memberAdds: number;
  memberRemoves: number;
  joined: number;
  left: number;
  /** Heights the joining node took from others' decided logs (certificates verified by its core). */
  joinerCatchUp: number;
}

export interface SeedResult {
  seed: number;
  traceHash: string;
  violations: Violation[];
  /** Heights decided by the least advanced honest node. */
  commits: number;
  /** Mean (decision round + 1) over heights, from the first honest decision of each. */
  roundsPerHeight: number;
  maxRound: number;
  simTimeUs: number;
  events: number;
  counters: Counters;
  history: History;
  byzantine: { node: number; behaviour: ByzBehaviour }[];
  plan: FaultPlan;
  trace: string[];
  /** Each node's first core at the end: `h<height> r<round> <step> lock<lockedRound>`. */
  finalStates: string[];
}

export type { FaultPlan } from './faults.js';

// ------------------------------------------------------------------------------------------
// Keys and crypto (shared across runs: keys depend on the node index only)

const CLUSTER = SIM_CLUSTER;

// ------------------------------------------------------------------------------------------
// Values and the validity predicate

/**
 * Proposal values are REAL pattern batches (consensus/patterns.ts): one `model.alias`
 * op per height (alias a<height mod 32>, so the registry stays small), the model name
 * naming height, round and fork so different proposals are different values, plus the
 * churn's membership op where a proposer batches one.
 * Validity is the REAL predicate `validateBatch` against the node's own registry, and
 * the registry hash compared across nodes is the REAL `registryHash`.
 */
const ALIAS_SLOTS = 32;
const valueMemo = new Map<string, Uint8Array>();
/** Bound of the value memo (values repeat across seeds: same height/round/fork). */
const VALUE_MEMO_MAX = 100_000;
function makeValue(height: number, round: number, variant: number, member: MemberOp | null = null): Uint8Array {
  // Not keyed by the proposer: a (height, round) has one proposer per validator set, so the
  // values stay distinct within a run, and the same votes then recur across seeds, where the
  // sign and verify caches answer them (Ed25519 is deterministic: a memo, not a shortcut).
  const key = `${height}/${round}/${variant}/${member === null ? '' : `${member.kind}:${member.node}`}`;
  let v = valueMemo.get(key);
  if (v === undefined) {
    const ops: PatternOp[] = [{ kind: 'model.alias', alias: `a${height % ALIAS_SLOTS}`, model: `m-${height}-${round}-${variant}` }];
    if (member !== null) {
      const publicKey = identityOf(member.node).publicKey;
      ops.push(member.kind === 'member.add' ? { kind: 'member.add', publicKey, power: 1, name: `n${member.node}` } : { kind: 'member.remove', publicKey });
    }
    v = encodeBatch(ops);
    if (valueMemo.size >= VALUE_MEMO_MAX) valueMemo.clear();
    valueMemo.set(key, v);
  }
  return v;
}

/** A membership change a proposer puts in its batch (churn). */
interface MemberOp {
  kind: 'member.add' | 'member.remove';
  node: number;
}

/** Is `key` a member once every decided change is in force (members plus pending, in order)? */
function projectedMember(reg: Registry, key: string): boolean {
  let present = reg.members.some((m) => toHex(m.publicKey) === key);
  for (const p of reg.pending) if (toHex(p.op.publicKey) === key) present = p.op.kind === 'member.add';
  return present;
}

/**
 * Registry after a decided batch, shared by every node (and seed) that applies the same batch
 * at the same height to a registry with the same hash: registries are immutable plain data and
 * `applyBatch` is a pure function of (content, height, bytes), so n nodes pay for one apply and
 * one `registryHash` (the checkers still compare each node's own chain of hashes). Bound:
 * cleared when full.
 */
const APPLY_MEMO_MAX = 20_000;
const applyMemo = new Map<string, { registry: Registry; hash: Uint8Array; hex: string }>();
function applyShared(before: Registry, beforeHex: string, height: number, value: Uint8Array): { registry: Registry; hash: Uint8Array; hex: string } {
  const key = `${beforeHex}|${height}|${valueIdOf(value)}`;
  let r = applyMemo.get(key);
  if (r === undefined) {
    const registry = applyBatch(before, height, value);
    const hash = registryHash(registry);
    r = { registry, hash, hex: toHex(hash) };
    if (applyMemo.size >= APPLY_MEMO_MAX) applyMemo.clear();
    applyMemo.set(key, r);
  }
  return r;
}

/** Validator set of `height` from a registry at height - 1, one object per (registry, height) (the core memoises per set object). */
const setMemo = new WeakMap<Registry, Map<number, ValidatorSet>>();
function validatorsFor(reg: Registry, height: number): ValidatorSet {
  let m = setMemo.get(reg);
  if (m === undefined) {
    m = new Map();
    setMemo.set(reg, m);
  }
  let set = m.get(height);
  if (set === undefined) {
    set = validatorSetAt(reg, height);
    m.set(height, set);
  }
  return set;
}

/** Well-formed but invalid in state: removes a member that does not exist. */
function makeInvalidValue(height: number, proposer: number): Uint8Array {
  const ghost = new Uint8Array(32).fill(0xee);
  ghost[0] = height & 0xff;
  ghost[1] = proposer & 0xff;
  return encodeBatch([{ kind: 'member.remove', publicKey: ghost }]);
}

// ------------------------------------------------------------------------------------------
// World state

interface Decided {
  height: number;
  round: number;
  value: Uint8Array;
  certificate: CommitCertificate;
}

type Wire =
  | { t: 'cons'; m: ConsensusMessage }
  | { t: 'status'; height: number }
  | { t: 'catchup'; entries: readonly Decided[] };

/** One consensus process. Honest nodes have one; an equivocator has two with the same key. */
interface Fork {
  core: ConsensusState;
  /** Durable: last persisted signer record. */
  record: SignerRecord | null;
  /** Durable: decided log with certificates (index 0 = height 1). */
  log: Decided[];
  /** Derived from the durable log (a restart replays it; carried over here as the replay's result). */
  registry: Registry;
  /** Hex of registryHash(registry). */
  registryHex: string;
  /**
   * Durable: own signed messages at the current height (a WAL, as CometBFT's consensus
   * WAL), re-gossiped on each status tick. It must survive a crash: otherwise a node
   * whose prevote was lost before a crash can never send it again (its signer record
   * forbids re-signing below its last step) and, with exactly n-f honest nodes up, the
   * others wait forever for a 2f+1 prevote quorum (simnet seed 3, n=4: found that way).
   */
  recent: ConsensusMessage[];
  /** (height/round/step) at the last status tick: unchanged means stuck, so re-gossip. */
  lastMark: string;
  /** Last round whose proof-of-lock was relayed on entry. */
  polRound: number;
}

/** Peers a proof-of-lock is relayed to per tick or round entry (see relayPol). */
const POL_FANOUT = 4;
/** WAL / re-gossip bound: a proposal and the prevote/precommit of the last few rounds. */
const RECENT_MAX = 6;
/** Catch-up reply bound: heights per reply (the asker asks again on its next status tick). */
const CATCHUP_BATCH = 16;
/** Trace lines kept for a violation's replay. */
const TRACE_MAX = 200;

interface SimNode {
  idx: number;
  honest: boolean;
  behaviour: ByzBehaviour | null;
  id: Identity;
  config: ConsensusConfig;
  up: boolean;
  /** Incremented on crash: timers of an older epoch are dropped. */
  epoch: number;
  forks: Fork[];
  /** Honest nodes: which equivocating fork they talk to (0 or 1). */
  group: 0 | 1;
  timeoutScale: number;
  crashPending: boolean;
  applyingCatchup: boolean;
  /** Churn: false until a joining node comes online. */
  booted: boolean;
  /** Churn: removed from the validator set and stopped for good. */
  left: boolean;
  /** Counted in `remaining` no more (reached the target height, or left). */
  finished: boolean;
}

type Ev =
  | { k: 'deliver'; to: number; from: number; fromFork: number; wire: Wire; sendSeq: number }
  | { k: 'timeout'; node: number; fork: number; epoch: number; kind: TimeoutKind; height: number; round: number }
  | { k: 'start'; node: number; fork: number; epoch: number; height: number }
  | { k: 'status'; node: number; epoch: number }
  | { k: 'crash'; node: number }
  | { k: 'crash-now'; node: number }
  | { k: 'restart'; node: number }
  | { k: 'amnesia'; node: number }
  | { k: 'join'; node: number };

function resolveNetwork(p: Partial<NetworkParams> | undefined): NetworkParams {
  const n = { ...DEFAULT_NETWORK, ...(p ?? {}) };
  for (const [k, v] of Object.entries(n)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new SimnetError('ERR_SIMNET_OPTIONS', `network param ${k} must be a finite number >= 0`, { [k]: v });
  }
  return n;
}

export function validateWorldOptions(o: WorldOptions): void {
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 100) throw new SimnetError('ERR_SIMNET_OPTIONS', `nodes must be an integer in 1..100: ${o.nodes}`);
  if (!Number.isInteger(o.byzantine) || o.byzantine < 0 || o.byzantine >= o.nodes) throw new SimnetError('ERR_SIMNET_OPTIONS', `byzantine must be an integer in 0..nodes-1: ${o.byzantine}`);
  if (!Number.isInteger(o.heights) || o.heights < 1 || o.heights > 100_000) throw new SimnetError('ERR_SIMNET_OPTIONS', `heights must be an integer in 1..100000: ${o.heights}`);
  for (const f of o.faults) if (!FAULT_KINDS.includes(f)) throw new SimnetError('ERR_SIMNET_OPTIONS', `unknown fault '${String(f)}' (known: ${FAULT_KINDS.join(', ')})`);
  for (const b of o.behaviours) if (!BYZ_BEHAVIOURS.includes(b)) throw new SimnetError('ERR_SIMNET_OPTIONS', `unknown Byzantine behaviour '${String(b)}' (known: ${BYZ_BEHAVIOURS.join(', ')})`);
}

function emptyCounters(): Counters {
  return {
    delivered: 0,
    lost: 0,
    tailDelayed: 0,
    reordered: 0,
    duplicated: 0,
    partitionDropped: 0,
    crashes: 0,
    restarts: 0,
    crashLostEffects: 0,
    skewedNodes: 0,
    equivocationForks: 0,
    invalidProposals: 0,
    forgedSent: 0,
    futureRoundSent: 0,
    silentDropped: 0,
    amnesiaResets: 0,
    evidence: 0,
    evidenceAgainstHonest: 0,
    catchUpApplied: 0,
    statusSent: 0,
    memberAdds: 0,
    memberRemoves: 0,
    joined: 0,
    left: 0,
    joinerCatchUp: 0,
  };
}

const MS = 1000;

/** Runs one seed to completion (all honest nodes at `heights`, or the time bound) and checks it. */
export function runSeed(o: WorldOptions): SeedResult {
  validateWorldOptions(o);
  const net = resolveNetwork(o.network);
  const n = o.nodes;
  const f = Math.floor((n - 1) / 3);
  const root = new Prng(o.seed >>> 0);
  const rPlan = root.fork('plan');
  const rNet = root.fork('net');
  const rByz = root.fork('byz');
  const has = (k: FaultKind): boolean => o.faults.includes(k);
  const counters = emptyCounters();
  const engine = new Engine<Ev>();
  const trace = engine.trace;
  const traceLines: string[] = [];

  // --- who is Byzantine, and how
  const order = rPlan.shuffle(Array.from({ length: n }, (_, i) => i));
  const byzSet = new Set(order.slice(0, o.byzantine));
  const behaviours = o.splitBrain === true ? (['equivocate'] as const) : o.behaviours;
  const byzList: { node: number; behaviour: ByzBehaviour }[] = [];

  // --- validator set (equal power)
  // Node slots: the n genesis members, plus one joiner when churn is on (index n).
  const churnOn = has('churn') && o.splitBrain !== true;
  const N = churnOn ? n + 1 : n;

  // Genesis registry: every node a member with power 1 (membership stays fixed: no churn yet).
  const genesis = genesisRegistry({ members: Array.from({ length: n }, (_, i) => ({ publicKey: identityOf(i).publicKey, power: 1, name: `n${i}` })) });

  // --- nodes
  const nodes: SimNode[] = [];
  for (let i = 0; i < N; i++) {
    const id = identityOf(i);
    const honest = !byzSet.has(i);
    const behaviour: ByzBehaviour | null = honest || behaviours.length === 0 ? null : rByz.pick(behaviours);
    if (!honest && behaviour !== null) byzList.push({ node: i, behaviour });
    const config: ConsensusConfig = {
      cluster: CLUSTER,
      signer: { publicKey: id.publicKey, sign: (d) => cachedSign(id, d) },
      verify: cachedVerify,
      validateValue: () => false, // replaced per fork (needs the fork's registry)
      timeouts: LAN_TIMEOUTS,
      ...DEFAULT_LIMITS,
    };
    const skew = has('skew') ? 0.5 + 1.5 * rPlan.float() : 1;
    if (skew !== 1) counters.skewedNodes++;
    const joiner = i >= n;
    nodes.push({ idx: i, honest, behaviour, id, config, up: !joiner, epoch: 0, forks: [], group: 0, timeoutScale: skew, crashPending: false, applyingCatchup: false, booted: !joiner, left: false, finished: false });
  }
  const honestIdx = nodes.filter((x) => x.honest).map((x) => x.idx);
  // Two honest groups as equal as possible (each equivocating fork has an audience; the
  // negative control needs the even split).
  rPlan.shuffle(honestIdx).forEach((h, i) => ((nodes[h] as SimNode).group = i % 2 === 0 ? 0 : 1));

  // --- per-link latency medians (us)
  const linkMedianUs: number[] = new Array<number>(N * N);
  for (let i = 0; i < N * N; i++) linkMedianUs[i] = net.latencyMedianMs * MS * rNet.logNormal(1, 0.3);

  // --- fault plan
  const faultPhaseUs = net.faultPhaseMs * MS;
  const plan = planFaults({ has, splitBrain: o.splitBrain === true, n, honestIdx, groupOf: (h) => (nodes[h] as SimNode).group, faultPhaseUs, churnOn, rPlan });

  const stableUs = plan.faultEndUs;
  const inFaultPhase = (now: number): boolean => now < stableUs;

  /** Is the link from -> to cut by the partition at time now? */
  const cut = partitionCut(plan, o.splitBrain === true, (i) => (nodes[i] as SimNode).honest, (i) => (nodes[i] as SimNode).group);

  // --- history
  const decisions: DecisionRecord[] = [];
  const signed: SignedRecord[] = [];
  let sendSeq = 0;
  const lastDeliveredSeq = new Int32Array(N * N).fill(-1);
  let liveness: LivenessWindow | null = null;
  /** Honest nodes still to reach the target height (a node that leaves is done). */
  let remaining = honestIdx.length;
  const finish = (x: SimNode): void => {
    if (!x.honest || x.finished) return;
    x.finished = true;
    remaining--;
  };
  if (churnOn && plan.churn === null) {
    // No honest genesis node could leave (tiny n, or all but the crashing one Byzantine): the
    // spare slot never joins, and is neither waited for nor checked.
    const spareNode = nodes[n] as SimNode;
    spareNode.left = true;
    finish(spareNode);
  }
  const genesisHex = toHex(registryHash(genesis));
  /** Decided heights already counted for churn counters (first node to decide each). */
  const churnCounted = new Set<number>();

  /** Callers test `tracing` first and pass a thunk: building trace strings (or even the closure) per delivery cost more than the delivery. */
  const tracing = o.traceHeight !== undefined;
  const traceLine = (height: number, line: () => string): void => {
    if (o.traceHeight === undefined || height !== o.traceHeight) return;
    // Ring of the last TRACE_MAX lines about that height.
    if (traceLines.length >= TRACE_MAX) traceLines.shift();
    traceLines.push(`${(engine.now / 1000).toFixed(3)}ms ${line()}`);
  };

  // --- sending
  const send = (from: SimNode, fork: number, to: number, wire: Wire): void => {
    const now = engine.now;
    const seq = sendSeq++;
    if (cut(from.idx, to, now)) {
      counters.partitionDropped++;
      return;
    }
    const faulty = inFaultPhase(now);
    if (faulty && plan.lossRate > 0 && rNet.chance(plan.lossRate)) {
      counters.lost++;
      return;
    }
    let d = rNet.logNormal(linkMedianUs[from.idx * N + to] as number, net.latencySigma);
    if (faulty && plan.tailProb > 0 && rNet.chance(plan.tailProb)) {
      d *= 10 + 90 * rNet.float(); // long tail: 10-100x the link's latency
      counters.tailDelayed++;
    }
    if (faulty && plan.reorderProb > 0 && rNet.chance(plan.reorderProb)) d += rNet.float() * 20 * MS;
    engine.after(d, { k: 'deliver', to, from: from.idx, fromFork: fork, wire, sendSeq: seq });
    if (faulty && plan.duplicateProb > 0 && rNet.chance(plan.duplicateProb)) {
      counters.duplicated++;
      engine.after(d + rNet.float() * 2000 * MS, { k: 'deliver', to, from: from.idx, fromFork: fork, wire, sendSeq: seq });
    }
  };

  const broadcast = (from: SimNode, fork: number, wire: Wire): void => {
    if (from.behaviour === 'silent') {
      counters.silentDropped++;
      return;
    }
    const equivocating = from.forks.length > 1;
    for (const x of nodes) {
      if (x.idx === from.idx || !x.booted || x.left) continue; // nobody sends to a node not (or no longer) in the cluster
      if (x.behaviour === 'silent') continue; // what a silent node hears changes nothing anyone sees: not simulated
      // An equivocator's fork talks to its half of the honest nodes, with 20% leaking to the
      // other half; every other sender talks to everyone (the receiving side picks the fork).
      if (x.forks.length > 1 || !equivocating || !x.honest || x.group === fork || rByz.chance(0.2)) send(from, fork, x.idx, wire);
    }
  };

  /**
   * Proof-of-lock relay (see proofOfLockMessages in consensus/core.ts) to POL_FANOUT random peers, not to all: every node
   * relaying up to n + 1 messages to n peers on each tick and round entry cost n^3 deliveries
   * (80% of all events at n = 50 while a height sat in round 2). Epidemic relay reaches every
   * peer within a few ticks (CometBFT also sends each peer only what it lacks).
   */
  const relayPol = (x: SimNode, fi: number): void => {
    const fk = x.forks[fi] as Fork;
    const msgs = proofOfLockMessages(fk.core);
    if (msgs.length === 0) return;
    if (x.behaviour === 'silent') {
      counters.silentDropped++;
      return;
    }
    const peers = nodes.filter((y) => y.idx !== x.idx && y.booted && !y.left);
    const chosen = peers.length <= POL_FANOUT ? peers : rNet.shuffle(peers).slice(0, POL_FANOUT);
    for (const y of chosen) for (const m of msgs) send(x, fi, y.idx, { t: 'cons', m });
  };

  // --- Byzantine extras (hand-crafted, signed with the Byzantine node's own key)
  const byzExtras = (x: SimNode, fork: number, m: ConsensusMessage): void => {
    if (m.type !== 'vote') return;
    const v = m.vote.vote;
    if (x.behaviour === 'forge') {
      // Impersonation: the vote relabelled as an honest node's, with our signature.
      const victim = rByz.pick(honestIdx.length > 0 ? honestIdx : [x.idx]);
      const forged: SignedVote = { vote: v, signer: identityOf(victim).publicKey, signature: m.vote.signature };
      broadcast(x, fork, { t: 'cons', m: { type: 'vote', vote: forged } });
      // Changed value under the old signature.
      const other: SignedVote = { vote: { ...v, valueId: toHex(blake3(new Uint8Array([rByz.int(256), v.round & 0xff]))) }, signer: m.vote.signer, signature: m.vote.signature };
      broadcast(x, fork, { t: 'cons', m: { type: 'vote', vote: other } });
      counters.forgedSent += 2;
    } else if (x.behaviour === 'future-round') {
      const round = v.round + 1 + rByz.int(3);
      for (const type of ['prevote', 'precommit'] as const) {
        const vote = { type, height: v.height, round, valueId: rByz.chance(0.5) ? null : v.valueId };
        const signature = cachedSign(x.id, voteDigest(CLUSTER, vote));
        broadcast(x, fork, { t: 'cons', m: { type: 'vote', vote: { vote, signer: x.id.publicKey, signature } } });
        counters.futureRoundSent++;
      }
    }
  };

  // --- churn: the membership change a proposer batches, judged against its own registry
  const memberOpFor = (fk: Fork): MemberOp | null => {
    const c = plan.churn;
    if (c === null || engine.now < c.joinUs) return null;
    const joinerKey = toHex(identityOf(c.joiner).publicKey);
    if (!projectedMember(fk.registry, joinerKey)) return (nodes[c.joiner] as SimNode).left ? null : { kind: 'member.add', node: c.joiner };
    if (projectedMember(fk.registry, toHex(identityOf(c.leaver).publicKey))) return { kind: 'member.remove', node: c.leaver };
    return null;
  };

  // --- driving a core
  const recordDecision = (x: SimNode, fk: Fork, d: Decided): void => {
    fk.log.push(d);
    const before = fk.registry;
    const verdict = before.height === d.height - 1 ? validateBatch(before, d.height, d.value) : null;
    const valid = verdict !== null && verdict.ok;
    let regHash: Uint8Array;
    if (valid) {
      const next = applyShared(before, fk.registryHex, d.height, d.value);
      fk.registry = next.registry;
      fk.registryHex = next.hex;
      regHash = next.hash;
      if (!churnCounted.has(d.height)) {
        churnCounted.add(d.height);
        for (const op of verdict.ops) {
          if (op.kind === 'member.add') counters.memberAdds++;
          if (op.kind === 'member.remove') counters.memberRemoves++;
        }
      }
    } else regHash = registryHash(fk.registry);
    trace.u32(0xdec1de);
    trace.u32(x.idx);
    trace.u32(d.height);
    trace.u32(d.round);
    trace.bytesPrefix(regHash);
    if (x.forks[0] === fk) {
      decisions.push({ node: x.idx, height: d.height, round: d.round, valueHex: toHex(d.value), valid, atUs: engine.now, registryHash: toHex(regHash) });
      if (tracing) traceLine(d.height, () => `node ${x.idx} decides round ${d.round} value ${toHex(d.value)}`);
      if (fk.log.length >= o.heights) finish(x);
      if (x.idx === plan.churn?.joiner && x.applyingCatchup) counters.joinerCatchUp++;
    }
    // A node no longer in the validator set of its next height leaves the cluster and stops.
    if (plan.churn !== null && x.idx === plan.churn.leaver && x.forks[0] === fk && !x.left && !validatorsFor(fk.registry, fk.log.length + 1).validators.some((v) => v.publicKey === x.id.publicKey)) {
      x.left = true;
      x.up = false;
      x.epoch++;
      counters.left++;
      finish(x);
    }
  };

  const feed = (x: SimNode, fi: number, event: Event): void => {
    const fk = x.forks[fi];
    if (fk === undefined || !x.up) return;
    let res;
    try {
      res = step(fk.core, event);
    } catch (err) {
      throw new SimnetError('ERR_SIMNET_CORE', `consensus core threw on node ${x.idx}: ${String(err)}`, { node: x.idx, event: event.type, seed: o.seed }, { cause: err });
    }
    if (res.effects.length === 0) {
      fk.core = res.state;
      return; // nothing to carry out (most late or duplicate messages)
    }
    fk.core = res.state;
    const all = res.effects;
    let effects: readonly Effect[] = all;
    // A pending crash strikes at the first step that has effects to carry out: only a
    // prefix of them happens (a step without effects changes nothing durable).
    const crashHere = x.crashPending && effects.length > 0;
    if (crashHere) {
      const keep = rNet.int(effects.length);
      counters.crashLostEffects += effects.length - keep;
      effects = effects.slice(0, keep);
    }
    const followUps: Event[] = [];
    for (const e of effects) {
      switch (e.type) {
        case 'persist': {
          fk.record = e.record;
          // The signed message is written with the record (as the driver's signer file holds
          // this height's own messages): a crash between this persist and the broadcast must
          // not lose it, or the restarted node can neither re-sign (the record forbids a
          // different digest) nor resend it, and with n - f honest nodes up the round stalls.
          const sig = e.record.signature;
          const m = sig === null ? undefined : all.find((b): b is Extract<Effect, { type: 'broadcast' }> => b.type === 'broadcast' && (b.message.type === 'vote' ? b.message.vote.signature : b.message.proposal.signature) === sig)?.message;
          if (m !== undefined && !fk.recent.includes(m)) {
            fk.recent.push(m);
            if (fk.recent.length > RECENT_MAX) fk.recent.shift();
          }
          break;
        }
        case 'broadcast': {
          const m = e.message;
          if (x.honest) {
            if (m.type === 'vote') signed.push({ node: x.idx, kind: m.vote.vote.type, height: m.vote.vote.height, round: m.vote.vote.round, payload: m.vote.vote.valueId ?? 'nil' });
            else signed.push({ node: x.idx, kind: 'proposal', height: m.proposal.proposal.height, round: m.proposal.proposal.round, payload: `${valueIdOf(m.proposal.proposal.value)}:${m.proposal.proposal.validRound}` });
          }
          if (!fk.recent.includes(m)) {
            fk.recent.push(m);
            if (fk.recent.length > RECENT_MAX) fk.recent.shift();
          }
          broadcast(x, fi, { t: 'cons', m });
          byzExtras(x, fi, m);
          break;
        }
        case 'schedule-timeout':
          engine.after(e.durationMs * MS * x.timeoutScale, { k: 'timeout', node: x.idx, fork: fi, epoch: x.epoch, kind: e.kind, height: e.height, round: e.round });
          break;
        case 'request-value': {
          let value: Uint8Array;
          if (x.behaviour === 'invalid-value') {
            value = makeInvalidValue(e.height, x.idx);
            counters.invalidProposals++;
          } else value = makeValue(e.height, e.round, fi, memberOpFor(fk));
          followUps.push({ type: 'value-to-propose', height: e.height, round: e.round, value });
          break;
        }
        case 'decide':
          recordDecision(x, fk, { height: e.height, round: e.round, value: e.value, certificate: e.certificate });
          fk.recent = [];
          if (!x.applyingCatchup) engine.after(net.commitIntervalMs * MS, { k: 'start', node: x.idx, fork: fi, epoch: x.epoch, height: e.height + 1 });
          break;
        case 'evidence':
          counters.evidence++;
          if (x.honest) {
            const accused = nodes.find((y) => toHex(y.id.publicKey) === e.evidence.validator);
            if (accused !== undefined && accused.honest) counters.evidenceAgainstHonest++;
          }
          break;
      }
    }
    if (crashHere) {
      crashNow(x);
      return;
    }
    if (fk.core.round > 0 && fk.core.round !== fk.polRound && fk.core.step !== 'decided') {
      // Entering a new round above 0: relay the proof-of-lock at once (see proofOfLockMessages in consensus/core.ts).
      fk.polRound = fk.core.round;
      relayPol(x, fi);
    }
    for (const ev of followUps) feed(x, fi, ev);
  };

  const startFork = (x: SimNode, fi: number): void => {
    const fk = x.forks[fi] as Fork;
    feed(x, fi, { type: 'start-height', height: fk.log.length + 1, validators: validatorsFor(fk.registry, fk.log.length + 1) });
  };

  const newFork = (x: SimNode, record: SignerRecord | null, log: Decided[], registry: Registry, registryHex: string, fi: number): Fork => {
    const fk = { record, log, registry, registryHex, recent: [], lastMark: '', polRound: 0 } as unknown as Fork;
    // Validity: the real predicate against this fork's registry (at height - 1). An
    // equivocator's second fork judges every value invalid, so it prevotes nil where the
    // first prevotes the value: conflicting votes at every height.
    // (Not in the negative control: there each fork must be able to decide with its half.)
    const validateValue = fi === 0 || o.splitBrain === true ? (h: number, v: Uint8Array): boolean => fk.registry.height === h - 1 && validateBatch(fk.registry, h, v).ok : (): boolean => false;
    fk.core = createConsensusState({ ...x.config, validateValue }, record);
    return fk;
  };

  const crashNow = (x: SimNode): void => {
    x.crashPending = false;
    x.up = false;
    x.epoch++;
    counters.crashes++;
  };

  const restart = (x: SimNode): void => {
    x.up = true;
    x.epoch++;
    counters.restarts++;
    // Rebuilt from what was durable: the persisted signer record and the decided log.
    x.forks = x.forks.map((fk, fi) => {
      const fresh = newFork(x, fk.record, fk.log, fk.registry, fk.registryHex, fi); // (its validity closure holds this object: never spread it)
      fresh.recent = fk.recent;
      return fresh;
    });
    x.forks.forEach((fk, fi) => {
      startFork(x, fi);
      // Replay the WAL into the new core (as CometBFT does): its own proposal and votes
      // of this height count again. Without this a node that signed a prevote and then
      // crashed cannot reproduce it (the signer record refuses a different digest, and the
      // core no longer knows the proposal), and with n-f honest nodes the round stalls.
      for (const m of [...fk.recent]) feed(x, fi, m.type === 'vote' ? { type: 'vote', vote: m.vote } : { type: 'proposal', proposal: m.proposal });
    });
    engine.after(net.statusIntervalMs * MS * x.timeoutScale * rNet.float(), { k: 'status', node: x.idx, epoch: x.epoch });
  };

  const applyCatchup = (x: SimNode, fi: number, entries: readonly Decided[]): void => {
    const fk = x.forks[fi] as Fork;
    x.applyingCatchup = true;
    let applied = false;
    try {
      for (const d of entries) {
        if (d.height !== fk.log.length + 1) continue;
        // Measured before the start-height too: starting the height replays buffered messages,
        // which can decide it right there (no `start` of the next height is scheduled during
        // catch-up, so that decision must count as applied; n=4 seed 1045 stalled otherwise).
        const before = fk.log.length;
        if (fk.core.height < d.height) feed(x, fi, { type: 'start-height', height: d.height, validators: validatorsFor(fk.registry, d.height) });
        feed(x, fi, { type: 'decided', height: d.height, value: d.value, certificate: d.certificate });
        if (fk.log.length > before) {
          applied = true;
          counters.catchUpApplied++;
        }
        if (!x.up) return;
      }
    } finally {
      x.applyingCatchup = false;
    }
    if (applied && x.up) feed(x, fi, { type: 'start-height', height: fk.log.length + 1, validators: validatorsFor(fk.registry, fk.log.length + 1) });
  };

  // --- event handler
  const handle = (ev: Ev, now: number): void => {
    switch (ev.k) {
      case 'deliver': {
        const x = nodes[ev.to] as SimNode;
        trace.u32(1);
        trace.num(now);
        trace.u32(ev.from);
        trace.u32(ev.to);
        if (!x.up) return;
        counters.delivered++;
        const link = ev.from * N + ev.to;
        if (ev.sendSeq < (lastDeliveredSeq[link] as number)) counters.reordered++;
        else lastDeliveredSeq[link] = ev.sendSeq;
        const toFork = x.forks.length > 1 ? ((nodes[ev.from] as SimNode).honest ? (nodes[ev.from] as SimNode).group : Math.min(ev.fromFork, x.forks.length - 1)) : 0;
        const w = ev.wire;
        switch (w.t) {
          case 'cons': {
            const m = w.m;
            trace.bytesPrefix(m.type === 'vote' ? m.vote.signature : m.proposal.signature);
            if (m.type === 'vote') {
              if (tracing) traceLine(m.vote.vote.height, () => `${ev.from}->${ev.to} ${m.vote.vote.type} r${m.vote.vote.round} ${m.vote.vote.valueId?.slice(0, 8) ?? 'nil'} signer ${toHex(m.vote.signer).slice(0, 8)}`);
              feed(x, toFork, { type: 'vote', vote: m.vote });
            } else {
              if (tracing) traceLine(m.proposal.proposal.height, () => `${ev.from}->${ev.to} proposal r${m.proposal.proposal.round} ${toHex(m.proposal.proposal.value)} vr ${m.proposal.proposal.validRound}`);
              feed(x, toFork, { type: 'proposal', proposal: m.proposal });
            }
            return;
          }
          case 'status': {
            trace.u32(w.height);
            const fk = x.forks[toFork] as Fork;
            if (w.height <= fk.log.length) {
              const entries = fk.log.slice(w.height - 1, w.height - 1 + CATCHUP_BATCH);
              send(x, toFork, ev.from, { t: 'catchup', entries });
            }
            return;
          }
          case 'catchup':
            trace.u32(w.entries.length);
            applyCatchup(x, toFork, w.entries);
            return;
        }
        return;
      }
      case 'timeout': {
        const x = nodes[ev.node] as SimNode;
        if (!x.up || ev.epoch !== x.epoch) return;
        trace.u32(2);
        trace.num(now);
        trace.u32(ev.node);
        if (tracing) traceLine(ev.height, () => `node ${ev.node} timeout ${ev.kind} r${ev.round}`);
        feed(x, ev.fork, { type: 'timeout', kind: ev.kind, height: ev.height, round: ev.round });
        return;
      }
      case 'start': {
        const x = nodes[ev.node] as SimNode;
        if (!x.up || ev.epoch !== x.epoch) return;
        const fk = x.forks[ev.fork] as Fork;
        if (fk.core.height >= ev.height && fk.core.step !== 'decided') return; // catch-up got there first
        if (ev.height !== fk.log.length + 1) return;
        trace.u32(3);
        trace.num(now);
        feed(x, ev.fork, { type: 'start-height', height: ev.height, validators: validatorsFor(fk.registry, ev.height) });
        return;
      }
      case 'status': {
        const x = nodes[ev.node] as SimNode;
        if (!x.up || ev.epoch !== x.epoch) return;
        x.forks.forEach((fk, fi) => {
          counters.statusSent++;
          broadcast(x, fi, { t: 'status', height: fk.log.length + 1 });
          // Re-gossip only when this process made no progress since its last tick (as
          // CometBFT gossips what a peer lacks, not everything): the good case pays nothing.
          const mark = `${fk.core.height}/${fk.core.round}/${fk.core.step}`;
          if (mark === fk.lastMark) for (const m of fk.recent) broadcast(x, fi, { t: 'cons', m });
          relayPol(x, fi);
          fk.lastMark = mark;
        });
        engine.after(net.statusIntervalMs * MS * x.timeoutScale, { k: 'status', node: x.idx, epoch: x.epoch });
        return;
      }
      case 'crash': {
        const x = nodes[ev.node] as SimNode;
        trace.u32(4);
        // The next step within 50 ms is cut short mid-effects; if the node is idle, it just stops.
        x.crashPending = true;
        engine.after(rNet.int(50 * MS), { k: 'crash-now', node: ev.node });
        return;
      }
      case 'crash-now': {
        const x = nodes[ev.node] as SimNode;
        if (x.crashPending) crashNow(x);
        return;
      }
      case 'restart': {
        const x = nodes[ev.node] as SimNode;
        trace.u32(5);
        if (x.crashPending) crashNow(x);
        if (!x.up) restart(x);
        return;
      }
      case 'join': {
        // A new machine comes online: it starts from genesis and catches up from the others'
        // decided logs (its core verifies every certificate) while the cluster decides to add it.
        const x = nodes[ev.node] as SimNode;
        trace.u32(6);
        x.booted = true;
        x.up = true;
        counters.joined++;
        startFork(x, 0);
        broadcast(x, 0, { t: 'status', height: 1 });
        engine.after(net.statusIntervalMs * MS * x.timeoutScale, { k: 'status', node: x.idx, epoch: x.epoch });
        return;
      }
      case 'amnesia': {
        const x = nodes[ev.node] as SimNode;
        if (!x.up) return;
        // Forget the lock and the signer record, keep the decided log.
        counters.amnesiaResets++;
        x.forks = x.forks.map((fk, fi) => newFork(x, null, fk.log, fk.registry, fk.registryHex, fi));
        x.epoch++;
        x.forks.forEach((_, fi) => startFork(x, fi));
        engine.after(net.statusIntervalMs * MS, { k: 'status', node: x.idx, epoch: x.epoch });
        engine.after((200 + rByz.int(800)) * MS, { k: 'amnesia', node: x.idx });
        return;
      }
    }
  };

  // --- boot
  for (const x of nodes) {
    const forks = x.behaviour === 'equivocate' ? 2 : 1;
    if (forks > 1) counters.equivocationForks++;
    x.forks = Array.from({ length: forks }, (_, fi) => newFork(x, null, [], genesis, genesisHex, fi));
  }
  for (const x of nodes) {
    if (!x.booted) continue; // the joiner boots at plan.churn.joinUs
    x.forks.forEach((_, fi) => startFork(x, fi));
    engine.after(net.statusIntervalMs * MS * x.timeoutScale * rNet.float(), { k: 'status', node: x.idx, epoch: x.epoch });
    if (x.behaviour === 'amnesia') engine.after((200 + rByz.int(800)) * MS, { k: 'amnesia', node: x.idx });
  }
  if (plan.churn !== null) engine.at(plan.churn.joinUs, { k: 'join', node: plan.churn.joiner });
  if (plan.crash !== null) {
    engine.at(plan.crash.atUs, { k: 'crash', node: plan.crash.node });
    engine.at(plan.crash.restartUs, { k: 'restart', node: plan.crash.node });
  }

  // Run the fault phase, snapshot the liveness window, then run to completion.
  const done = (): boolean => remaining === 0;
  engine.run(stableUs, handle, done);
  if (!done()) {
    let heightAtStable = 0;
    let maxRound = 0;
    for (const h of honestIdx) {
      if (!(nodes[h] as SimNode).booted || (nodes[h] as SimNode).left) continue;
      const c = ((nodes[h] as SimNode).forks[0] as Fork).core;
      const ht = c.step === 'decided' ? c.height + 1 : Math.max(1, c.height);
      const r = c.step === 'decided' ? 0 : c.round;
      if (ht > heightAtStable) {
        heightAtStable = ht;
        maxRound = r;
      } else if (ht === heightAtStable) maxRound = Math.max(maxRound, r);
    }
    if (heightAtStable <= o.heights) liveness = { stableAtUs: stableUs, heightAtStable, maxRoundAtStable: maxRound };
    // Time bound after stabilisation: generous per height (rounds of LAN timeouts) plus slack.
    const limitUs = stableUs + o.heights * (net.commitIntervalMs + 1000) * MS + 20_000 * MS;
    engine.run(limitUs, handle, done);
  }

  const history: History = {
    nodes: N,
    f,
    honest: nodes.map((x) => x.honest),
    left: nodes.map((x) => x.left),
    decisions,
    signed,
    finalLogs: nodes.map((x) => ((x.forks[0] as Fork).log).map((d) => toHex(d.value))),
    targetHeight: o.heights,
    liveness,
  };
  const violations = checkAll(history);
  if (counters.evidenceAgainstHonest > 0) {
    violations.push({ kind: 'honest-double-sign', height: 0, nodes: [], detail: `honest nodes produced evidence against ${counters.evidenceAgainstHonest} honest validator(s)` });
  }

  // Rounds per height: the first honest decision of each height.
  const firstRound = new Map<number, number>();
  let maxRound = 0;
  for (const d of decisions) {
    if (!(nodes[d.node] as SimNode).honest || firstRound.has(d.height)) continue;
    firstRound.set(d.height, d.round);
    maxRound = Math.max(maxRound, d.round);
  }
  let roundSum = 0;
  for (const r of firstRound.values()) roundSum += r + 1;
  const staying = honestIdx.filter((h) => !(nodes[h] as SimNode).left);
  const commits = staying.length === 0 ? 0 : Math.min(...staying.map((h) => ((nodes[h] as SimNode).forks[0] as Fork).log.length));

  return {
    seed: o.seed,
    traceHash: trace.hex(),
    violations,
    commits,
    roundsPerHeight: firstRound.size === 0 ? 0 : roundSum / firstRound.size,
    maxRound,
    simTimeUs: engine.now,
    events: engine.eventsProcessed,
    counters,
    history,
    byzantine: byzList,
    plan,
    trace: traceLines,
    finalStates: nodes.map((x) => {
      const c = (x.forks[0] as Fork).core;
      return `${x.honest ? 'honest' : `byz:${x.behaviour ?? '-'}`} ${x.up ? 'up' : 'down'} h${c.height} r${c.round} ${c.step} lock${c.lockedRound} valid${c.validRound} rec:h${c.signerRecord.height}r${c.signerRecord.round}s${c.signerRecord.step}`;
    }),
  };
}

