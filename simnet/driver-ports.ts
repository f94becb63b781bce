/**
 * The production driver's ports (node/consensus/ports.ts) bound to the simulator: the engine's
 * virtual timers, a simulated wire (direct channels over live links, gossip flood, catch-up
 * through the peer's real `answer()` and the real sync codec), crashable in-memory stores (a
 * write lands only when its simulated fsync completes) and the Byzantine test-only hooks.
 * Used by driver-world.ts, which owns the engine, the network model and the nodes.
 */
import { toHex } from '../base/hex.js';
import type { Prng } from '../base/prng.js';
import { voteDigest } from '../consensus/core.js';
import { encodeBatch } from '../consensus/patterns.js';
import type { Registry } from '../consensus/registry.js';
import type { ConsensusMessage, SignedVote } from '../consensus/types.js';
import { blake3 } from '../crypto/blake3.js';
import type { Identity } from '../crypto/keys.js';
import type { AuditLine } from '../node/consensus/audit-log.js';
import { encodeDecision, type DecisionInput } from '../node/consensus/decided-log.js';
import type { Driver } from '../node/consensus/driver.js';
import type { ConsensusTransport, DriverPorts, InboundEnvelope, Sealed, TestOnlyHooks, TimerHandle, Timers } from '../node/consensus/ports.js';
import type { SignerState } from '../node/consensus/signer-file.js';
import { decodeSyncRequest, encodeSyncRequest, type SyncRequest } from '../node/consensus/sync.js';
import type { SignedRecord } from './checkers.js';
import type { Engine } from './engine.js';
import { SimnetError } from './errors.js';
import { cachedSign, cachedVerify, SIM_CLUSTER } from './keys.js';
import type { ByzBehaviour } from './faults.js';

export const MS = 1000;
/** A simulated fsync: the window in which a crash loses a write (an SSD's ~0.2 ms). */
const FSYNC_US = 200;

export const TAG_TIMER = 1;
export const TAG_FSYNC = 2;
export const TAG_SYNC = 3;
export const TAG_CRASH = 4;
export const TAG_WORK = 5;

export interface SimSealed extends Sealed {
  readonly body: unknown;
  /** Trace digest of the body (the last bytes of a signed message, or 0). */
  readonly mark: number;
}

export type Ev = { readonly k: 'deliver'; readonly to: number; readonly from: number; readonly m: SimSealed } | { readonly k: 'call'; readonly node: number; readonly inc: number; readonly tag: number; readonly fn: () => void };

export interface SimNode {
  readonly idx: number;
  readonly id: Identity;
  readonly peerId: string;
  readonly honest: boolean;
  readonly behaviour: ByzBehaviour | null;
  readonly scale: number;
  /**
   * Split-brain negative control: a Byzantine key runs one production driver per honest group
   * (two SimNodes with one identity); each fork only ever reaches its own group.
   */
  readonly fork: boolean;
  /** Honest group (0 or 1) the split-brain partition cuts along; a fork's audience. */
  readonly group: number;
  up: boolean;
  /** Removed from the cluster by churn and stopped for good (its log ends there). */
  left: boolean;
  /** Reached the target height (or left): no longer waited for. */
  done: boolean;
  /** Incarnation: bumped by a crash, so the old incarnation's timers, writes and deliveries are discarded. */
  inc: number;
  driver: Driver | null;
  handler: ((e: InboundEnvelope) => void) | null;
  answer: ((req: SyncRequest) => Promise<Uint8Array>) | null;
  served: ((ok: boolean, remote: string) => void) | null;
  signerDurable: SignerState | null;
  readonly decidedDurable: Map<number, Uint8Array>;
  prevReg: Registry;
}

/** What the port bindings need from the simulated world. */
export interface SimContext {
  readonly engine: Engine<Ev>;
  readonly nodes: readonly SimNode[];
  /** The node a message from `from` to `peer` reaches (one per peer id, except split-brain forks: the sender's group's). */
  resolve(peer: string, from: SimNode): SimNode | undefined;
  /** Readable trace lines about one height (a violation's replay), or null when not tracing. */
  readonly tracing: { readonly height: number; readonly lines: string[] } | null;
  readonly linkMedianUs: readonly number[];
  readonly rNet: Prng;
  readonly rByz: Prng;
  readonly honestIdx: readonly number[];
  readonly signed: SignedRecord[];
  readonly counters: { syncRequests: number; silentDropped: number; byzExtras: number; invalidProposals: number };
  call(x: SimNode, inc: number, delayUs: number, tag: number, fn: () => void): void;
  /** A direct channel needs a connection both ways. */
  linkUp(a: SimNode, b: SimNode): boolean;
  /** One message on the simulated network (partition, loss, latency, duplication). */
  send(from: SimNode, to: SimNode, m: SimSealed): void;
}

/** Signature of a message as a trace mark (signatures are unique enough). */
function markOf(body: unknown): number {
  if (!(body instanceof Uint8Array) || body.length < 4) return 0;
  const i = body.length - 4;
  return ((body[i] as number) | ((body[i + 1] as number) << 8) | ((body[i + 2] as number) << 16) | ((body[i + 3] as number) << 24)) >>> 0;
}

export function simTimers(sim: SimContext, x: SimNode, inc: number): Timers {
  return {
    after(ms: number, fn: () => void): TimerHandle {
      const h = { cancelled: false };
      sim.call(x, inc, ms * MS * x.scale, TAG_TIMER, () => {
        if (!h.cancelled) fn();
      });
      return { cancel: () => void (h.cancelled = true) };
    },
    every(ms: number, fn: () => void): TimerHandle {
      const h = { cancelled: false };
      const tick = (): void => {
        if (h.cancelled) return;
        sim.call(x, inc, ms * MS * x.scale, TAG_TIMER, tick);
        fn();
      };
      sim.call(x, inc, ms * MS * x.scale * sim.rNet.float(), TAG_TIMER, tick); // nodes' periods out of phase
      return { cancel: () => void (h.cancelled = true) };
    },
    soon(fn: () => void): void {
      sim.call(x, inc, 0, TAG_TIMER, fn);
    },
  };
}

/** A durable write: it lands when its fsync completes, unless the node crashed first. */
function synced(sim: SimContext, x: SimNode, inc: number, land: () => void): Promise<void> {
  return new Promise<void>((resolve) => {
    sim.call(x, inc, FSYNC_US, TAG_FSYNC, () => {
      land();
      resolve();
    });
  });
}

export function simPorts(sim: SimContext, x: SimNode, inc: number): DriverPorts {
  return {
    now: () => sim.engine.now / MS,
    timers: simTimers(sim, x, inc),
    signer: {
      open: () => Promise.resolve(),
      load: () => Promise.resolve(x.signerDurable === null ? null : { record: x.signerDurable.record, own: [...x.signerDurable.own] }),
      write: (s) => {
        const copy = { record: s.record, own: [...s.own] }; // the driver keeps appending to its own array
        return synced(sim, x, inc, () => void (x.signerDurable = copy));
      },
      close: () => Promise.resolve(),
    },
    decided: {
      put: (d: DecisionInput) => {
        const bytes = encodeDecision(d);
        return synced(sim, x, inc, () => void x.decidedDurable.set(d.height, bytes));
      },
      putMany: (ds: readonly DecisionInput[]) => {
        const all = ds.map((d) => [d.height, encodeDecision(d)] as const);
        return synced(sim, x, inc, () => {
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
        if (x.honest) for (const l of lines) sim.signed.push({ node: x.idx, kind: l.type, height: l.height, round: l.round, payload: l.valueId ?? 'nil' });
        const t = sim.tracing;
        if (t !== null) for (const l of lines) if (l.height === t.height) t.lines.push(`${(sim.engine.now / MS).toFixed(1)} ms n${x.idx}${x.honest ? '' : ' (byz)'} signs ${l.type} r${l.round} ${(l.valueId ?? 'nil').slice(0, 12)}`);
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    },
    decidedWhere: `simnet node ${x.idx}`,
    sign: (d) => cachedSign(x.id, d),
    verify: cachedVerify,
  };
}

/** One catch-up exchange: the request reaches the peer's real answer(), the reply comes back, or the timeout fires. */
function simRequestSync(sim: SimContext, x: SimNode, inc: number, peer: string, req: SyncRequest, timeoutMs: number): Promise<Uint8Array> {
  sim.counters.syncRequests++;
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    sim.call(x, inc, timeoutMs * MS * x.scale, TAG_SYNC, () => {
      if (settled) return;
      settled = true;
      reject(new SimnetError('ERR_SIMNET_SYNC_TIMEOUT', `no sync reply from ${peer} within ${timeoutMs} ms`));
    });
    const y = sim.resolve(peer, x);
    if (y === undefined || !sim.linkUp(x, y) || x.behaviour === 'silent') return;
    const bytes = encodeSyncRequest(req);
    sim.call(y, y.inc, sim.linkMedianUs[x.idx * sim.nodes.length + y.idx]!, TAG_SYNC, () => {
      const r = decodeSyncRequest(bytes);
      const answer = y.answer;
      if (r === null || answer === null || y.behaviour === 'silent') return;
      const yInc = y.inc;
      void answer(r).then((resp) => {
        if (!y.up || y.inc !== yInc) return;
        y.served?.(true, x.peerId);
        if (!sim.linkUp(y, x)) return;
        sim.call(x, inc, sim.linkMedianUs[y.idx * sim.nodes.length + x.idx]!, TAG_SYNC, () => {
          if (settled) return;
          settled = true;
          resolve(resp);
        });
      });
    });
  });
}

export function simTransport(sim: SimContext, x: SimNode, inc: number): ConsensusTransport {
  const live = (): boolean => x.up && x.inc === inc;
  const reachable = (): string[] => (live() ? sim.nodes.filter((y) => y !== x && sim.linkUp(x, y)).map((y) => y.peerId) : []);
  const out = (y: SimNode, m: SimSealed): void => {
    if (x.behaviour === 'silent') sim.counters.silentDropped++;
    else sim.send(x, y, m);
  };
  return {
    seal: (kind, body): SimSealed => ({ kind, body, mark: markOf(body) }),
    sendDirect(m, to) {
      const sent: string[] = [];
      const missing: string[] = [];
      if (!live()) return { sent, missing: [...to] };
      for (const p of to) {
        const y = sim.resolve(p, x);
        if (y === undefined || !sim.linkUp(x, y)) missing.push(p);
        else {
          out(y, m as SimSealed);
          sent.push(p);
        }
      }
      return { sent, missing };
    },
    publish(m) {
      if (live()) for (const y of sim.nodes) if (y !== x && y.up) out(y, m as SimSealed);
      return Promise.resolve();
    },
    directPeers: reachable,
    connectedPeers: reachable,
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
    requestSync: (peer, req, timeoutMs) => simRequestSync(sim, x, inc, peer, req, timeoutMs),
    close: () => Promise.resolve(),
  };
}

/** A batch the registry refuses (removing a key that is no member): what `invalid-value` proposes. */
function invalidBatch(height: number, round: number): Uint8Array {
  const publicKey = blake3(new Uint8Array([0x49, height & 0xff, (height >>> 8) & 0xff, round & 0xff]));
  return encodeBatch([{ kind: 'member.remove', publicKey }]);
}

/** Byzantine behaviours through the driver's test-only hooks, signed with the Byzantine node's own key. */
export function byzantineHooks(sim: SimContext, x: SimNode): TestOnlyHooks | undefined {
  if (x.fork) return undefined; // a fork equivocates by running the honest code on each side
  if (x.behaviour === 'invalid-value') {
    return {
      valueToPropose: (h, r) => {
        sim.counters.invalidProposals++;
        return invalidBatch(h, r);
      },
    };
  }
  if (x.behaviour !== 'equivocate' && x.behaviour !== 'forge' && x.behaviour !== 'future-round') return undefined;
  const behaviour = x.behaviour;
  const signedVote = (vote: SignedVote['vote']): ConsensusMessage => ({ type: 'vote', vote: { vote, signer: x.id.publicKey, signature: cachedSign(x.id, voteDigest(SIM_CLUSTER, vote)) } });
  return {
    extraBroadcasts: (m) => {
      if (m.type !== 'vote') return [];
      const v = m.vote.vote;
      let extra: ConsensusMessage[];
      if (behaviour === 'equivocate') {
        // The same vote for the other side (nil <-> a made-up value): a conflicting, validly signed vote.
        extra = [signedVote({ ...v, valueId: v.valueId === null ? toHex(blake3(new Uint8Array([v.height & 0xff, v.round & 0xff, 0x45]))) : null })];
      } else if (behaviour === 'forge') {
        // Impersonation (our signature under an honest signer) and a changed value under the old signature.
        const victim = sim.nodes[sim.rByz.pick(sim.honestIdx.length > 0 ? sim.honestIdx : [x.idx])]!;
        extra = [
          { type: 'vote', vote: { vote: v, signer: victim.id.publicKey, signature: m.vote.signature } },
          { type: 'vote', vote: { vote: { ...v, valueId: toHex(blake3(new Uint8Array([sim.rByz.int(256), v.round & 0xff]))) }, signer: m.vote.signer, signature: m.vote.signature } },
        ];
      } else {
        const round = v.round + 1 + sim.rByz.int(3);
        extra = (['prevote', 'precommit'] as const).map((type) => signedVote({ type, height: v.height, round, valueId: sim.rByz.chance(0.5) ? null : v.valueId }));
      }
      sim.counters.byzExtras += extra.length;
      return extra;
    },
  };
}
