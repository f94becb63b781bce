/** The consensus driver, part 2 of 4: effects in order, the direct/gossip wire, decisions, work. */
import { DriverState } from './driver-state.js';
import type { AppliedDecision } from './driver-types.js';
import { peerIdFromPublicKey } from '../../crypto/keys.js';
import { encodeMessage } from '../../consensus/codec.js';
import { proofOfLockMessages, step, valueIdOf } from '../../consensus/core.js';
import { toHex } from '../../base/hex.js';
import { applyBatch, registryHash, validatorSetAt, type Registry } from '../../consensus/registry.js';
import type { CommitCertificate, ConsensusMessage, Effect, Event, SignerRecord } from '../../consensus/types.js';
import type { CommitReceipt, DecidedEntry, HeightCause } from './api.js';
import { ConsensusDriverError } from './api.js';
import { opId } from './mempool.js';
import { MAX_OWN_MESSAGES, ownMessages } from './signer-file.js';
import type { ConsensusTransport, Sealed } from './ports.js';
import type { Waiter } from './driver-types.js';
import { EVIDENCE_MAX, RECENTLY_DECIDED_MAX, KIND_PROPOSAL, KIND_VOTE, KIND_STATUS } from './driver-types.js';
import { voteKind, msgHeight, msgRound, msgSigner, msgKey, wireBytes, EMPTY_VALUE, opsOf } from './driver-messages.js';

/** Carrying out the core's effects: durability first, then the wire; decisions and what they start. */
export abstract class DriverEffects extends DriverState {
  protected async startNextIfIdle(cause: HeightCause): Promise<void> {
    if (this.running) return;
    const h = this.current;
    this.heightCause = cause;
    this.heightStarted = { height: h, ms: Math.floor(this.now()) };
    await this.feed({ type: 'start-height', height: h, validators: validatorSetAt(this.reg, h) });
    this.polRelayedRound = 0;
    // After a restart inside this height: our own messages count again and are re-sent.
    if (this.ownHeight === h && this.own.length > 0) {
      const mine = ownMessages({ record: this.state.signerRecord, own: this.own });
      await this.auditLines(mine);
      for (const m of mine) await this.feed(m.type === 'vote' ? { type: 'vote', vote: m.vote } : { type: 'proposal', proposal: m.proposal });
      for (const m of mine) this.broadcast(m);
    }
  }

  protected async feed(event: Event): Promise<void> {
    const r = step(this.state, event);
    this.state = r.state;
    await this.carryOut(r.effects);
    // Entering a round above 0: relay the proof-of-lock at once (the prevotes that justify
    // our valid value and the current proposal's validRound), as CometBFT's vote gossip does.
    if (this.running && this.state.round > 0 && this.state.round !== this.polRelayedRound) {
      this.polRelayedRound = this.state.round;
      for (const m of proofOfLockMessages(this.state)) this.broadcast(m);
    }
  }

  protected async carryOut(effects: readonly Effect[]): Promise<void> {
    // Durability first: the newest signer record of this step together with every message
    // this step signed, written (tmp, fsync, rename, fsync dir) before any of them leaves.
    let record: SignerRecord | null = null;
    for (const e of effects) if (e.type === 'persist') record = e.record;
    if (record !== null) {
      if (this.o.beforeSignerWrite !== undefined) await this.o.beforeSignerWrite(record.height);
      if (record.height !== this.ownHeight) {
        this.own = [];
        this.ownHeight = record.height;
      }
      const fresh: ConsensusMessage[] = [];
      const known = new Set(this.own.map(msgKey));
      for (const e of effects) {
        if (e.type !== 'broadcast' || msgHeight(e.message) !== record.height) continue;
        const bytes = wireBytes(e.message);
        if (known.has(msgKey(bytes))) continue;
        known.add(msgKey(bytes));
        this.own.push(bytes);
        fresh.push(e.message);
      }
      if (this.own.length > MAX_OWN_MESSAGES) this.own = this.own.slice(this.own.length - MAX_OWN_MESSAGES);
      await this.signerFile.write({ record, own: this.own });
      await this.auditLines(fresh);
    }
    for (const e of effects) {
      switch (e.type) {
        case 'persist':
          break; // done above
        case 'broadcast':
          this.broadcast(e.message);
          break;
        case 'schedule-timeout': {
          const t = this.t.after(e.durationMs, () => {
            this.timers.delete(t);
            this.push({ kind: 'core', event: { type: 'timeout', kind: e.kind, height: e.height, round: e.round } }, true);
          });
          this.timers.add(t);
          break;
        }
        case 'request-value': {
          const built = this.pool.build(this.reg, e.height) ?? EMPTY_VALUE;
          const value = this.o.testOnly?.valueToPropose?.(e.height, e.round, built) ?? built;
          this.push({ kind: 'core', event: { type: 'value-to-propose', height: e.height, round: e.round, value } }, true);
          break;
        }
        case 'decide':
          try {
            await this.decide(e.height, e.round, e.value, e.certificate);
          } catch (err) {
            this.storeFailed({ height: e.height, round: e.round, value: e.value, certificate: e.certificate }, err);
          }
          break;
        case 'evidence':
          this.evidenceList.push(e.evidence);
          if (this.evidenceList.length > EVIDENCE_MAX) this.evidenceList.shift(); // bound: oldest dropped
          this.log.warn('equivocation detected', { validator: peerIdFromPublicKey(e.evidence.first.signer), height: e.evidence.height, round: e.evidence.round, voteType: e.evidence.voteType });
          break;
      }
    }
  }

  protected async auditLines(ms: readonly ConsensusMessage[]): Promise<void> {
    if (this.audit === null || ms.length === 0) return;
    await this.audit.append(
      ms.map((m) => ({
        height: msgHeight(m),
        round: msgRound(m),
        type: voteKind(m),
        valueId: m.type === 'proposal' ? valueIdOf(m.proposal.proposal.value) : m.vote.vote.valueId,
      })),
    );
  }

  /** Is this node a validator of the height its core runs? Only validators' messages are sent. */
  protected isValidatorNow(): boolean {
    const set = this.state.validators;
    return set !== null && set.validators.some((v) => toHex(v.publicKey) === this.selfHex);
  }

  protected broadcast(m: ConsensusMessage): void {
    if (this.wireT === null || this.stopped) return;
    const own = toHex(msgSigner(m)) === this.selfHex;
    if (own && !this.isValidatorNow()) return;
    this.publish(m.type === 'proposal' ? KIND_PROPOSAL : KIND_VOTE, wireBytes(m));
    if (own) for (const extra of this.o.testOnly?.extraBroadcasts?.(m) ?? []) this.publish(extra.type === 'proposal' ? KIND_PROPOSAL : KIND_VOTE, encodeMessage(extra));
  }

  protected publish(kind: string, body: unknown): void {
    const wire = this.wireT;
    if (wire === null || this.stopped) return;
    let sealed: Sealed;
    try {
      sealed = wire.seal(kind, body);
    } catch (err) {
      this.c.broadcastFailures++;
      this.log.warn('cannot build envelope', { kind, err: (err as Error).message });
      return;
    }
    // Proposals, votes and ops go point to point to every other member; gossip (flood and
    // relay) only when a validator could not be reached so. Status stays on gossip: it is
    // how lagging or partly connected nodes are noticed.
    if (kind !== KIND_STATUS && this.sentDirect(wire, sealed)) return;
    wire.publish(sealed).catch((err: unknown) => {
      this.c.broadcastFailures++;
      this.log.debug('publish failed', { kind, err: err instanceof Error ? err.message : String(err) });
    });
  }

  /** Send on the direct channels; true when every other validator of the current height got it. */
  protected sentDirect(wire: ConsensusTransport, m: Sealed): boolean {
    const { others, validators } = this.directPeers();
    if (others.length === 0) return validators.size === 0;
    let r: { readonly sent: readonly string[]; readonly missing: readonly string[] };
    try {
      r = wire.sendDirect(m, others);
    } catch (err) {
      this.log.debug('direct send failed', { err: err instanceof Error ? err.message : String(err) });
      return false;
    }
    this.c.directSent += r.sent.length;
    if (r.missing.some((p) => validators.has(p))) {
      this.c.gossipFallbacks++;
      return false;
    }
    return true;
  }

  protected directPeersMemo: { reg: Registry; others: string[]; validators: Set<string> } | null = null;
  /** Other members (peer ids) and the other validators of the current height, memoised per registry. */
  protected directPeers(): { others: string[]; validators: Set<string> } {
    const m = this.directPeersMemo;
    if (m !== null && m.reg === this.reg) return m;
    const self = this.o.identity.peerId;
    const others = this.members.members().filter((p) => p !== self);
    const validators = new Set(validatorSetAt(this.reg, this.current).validators.map((v) => peerIdFromPublicKey(v.publicKey)).filter((p) => p !== self));
    this.directPeersMemo = { reg: this.reg, others, validators };
    return this.directPeersMemo;
  }

  // -------------------------------------------------------------------------------------------
  // Decisions

  protected async decide(height: number, round: number, value: Uint8Array, certificate: CommitCertificate): Promise<void> {
    if (height !== this.current) return;
    const before = this.reg;
    // Pure first (a batch that does not apply is refused before anything is written).
    const next = applyBatch(before, height, value);
    const hash = registryHash(next);
    const decidedMs = Math.floor(this.now());
    await this.decidedLog.put({ height, round, value, certificate, registryHash: hash, decidedMs });
    this.applied({ height, round, value, certificate, before, next, hash, decidedMs });
  }

  protected storeFailed(d: { height: number; round: number; value: Uint8Array; certificate: CommitCertificate }, err: unknown): void {
    const error = err instanceof Error ? err.message : String(err);
    const prev = this.unstored;
    this.unstored = { ...d, error, attempts: (prev?.height === d.height ? prev.attempts : 0) + 1, sinceMs: prev?.height === d.height ? prev.sinceMs : this.now() };
    this.c.storeFailures++;
    this.log.error('cannot store decided height; consensus waits and retries every status period', { height: d.height, attempts: this.unstored.attempts, err: error });
  }

  /** Retry storing a decision that failed (status tick). Catch-up may have stored it meanwhile. */
  protected async retryStore(): Promise<void> {
    const u = this.unstored;
    if (u === null) return;
    if (u.height !== this.current) {
      this.unstored = null; // decided and stored since (catch-up)
      return;
    }
    try {
      await this.decide(u.height, u.round, u.value, u.certificate);
      this.unstored = null;
      this.log.info('decided height stored after retry', { height: u.height, attempts: u.attempts });
    } catch (err) {
      this.storeFailed(u, err);
    }
  }

  /** In-memory consequences of a decision already durable in the log. */
  protected applied(d: AppliedDecision): void {
    const { height, round, value, certificate, before, next } = d;
    this.reg = next;
    this.regHashHex = toHex(d.hash);
    this.lastDecidedMs = d.decidedMs;
    this.members.update(next);
    const ops = opsOf(value);
    const ids = ops.map((op) => opId(op).id);
    for (const id of ids) {
      this.pool.remove(id);
      this.recentlyDecided.delete(id);
      this.recentlyDecided.set(id, height);
    }
    while (this.recentlyDecided.size > RECENTLY_DECIDED_MAX) {
      const oldest = this.recentlyDecided.keys().next().value;
      if (oldest === undefined) break;
      this.recentlyDecided.delete(oldest);
    }
    const entry: DecidedEntry = { height, round, valueId: certificate.valueId, ops, certificate, registryHash: this.regHashHex, decidedMs: d.decidedMs, startedMs: this.heightStarted?.height === height ? this.heightStarted.ms : null };
    this.resolveWaiters(ids, entry, before);
    for (const l of [...this.listeners]) {
      try {
        l(entry);
      } catch (err) {
        this.log.warn('decided listener failed', { err: err instanceof Error ? err.message : String(err) });
      }
    }
    for (const t of this.timers) t.cancel(); // timers of the decided height are moot
    this.timers.clear();
    if (this.pool.size > 0) this.pool.pruneInvalid(next, height + 1);
    if (this.hasWork()) this.kick();
  }

  /**
   * Why the next height should start now, or null when there is nothing to do (an idle cluster
   * decides nothing). Membership changes decided at H come into force at H+2: while any is
   * pending, the (possibly empty) heights that bring it into force are work, and no more.
   */
  protected workReason(): 'ops' | 'membership' | null {
    if (this.pool.size > 0) return 'ops';
    if (this.reg.pending.length > 0) return 'membership';
    return null;
  }

  protected hasWork(): boolean {
    return this.workReason() !== null;
  }

  /** The cause of a height a kick starts: a restart inside it, else the work there is. */
  protected kickCause(): HeightCause {
    if (this.ownHeight === this.current && this.own.length > 0) return 'resume';
    return this.workReason() ?? 'ops'; // a kick without work left (decided meanwhile by catch-up): submit's own kick
  }

  /** An op of a pending submit was evicted as invalid (the registry changed since it was checked). */
  protected rejectWaiters(id: string, reason: string): void {
    const set = this.waiters.get(id);
    if (set === undefined) return;
    for (const w of [...set]) {
      w.cleanup();
      w.reject(new ConsensusDriverError('ERR_PATTERN_REJECTED', `ops rejected: one became invalid before being decided (${reason}); the others of this submit may still be decided`, { reason, index: null }));
    }
  }

  protected resolveWaiters(ids: readonly string[], entry: DecidedEntry, before: Registry): void {
    const done = new Set<Waiter>();
    for (const id of ids) {
      const set = this.waiters.get(id);
      if (set === undefined) continue;
      for (const w of set) {
        w.remaining.delete(id);
        if (w.remaining.size === 0) done.add(w);
      }
    }
    if (done.size === 0) return;
    const set = validatorSetAt(before, entry.height);
    const signers = entry.certificate.precommits.map((p) => peerIdFromPublicKey(p.signer));
    const powers = new Map(set.validators.map((v) => [toHex(v.publicKey), v.power]));
    const power = entry.certificate.precommits.reduce((a, p) => a + (powers.get(toHex(p.signer)) ?? 0), 0);
    const receipt: CommitReceipt = { height: entry.height, round: entry.round, valueId: entry.valueId, registryHash: entry.registryHash, signers, power, totalPower: set.totalPower };
    for (const w of done) {
      w.cleanup();
      w.resolve(receipt);
    }
  }

}
