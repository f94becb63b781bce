/**
 * The simulator over the PRODUCTION consensus driver (node/consensus/driver.ts), as
 * TigerBeetle's simulator instantiates its production replica: every simulated node is a
 * `createDriver(options, ports)` whose ports (node/consensus/ports.ts) are bound here to the
 * deterministic engine (virtual clock and timers), a simulated wire (direct channels, gossip,
 * catch-up request/response with the real sync codec) and crashable in-memory stores (a write
 * is durable only when its simulated fsync completes; a crash drops what was not synced).
 * Work comes as real `submit()` calls (model.alias ops) from a seeded client, so heights run
 * when there is work, exactly as in production.
 *
 * The driver is async (it awaits its stores); after each engine event the loop lets every
 * microtask settle before the next event, so a seed still replays bit for bit (same seed, same
 * trace hash).
 */
import { Prng } from '../base/prng.js';
import type { PatternOp } from '../consensus/patterns.js';
import { encodeBatch } from '../consensus/patterns.js';
import { genesisRegistry, validateBatch } from '../consensus/registry.js';
import { peerIdFromPublicKey } from '../crypto/keys.js';
import { decodeDecision } from '../node/consensus/decided-log.js';
import { createDriver } from '../node/consensus/driver.js';
import { nullLogger } from '../node/log.js';
import { checkAll } from './checkers.js';
import type { DecisionRecord, History, LivenessWindow, SignedRecord, Violation } from './checkers.js';
import { byzantineHooks, MS, simPorts, simTransport, TAG_CRASH, TAG_FSYNC, TAG_WORK, type Ev, type SimContext, type SimNode, type SimSealed } from './driver-ports.js';
import { Engine } from './engine.js';
import { SimnetError } from './errors.js';
import { BYZ_BEHAVIOURS, FAULT_KINDS, partitionCut, planFaults, type ByzBehaviour, type FaultKind, type FaultPlan } from './faults.js';
import { identityOf, SIM_CLUSTER } from './keys.js';
import { Churn, type ChurnWorld } from './churn.js';

/**
 * The client submits one op this often (sim ms) by default: one height a second when the
 * network is good, as the old model's commit interval (CometBFT's timeout_commit) gave.
 */
export const WORK_INTERVAL_MS_DEFAULT = 1_000;
/**
 * Microtask turns the loop yields after each event: the driver's continuations of that event
 * (a store write resolving, the next queued job) run before the next event. A fixed count keeps
 * the interleaving deterministic; a continuation longer than this simply runs a little later.
 */
const DRAIN_TURNS = 32;
/** Alias slots the workload cycles through (the registry stays small; replacements are new values). */
const ALIAS_SLOTS = 32;
/** The driver's status period, as in production (STATUS_INTERVAL_MS_DEFAULT). */
const STATUS_INTERVAL_MS = 1_000;
/** Catch-up exchange timeout in the simulation (production's 5 s default would idle a lagging node). */
const SYNC_TIMEOUT_MS = 500;
/** Byzantine behaviours this world models through the driver's test-only hooks, the transport or the stores (amnesia): all of them. */
export const DRIVER_BYZ_BEHAVIOURS: readonly ByzBehaviour[] = BYZ_BEHAVIOURS;
/** Faults this world models: all of them (churn: simnet/churn.ts). */
export const DRIVER_FAULT_KINDS: readonly FaultKind[] = FAULT_KINDS;

export interface DriverWorldOptions {
  readonly nodes: number;
  readonly byzantine: number;
  readonly heights: number;
  readonly seed: number;
  readonly faults: readonly FaultKind[];
  readonly behaviours: readonly ByzBehaviour[];
  /** Fault phase length (sim ms); the network is stable afterwards. @default 3_000 */
  readonly faultPhaseMs?: number;
  /** Per-link median one-way latency (ms). @default 5 */
  readonly latencyMedianMs?: number;
  /** The seeded client submits one op this often (sim ms). @default 1_000 */
  readonly workIntervalMs?: number;
  /**
   * Negative control: every Byzantine key runs two production drivers (forks), one per honest
   * group, and the honest groups cannot reach each other during the fault phase. With more
   * than f Byzantine keys each group has a quorum and the checkers MUST find disagreement.
   * Behaviours are ignored (the forks are the misbehaviour); churn is off.
   */
  readonly splitBrain?: boolean;
  /** Collect readable trace lines about this height (what a violation's report shows). */
  readonly traceHeight?: number;
}

export interface DriverCountersSim {
  delivered: number;
  /** Deliveries per envelope kind (proposal, vote, status, ops). */
  deliveredByKind: Record<string, number>;
  lost: number;
  tailDelayed: number;
  reordered: number;
  duplicated: number;
  partitionDropped: number;
  crashes: number;
  restarts: number;
  /** Store writes a crash dropped before their fsync completed. */
  unsyncedLost: number;
  skewedNodes: number;
  byzExtras: number;
  invalidProposals: number;
  amnesiaResets: number;
  silentDropped: number;
  submits: number;
  submitFailures: number;
  /** Churn: the joiner came online / its member.add decided / the leaver's member.remove decided / the leaver stopped. */
  joins: number;
  joinsDecided: number;
  removesDecided: number;
  leaves: number;
  syncRequests: number;
  /** Sums over the production drivers' own counters at the end (the last incarnation of each node). */
  evidence: number;
  gossipFallbacks: number;
  directSent: number;
  caughtUpHeights: number;
  badSignatures: number;
}

export interface DriverSeedResult {
  readonly seed: number;
  readonly traceHash: string;
  readonly violations: Violation[];
  readonly commits: number;
  readonly roundsPerHeight: number;
  readonly maxRound: number;
  readonly simTimeUs: number;
  readonly events: number;
  readonly counters: DriverCountersSim;
  readonly history: History;
  readonly plan: FaultPlan;
  readonly byzantine: readonly { node: number; behaviour: ByzBehaviour }[];
  /** Readable lines about `traceHeight` (empty when not tracing). */
  readonly trace: readonly string[];
}

function validate(o: DriverWorldOptions): void {
  const bad = (m: string): never => {
    throw new SimnetError('ERR_SIMNET_OPTIONS', m);
  };
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 100) bad('nodes must be 1..100');
  if (!Number.isInteger(o.byzantine) || o.byzantine < 0 || o.byzantine >= o.nodes) bad('byzantine must be 0..nodes-1');
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) bad('seed must be an integer in 0..2^32-1');
  if (!Number.isInteger(o.heights) || o.heights < 1) bad('heights must be >= 1');
  for (const f of o.faults) if (!DRIVER_FAULT_KINDS.includes(f)) bad(`unknown fault '${String(f)}' (known: ${DRIVER_FAULT_KINDS.join(', ')})`);
  for (const b of o.behaviours) if (!DRIVER_BYZ_BEHAVIOURS.includes(b)) bad(`unknown Byzantine behaviour '${String(b)}' (known: ${DRIVER_BYZ_BEHAVIOURS.join(', ')})`);
}


/** One seed's simulated cluster of production drivers (see the top of this file). */
class DriverSim implements SimContext, ChurnWorld {
  readonly engine = new Engine<Ev>();
  readonly nodes: SimNode[] = [];
  /** Peer id -> its node(s): one, or a Byzantine key's two forks (split brain). */
  private readonly byPeer = new Map<string, SimNode[]>();
  readonly tracing: { readonly height: number; readonly lines: string[] } | null;
  /** Genesis members (indices 0..n-1); a churn joiner is index n, split-brain forks n.. . */
  readonly n: number;
  readonly linkMedianUs: number[];
  readonly rNet: Prng;
  readonly rByz: Prng;
  readonly honestIdx: number[];
  readonly signed: SignedRecord[] = [];
  readonly counters: DriverCountersSim = {
    delivered: 0, deliveredByKind: {}, lost: 0, tailDelayed: 0, reordered: 0, duplicated: 0, partitionDropped: 0, crashes: 0, restarts: 0, unsyncedLost: 0, skewedNodes: 0,
    byzExtras: 0, invalidProposals: 0, amnesiaResets: 0, silentDropped: 0, submits: 0, submitFailures: 0, joins: 0, joinsDecided: 0, removesDecided: 0, leaves: 0, syncRequests: 0, evidence: 0, gossipFallbacks: 0, directSent: 0, caughtUpHeights: 0, badSignatures: 0,
  };
  readonly plan: FaultPlan;
  readonly byzList: { node: number; behaviour: ByzBehaviour }[] = [];
  readonly decisions: DecisionRecord[] = [];
  liveness: LivenessWindow | null = null;
  /** An honest node decided the liveness window's height (the run goes on until it has: the checker judges that height). */
  private livenessDecided = false;
  /** Honest nodes still to reach the target height. */
  remaining: number;
  readonly rWork: Prng;
  private readonly cut: (from: number, to: number, now: number) => boolean;
  private readonly genesis: { members: { publicKey: Uint8Array; power: number; name: string }[] };
  private opSeq = 0;
  private readonly churn: Churn | null;

  constructor(private readonly o: DriverWorldOptions) {
    const n = o.nodes;
    this.n = n;
    const splitBrain = o.splitBrain === true;
    this.tracing = o.traceHeight === undefined ? null : { height: o.traceHeight, lines: [] };
    const root = new Prng(o.seed >>> 0);
    const rPlan = root.fork('plan');
    this.rNet = root.fork('net');
    this.rByz = root.fork('byz');
    this.rWork = root.fork('work');
    const has = (k: FaultKind): boolean => o.faults.includes(k);
    const churnOn = has('churn') && !splitBrain;
    this.genesis = { members: Array.from({ length: n }, (_, i) => ({ publicKey: identityOf(i).publicKey, power: 1, name: `n${i}` })) };
    const reg0 = genesisRegistry(this.genesis);
    const byzSet = new Set(rPlan.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, o.byzantine));
    // Two honest groups as equal as possible (the split-brain partition cuts between them).
    const honestGenesis = Array.from({ length: n }, (_, i) => i).filter((i) => !byzSet.has(i));
    const groups = new Map<number, number>();
    rPlan.shuffle(honestGenesis).forEach((h, i) => groups.set(h, i % 2));
    const add = (i: number, key: number, honest: boolean, behaviour: ByzBehaviour | null, fork: boolean, group: number, up: boolean): void => {
      const id = identityOf(key);
      const scale = has('skew') ? 0.5 + 1.5 * rPlan.float() : 1;
      if (scale !== 1) this.counters.skewedNodes++;
      const x: SimNode = { idx: i, id, peerId: peerIdFromPublicKey(id.publicKey), honest, behaviour, scale, fork, group, up, left: false, done: false, inc: 0, driver: null, handler: null, answer: null, served: null, signerDurable: null, decidedDurable: new Map(), prevReg: reg0 };
      this.nodes.push(x);
      this.byPeer.set(x.peerId, [...(this.byPeer.get(x.peerId) ?? []), x]);
    };
    for (let i = 0; i < n; i++) {
      const honest = !byzSet.has(i);
      const behaviour = honest ? null : splitBrain ? 'equivocate' : o.behaviours.length === 0 ? null : this.rByz.pick(o.behaviours);
      if (behaviour !== null) this.byzList.push({ node: i, behaviour });
      add(i, i, honest, behaviour, splitBrain && !honest, groups.get(i) ?? 0, true);
    }
    if (churnOn) add(n, n, true, null, false, 0, false); // the joiner: online at plan.churn.joinUs
    if (splitBrain) for (const b of [...byzSet].sort((a, c) => a - c)) add(this.nodes.length, b, false, 'equivocate', true, 1, true); // each key's second fork
    this.honestIdx = this.nodes.filter((x) => x.honest).map((x) => x.idx);
    this.remaining = this.honestIdx.length;
    const N = this.nodes.length;
    this.linkMedianUs = Array.from({ length: N * N }, () => (o.latencyMedianMs ?? 5) * MS * this.rNet.logNormal(1, 0.3));
    const faultPhaseUs = (o.faultPhaseMs ?? 3_000) * MS;
    const groupOf = (i: number): number => this.nodes[i]!.group;
    this.plan = planFaults({ has, splitBrain, n, honestIdx: this.honestIdx, groupOf, faultPhaseUs, churnOn, rPlan });
    const cut = partitionCut(this.plan, splitBrain, (i) => this.nodes[i]!.honest, groupOf);
    // A fork only ever reaches its own group (its twin included would merge the forks).
    this.cut = splitBrain ? (a, b, now) => ((this.nodes[a]!.fork || this.nodes[b]!.fork) && groupOf(a) !== groupOf(b)) || cut(a, b, now) : cut;
    this.churn = churnOn ? new Churn(this, this.plan.churn) : null;
  }

  resolve(peer: string, from: SimNode): SimNode | undefined {
    const list = this.byPeer.get(peer);
    if (list === undefined || list.length < 2) return list?.[0];
    return list.find((y) => y.group === from.group) ?? list[0];
  }

  /** A readable trace line about the traced height (null: an event of the run, such as a crash, always traced). */
  traceLine(height: number | null, line: () => string): void {
    const t = this.tracing;
    if (t !== null && (height === null || height === t.height)) t.lines.push(`${(this.engine.now / MS).toFixed(1)} ms ${line()}`);
  }

  /** Node x no longer counts towards the end of the run (it reached the target height, or left). */
  finish(x: SimNode): void {
    if (!x.honest || x.done) return;
    x.done = true;
    this.remaining--;
  }

  call(x: SimNode, inc: number, delayUs: number, tag: number, fn: () => void): void {
    this.engine.after(delayUs, { k: 'call', node: x.idx, inc, tag, fn });
  }

  linkUp(a: SimNode, b: SimNode): boolean {
    const now = this.engine.now;
    return a.up && b.up && !this.cut(a.idx, b.idx, now) && !this.cut(b.idx, a.idx, now);
  }

  send(from: SimNode, to: SimNode, m: SimSealed): void {
    const { engine, plan, rNet, counters: c } = this;
    const now = engine.now;
    if (this.cut(from.idx, to.idx, now)) {
      c.partitionDropped++;
      return;
    }
    const faulty = now < plan.faultEndUs;
    if (faulty && plan.lossRate > 0 && rNet.chance(plan.lossRate)) {
      c.lost++;
      return;
    }
    let d = rNet.logNormal(this.linkMedianUs[from.idx * this.nodes.length + to.idx]!, 0.5);
    if (faulty && plan.tailProb > 0 && rNet.chance(plan.tailProb)) {
      d *= 10 + 90 * rNet.float();
      c.tailDelayed++;
    }
    if (faulty && plan.reorderProb > 0 && rNet.chance(plan.reorderProb)) {
      d += rNet.float() * 20 * MS;
      c.reordered++;
    }
    engine.after(d, { k: 'deliver', to: to.idx, from: from.idx, m });
    if (faulty && plan.duplicateProb > 0 && rNet.chance(plan.duplicateProb)) {
      c.duplicated++;
      engine.after(d + rNet.float() * 2000 * MS, { k: 'deliver', to: to.idx, from: from.idx, m });
    }
  }

  /** Open and start the production driver of node x's current incarnation over the simulated ports. */
  async boot(x: SimNode): Promise<void> {
    const inc = x.inc;
    const testOnly = byzantineHooks(this, x);
    const d = createDriver(
      { identity: x.id, cluster: SIM_CLUSTER, genesis: this.genesis, logger: nullLogger, now: () => this.engine.now / MS, statusIntervalMs: STATUS_INTERVAL_MS, syncTimeoutMs: SYNC_TIMEOUT_MS, ...(testOnly === undefined ? {} : { testOnly }) },
      simPorts(this, x, inc),
    );
    x.driver = d;
    await d.open();
    if (x.inc !== inc) return;
    x.prevReg = d.registry();
    d.onDecided((e) => {
      if (x.inc !== inc) return;
      // Validity judged here, independently of the driver, against the node's registry before the height.
      const valid = validateBatch(x.prevReg, e.height, encodeBatch(e.ops), { decided: true }).ok;
      x.prevReg = d.registry();
      this.decisions.push({ node: x.idx, height: e.height, round: e.round, valueHex: e.valueId, valid, atUs: this.engine.now, registryHash: e.registryHash });
      const t = this.engine.trace;
      t.u32(0xdec1de);
      t.u32(x.idx);
      t.num(e.height);
      t.str(e.registryHash.slice(0, 8));
      this.traceLine(e.height, () => `n${x.idx}${x.honest ? '' : ' (byz)'} decides r${e.round} ${e.valueId.slice(0, 12)} ops=${e.ops.map((op) => op.kind).join(',') || '-'}${valid ? '' : ' INVALID'}`);
      if (e.height === this.o.heights) this.finish(x);
      if (x.honest && this.liveness !== null && e.height >= this.liveness.heightAtStable) this.livenessDecided = true;
      this.churn?.decided(x, e, d.registry());
    });
    await d.startOn(simTransport(this, x, inc));
  }

  /** Abrupt stop: the incarnation is abandoned mid-flight (pending writes never land, timers never fire). */
  crash(x: SimNode): void {
    this.traceLine(null, () => `n${x.idx} stops`);
    x.up = false;
    x.inc++;
    x.driver = null;
    x.handler = null;
    x.answer = null;
    x.served = null;
  }

  /** Amnesia (Byzantine): the node loses its signer record (lock, last signature) and restarts at once. */
  private amnesia(x: SimNode): void {
    this.engine.after((200 + this.rByz.int(800)) * MS, { k: 'call', node: -1, inc: 0, tag: TAG_CRASH, fn: () => this.amnesia(x) });
    if (!x.up) return;
    this.crash(x);
    x.signerDurable = null;
    x.up = true;
    this.counters.amnesiaResets++;
    void this.boot(x);
  }

  /** Honest nodes running a driver now (the clients' choice). */
  upHonest(): SimNode[] {
    return this.honestIdx.map((i) => this.nodes[i]!).filter((x) => x.up && !x.left && x.driver !== null);
  }

  /** The seeded client: one op to a random honest node every workIntervalMs. */
  private work(): void {
    this.engine.after((this.o.workIntervalMs ?? WORK_INTERVAL_MS_DEFAULT) * MS, { k: 'call', node: -1, inc: 0, tag: TAG_WORK, fn: () => this.work() });
    const up = this.upHonest();
    if (up.length === 0) return;
    const x = this.rWork.pick(up);
    const k = this.opSeq++;
    const op: PatternOp = { kind: 'model.alias', alias: `a${k % ALIAS_SLOTS}`, model: `m${k}` };
    this.counters.submits++;
    x.driver!.submit([op], { timeoutMs: 60_000 }).catch(() => void this.counters.submitFailures++);
  }

  private handle(ev: Ev): void {
    const t = this.engine.trace;
    if (ev.k === 'deliver') {
      const y = this.nodes[ev.to]!;
      if (!y.up || y.handler === null) return;
      this.counters.delivered++;
      this.counters.deliveredByKind[ev.m.kind] = (this.counters.deliveredByKind[ev.m.kind] ?? 0) + 1;
      t.u32(ev.from * 131 + ev.to);
      t.u32(ev.m.mark);
      y.handler({ signerId: this.nodes[ev.from]!.peerId, kind: ev.m.kind, body: ev.m.body });
      return;
    }
    if (ev.node >= 0) {
      const x = this.nodes[ev.node]!;
      if (!x.up || x.inc !== ev.inc) {
        if (ev.tag === TAG_FSYNC) this.counters.unsyncedLost++;
        return;
      }
    }
    t.u32(ev.tag);
    ev.fn();
  }

  /** The scheduled faults (crash and restart), the liveness window, amnesia and the workload. */
  private schedule(): void {
    const cr = this.plan.crash;
    if (cr !== null) {
      const x = this.nodes[cr.node]!;
      this.engine.at(cr.atUs, { k: 'call', node: -1, inc: 0, tag: TAG_CRASH, fn: () => {
        this.crash(x);
        this.counters.crashes++;
      } });
      this.engine.at(cr.restartUs, { k: 'call', node: -1, inc: 0, tag: TAG_CRASH, fn: () => {
        this.traceLine(null, () => `n${x.idx} restarts`);
        x.up = true;
        this.counters.restarts++;
        void this.boot(x);
      } });
    }
    this.engine.at(this.plan.faultEndUs, { k: 'call', node: -1, inc: 0, tag: TAG_CRASH, fn: () => {
      const st = this.honestIdx.flatMap((i) => { const s = this.nodes[i]!.driver?.status(); return s === undefined ? [] : [s]; });
      const heightAtStable = Math.max(...st.map((s) => s.height));
      this.liveness = { stableAtUs: this.plan.faultEndUs, heightAtStable, maxRoundAtStable: Math.max(0, ...st.filter((s) => s.height === heightAtStable).map((s) => s.round)) };
    } });
    this.churn?.schedule();
    for (const x of this.nodes) if (x.behaviour === 'amnesia') this.engine.after((200 + this.rByz.int(800)) * MS, { k: 'call', node: -1, inc: 0, tag: TAG_CRASH, fn: () => this.amnesia(x) });
    this.work();
  }

  async run(): Promise<void> {
    for (const x of this.nodes) if (x.up) await this.boot(x);
    this.schedule();
    const untilUs = this.plan.faultEndUs + (this.o.heights * 2_000 + 60_000) * MS;
    const turn = Promise.resolve();
    const drain = async (): Promise<void> => {
      for (let i = 0; i < DRAIN_TURNS; i++) await turn;
    };
    await drain();
    // Until every honest node is at the target AND the height the network stabilised in is
    // decided (the liveness checker judges it, even when the target was reached before).
    while (this.remaining > 0 || !this.livenessDecided) {
      const before = this.engine.eventsProcessed;
      this.engine.run(untilUs, (ev) => this.handle(ev), () => true); // exactly one event
      if (this.engine.eventsProcessed === before) break; // nothing left before the time bound
      await drain();
    }
  }

  /** Each node's durable decided log at the end (value ids by height), as the checkers read it. */
  finalLogs(): string[][] {
    return this.nodes.map((x) => {
      const log: string[] = [];
      for (let h = 1; ; h++) {
        const b = x.decidedDurable.get(h);
        if (b === undefined) return log;
        const d = decodeDecision(h, b);
        log.push(d.ok ? d.d.certificate.valueId : `corrupt:${d.reason}`);
      }
    });
  }

  result(): DriverSeedResult {
    const o = this.o;
    const finalLogs = this.finalLogs();
    const history: History = { nodes: this.nodes.length, f: Math.floor((o.nodes - 1) / 3), honest: this.nodes.map((x) => x.honest), left: this.nodes.map((x) => x.left), decisions: this.decisions, signed: this.signed, finalLogs, targetHeight: o.heights, liveness: this.liveness };
    const c = this.counters;
    for (const x of this.nodes) {
      const d = x.driver;
      if (d === null) continue;
      const k = d.counters();
      c.evidence += d.evidence().length;
      c.gossipFallbacks += k.gossipFallbacks;
      c.directSent += k.directSent;
      c.badSignatures += k.badSignatures;
      c.caughtUpHeights += d.status().caughtUpHeights;
    }
    const firstOf = new Map<number, DecisionRecord>();
    for (const d of this.decisions) if (this.nodes[d.node]!.honest && !firstOf.has(d.height)) firstOf.set(d.height, d);
    const rounds = [...firstOf.values()].map((d) => d.round);
    return {
      seed: o.seed,
      traceHash: this.engine.trace.hex(),
      violations: checkAll(history),
      commits: Math.min(...this.honestIdx.filter((i) => !this.nodes[i]!.left).map((i) => finalLogs[i]!.length)),
      roundsPerHeight: rounds.length === 0 ? 0 : rounds.reduce((a, r) => a + r + 1, 0) / rounds.length,
      maxRound: Math.max(0, ...rounds),
      simTimeUs: this.engine.now,
      events: this.engine.eventsProcessed,
      counters: c,
      history,
      plan: this.plan,
      byzantine: this.byzList,
      trace: this.tracing?.lines ?? [],
    };
  }
}

/** Runs one seed over the production driver until every honest node decided `heights` (or the time bound). */
export async function runDriverSeed(o: DriverWorldOptions): Promise<DriverSeedResult> {
  validate(o);
  const sim = new DriverSim(o);
  await sim.run();
  return sim.result();
}
