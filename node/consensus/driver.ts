/**
 * The consensus driver: carries out the pure Tendermint core's effects (consensus/core.ts)
 * over libp2p gossip, a durable signer file and the LevelDB decided log.
 *
 * One serialized event loop per node feeds `step()`; the effects of a step are carried out in
 * order, and durability comes first: the signer record (with this node's own signed messages of
 * the height) is written before any broadcast of that step, and a decision is written to the log
 * (sync) and applied to the registry before anything else happens.
 *
 * Idle clusters do not spin (CometBFT's `create_empty_blocks = false`): after deciding H, H+1
 * starts only when there is work: this node's pool holds ops, a message for H+1 arrives, or the
 * node restarts inside a height it had signed at.
 */
import { domain } from '../../crypto/blake3.js';
import { peerIdFromPublicKey } from '../../crypto/keys.js';
import { valueIdOf } from '../../consensus/core.js';
import { toHex } from '../../base/hex.js';
import { encodeBatch, MAX_BATCH_BYTES, MAX_BATCH_OPS, type PatternOp } from '../../consensus/patterns.js';
import { applyBatch, registryHash, validateBatch, validatorSetAt, type Registry } from '../../consensus/registry.js';
import type { Evidence } from '../../consensus/types.js';
import type { Host } from '../p2p/host.js';
import type { ConsensusStatus, CommitReceipt, DecidedEntry } from './api.js';
import { ConsensusDriverError } from './api.js';
import { decodeDecision, type StoredDecision } from './decided-log.js';
import { opId } from './mempool.js';
import { libp2pTransport } from './bind-libp2p.js';
import { nodePorts } from './bind-node.js';
import type { ConsensusTransport, DriverPorts, TimerHandle } from './ports.js';
import { SYNC_TIMEOUT_MS_DEFAULT } from './sync.js';
import type { Job, Waiter, DriverCounters, DriverOptions, DriverConsensus } from './driver-types.js';
import { WAITERS_MAX, OPS_ENVELOPE_FRAMING_BYTES, KIND_OPS } from './driver-types.js';
import { opsOf } from './driver-messages.js';
import { DriverReceive } from './driver-receive.js';

export async function openConsensus(o: DriverOptions): Promise<DriverConsensus> {
  const syncTimeoutMs = o.syncTimeoutMs ?? SYNC_TIMEOUT_MS_DEFAULT;
  const driver = new Driver(o, nodePorts(o), (host) => libp2pTransport({ host, identity: o.identity, cluster: o.cluster, now: o.now, syncTimeoutMs }));
  await driver.open();
  return driver;
}

/**
 * The driver over its ports (ports.ts): production (openConsensus) binds libp2p, LevelDB, the
 * signer file and real timers; simnet binds its deterministic engine and crashable stores.
 */
export function createDriver(o: Omit<DriverOptions, 'store' | 'stateDir' | 'auditLogPath'>, ports: DriverPorts): Driver {
  return new Driver(o, ports, null);
}


export class Driver extends DriverReceive implements DriverConsensus {
  // -------------------------------------------------------------------------------------------
  // Open: replay the decided log, load the signer file

  async open(): Promise<void> {
    await Promise.all(['fednode/v1/vote', 'fednode/v1/proposal'].map((c) => domain(c).ready));
    await this.signerFile.open();
    const path = this.ports.decidedWhere;
    let reg = this.reg;
    let expected = 1;
    let last: StoredDecision | null = null;
    for await (const { height, bytes } of this.decidedLog.raw(1, Number.MAX_SAFE_INTEGER)) {
      const bad = (reason: string): ConsensusDriverError =>
        new ConsensusDriverError(
          'ERR_CONSENSUS_STATE_CORRUPT',
          `decided log in ${path} is damaged at height ${height}: ${reason}. The log is never rewritten silently. To fix: restore the data directory from a backup, or remove this node's store and let it catch up from the cluster (it refetches and re-verifies every height).`,
          { path, height, reason },
        );
      if (height !== expected) throw bad(`expected height ${expected} next`);
      const dec = decodeDecision(height, bytes);
      if (!dec.ok) throw bad(dec.reason);
      const d = dec.d;
      if (valueIdOf(d.value) !== d.certificate.valueId) throw bad('value does not match its certificate');
      try {
        reg = applyBatch(reg, height, d.value);
      } catch (err) {
        throw bad(`batch does not apply: ${(err as Error).message}`);
      }
      const h = registryHash(reg);
      if (toHex(h) !== toHex(d.registryHash)) throw bad('registry hash after applying differs from the stored one');
      expected++;
      last = d;
    }
    this.reg = reg;
    this.regHashHex = toHex(registryHash(reg));
    this.members.update(reg);
    if (last !== null) this.lastDecidedMs = last.decidedMs;

    const signer = await this.signerFile.load();
    if (signer !== null) {
      this.restartRecord = signer.record;
      this.state = this.newCore(signer.record);
      if (signer.record.height > this.reg.height) {
        this.own = [...signer.own];
        this.ownHeight = signer.record.height;
      }
    }
    if (this.audit !== null) await this.audit.open();
    this.log.info('consensus opened', { decidedHeight: this.reg.height, registryHash: this.regHashHex, signerHeight: signer?.record.height ?? 0 });
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  async start(host: Host): Promise<void> {
    if (this.bindHost === null) throw new ConsensusDriverError('ERR_CONSENSUS_STOPPED', 'this driver was built over its own transport: start it with startOn(transport)');
    await this.startOn(this.bindHost(host));
  }

  /** Start over a transport (production: libp2p via start(host); simnet: its own). */
  async startOn(wire: ConsensusTransport): Promise<void> {
    if (this.stopped) throw new ConsensusDriverError('ERR_CONSENSUS_STOPPED', 'consensus driver is stopped');
    if (this.started) return;
    this.started = true;
    this.wireT = wire;
    this.unsubscribe = wire.onEnvelope((e) => this.onGossip(e));
    await wire.serveSync((req) => this.answer(req), (ok, remote) => this.served(ok, remote));
    this.statusTimer = this.t.every(this.statusIntervalMs, () => {
      try {
        this.tick();
      } catch (err) {
        // a bug here must not take the node down (a timer's exception would end the process)
        this.c.internalErrors++;
        this.log.error('consensus status tick failed', { err: err instanceof Error ? err.message : String(err) });
      }
    });
    // Resume a height this node had signed at before a restart (its own messages are re-sent).
    if (this.restartRecord !== null && this.restartRecord.height === this.reg.height + 1) this.kick();
    else if (this.hasWork()) this.kick();
    this.log.info('consensus started', { height: this.reg.height + 1, peerId: this.o.identity.peerId });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stoppedResolve();
    this.statusTimer?.cancel();
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    this.unsubscribe?.();
    if (this.wireT !== null) await this.wireT.close().catch(() => undefined);
    this.internal.length = 0;
    this.external.length = 0;
    if (this.pumping !== null) await this.pumping; // finish the step in progress (its disk writes)
    await this.signerFile.close();
    await this.audit?.close();
    const err = new ConsensusDriverError('ERR_CONSENSUS_STOPPED', 'consensus driver stopped before the ops were decided');
    for (const set of this.waiters.values()) for (const w of set) w.reject(err);
    this.waiters.clear();
  }

  protected async handle(job: Job): Promise<void> {
    switch (job.kind) {
      case 'core':
        return this.feed(job.event);
      case 'kick':
        this.kickQueued = false;
        return this.startNextIfIdle(this.kickCause());
      case 'store-retry':
        return this.retryStore();
      case 'message':
        return this.onMessage(job.m);
      case 'catchup':
        try {
          return await this.onCatchup(job.r, job.from);
        } finally {
          job.done();
        }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Public API

  submit(ops: readonly PatternOp[], opts?: { readonly timeoutMs?: number; readonly signal?: AbortSignal }): Promise<CommitReceipt> {
    if (this.stopped) return Promise.reject(new ConsensusDriverError('ERR_CONSENSUS_STOPPED', 'consensus driver is stopped'));
    if (!this.members.isMember(this.o.identity.peerId)) {
      return Promise.reject(new ConsensusDriverError('ERR_NOT_MEMBER', `this node (${this.o.identity.peerId}) is not a member of the cluster yet; its ops would be rejected`));
    }
    const verdict = this.check(ops);
    if (!verdict.ok) return Promise.reject(new ConsensusDriverError('ERR_PATTERN_REJECTED', `ops rejected: ${verdict.reason}`, { reason: verdict.reason, index: verdict.index }));
    const ids = ops.map(opId);
    const bytes = ids.reduce((a, x) => a + x.bytes, 0);
    const fresh = ids.filter((x) => !this.pool.has(x.id));
    if (!this.pool.fits(fresh.length, bytes) || this.waiterCount >= WAITERS_MAX) {
      return Promise.reject(new ConsensusDriverError('ERR_MEMPOOL_FULL', `pending-op pool is full (${this.pool.size} ops, ${this.pool.bytes} bytes); try again later`, { ops: this.pool.size, bytes: this.pool.bytes }));
    }
    const timeoutMs = opts?.timeoutMs ?? this.submitTimeoutMs;
    const promise = new Promise<CommitReceipt>((resolve, reject) => {
      const remaining = new Set(ids.map((x) => x.id));
      let timer: TimerHandle | null = null;
      const onAbort = (): void => {
        w.cleanup();
        reject(new ConsensusDriverError('ERR_SUBMIT_TIMEOUT', 'submit aborted before the ops were decided (they may still be decided later)', { aborted: true }));
      };
      const w: Waiter = {
        remaining,
        resolve,
        reject,
        cleanup: () => {
          timer?.cancel();
          opts?.signal?.removeEventListener('abort', onAbort);
          for (const id of ids) {
            const set = this.waiters.get(id.id);
            set?.delete(w);
            if (set?.size === 0) this.waiters.delete(id.id);
          }
          this.waiterCount--;
        },
      };
      for (const id of ids) {
        let set = this.waiters.get(id.id);
        if (set === undefined) {
          set = new Set();
          this.waiters.set(id.id, set);
        }
        set.add(w);
      }
      this.waiterCount++;
      timer = this.t.after(timeoutMs, () => {
        w.cleanup();
        reject(new ConsensusDriverError('ERR_SUBMIT_TIMEOUT', `ops not decided within ${timeoutMs} ms (they may still be decided later)`, { timeoutMs }));
      });
      if (opts?.signal !== undefined) {
        if (opts.signal.aborted) onAbort();
        else opts.signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    for (let i = 0; i < ops.length; i++) {
      if (this.pool.add(ids[i]!.id, ops[i]!, ids[i]!.bytes) === 'added') this.gossipOps.push({ id: ids[i]!.id, op: ops[i]!, bytes: ids[i]!.bytes });
    }
    if (!this.gossipFlushScheduled && this.gossipOps.length > 0) {
      // Submits of the same turn of the event loop travel in one envelope (one signature, one
      // gossip message per batch instead of one per submit: the throughput target needs it).
      this.gossipFlushScheduled = true;
      this.t.soon(() => this.flushOpsGossip());
    }
    if (!this.running) this.kick();
    return promise;
  }

  protected flushOpsGossip(): void {
    try {
      this.flushOpsGossipUnsafe();
    } catch (err) {
      this.c.internalErrors++;
      this.log.error('ops gossip failed', { err: err instanceof Error ? err.message : String(err) });
    }
  }

  private flushOpsGossipUnsafe(): void {
    this.gossipFlushScheduled = false;
    const all = this.gossipOps;
    this.gossipOps = [];
    let chunk: PatternOp[] = [];
    let size = OPS_ENVELOPE_FRAMING_BYTES;
    const flush = (): void => {
      // `decided`: the sender's last decided height, so receivers can tell a late copy of an op
      // decided since (dropped) from a deliberate re-submission of an op decided before (kept).
      if (chunk.length > 0) this.publish(KIND_OPS, { decided: this.reg.height, batch: encodeBatch(chunk) });
      chunk = [];
      size = OPS_ENVELOPE_FRAMING_BYTES;
    };
    for (const x of all) {
      // Decided since it was queued (it left the pool): sending it now, stamped with the new
      // decided height, would make receivers take it for a re-submission.
      if (!this.pool.has(x.id)) continue;
      if (chunk.length >= MAX_BATCH_OPS || size + x.bytes > MAX_BATCH_BYTES) flush();
      chunk.push(x.op);
      size += x.bytes;
    }
    flush();
  }

  check(ops: readonly PatternOp[]): { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly index: number | null } {
    // The empty batch is a proposer's value, not something to submit: there is nothing to wait for.
    if (ops.length === 0) return { ok: false, reason: 'no ops to submit', index: null };
    let bytes: Uint8Array;
    try {
      bytes = encodeBatch(ops);
    } catch (err) {
      const data = (err as { data?: Record<string, unknown> }).data;
      return { ok: false, reason: (err as Error).message, index: typeof data?.['index'] === 'number' ? data['index'] : null };
    }
    const v = validateBatch(this.reg, this.reg.height + 1, bytes);
    return v.ok ? { ok: true } : { ok: false, reason: v.reason, index: v.index };
  }

  registry(): Registry {
    return this.reg;
  }

  async entries(from: number, limit: number): Promise<DecidedEntry[]> {
    const out: DecidedEntry[] = [];
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(limit) || limit <= 0) return out;
    for await (const { height, bytes } of this.decidedLog.raw(Math.max(1, from), limit)) {
      const d = decodeDecision(height, bytes);
      if (!d.ok) break;
      out.push({
        height,
        round: d.d.round,
        valueId: d.d.certificate.valueId,
        ops: opsOf(d.d.value),
        certificate: d.d.certificate,
        registryHash: toHex(d.d.registryHash),
        decidedMs: d.d.decidedMs,
        startedMs: null,
      });
    }
    return out;
  }

  evidence(): readonly Evidence[] {
    return [...this.evidenceList];
  }

  onDecided(listener: (e: DecidedEntry) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  status(): ConsensusStatus {
    const h = this.current;
    const set = this.running && this.state.validators !== null ? this.state.validators : validatorSetAt(this.reg, h);
    return {
      height: h,
      round: this.running ? this.state.round : 0,
      step: this.running ? this.state.step : 'propose',
      decidedHeight: this.reg.height,
      registryHash: this.regHashHex,
      validators: set.validators.map((v) => peerIdFromPublicKey(v.publicKey)),
      isValidator: set.validators.some((v) => toHex(v.publicKey) === this.selfHex),
      mempoolOps: this.pool.size,
      evidence: this.evidenceList.map((e) => ({ validator: peerIdFromPublicKey(e.first.signer), height: e.height, round: e.round, voteType: e.voteType })),
      caughtUpHeights: this.caughtUpHeights,
      lastDecidedMs: this.lastDecidedMs,
      wire: this.wire(),
      storeError: this.unstored === null ? null : { height: this.unstored.height, error: this.unstored.error, attempts: this.unstored.attempts, sinceMs: this.unstored.sinceMs },
      work: {
        running: this.running,
        cause: this.running ? this.heightCause : null,
        pendingMembership: this.reg.pending.map((p) => ({ kind: p.op.kind, peerId: peerIdFromPublicKey(p.op.publicKey), effectiveHeight: p.effectiveHeight })),
      },
    };
  }

  /** The same validator set the direct send checks (directPeers), against the channels open now. */
  private wire(): ConsensusStatus['wire'] {
    const open = new Set(this.wireT?.directPeers() ?? []);
    const others = [...this.directPeers().validators];
    return { direct: others.filter((p) => open.has(p)).length, withoutChannel: others.filter((p) => !open.has(p)), gossipFallbacks: this.c.gossipFallbacks };
  }

  counters(): DriverCounters {
    return { ...this.c };
  }
}

export { EMPTY_VALUE } from './driver-messages.js';
export { EVENT_QUEUE_MAX, EVIDENCE_MAX, STATUS_INTERVAL_MS_DEFAULT, SUBMIT_TIMEOUT_MS_DEFAULT, KIND_PROPOSAL, KIND_VOTE, KIND_STATUS, KIND_OPS } from './driver-types.js';
export type { DriverCounters, DriverOptions, DriverConsensus } from './driver-types.js';
export type { TestOnlyHooks } from './ports.js';
