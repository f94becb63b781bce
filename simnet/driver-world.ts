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
import { toHex } from '../base/hex.js';
import { Prng } from '../base/prng.js';
import { voteDigest } from '../consensus/core.js';
import { encodeBatch, type PatternOp } from '../consensus/patterns.js';
import { genesisRegistry, validateBatch, type Registry } from '../consensus/registry.js';
import type { ConsensusMessage, SignedVote } from '../consensus/types.js';
import { blake3 } from '../crypto/blake3.js';
import { peerIdFromPublicKey, type Identity } from '../crypto/keys.js';
import type { AuditLine } from '../node/consensus/audit-log.js';
import { decodeDecision, encodeDecision, type DecisionInput } from '../node/consensus/decided-log.js';
import { createDriver, type Driver } from '../node/consensus/driver.js';
import type { ConsensusTransport, DriverPorts, InboundEnvelope, Sealed, TimerHandle, Timers } from '../node/consensus/ports.js';
import type { SignerState } from '../node/consensus/signer-file.js';
import { decodeSyncRequest, encodeSyncRequest } from '../node/consensus/sync.js';
import { nullLogger } from '../node/log.js';
import { checkAll } from './checkers.js';
import type { DecisionRecord, History, LivenessWindow, SignedRecord, Violation } from './checkers.js';
import { Engine } from './engine.js';
import { SimnetError } from './errors.js';
import { partitionCut, planFaults, type FaultPlan } from './faults.js';
import { cachedSign, cachedVerify, identityOf, SIM_CLUSTER } from './keys.js';
import type { ByzBehaviour, FaultKind } from './world.js';

const MS = 1000;
/** A simulated fsync: the window in which a crash loses a write (an SSD's ~0.2 ms). */
const FSYNC_US = 200;
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
/** Byzantine behaviours this world models through the driver's test-only hook or the transport. */
export const DRIVER_BYZ_BEHAVIOURS: readonly ByzBehaviour[] = ['equivocate', 'forge', 'future-round', 'silent'];
/** Faults this world models (churn needs the joiner's admission path: not yet bound). */
export const DRIVER_FAULT_KINDS: readonly FaultKind[] = ['loss', 'tail', 'reorder', 'duplicate', 'partition', 'crash', 'skew'];

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
  silentDropped: number;
  submits: number;
  submitFailures: number;
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
}

type Ev = { readonly k: 'deliver'; readonly to: number; readonly from: number; readonly m: SimSealed } | { readonly k: 'call'; readonly node: number; readonly inc: number; readonly tag: number; readonly fn: () => void };

interface SimSealed extends Sealed {
  readonly body: unknown;
  /** Trace digest of the body (the last bytes of a signed message, or 0). */
  readonly mark: number;
}

interface SimNode {
  readonly idx: number;
  readonly id: Identity;
  readonly peerId: string;
  readonly honest: boolean;
  readonly behaviour: ByzBehaviour | null;
  readonly scale: number;
  up: boolean;
  inc: number;
  driver: Driver | null;
  handler: ((e: InboundEnvelope) => void) | null;
  answer: ((req: NonNullable<ReturnType<typeof decodeSyncRequest>>) => Promise<Uint8Array>) | null;
  served: ((ok: boolean, remote: string) => void) | null;
  signerDurable: SignerState | null;
  readonly decidedDurable: Map<number, Uint8Array>;
  prevReg: Registry;
  decided: number;
}

const TAG_TIMER = 1;
const TAG_FSYNC = 2;
const TAG_SYNC = 3;
const TAG_CRASH = 4;
const TAG_WORK = 5;

function validate(o: DriverWorldOptions): void {
  const bad = (m: string): never => {
    throw new SimnetError('ERR_SIMNET_OPTIONS', m);
  };
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 100) bad('nodes must be 1..100');
  if (!Number.isInteger(o.byzantine) || o.byzantine < 0 || o.byzantine >= o.nodes) bad('byzantine must be 0..nodes-1');
  if (!Number.isInteger(o.heights) || o.heights < 1) bad('heights must be >= 1');
  for (const f of o.faults) if (!DRIVER_FAULT_KINDS.includes(f)) bad(`fault '${f}' is not modelled over the production driver yet (modelled: ${DRIVER_FAULT_KINDS.join(', ')})`);
  for (const b of o.behaviours) if (!DRIVER_BYZ_BEHAVIOURS.includes(b)) bad(`Byzantine behaviour '${b}' is not modelled over the production driver yet (modelled: ${DRIVER_BYZ_BEHAVIOURS.join(', ')})`);
}

/** Signature of a message as a trace mark (signatures are unique enough). */
function markOf(body: unknown): number {
  if (!(body instanceof Uint8Array) || body.length < 4) return 0;
  const b = body;
  const i = b.length - 4;
  return ((b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24)) >>> 0;
}

/** Runs one seed over the production driver until every honest node decided `heights` (or the time bound). */
export async function runDriverSeed(o: DriverWorldOptions): Promise<DriverSeedResult> {
  validate(o);
  const n = o.nodes;
  const f = Math.floor((n - 1) / 3);
  const root = new Prng(o.seed >>> 0);
  const rPlan = root.fork('plan');
  const rNet = root.fork('net');
  const rByz = root.fork('byz');
  const rWork = root.fork('work');
  const has = (k: FaultKind): boolean => o.faults.includes(k);
  const engine = new Engine<Ev>();
  const trace = engine.trace;
  const c: DriverCountersSim = {
    delivered: 0, deliveredByKind: {}, lost: 0, tailDelayed: 0, reordered: 0, duplicated: 0, partitionDropped: 0, crashes: 0, restarts: 0, unsyncedLost: 0, skewedNodes: 0,
    byzExtras: 0, silentDropped: 0, submits: 0, submitFailures: 0, syncRequests: 0, evidence: 0, gossipFallbacks: 0, directSent: 0, caughtUpHeights: 0, badSignatures: 0,
  };
  const genesis = { members: Array.from({ length: n }, (_, i) => ({ publicKey: identityOf(i).publicKey, power: 1, name: `n${i}` })) };
  const reg0 = genesisRegistry(genesis);

  const order = rPlan.shuffle(Array.from({ length: n }, (_, i) => i));
  const byzSet = new Set(order.slice(0, o.byzantine));
  const byzList: { node: number; behaviour: ByzBehaviour }[] = [];
  const nodes: SimNode[] = [];
  for (let i = 0; i < n; i++) {
    const id = identityOf(i);
    const honest = !byzSet.has(i);
    const behaviour = honest || o.behaviours.length === 0 ? null : rByz.pick(o.behaviours);
    if (behaviour !== null) byzList.push({ node: i, behaviour });
    const scale = has('skew') ? 0.5 + 1.5 * rPlan.float() : 1;
    if (scale !== 1) c.skewedNodes++;
    nodes.push({ idx: i, id, peerId: peerIdFromPublicKey(id.publicKey), honest, behaviour, scale, up: true, inc: 0, driver: null, handler: null, answer: null, served: null, signerDurable: null, decidedDurable: new Map(), prevReg: reg0, decided: 0 });
  }
  const byPeer = new Map(nodes.map((x) => [x.peerId, x]));
  const honestIdx = nodes.filter((x) => x.honest).map((x) => x.idx);
  const groups = new Map<number, number>();
  rPlan.shuffle(honestIdx).forEach((h, i) => groups.set(h, i % 2));
  const linkMedianUs = Array.from({ length: n * n }, () => (o.latencyMedianMs ?? 5) * MS * rNet.logNormal(1, 0.3));
  const faultPhaseUs = (o.faultPhaseMs ?? 3_000) * MS;
  const plan = planFaults({ has, splitBrain: false, n, honestIdx, groupOf: (h) => groups.get(h) ?? 0, faultPhaseUs, churnOn: false, rPlan });
  const cut = partitionCut(plan, false, (i) => nodes[i]!.honest, (i) => groups.get(i) ?? 0);
  const stableUs = plan.faultEndUs;

  const decisions: DecisionRecord[] = [];
  const signed: SignedRecord[] = [];
  let liveness: LivenessWindow | null = null;
  let remaining = honestIdx.length;

  const call = (x: SimNode, inc: number, delayUs: number, tag: number, fn: () => void): void => engine.after(delayUs, { k: 'call', node: x.idx, inc, tag, fn });
  /** A direct channel needs a connection both ways. */
  const linkUp = (a: SimNode, b: SimNode, now: number): boolean => a.up && b.up && !cut(a.idx, b.idx, now) && !cut(b.idx, a.idx, now);

  const send = (from: SimNode, to: SimNode, m: SimSealed): void => {
    const now = engine.now;
    if (cut(from.idx, to.idx, now)) {
      c.partitionDropped++;
      return;
    }
    const faulty = now < stableUs;
    if (faulty && plan.lossRate > 0 && rNet.chance(plan.lossRate)) {
      c.lost++;
      return;
    }
    let d = rNet.logNormal(linkMedianUs[from.idx * n + to.idx]!, 0.5);
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
  };

  const timersFor = (x: SimNode, inc: number): Timers => ({
    after(ms: number, fn: () => void): TimerHandle {
      const h = { cancelled: false };
      call(x, inc, ms * MS * x.scale, TAG_TIMER, () => {
        if (!h.cancelled) fn();
      });
      return { cancel: () => void (h.cancelled = true) };
    },
    every(ms: number, fn: () => void): TimerHandle {
      const h = { cancelled: false };
      const tick = (): void => {
        if (h.cancelled) return;
        call(x, inc, ms * MS * x.scale, TAG_TIMER, tick);
        fn();
      };
      call(x, inc, ms * MS * x.scale * rNet.float(), TAG_TIMER, tick); // nodes' periods out of phase
      return { cancel: () => void (h.cancelled = true) };
    },
    soon(fn: () => void): void {
      call(x, inc, 0, TAG_TIMER, fn);
    },
  });

  /** A durable write: it lands when its fsync completes, unless the node crashed first. */
  const synced = (x: SimNode, inc: number, land: () => void): Promise<void> =>
    new Promise<void>((resolve) => {
      call(x, inc, FSYNC_US, TAG_FSYNC, () => {
        land();
        resolve();
      });
    });

  const portsFor = (x: SimNode, inc: number): DriverPorts => ({
    now: () => engine.now / MS,
    timers: timersFor(x, inc),
    signer: {
      open: () => Promise.resolve(),
      load: () => Promise.resolve(x.signerDurable === null ? null : { record: x.signerDurable.record, own: [...x.signerDurable.own] }),
      write: (s) => {
        const copy = { record: s.record, own: [...s.own] };
        return synced(x, inc, () => void (x.signerDurable = copy));
      },
      close: () => Promise.resolve(),
    },
    decided: {
      put: (d: DecisionInput) => {
        const bytes = encodeDecision(d);
        return synced(x, inc, () => void x.decidedDurable.set(d.height, bytes));
      },
      putMany: (ds: readonly DecisionInput[]) => {
        const all = ds.map((d) => [d.height, encodeDecision(d)] as const);
        return synced(x, inc, () => {
          for (const [h, b] of all) x.decidedDurable.set(h, b);
        });
      },
      // eslint-disable-next-line @typescript-eslint/require-await -- an in-memory log has nothing to wait for; the port is async
      raw: async function* (from: number, limit: number) {
        for (let h = Math.max(1, from), k = 0; k < limit; h++, k++) {
          const bytes = x.decidedDurable.get(h);
          if (bytes === undefined) return;
          yield { height: h, bytes };
        }
      },
    },
    audit: {
      open: () => Promise.resolve(),
      append: (lines: readonly AuditLine[]) => {
        if (x.honest) for (const l of lines) signed.push({ node: x.idx, kind: l.type, height: l.height, round: l.round, payload: l.valueId ?? 'nil' });
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    },
    decidedWhere: `simnet node ${x.idx}`,
    sign: (d) => cachedSign(x.id, d),
    verify: cachedVerify,
  });

  const transportFor = (x: SimNode, inc: number): ConsensusTransport => {
    const live = (): boolean => x.up && x.inc === inc;
    const others = (): SimNode[] => nodes.filter((y) => y !== x && linkUp(x, y, engine.now));
    const out = (y: SimNode, m: SimSealed): void => {
      if (x.behaviour === 'silent') c.silentDropped++;
      else send(x, y, m);
    };
    return {
      seal: (kind, body): SimSealed => ({ kind, body, mark: markOf(body) }),
      sendDirect(m, to) {
        const sent: string[] = [];
        const missing: string[] = [];
        if (!live()) return { sent, missing: [...to] };
        for (const p of to) {
          const y = byPeer.get(p);
          if (y === undefined || !linkUp(x, y, engine.now)) missing.push(p);
          else {
            out(y, m as SimSealed);
            sent.push(p);
          }
        }
        return { sent, missing };
      },
      publish(m) {
        if (live()) for (const y of nodes) if (y !== x && y.up) out(y, m as SimSealed);
        return Promise.resolve();
      },
      directPeers: () => (live() ? others().map((y) => y.peerId) : []),
      connectedPeers: () => (live() ? others().map((y) => y.peerId) : []),
      onEnvelope(h) {
        x.handler = h;
        return () => {
          if (x.inc === inc) x.handler = null;
        };
      },
      serveSync(answer, served) {
        x.answer = answer;
        x.served = served;
        return Promise.resolve();
      },
      requestSync(peer, req, timeoutMs) {
        c.syncRequests++;
        return new Promise<Uint8Array>((resolve, reject) => {
          let settled = false;
          call(x, inc, timeoutMs * MS * x.scale, TAG_SYNC, () => {
            if (settled) return;
            settled = true;
            reject(new SimnetError('ERR_SIMNET_SYNC_TIMEOUT', `no sync reply from ${peer} within ${timeoutMs} ms`));
          });
          const y = byPeer.get(peer);
          if (y === undefined || !linkUp(x, y, engine.now) || x.behaviour === 'silent') return;
          const bytes = encodeSyncRequest(req);
          const there = linkMedianUs[x.idx * n + y.idx]!;
          call(y, y.inc, there, TAG_SYNC, () => {
            const r = decodeSyncRequest(bytes);
            const answer = y.answer;
            if (r === null || answer === null || y.behaviour === 'silent') return;
            const yInc = y.inc;
            void answer(r).then((resp) => {
              if (!y.up || y.inc !== yInc) return;
              y.served?.(true, x.peerId);
              if (!linkUp(y, x, engine.now)) return;
              call(x, inc, linkMedianUs[y.idx * n + x.idx]!, TAG_SYNC, () => {
                if (settled) return;
                settled = true;
                resolve(resp);
              });
            });
          });
        });
      },
      close: () => Promise.resolve(),
    };
  };

  /** Byzantine extras through the driver's test-only hook, signed with the Byzantine node's own key. */
  const extrasFor = (x: SimNode): ((m: ConsensusMessage) => readonly ConsensusMessage[]) | undefined => {
    if (x.behaviour === null || x.behaviour === 'silent') return undefined;
    return (m) => {
      if (m.type !== 'vote') return [];
      const v = m.vote.vote;
      const signedVote = (vote: SignedVote['vote']): ConsensusMessage => ({ type: 'vote', vote: { vote, signer: x.id.publicKey, signature: cachedSign(x.id, voteDigest(SIM_CLUSTER, vote)) } });
      let extra: ConsensusMessage[] = [];
      if (x.behaviour === 'equivocate') {
        // The same vote for the other side (nil <-> a made-up value): a conflicting, validly signed vote.
        extra = [signedVote({ ...v, valueId: v.valueId === null ? toHex(blake3(new Uint8Array([v.height & 0xff, v.round & 0xff, 0x45]))) : null })];
      } else if (x.behaviour === 'forge') {
        // Impersonation (our signature under an honest signer) and a changed value under the old signature.
        const victim = nodes[rByz.pick(honestIdx.length > 0 ? honestIdx : [x.idx])]!;
        extra = [
          { type: 'vote', vote: { vote: v, signer: victim.id.publicKey, signature: m.vote.signature } },
          { type: 'vote', vote: { vote: { ...v, valueId: toHex(blake3(new Uint8Array([rByz.int(256), v.round & 0xff]))) }, signer: m.vote.signer, signature: m.vote.signature } },
        ];
      } else if (x.behaviour === 'future-round') {
        const round = v.round + 1 + rByz.int(3);
        extra = (['prevote', 'precommit'] as const).map((type) => signedVote({ type, height: v.height, round, valueId: rByz.chance(0.5) ? null : v.valueId }));
      }
      c.byzExtras += extra.length;
      return extra;
    };
  };

  const boot = async (x: SimNode): Promise<void> => {
    const inc = x.inc;
    const extraBroadcasts = extrasFor(x);
    const d = createDriver(
      {
        identity: x.id,
        cluster: SIM_CLUSTER,
        genesis,
        logger: nullLogger,
        now: () => engine.now / MS,
        statusIntervalMs: STATUS_INTERVAL_MS,
        syncTimeoutMs: SYNC_TIMEOUT_MS,
        ...(extraBroadcasts === undefined ? {} : { testOnly: { extraBroadcasts } }),
      },
      portsFor(x, inc),
    );
    x.driver = d;
    await d.open();
    if (x.inc !== inc) return;
    x.prevReg = d.registry();
    x.decided = x.prevReg.height;
    d.onDecided((e) => {
      if (x.inc !== inc) return;
      const value = encodeBatch(e.ops);
      const valid = validateBatch(x.prevReg, e.height, value, { decided: true }).ok;
      x.prevReg = d.registry();
      x.decided = e.height;
      decisions.push({ node: x.idx, height: e.height, round: e.round, valueHex: e.valueId, valid, atUs: engine.now, registryHash: e.registryHash });
      trace.u32(0xdec1de);
      trace.u32(x.idx);
      trace.num(e.height);
      trace.str(e.registryHash.slice(0, 8));
      if (x.honest && e.height === o.heights) remaining--;
    });
    await d.startOn(transportFor(x, inc));
  };

  const crash = (x: SimNode): void => {
    x.up = false;
    x.inc++;
    x.driver = null; // abandoned mid-flight: its pending writes never land, its timers never fire
    x.handler = null;
    x.answer = null;
    x.served = null;
    c.crashes++;
  };

  let opSeq = 0;
  const work = (): void => {
    engine.after((o.workIntervalMs ?? WORK_INTERVAL_MS_DEFAULT) * MS, { k: 'call', node: -1, inc: 0, tag: TAG_WORK, fn: work });
    const up = honestIdx.map((i) => nodes[i]!).filter((x) => x.up && x.driver !== null);
    if (up.length === 0) return;
    const x = rWork.pick(up);
    const k = opSeq++;
    const op: PatternOp = { kind: 'model.alias', alias: `a${k % ALIAS_SLOTS}`, model: `m${k}` };
    c.submits++;
    x.driver!.submit([op], { timeoutMs: 60_000 }).catch(() => void c.submitFailures++);
  };

  const handle = (ev: Ev): void => {
    if (ev.k === 'deliver') {
      const y = nodes[ev.to]!;
      if (!y.up || y.handler === null) return;
      c.delivered++;
      c.deliveredByKind[ev.m.kind] = (c.deliveredByKind[ev.m.kind] ?? 0) + 1;
      trace.u32(ev.from * 131 + ev.to);
      trace.u32(ev.m.mark);
      y.handler({ signerId: nodes[ev.from]!.peerId, kind: ev.m.kind, body: ev.m.body });
      return;
    }
    if (ev.node >= 0) {
      const x = nodes[ev.node]!;
      if (ev.tag !== TAG_CRASH && (!x.up || x.inc !== ev.inc)) {
        if (ev.tag === TAG_FSYNC) c.unsyncedLost++;
        return;
      }
    }
    trace.u32(ev.tag);
    ev.fn();
  };

  // --- run
  for (const x of nodes) await boot(x);
  if (plan.crash !== null) {
    const cr = plan.crash;
    const x = nodes[cr.node]!;
    engine.at(cr.atUs, { k: 'call', node: x.idx, inc: 0, tag: TAG_CRASH, fn: () => crash(x) });
    engine.at(cr.restartUs, {
      k: 'call', node: x.idx, inc: 0, tag: TAG_CRASH, fn: () => {
        x.up = true;
        c.restarts++;
        void boot(x);
      },
    });
  }
  engine.at(stableUs, {
    k: 'call', node: -1, inc: 0, tag: TAG_CRASH, fn: () => {
      const st = honestIdx.map((i) => nodes[i]!.driver?.status()).filter((s) => s !== undefined);
      const heightAtStable = Math.max(...st.map((s) => s.height));
      liveness = { stableAtUs: stableUs, heightAtStable, maxRoundAtStable: Math.max(0, ...st.filter((s) => s.height === heightAtStable).map((s) => s.round)) };
    },
  });
  work();
  const untilUs = stableUs + (o.heights * 2_000 + 60_000) * MS;
  const drain = async (): Promise<void> => {
    const turn = Promise.resolve();
    for (let i = 0; i < DRAIN_TURNS; i++) await turn;
  };
  await drain();
  while (remaining > 0) {
    const before = engine.eventsProcessed;
    engine.run(untilUs, handle, () => true); // exactly one event
    if (engine.eventsProcessed === before) break; // nothing left before the time bound
    await drain();
  }

  // --- history and checks
  const finalLogs = nodes.map((x) => {
    const log: string[] = [];
    for (let h = 1; ; h++) {
      const b = x.decidedDurable.get(h);
      if (b === undefined) break;
      const d = decodeDecision(h, b);
      log.push(d.ok ? d.d.certificate.valueId : `corrupt:${d.reason}`);
    }
    return log;
  });
  const history: History = { nodes: n, f, honest: nodes.map((x) => x.honest), decisions, signed, finalLogs, targetHeight: o.heights, liveness };
  for (const x of nodes) {
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
  for (const d of decisions) if (nodes[d.node]!.honest && !firstOf.has(d.height)) firstOf.set(d.height, d);
  const rounds = [...firstOf.values()].map((d) => d.round);
  const commits = Math.min(...honestIdx.map((i) => finalLogs[i]!.length));
  return {
    seed: o.seed,
    traceHash: trace.hex(),
    violations: checkAll(history),
    commits,
    roundsPerHeight: rounds.length === 0 ? 0 : rounds.reduce((a, r) => a + r + 1, 0) / rounds.length,
    maxRound: Math.max(0, ...rounds),
    simTimeUs: engine.now,
    events: engine.eventsProcessed,
    counters: c,
    history,
    plan,
    byzantine: byzList,
  };
}
